/** What the orchestrator (compare.ts) passes to each word-count process, as JSON in argv[2]. */
export interface AppConfig {
  readonly brokers: string;
  readonly applicationId: string;
  readonly inputTopic: string;
  readonly outputTopic: string;
  readonly guarantee: 'exactly-once' | 'at-least-once';
  readonly commitIntervalMs: number;
  readonly stateDir: string;
  readonly sessionTimeoutMs: number;
  /** Stream threads (Kafka Streams' num.stream.threads); default 1. */
  readonly threads?: number;
  /** When set, the app prints `MEM <rssBytes> <heapUsedBytes> <externalBytes>` this often (the soak samples the heap from it). */
  readonly memSampleMs?: number;
  /** Vltava only: the count store without range scans (no in-memory key index). */
  readonly pointOnly?: boolean;
  /** Only for @kafkats/flow: the topic it repartitions words through (it has no repartition of its own). */
  readonly repartitionTopic?: string;
}

export function readAppConfig(): AppConfig {
  const raw = process.argv[2];
  if (!raw) throw new Error('usage: node <app>.js <json AppConfig>');
  return JSON.parse(raw) as AppConfig;
}
