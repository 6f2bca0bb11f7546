/**
 * Vltava word count as its own process, for `pnpm bench:compare`: the examples/word-count topology
 * on KafkaStreams. Prints `STATE <state>` and `RESTORED <store> <task> <records> <ms>` lines.
 */
import { buildWordCountTopology } from '@vltava/example-word-count';
import { KafkaStreams } from '@vltava/runtime';
import { readAppConfig } from './appConfig.js';

const cfg = readAppConfig();
const app = new KafkaStreams(buildWordCountTopology({ inputTopic: cfg.inputTopic, outputTopic: cfg.outputTopic }), {
  applicationId: cfg.applicationId,
  brokers: [cfg.brokers],
  processingGuarantee: cfg.guarantee,
  commitIntervalMs: cfg.commitIntervalMs,
  stateDir: cfg.stateDir,
  sessionTimeoutMs: cfg.sessionTimeoutMs,
  heartbeatIntervalMs: 1_000,
});
const restoreStart = new Map<string, number>();
app.on('app.state', ({ to }) => console.log(`STATE ${to}`));
app.on('task.restore.start', (p) => restoreStart.set(`${p.taskId}/${p.store}`, performance.now()));
app.on('task.restore.end', (p) => {
  const t0 = restoreStart.get(`${p.taskId}/${p.store}`);
  console.log(`RESTORED ${p.store} ${p.taskId} ${p.restored} ${t0 === undefined ? -1 : Math.round(performance.now() - t0)}`);
});
app.on('error', ({ error, taskId }) => console.error(`ERROR ${taskId ?? ''} ${error.stack ?? error.message}`));
const stop = (): void => {
  void app.close({ timeoutMs: 10_000 }).finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
await app.start();
