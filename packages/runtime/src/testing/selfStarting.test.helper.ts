/**
 * Test support: a topology module that (wrongly) also creates the app when a stream thread imports
 * it, the mistake KafkaStreams.fromModule refuses inside a stream thread.
 */
import { isMainThread } from 'node:worker_threads';
import { KafkaStreams } from '../index.js';
import { wordCountTopology } from './wordCount.test.helper.js';

export const topology = wordCountTopology('self-in', 'self-out');

if (!isMainThread) await KafkaStreams.fromModule(new URL(import.meta.url), { applicationId: 'self', brokers: ['127.0.0.1:9'], numStreamThreads: 2 });
