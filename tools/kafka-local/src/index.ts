export * from './kafkaLocal.js';
export { resolveBrokers, type BrokerSource, type ResolvedBrokers } from './brokers.js';
export { awaitTopicsReady, createTopicsAndWait } from './topics.js';
