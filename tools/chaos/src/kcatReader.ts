/**
 * An independent verifier: reads a topic end to end, `read_committed`, with kcat (librdkafka), a
 * client that shares no code with kafkajs, so that a kafkajs bug (such as its read_committed leak of
 * aborted records, docs/kafkajs-notes.md) cannot hide itself in the check.
 *
 * How it knows it read everything, without idle timeouts: a sentinel record (key
 * `__vltava_sentinel__`, a fresh marker as value) is first appended to every partition with kcat's
 * own producer, outside any transaction. read_committed delivers in offset order up to the last
 * stable offset, so once the sentinel arrives on a partition every committed record before it has.
 * (kcat's `-e` would stop at the last stable offset instead, silently short of records behind an
 * open transaction; here a partition held back by one shows up as a timeout naming it.)
 *
 * Records are framed binary-safe: kcat prints `%p %o %K %S %T\n` (partition, offset, key length,
 * value length, both -1 for null, timestamp) followed by exactly that many key and value bytes;
 * `-u` (unbuffered), or the last records, sentinels included, would sit in stdio's buffer.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';

export const SENTINEL_KEY = '__vltava_sentinel__';

export interface KcatRecord {
  readonly partition: number;
  /** As a string, like kafkajs' offsets (and RawRecord). */
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly timestamp: number;
  /** `value` as UTF-8 ('' for null). */
  readonly text: string;
}

export class KcatMissingError extends Error {
  constructor(detail: string) {
    super(
      `kcat is needed as the independent read_committed verifier but ${detail}. ` +
        'Install it (Debian/Ubuntu: `apt-get install -y kcat`; .ci/run does this), or set KCAT=/path/to/kcat.',
    );
    this.name = 'KcatMissingError';
  }
}

const kcatBin = (): string => process.env.KCAT ?? 'kcat';

/** kcat's version line; throws KcatMissingError if it cannot run. */
export function kcatVersion(): string {
  const r = spawnSync(kcatBin(), ['-V'], { encoding: 'utf8' });
  if (r.error) throw new KcatMissingError(`\`${kcatBin()} -V\` failed: ${r.error.message}`);
  const line = r.stdout.split('\n').find((l) => /^Version /.test(l));
  if (r.status !== 0 || line === undefined) throw new KcatMissingError(`\`${kcatBin()} -V\` exited ${r.status} (${r.stderr.trim().slice(0, 200)})`);
  if (!/JSON/.test(line)) throw new KcatMissingError(`this kcat was built without JSON support (${line})`);
  return line.trim();
}

const brokerList = (brokers: string | readonly string[]): string => (typeof brokers === 'string' ? brokers : brokers.join(','));

/** Runs kcat to completion (for metadata and the sentinel producer). */
function runKcat(args: readonly string[], input: string | undefined, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(kcatBin(), args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kcat ${args.join(' ')}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject((e as NodeJS.ErrnoException).code === 'ENOENT' ? new KcatMissingError(`\`${kcatBin()}\` is not on the PATH`) : e);
    });
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('close', (code) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString();
      if (code !== 0 || /% ERROR/.test(stderr)) reject(new Error(`kcat ${args.join(' ')} exited ${code}: ${stderr.trim().slice(0, 500)}`));
      else resolve(Buffer.concat(out).toString());
    });
    child.stdin.end(input ?? '');
  });
}

/** The partition ids of `topic`, from kcat's own metadata request. */
export async function kcatPartitions(brokers: string | readonly string[], topic: string, timeoutMs = 30_000): Promise<number[]> {
  const json = JSON.parse(await runKcat(['-L', '-J', '-b', brokerList(brokers), '-t', topic], undefined, timeoutMs)) as {
    topics?: { topic: string; error?: string; partitions?: { partition: number }[] }[];
  };
  const t = json.topics?.find((x) => x.topic === topic);
  if (t === undefined || t.error !== undefined || t.partitions === undefined || t.partitions.length === 0) {
    throw new Error(`kcat: topic ${topic} not found (${t?.error ?? 'absent from metadata'})`);
  }
  return t.partitions.map((p) => p.partition).sort((a, b) => a - b);
}

/** Incremental parser of the framed output (see the header comment). */
export class KcatFrameParser {
  private buf: Buffer = Buffer.alloc(0);
  readonly records: KcatRecord[] = [];

  push(chunk: Buffer, onRecord: (r: KcatRecord) => void): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let pos = 0;
    for (;;) {
      const nl = this.buf.indexOf(10, pos);
      if (nl < 0) break;
      const header = this.buf.subarray(pos, nl).toString('latin1');
      const m = /^(\d+) (\d+) (-1|\d+) (-1|\d+) (-?\d+)$/.exec(header);
      if (m === null) throw new Error(`kcat: unexpected output line ${JSON.stringify(header.slice(0, 200))}`);
      const kLen = Number(m[3]);
      const vLen = Number(m[4]);
      const need = nl + 1 + Math.max(0, kLen) + Math.max(0, vLen) + 1;
      if (this.buf.length < need) break;
      let at = nl + 1;
      const key = kLen < 0 ? null : Buffer.from(this.buf.subarray(at, at + kLen));
      at += Math.max(0, kLen);
      const value = vLen < 0 ? null : Buffer.from(this.buf.subarray(at, at + vLen));
      at += Math.max(0, vLen);
      if (this.buf[at] !== 10) throw new Error(`kcat: framing lost after partition ${m[1]} offset ${m[2]}`);
      pos = at + 1;
      onRecord({ partition: Number(m[1]), offset: m[2]!, key, value, timestamp: Number(m[5]), text: value?.toString() ?? '' });
    }
    this.buf = this.buf.subarray(pos);
  }
}

export interface KcatReadOptions {
  readonly timeoutMs?: number;
  /** Extra librdkafka properties (`-X name=value`). */
  readonly config?: Readonly<Record<string, string>>;
}

/**
 * Every committed record of `topic` (sentinels left out), in offset order per partition, read by
 * kcat with `isolation.level=read_committed`.
 */
export async function readCommittedWithKcat(brokers: string | readonly string[], topic: string, opts: KcatReadOptions = {}): Promise<KcatRecord[]> {
  kcatVersion();
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const b = brokerList(brokers);
  const partitions = await kcatPartitions(b, topic);
  const marker = randomUUID();
  // kcat's producer: one sentinel per partition, plainly (no transaction), acks=all.
  for (const p of partitions) {
    await runKcat(['-P', '-b', b, '-t', topic, '-p', String(p), '-k', SENTINEL_KEY, '-X', 'acks=all'], marker, 30_000);
  }
  const extra = Object.entries(opts.config ?? {}).flatMap(([k, v]) => ['-X', `${k}=${v}`]);
  const args = ['-C', '-q', '-u', '-b', b, '-t', topic, '-o', 'beginning', '-X', 'isolation.level=read_committed', ...extra, '-f', '%p %o %K %S %T\\n%k%s\\n'];
  const records: KcatRecord[] = [];
  const pending = new Set(partitions);
  const parser = new KcatFrameParser();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(kcatBin(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let settled = false;
    let stderr = '';
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGTERM');
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(
      () => finish(new Error(`kcat read_committed of ${topic}: sentinels of partitions ${[...pending].join(',')} not seen within ${timeoutMs} ms (an open transaction, or the broker unreachable)${stderr ? `; kcat said: ${stderr.trim().slice(0, 300)}` : ''}`)),
      timeoutMs,
    );
    child.on('error', (e) => finish((e as NodeJS.ErrnoException).code === 'ENOENT' ? new KcatMissingError(`\`${kcatBin()}\` is not on the PATH`) : e));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/% ERROR/.test(stderr)) finish(new Error(`kcat read_committed of ${topic}: ${stderr.trim().slice(0, 500)}`));
    });
    child.stdout.on('data', (chunk: Buffer) => {
      if (settled) return;
      try {
        parser.push(chunk, (r) => {
          if (r.key !== null && r.key.toString() === SENTINEL_KEY) {
            if (r.text === marker) {
              pending.delete(r.partition);
              if (pending.size === 0) finish();
            }
            return;
          }
          if (pending.has(r.partition)) records.push(r);
        });
      } catch (e) {
        finish(e as Error);
      }
    });
    child.on('close', (code) => finish(new Error(`kcat exited (${code}) before every sentinel of ${topic} was read (missing: ${[...pending].join(',')}); ${stderr.trim().slice(0, 300)}`)));
  });
  return records;
}

export interface ComparableRecord {
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/**
 * Differences between two readings of the same topic (e.g. kafkajs and kcat), one line each: records
 * that only one of them returned, and records at the same position with different bytes.
 */
export function compareReadings(topic: string, aName: string, a: readonly ComparableRecord[], bName: string, b: readonly ComparableRecord[], limit = 20): string[] {
  const pos = (r: ComparableRecord): string => `${r.partition}/${r.offset}`;
  const same = (x: Buffer | null, y: Buffer | null): boolean => (x === null || y === null ? x === y : x.equals(y));
  const bByPos = new Map(b.map((r) => [pos(r), r]));
  const aPos = new Set(a.map(pos));
  const out: string[] = [];
  for (const r of a) {
    const o = bByPos.get(pos(r));
    if (o === undefined) out.push(`${topic} ${pos(r)}: read by ${aName} only (${(r.value?.toString() ?? 'null').slice(0, 120)})`);
    else if (!same(r.key, o.key) || !same(r.value, o.value)) out.push(`${topic} ${pos(r)}: ${aName} and ${bName} read different bytes`);
  }
  for (const r of b) if (!aPos.has(pos(r))) out.push(`${topic} ${pos(r)}: read by ${bName} only (${(r.value?.toString() ?? 'null').slice(0, 120)})`);
  if (out.length > limit) return [...out.slice(0, limit), `${topic}: ... and ${out.length - limit} more differences between ${aName} and ${bName}`];
  return out;
}
