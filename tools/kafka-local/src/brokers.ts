/**
 * Where a broker comes from. The order, first match wins:
 *   1. KAFKA_BROKERS=host:port[,host:port]  — an existing cluster (yours, or the one CI started);
 *   2. the local broker recorded by `pnpm kafka:up` (<repo>/.kafka/current.json), if it answers;
 *   3. testcontainers (`@testcontainers/kafka`), only where a Docker engine answers `docker info`;
 *   4. a new local broker from the official jars, only when the caller allows it (`startLocal: true`).
 * Otherwise a clear error says how to get one.
 */
import { spawnSync } from 'node:child_process';
import { LocalKafkaError, isAlive, metadataOk, readStateFile, startLocalKafka } from './kafkaLocal.js';

export type BrokerSource = 'KAFKA_BROKERS' | 'kafka:up' | 'testcontainers' | 'local-jars';

export interface ResolvedBrokers {
  readonly brokers: string[];
  readonly source: BrokerSource;
  /** Stops what this call started (a container or a local broker); a no-op otherwise. */
  release(): Promise<void>;
}

function dockerAvailable(): boolean {
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 5_000 });
  return r.status === 0 && r.stdout.trim().length > 0;
}

async function fromTestcontainers(): Promise<ResolvedBrokers | undefined> {
  if (!dockerAvailable()) return undefined;
  let mod: { KafkaContainer: new (image: string) => { withKraft(): unknown; start(): Promise<{ getHost(): string; getMappedPort(p: number): number; stop(): Promise<unknown> }> } };
  try {
    mod = (await import('@testcontainers/kafka' as string)) as typeof mod;
  } catch {
    return undefined;
  }
  const container = new mod.KafkaContainer(process.env.KAFKA_IMAGE ?? 'confluentinc/cp-kafka:7.9.0');
  (container as { withKraft(): unknown }).withKraft();
  const started = await container.start();
  return {
    brokers: [`${started.getHost()}:${started.getMappedPort(9093)}`],
    source: 'testcontainers',
    release: async () => {
      await started.stop();
    },
  };
}

export async function resolveBrokers(opts: { startLocal?: boolean } = {}): Promise<ResolvedBrokers> {
  const env = process.env.KAFKA_BROKERS?.trim();
  if (env) {
    return { brokers: env.split(',').map((s) => s.trim()).filter(Boolean), source: 'KAFKA_BROKERS', release: async () => undefined };
  }
  const state = readStateFile();
  // A broker started with `up --secure` needs credentials the tests do not have: it is not used here.
  const secured = state?.security !== undefined;
  if (state && !secured && isAlive(state.pid) && (await metadataOk(state.brokers))) {
    return { brokers: [state.brokers], source: 'kafka:up', release: async () => undefined };
  }
  const tc = await fromTestcontainers();
  if (tc) return tc;
  if (opts.startLocal) {
    const broker = await startLocalKafka({ port: 0 });
    return { brokers: [broker.brokers], source: 'local-jars', release: () => broker.stop() };
  }
  throw new LocalKafkaError(
    'No Kafka broker is available. Start one with `pnpm kafka:up` (needs Java 17+ and Maven), ' +
      'or set KAFKA_BROKERS=host:port to use an existing cluster (or run where a Docker engine is available).' +
      (secured ? ` The broker recorded by kafka:up (${state!.brokers}) is secured (--secure): the tests need a plaintext one.` : ''),
  );
}
