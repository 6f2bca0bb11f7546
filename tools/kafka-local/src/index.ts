export * from './kafkaLocal.js';
export { resolveBrokers, type BrokerSource, type ResolvedBrokers } from './brokers.js';
export { awaitTopicsReady, createTopicsAndWait } from './topics.js';
export {
  describeSecurity,
  loadSecurity,
  SecuritySetupError,
  type LocalKafkaSecurity,
  type LocalKafkaSecurityOptions,
  type ScramMechanism,
  type ScramUser,
  type SecurityInfo,
  type SecurityProtocol,
} from './security.js';
