/**
 * Shared pieces of `pnpm bench:compare`: the dataset, the idempotent input producer, the
 * read_committed output verifier (counts vs the reference, marker latencies), the peak-RSS sampler
 * and child-process handling.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type Consumer, type Producer } from 'kafkajs';

// ---------------------------------------------------------------------------------------------
// Dataset
// ---------------------------------------------------------------------------------------------

export interface DatasetSpec {
  readonly lines: number;
  readonly wordsPerLine: number;
  readonly vocab: number;
  readonly seed: number;
}

/** Deterministic LCG in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}

/** Lines of `wordsPerLine` words from a Zipf-like vocabulary (`w<base36>`), as bench:driver uses. */
export function* datasetLines(spec: DatasetSpec): Generator<string> {
  const rand = rng(spec.seed);
  const vocabulary = Array.from({ length: spec.vocab }, (_, i) => `w${i.toString(36)}`);
  for (let l = 0; l < spec.lines; l++) {
    const ws: string[] = [];
    for (let w = 0; w < spec.wordsPerLine; w++) ws.push(vocabulary[Math.floor(spec.vocab * rand() ** 3)]!);
    yield ws.join(' ');
  }
}

// ---------------------------------------------------------------------------------------------
// Kafka helpers
// ---------------------------------------------------------------------------------------------

export function kafkaClient(brokers: string, clientId = 'bench-compare'): Kafka {
  return new Kafka({ brokers: [brokers], clientId, logLevel: logLevel.NOTHING });
}

/** Idempotent producer with one request in flight: plain kafkajs producers duplicate under load. */
export async function inputProducer(kafka: Kafka): Promise<Producer> {
  const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await p.connect();
  return p;
}

/** Writes values round-robin over `partitions` (line i -> partition i % n), null keys, in batches. */
export async function writeLines(producer: Producer, topic: string, partitions: number, lines: Iterable<string>, batch = 5_000): Promise<number> {
  let n = 0;
  let buf: { value: string; partition: number }[] = [];
  const flush = async (): Promise<void> => {
    if (buf.length === 0) return;
    await producer.send({ topic, acks: -1, messages: buf });
    buf = [];
  };
  for (const value of lines) {
    buf.push({ value, partition: n % partitions });
    n++;
    if (buf.length >= batch) await flush();
  }
  await flush();
  return n;
}

// ---------------------------------------------------------------------------------------------
// Verifier: reads the output topic read_committed and compares the latest count per word with the reference
// ---------------------------------------------------------------------------------------------

export class CountsVerifier {
  private readonly counts = new Map<string, number>();
  private mismatched = 0;
  /** Words whose count ever exceeded the reference (a duplicate got through). */
  readonly overshoot = new Set<string>();
  outputs = 0;
  firstOutputAt: number | undefined;
  /** performance.now() of the output record that made counts equal the reference, or of the last output. */
  lastOutputAt = 0;
  /**
   * For the latest output: Date.now() when the harness read it minus the record's timestamp (the
   * broker's append time on a LogAppendTime topic). Large at the end of a run = the harness's
   * reader, not the app, was behind (it includes the wait for the transaction's commit).
   */
  lastReadLagMs = NaN;
  private readonly markerSent = new Map<string, number>();
  readonly latencies: number[] = [];
  private consumer: Consumer | undefined;
  private waiters: (() => void)[] = [];

  constructor(private readonly ref: Map<string, number>) {
    this.mismatched = ref.size;
  }

  /** The reference grew (latency-phase lines): `word` now expects `n`. */
  expect(word: string, n: number): void {
    const before = this.ok(word);
    this.ref.set(word, n);
    this.adjust(before, this.ok(word));
  }

  markerSentAt(word: string, t: number): void {
    this.markerSent.set(word, t);
  }

  get remaining(): number {
    return this.mismatched;
  }

  /** Words counted that the reference does not know. */
  get unexpected(): string[] {
    return [...this.counts.keys()].filter((w) => !this.ref.has(w));
  }

  /** Words whose latest count differs from the reference (first `max`). */
  wrong(max = 5): string[] {
    const out: string[] = [];
    for (const [w, n] of this.ref) if (this.counts.get(w) !== n && out.push(`${w}: ${this.counts.get(w) ?? 'none'} != ${n}`) >= max) break;
    return out;
  }

  private ok(word: string): boolean {
    return this.counts.get(word) === this.ref.get(word);
  }

  private adjust(before: boolean, after: boolean): void {
    if (before && !after) this.mismatched++;
    else if (!before && after) this.mismatched--;
    if (this.mismatched === 0) this.wake();
  }

  private onRecord(word: string, count: number, now: number, createdAt: number): void {
    this.outputs++;
    this.firstOutputAt ??= now;
    this.lastOutputAt = now;
    this.lastReadLagMs = Date.now() - createdAt;
    const before = this.ok(word);
    this.counts.set(word, count);
    const want = this.ref.get(word);
    if (want !== undefined && count > want) this.overshoot.add(word);
    const sent = this.markerSent.get(word);
    if (sent !== undefined && count === 1) {
      this.latencies.push(now - sent);
      this.markerSent.delete(word);
    }
    this.adjust(before, this.ok(word));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async start(kafka: Kafka, topic: string): Promise<void> {
    const consumer = kafka.consumer({ groupId: `verify-${topic}-${process.pid}`, readUncommitted: false, maxWaitTimeInMs: 50, sessionTimeout: 30_000 });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const now = performance.now();
        for (const m of batch.messages) {
          if (!m.key || !m.value || m.value.length !== 8) continue;
          this.onRecord(m.key.toString('utf8'), Number(m.value.readBigInt64BE(0)), now, Number(m.timestamp));
        }
      },
    });
  }

  /** Resolves true once the counts equal the reference, false after `timeoutMs`. */
  until(timeoutMs: number): Promise<boolean> {
    if (this.mismatched === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(t);
        resolve(true);
      };
      this.waiters.push(done);
    });
  }

  /** True if the counts still equal the reference after `quietMs` (no late duplicate arrives). */
  async stable(quietMs: number): Promise<boolean> {
    await new Promise((r) => setTimeout(r, quietMs));
    return this.mismatched === 0 && this.overshoot.size === 0;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
  }
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

// ---------------------------------------------------------------------------------------------
// Child processes and peak RSS
// ---------------------------------------------------------------------------------------------

export interface Child {
  readonly proc: ChildProcess;
  readonly lines: string[];
  /** Peak resident set (VmHWM) seen so far, bytes. */
  peakRss(): number;
  waitFor(re: RegExp, timeoutMs: number): Promise<string | undefined>;
  stop(graceMs?: number): Promise<void>;
  kill9(): void;
  readonly exited: Promise<number | null>;
}

/** A memory field of /proc/<pid>/status (VmHWM: peak resident set, VmRSS: resident now), in bytes; 0 if gone. */
export function procStatusBytes(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

const vmHwm = (pid: number): number => procStatusBytes(pid, 'VmHWM');

/** Children still running: killed if the harness itself is interrupted. */
export const liveChildren = new Set<ChildProcess>();

export function startChild(cmd: string, args: readonly string[], opts: { log?: (line: string) => void; env?: NodeJS.ProcessEnv } = {}): Child {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
  liveChildren.add(proc);
  const lines: string[] = [];
  let peak = 0;
  const listeners: (() => void)[] = [];
  const sample = (): void => {
    if (proc.pid !== undefined && proc.exitCode === null) peak = Math.max(peak, vmHwm(proc.pid));
  };
  const timer = setInterval(sample, 200);
  const onData = (chunk: Buffer): void => {
    for (const l of chunk.toString('utf8').split('\n')) {
      if (!l.trim()) continue;
      lines.push(l);
      if (lines.length > 5_000) lines.splice(0, 1_000);
      opts.log?.(l);
      for (const f of listeners) f();
    }
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => {
    liveChildren.delete(proc);
    clearInterval(timer);
    for (const f of listeners) f();
    resolve(code);
  }));
  return {
    proc,
    lines,
    exited,
    peakRss: () => {
      sample();
      return peak;
    },
    waitFor: (re, timeoutMs) =>
      new Promise((resolve) => {
        const check = (): boolean => {
          const hit = lines.find((l) => re.test(l));
          if (hit !== undefined || proc.exitCode !== null) {
            clearTimeout(t);
            listeners.splice(listeners.indexOf(check), 1);
            resolve(hit);
            return true;
          }
          return false;
        };
        const t = setTimeout(() => {
          listeners.splice(listeners.indexOf(check), 1);
          resolve(undefined);
        }, timeoutMs);
        listeners.push(check);
        check();
      }),
    stop: async (graceMs = 15_000) => {
      sample();
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
    kill9: () => {
      sample();
      proc.kill('SIGKILL');
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
