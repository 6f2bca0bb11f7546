/** The bad-input run's producers, in a worker thread of their own (see fuzz.ts, sendInWorker). */
import { parentPort, workerData } from 'node:worker_threads';
import { Kafka, logLevel } from 'kafkajs';
import { DEFAULT_LIMITS, planFuzz, sendPlan, type FuzzWorkerData, type ProducerMessage } from './fuzz.js';

const data = workerData as FuzzWorkerData;
const post = (m: ProducerMessage): void => parentPort!.postMessage(m);
const kafka = new Kafka({ clientId: 'vltava-fuzz-producer', brokers: data.brokers, logLevel: logLevel.NOTHING });
try {
  // Planned before the app starts (the parent waits for 'ready', then says 'go'): building 200,000
  // commands takes a while on a busy machine, and must not count as the app's time.
  const plan = planFuzz(data.plan);
  post({ type: 'ready' });
  await new Promise<void>((resolve) => parentPort!.once('message', () => resolve()));
  await sendPlan(kafka, plan, data.target, data.plan.limits ?? DEFAULT_LIMITS, post);
} catch (e) {
  post({ type: 'error', message: (e as Error).stack ?? String(e) });
}
