/**
 * Prometheus metrics for a KafkaStreams app, through prom-client (an optional peer dependency):
 *
 *   import { Registry } from 'prom-client';
 *   import { registerPrometheusMetrics } from '@vltava/runtime/prometheus';
 *   const registry = new Registry();
 *   registerPrometheusMetrics(app, registry);
 *   // serve `await registry.metrics()` on /metrics
 *
 * The names follow Kafka Streams' metrics (stream-task-metrics process/commit/dropped-records,
 * stream-state-metrics restore, record-e2e-latency, consumer lag), in Prometheus form with a
 * `vltava_` prefix. They are built from the app's events, so an app that exports nothing pays nothing.
 * For OpenTelemetry, read the same registry with @opentelemetry/exporter-prometheus, or subscribe to
 * the events directly.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { KafkaStreams, StreamsState } from './kafkaStreams.js';

const STATES: readonly StreamsState[] = ['CREATED', 'REBALANCING', 'RUNNING', 'PENDING_SHUTDOWN', 'NOT_RUNNING', 'ERROR'];

export interface PrometheusMetricsOptions {
  /** Extra labels on every metric, e.g. { instance: 'a' }. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Metric name prefix (default `vltava_`). */
  readonly prefix?: string;
}

/** Registers the app's metrics in `registry`; returns a function that unsubscribes from the app. */
export function registerPrometheusMetrics(app: KafkaStreams, registry: Registry, opts: PrometheusMetricsOptions = {}): () => void {
  const p = opts.prefix ?? 'vltava_';
  const base = opts.labels ?? {};
  const baseNames = Object.keys(base);
  const registers = [registry];
  const processed = new Counter({ name: `${p}stream_task_process_total`, help: 'Records processed, per task (Kafka Streams process-total)', labelNames: [...baseNames, 'task_id'], registers });
  const commits = new Counter({ name: `${p}stream_task_commit_total`, help: 'Transactions committed, per task (commit-total)', labelNames: [...baseNames, 'task_id'], registers });
  const commitRecords = new Counter({ name: `${p}stream_task_commit_records_total`, help: 'Records sent in committed transactions (outputs, repartition and changelog records)', labelNames: [...baseNames, 'task_id'], registers });
  const commitLatency = new Histogram({
    name: `${p}stream_task_commit_latency_seconds`,
    help: 'Commit latency, per task (commit-latency)',
    labelNames: [...baseNames, 'task_id'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const e2e = new Histogram({
    name: `${p}stream_task_record_e2e_latency_seconds`,
    help: "Wall clock minus the record's timestamp when it is processed, per task (record-e2e-latency at the source)",
    labelNames: [...baseNames, 'task_id'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const dropped = new Counter({ name: `${p}stream_task_dropped_records_total`, help: 'Records dropped on purpose, by task and reason (dropped-records-total)', labelNames: [...baseNames, 'task_id', 'reason'], registers });
  const restored = new Counter({ name: `${p}stream_state_restore_records_total`, help: 'Changelog records restored, by task and store (restore-total)', labelNames: [...baseNames, 'task_id', 'store'], registers });
  const migrated = new Counter({ name: `${p}stream_task_migrated_total`, help: 'Tasks found fenced (another member or producer owns them)', labelNames: [...baseNames, 'task_id'], registers });
  const errors = new Counter({ name: `${p}stream_errors_total`, help: 'Errors reported by the app (fatal or retried)', labelNames: baseNames, registers });
  const state = new Gauge({ name: `${p}stream_state`, help: 'The app state: 1 for the current one', labelNames: [...baseNames, 'state'], registers });
  const tasks = new Gauge({
    name: `${p}stream_tasks`,
    help: 'Active tasks owned by this instance',
    labelNames: baseNames,
    registers,
    collect() {
      this.set(base, app.metrics().tasks.length);
    },
  });
  const lag = new Gauge({
    name: `${p}stream_consumer_lag_records`,
    help: 'Records not yet fetched, per input partition, as of the last fetch (records-lag)',
    labelNames: [...baseNames, 'topic', 'partition'],
    registers,
    collect() {
      this.reset();
      for (const [tp, n] of Object.entries(app.metrics().lag)) {
        const i = tp.lastIndexOf('-');
        this.set({ ...base, topic: tp.slice(0, i), partition: tp.slice(i + 1) }, n);
      }
    },
  });
  const setState = (current: StreamsState): void => {
    for (const s of STATES) state.set({ ...base, state: s }, s === current ? 1 : 0);
  };
  setState(app.state);
  const offs = [
    app.on('app.state', ({ to }) => setState(to)),
    app.on('task.processed', (e) => {
      processed.inc({ ...base, task_id: e.taskId }, e.records);
      e2e.observe({ ...base, task_id: e.taskId }, e.e2eLatencyMs / 1000);
    }),
    app.on('task.committed', (e) => {
      commits.inc({ ...base, task_id: e.taskId });
      commitRecords.inc({ ...base, task_id: e.taskId }, e.records);
      commitLatency.observe({ ...base, task_id: e.taskId }, e.latencyMs / 1000);
    }),
    app.on('task.record.dropped', (e) => dropped.inc({ ...base, task_id: e.taskId, reason: e.reason })),
    app.on('task.restore.end', (e) => restored.inc({ ...base, task_id: e.taskId, store: e.store }, e.restored)),
    app.on('task.migrated', (e) => migrated.inc({ ...base, task_id: e.taskId })),
    app.on('error', () => errors.inc(base)),
  ];
  void tasks;
  void lag;
  return () => {
    for (const off of offs) off();
  };
}
