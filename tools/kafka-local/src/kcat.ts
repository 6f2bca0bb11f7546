/**
 * An independent verifier: reads a topic read_committed with kcat (librdkafka), a client that shares
 * no code with kafkajs, so a kafkajs bug (like its read_committed leaks, docs/kafkajs-notes.md)
 * cannot hide itself in a test that verifies with the client under test.
 *
 * kcat reads every partition from the beginning up to the end (`-e`, which for read_committed is the
 * last stable offset) and exits. Records are framed with their key and value lengths (`%K`, `%S`),
 * so binary keys and values (int64 counts, four zero bytes) come through intact.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ReadRecord } from './verify.js';

export class KcatMissingError extends Error {
  constructor() {
    super('kcat is not installed: the broker tests verify with it (an independent librdkafka client). Install it with `apt-get install -y kcat` (.ci/run does).');
    this.name = 'KcatMissingError';
  }
}

let checked = false;
function requireKcat(): void {
  if (checked) return;
  const r = spawnSync('kcat', ['-V'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) throw new KcatMissingError();
  checked = true;
}

/** The librdkafka version kcat links (e.g. [2, 0, 2]). */
export function librdkafkaVersion(): [number, number, number] {
  requireKcat();
  const r = spawnSync('kcat', ['-V'], { encoding: 'utf8' });
  const m = /librdkafka (?:version )?v?([0-9]+)\.([0-9]+)\.([0-9]+)/.exec(`${r.stdout}${r.stderr}`);
  if (!m) throw new Error(`cannot read the librdkafka version from kcat -V: ${r.stdout}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/**
 * Whether kcat's SCRAM works against Kafka 4.x: librdkafka before 2.6.1 repeats the client nonce in
 * its client-final message, which 4.x brokers reject as invalid credentials (librdkafka PR 4895).
 */
export function kcatScramWorksWithKafka4(): boolean {
  const [a, b, c] = librdkafkaVersion();
  return a > 2 || (a === 2 && (b > 6 || (b === 6 && c >= 1)));
}

export interface KcatRecord extends ReadRecord {
  readonly timestamp: number;
}

// One record: "<partition> <offset> <timestamp> <keyLen> <valueLen>\n<key><value>\n"
const FORMAT = '%p %o %T %K %S\\n%k%s\\n';

export interface KcatOptions {
  readonly timeoutMs?: number;
  /**
   * librdkafka settings, each passed as `-X key=value`: e.g. a secured broker's
   * `{ 'security.protocol': 'SASL_SSL', 'sasl.mechanisms': 'SCRAM-SHA-512', 'sasl.username': ..., 'sasl.password': ..., 'ssl.ca.location': ... }`
   * (`broker.security.librdkafka(user)` from startLocalKafka gives exactly that).
   */
  readonly config?: Readonly<Record<string, string>>;
  /** More kcat arguments, e.g. `['-F', 'client.conf']`; put before the format argument. */
  readonly extraArgs?: readonly string[];
}

/** Every committed record of `topic` (read_committed, all partitions, in partition then offset order). */
export async function readCommittedKcat(brokers: readonly string[], topic: string, opts: KcatOptions = {}): Promise<KcatRecord[]> {
  requireKcat();
  const config = Object.entries(opts.config ?? {}).flatMap(([k, v]) => ['-X', `${k}=${v}`]);
  const args = ['-C', '-b', brokers.join(','), '-t', topic, '-o', 'beginning', '-e', '-q', '-X', 'isolation.level=read_committed', ...config, ...(opts.extraArgs ?? []), '-f', FORMAT];
  const chunks: Buffer[] = [];
  const errs: Buffer[] = [];
  const timeoutMs = opts.timeoutMs ?? 60_000;
  await new Promise<void>((resolve, reject) => {
    const child = spawn('kcat', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kcat did not finish reading ${topic} within ${timeoutMs} ms: ${redact(Buffer.concat(errs).toString().slice(-500), opts.config)}`));
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => errs.push(c));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`kcat exited with ${code} reading ${topic}: ${redact(Buffer.concat(errs).toString().slice(-500), opts.config)}`));
    });
  });
  return parse(Buffer.concat(chunks));
}

/** kcat may echo its configuration in errors: never let a password through into a test's output. */
function redact(text: string, config: Readonly<Record<string, string>> | undefined): string {
  let out = text;
  for (const [k, v] of Object.entries(config ?? {})) if (/password/i.test(k) && v.length > 0) out = out.split(v).join('***');
  return out;
}

function parse(buf: Buffer): KcatRecord[] {
  const out: KcatRecord[] = [];
  let i = 0;
  while (i < buf.length) {
    const nl = buf.indexOf(0x0a, i);
    if (nl < 0) throw new Error(`kcat output truncated at byte ${i}`);
    const [p, o, ts, kl, vl] = buf.subarray(i, nl).toString('latin1').split(' ').map(Number) as [number, number, number, number, number];
    i = nl + 1;
    const key = kl < 0 ? null : Buffer.from(buf.subarray(i, i + kl));
    i += Math.max(0, kl);
    const value = vl < 0 ? null : Buffer.from(buf.subarray(i, i + vl));
    i += Math.max(0, vl) + 1; // and the record's trailing newline
    out.push({ partition: p, offset: String(o), timestamp: ts, key, value, text: value?.toString() ?? '' });
  }
  return out.sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset));
}
