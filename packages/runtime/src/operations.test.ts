/**
 * Operating an app (issue 15): Prometheus metrics scraped over HTTP, the uncaught exception handler,
 * exitOnError and health(). On the real broker; outputs verified with kcat.
 */
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Registry } from 'prom-client';
import { Serdes, StreamsBuilder, type Topology } from '@vltava/dsl';
import { awaitCaughtUp, readCommittedKcat, useKafka, type TestKafka } from '@vltava/kafka-local/testing';
import { KafkaStreams, StreamsEventNames, exitOnError, type StreamsConfig } from './index.js';
import { registerPrometheusMetrics } from './prometheus.js';
import { corpus, finalCounts, referenceCounts, wordCountTopology } from './testing/wordCount.test.helper.js';

const kafka = useKafka(test);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const str = Serdes.string();

function config(k: TestKafka, applicationId: string, extra: Partial<StreamsConfig> = {}): StreamsConfig {
  return { applicationId, brokers: k.brokers, stateDir: mkdtempSync(join(tmpdir(), 'vltava-ops-')), sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, logger: quiet, ...extra };
}

async function produce(k: TestKafka, topic: string, values: readonly string[]): Promise<void> {
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < values.length; i += 500) await producer.send({ topic, messages: values.slice(i, i + 500).map((value, j) => ({ key: `k${i + j}`, value })) });
  await producer.disconnect();
}

/** The value of one sample line of a Prometheus text exposition, or undefined. */
function sample(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z0-9_:]+)(\{[^}]*\})? (.+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const ls = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

test('[broker] Prometheus metrics over HTTP: process, commit, e2e latency, lag and state, named like Kafka Streams', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'prom-in', partitions: 2 }, { prefix: 'prom-out', partitions: 2 }]);
  const lines = corpus(1_000);
  await produce(k, input!, lines);
  const applicationId = k.uniqueName('prom-app');
  const app = new KafkaStreams(wordCountTopology(input!, output!), config(k, applicationId));
  const registry = new Registry();
  const unregister = registerPrometheusMetrics(app, registry, { labels: { instance: 'a' } });
  const server = createServer((_req, res) => void registry.metrics().then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  t.teardown(() => app.close());
  await app.start();
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  await awaitCaughtUp(k.admin, applicationId, `${applicationId}-counts-repartition`, 60_000);
  const { port } = server.address() as { port: number };
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  await app.close();
  unregister();
  const words = [...referenceCounts(lines).values()].reduce((a, b) => a + b, 0);
  t.is(sample(text, 'vltava_stream_task_process_total', { instance: 'a' }), lines.length + words, 'lines in sub-topology 0, words in sub-topology 1');
  t.true((sample(text, 'vltava_stream_task_commit_total') ?? 0) > 0, 'commits');
  t.true((sample(text, 'vltava_stream_task_commit_latency_seconds_count') ?? 0) > 0, 'commit latency');
  t.true((sample(text, 'vltava_stream_task_record_e2e_latency_seconds_count') ?? 0) > 0, 'e2e latency');
  t.is(sample(text, 'vltava_stream_state', { state: 'RUNNING' }), 1);
  t.is(sample(text, 'vltava_stream_tasks'), 4);
  t.not(sample(text, 'vltava_stream_consumer_lag_records'), undefined);
  const sorted = (m: Map<string, number>): [string, number][] => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  t.deepEqual(sorted(finalCounts(await readCommittedKcat(k.brokers, output!))), sorted(referenceCounts(lines)));
});

function failOnce(input: string, output: string, state: { failed: number }): Topology {
  const b = new StreamsBuilder();
  b.stream(input, { keySerde: str, valueSerde: str, name: 'in' })
    .mapValues((v) => {
      if (v === 'v13' && state.failed++ === 0) throw new Error('transient failure in user code');
      return v.toUpperCase();
    }, { name: 'upper' })
    .to(output, { keySerde: str, valueSerde: str, name: 'out' });
  return b.build();
}

test("[broker] uncaughtExceptionHandler 'REPLACE_THREAD': the failed work is dropped, processing resumes from the committed offsets, exactly once", async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'replace-in' }, { prefix: 'replace-out' }]);
  const values = Array.from({ length: 100 }, (_, i) => `v${i}`);
  await produce(k, input!, values);
  const applicationId = k.uniqueName('replace-app');
  const state = { failed: 0 };
  const responses: string[] = [];
  const app = new KafkaStreams(
    failOnce(input!, output!, state),
    config(k, applicationId, {
      uncaughtExceptionHandler: (e) => {
        responses.push(e.message);
        return 'REPLACE_THREAD';
      },
    }),
  );
  t.teardown(() => app.close());
  await app.start();
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  t.is(app.state, 'RUNNING');
  t.true(app.health().live && app.health().ready);
  await app.close();
  t.is(responses.length, 1);
  t.regex(responses[0]!, /transient failure in user code/);
  t.deepEqual((await readCommittedKcat(k.brokers, output!)).map((r) => r.text), values.map((v) => v.toUpperCase()));
});

test('[broker] exitOnError: an app in ERROR closes and the process exits with 1; health() says why', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'exit-in' }, { prefix: 'exit-out' }]);
  await produce(k, input!, ['v1', 'v13']);
  const app = new KafkaStreams(failOnce(input!, output!, { failed: 0 }), config(k, k.uniqueName('exit-app')));
  t.teardown(() => app.close());
  const exited = new Promise<number>((resolve) => exitOnError(app, { exit: resolve, signals: [] }));
  const states: string[] = [];
  app.on(StreamsEventNames.APP_STATE, ({ to }) => states.push(to));
  await app.start();
  t.is(await exited, 1);
  t.deepEqual(states.slice(-3), ['ERROR', 'PENDING_SHUTDOWN', 'NOT_RUNNING']);
  const health = app.health();
  t.false(health.live);
  t.regex(health.error?.message ?? '', /transient failure in user code/);
});

test("[broker] logLevel 'debug' forwards kafkajs' entries with their structured fields; 'warn' keeps info and debug out", async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'log-in' }, { prefix: 'log-out' }]);
  const run = async (logLevel: 'debug' | 'warn'): Promise<{ level: string; message: string; meta: Readonly<Record<string, unknown>> | undefined }[]> => {
    const seen: { level: string; message: string; meta: Readonly<Record<string, unknown>> | undefined }[] = [];
    const logger = {
      debug: (message: string, meta?: Readonly<Record<string, unknown>>) => seen.push({ level: 'debug', message, meta }),
      info: (message: string, meta?: Readonly<Record<string, unknown>>) => seen.push({ level: 'info', message, meta }),
      warn: (message: string, meta?: Readonly<Record<string, unknown>>) => seen.push({ level: 'warn', message, meta }),
      error: (message: string, meta?: Readonly<Record<string, unknown>>) => seen.push({ level: 'error', message, meta }),
    };
    const app = new KafkaStreams(failOnce(input!, output!, { failed: 1 }), { ...config(k, k.uniqueName(`log-${logLevel}`)), logger, logLevel });
    await app.start();
    const deadline = Date.now() + 30_000;
    while (app.state !== 'RUNNING' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await app.close();
    return seen;
  };
  const debug = await run('debug');
  const kafkajsDebug = debug.filter((e) => e.message.startsWith('kafkajs ') && (e.level === 'debug' || e.level === 'info'));
  t.true(kafkajsDebug.length > 0, 'kafkajs entries at debug/info');
  t.true(kafkajsDebug.some((e) => typeof e.meta?.namespace === 'string' && Object.keys(e.meta).length > 1), 'with their structured fields');
  const warn = await run('warn');
  t.deepEqual(warn.filter((e) => e.level === 'debug' || e.level === 'info'), []);
});
