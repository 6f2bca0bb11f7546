/**
 * The JVM side of `pnpm bench:compare`: the Kafka Streams jars (Maven, bench/java/pom.xml), our
 * WordCount.java compiled with javac, and the broker's own perf tools from the kafka-tools jar.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const javaDir = fileURLToPath(new URL('../../java', import.meta.url));

export interface StreamsJars {
  readonly lib: string;
  readonly classes: string;
}

/** Fetches org.apache.kafka:kafka-streams:<version> (once) and compiles WordCount.java (when changed). */
export function ensureStreamsJars(version: string, log: (m: string) => void): StreamsJars {
  const base = join(process.env.VLTAVA_KAFKA_CACHE ?? join(homedir(), '.cache', 'vltava', 'kafka'), `streams-${version}`);
  const lib = join(base, 'lib');
  if (!existsSync(join(base, '.complete'))) {
    log(`Downloading kafka-streams ${version} from Maven Central into ${lib} (once) ...`);
    mkdirSync(base, { recursive: true });
    const tmp = join(base, 'lib.partial');
    rmSync(tmp, { recursive: true, force: true });
    const r = spawnSync('mvn', ['-B', '-q', '-f', join(javaDir, 'pom.xml'), 'dependency:copy-dependencies', `-Dkafka.version=${version}`, `-DoutputDirectory=${tmp}`, '-DincludeScope=runtime'], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.error || r.status !== 0) throw new Error(`mvn could not fetch kafka-streams ${version}: ${r.error?.message ?? ''}${r.stdout}${r.stderr}`);
    rmSync(lib, { recursive: true, force: true });
    renameSync(tmp, lib);
    writeFileSync(join(base, '.complete'), new Date().toISOString());
  }
  const classes = join(base, 'classes');
  const src = join(javaDir, 'src', 'WordCount.java');
  const cls = join(classes, 'WordCount.class');
  if (!existsSync(cls) || statSync(cls).mtimeMs < statSync(src).mtimeMs) {
    log('Compiling bench/java/src/WordCount.java ...');
    mkdirSync(classes, { recursive: true });
    const r = spawnSync('javac', ['-d', classes, '-cp', `${lib}/*`, src], { encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`javac failed: ${r.error?.message ?? ''}${r.stdout}${r.stderr}`);
  }
  return { lib, classes };
}

export interface ProducerPerf {
  readonly recordsPerSec: number;
  readonly mbPerSec: number;
  readonly avgLatencyMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly raw: string;
}

/** org.apache.kafka.tools.ProducerPerformance, acks=all, unthrottled; transactional when `txnMs` is set. */
export function producerPerf(kafkaLib: string, brokers: string, topic: string, records: number, recordSize: number, txnMs?: number, timeoutMs = 180_000): ProducerPerf {
  const args = ['-cp', `${kafkaLib}/*`, 'org.apache.kafka.tools.ProducerPerformance', '--bootstrap-server', brokers, '--topic', topic, '--num-records', String(records), '--record-size', String(recordSize), '--throughput', '-1', '--producer-props', 'acks=all'];
  if (txnMs !== undefined) args.push('--transactional-id', `perf-${topic}`, '--transaction-duration-ms', String(txnMs));
  const r = spawnSync('java', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs, killSignal: 'SIGKILL' });
  if (r.error) throw new Error(`ProducerPerformance: ${r.error.message}${r.signal ? ` (killed after ${timeoutMs / 1000} s)` : ''}`);
  const out = `${r.stdout}${r.stderr}`;
  // "N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th."
  const m = /records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, [\d.]+ ms max latency, ([\d.]+) ms 50th, [\d.]+ ms 95th, ([\d.]+) ms 99th/.exec(out);
  if (!m) throw new Error(`ProducerPerformance output not understood (exit ${r.status}):\n${out.slice(-2000)}`);
  return { recordsPerSec: Number(m[1]), mbPerSec: Number(m[2]), avgLatencyMs: Number(m[3]), p50Ms: Number(m[4]), p99Ms: Number(m[5]), raw: out.trim().split('\n').pop() ?? '' };
}

export interface ConsumerPerf {
  readonly recordsPerSec: number;
  readonly fetchRecordsPerSec: number;
  readonly mbPerSec: number;
  readonly raw: string;
}

/** org.apache.kafka.tools.ConsumerPerformance with isolation.level=read_committed. */
export function consumerPerf(kafkaLib: string, brokers: string, topic: string, records: number, tmpDir: string, timeoutMs = 180_000): ConsumerPerf {
  const cfg = join(tmpDir, 'consumer-perf.properties');
  writeFileSync(cfg, 'isolation.level=read_committed\nauto.offset.reset=earliest\n');
  const r = spawnSync(
    'java',
    ['-cp', `${kafkaLib}/*`, 'org.apache.kafka.tools.ConsumerPerformance', '--bootstrap-server', brokers, '--topic', topic, '--num-records', String(records), '--command-config', cfg, '--group', `perf-${Date.now()}`, '--timeout', '60000'],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs, killSignal: 'SIGKILL' },
  );
  if (r.error) throw new Error(`ConsumerPerformance: ${r.error.message}${r.signal ? ` (killed after ${timeoutMs / 1000} s)` : ''}`);
  const out = `${r.stdout}${r.stderr}`;
  const lines = out.trim().split('\n');
  const hi = lines.findIndex((l) => l.includes('nMsg.sec'));
  const header = lines[hi]?.split(',').map((s) => s.trim());
  const row = lines[hi + 1]?.split(',').map((s) => s.trim());
  if (!header || !row) throw new Error(`ConsumerPerformance output not understood (exit ${r.status}):\n${out.slice(-2000)}`);
  const col = (name: string): number => Number(row[header.indexOf(name)]);
  return { recordsPerSec: col('nMsg.sec'), fetchRecordsPerSec: col('fetch.nMsg.sec'), mbPerSec: col('MB.sec'), raw: `${lines[hi]}\n${lines[hi + 1]}` };
}
