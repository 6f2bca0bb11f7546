/**
 * Vltava word count as its own process, for `pnpm bench:compare` and `pnpm bench:soak`: the
 * examples/word-count topology (bench/src/compare/wordCountTopology.ts) on KafkaStreams; with
 * `threads` > 1 through `KafkaStreams.fromModule`, whose stream threads import that module.
 * Prints `STATE <state>`, `RESTORED <store> <task> <records> <ms>` and, with memSampleMs,
 * `MEM <rss> <heapUsed> <external>` lines.
 */
import { KafkaStreams, type StreamsConfig } from '@vltava/runtime';
import { readAppConfig } from './appConfig.js';
import { INPUT_ENV, OUTPUT_ENV, POINT_ONLY_ENV, topology } from './wordCountTopology.js';

const cfg = readAppConfig();
process.env[INPUT_ENV] = cfg.inputTopic;
process.env[OUTPUT_ENV] = cfg.outputTopic;
if (cfg.pointOnly) process.env[POINT_ONLY_ENV] = '1';
const config: StreamsConfig = {
  applicationId: cfg.applicationId,
  brokers: [cfg.brokers],
  processingGuarantee: cfg.guarantee,
  commitIntervalMs: cfg.commitIntervalMs,
  stateDir: cfg.stateDir,
  sessionTimeoutMs: cfg.sessionTimeoutMs,
  heartbeatIntervalMs: 1_000,
};
const threads = cfg.threads ?? 1;

async function create(): Promise<KafkaStreams> {
  if (threads <= 1) return new KafkaStreams(topology(), config);
  return KafkaStreams.fromModule(new URL('./wordCountTopology.js', import.meta.url), { ...config, numStreamThreads: threads }, { exportName: 'topology' });
}

const app = await create();
const restoreStart = new Map<string, number>();
app.on('app.state', ({ to }) => console.log(`STATE ${to}`));
app.on('task.restore.start', (p) => restoreStart.set(`${p.taskId}/${p.store}`, performance.now()));
app.on('task.restore.end', (p) => {
  const t0 = restoreStart.get(`${p.taskId}/${p.store}`);
  console.log(`RESTORED ${p.store} ${p.taskId} ${p.restored} ${t0 === undefined ? -1 : Math.round(performance.now() - t0)}`);
});
app.on('error', ({ error, taskId }) => console.error(`ERROR ${taskId ?? ''} ${error.stack ?? error.message}`));
if (cfg.memSampleMs) {
  setInterval(() => {
    const m = process.memoryUsage();
    console.log(`MEM ${m.rss} ${m.heapUsed} ${m.external}`);
  }, cfg.memSampleMs).unref();
}
const stop = (): void => {
  void app.close({ timeoutMs: 10_000 }).finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
await app.start();
