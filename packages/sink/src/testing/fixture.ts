/** What the sink tests share: the input (a command journal), the reference, and table checks. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Kafka } from 'kafkajs';
import type { Row, SinkAdapter } from '../adapter.js';
import type { SinkRecord } from '../databaseSink.js';
import { readOffsets } from '../sql.js';

export interface Command {
  readonly id: string;
  readonly account: string;
  readonly amount: number;
}

/** Journal rows: one per record, with where it came from. The table has no unique key, so a record applied twice is two rows. */
export const toJournalRow = (r: SinkRecord): Row => {
  const c = JSON.parse(r.value!.toString()) as Command;
  return { cmd_id: c.id, account: c.account, amount: c.amount, src_partition: r.partition, src_offset: r.offset };
};

/** DDL of a journal table (transactional mode: no key; idempotent mode: keyed by id, with a version column). */
export function journalDdl(table: string, mode: 'transactional' | 'idempotent'): string {
  return mode === 'transactional'
    ? `CREATE TABLE ${table} (cmd_id TEXT NOT NULL, account TEXT NOT NULL, amount INTEGER NOT NULL, src_partition INTEGER NOT NULL, src_offset BIGINT NOT NULL)`
    : `CREATE TABLE ${table} (id TEXT PRIMARY KEY, cmd_id TEXT NOT NULL, account TEXT NOT NULL, amount INTEGER NOT NULL, src_partition INTEGER NOT NULL, src_offset BIGINT NOT NULL, kafka_offset BIGINT NOT NULL)`;
}

/**
 * Writes `n` commands to `topic` in transactions of 50 (an idempotent transactional producer), and
 * aborts one transaction in every 7 (its records must never reach the table). Returns the ids of
 * the committed ones.
 */
export async function produceCommands(kafka: Kafka, topic: string, n: number, opts: { prefix?: string; abortEvery?: number } = {}): Promise<string[]> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, transactionalId: `${topic}-writer-${Math.random().toString(36).slice(2)}` });
  await producer.connect();
  const committed: string[] = [];
  try {
    for (let i = 0, t = 0; i < n; t++) {
      const tx = await producer.transaction();
      const ids: string[] = [];
      const messages = [];
      for (let j = 0; j < 50 && i < n; j++, i++) {
        const c: Command = { id: `${opts.prefix ?? 'cmd'}-${i}`, account: `acc-${i % 20}`, amount: (i % 97) + 1 };
        ids.push(c.id);
        messages.push({ key: c.account, value: JSON.stringify(c), headers: { 'command-id': c.id } });
      }
      await tx.send({ topic, messages });
      if (opts.abortEvery !== undefined && t % opts.abortEvery === opts.abortEvery - 1) await tx.abort();
      else {
        await tx.commit();
        committed.push(...ids);
      }
    }
  } finally {
    await producer.disconnect();
  }
  return committed;
}

export interface RefRecord {
  readonly id: string;
  readonly partition: number;
  readonly offset: number;
}

/** Journal rows as `partition:offset:id` strings, sorted (rows applied twice appear twice). */
export async function journalRows(db: SinkAdapter, table: string): Promise<string[]> {
  const rows = await db.all(`SELECT cmd_id, src_partition, src_offset FROM ${table} ORDER BY src_partition, src_offset`);
  return rows.map((r) => `${Number(r.src_partition)}:${Number(r.src_offset)}:${String(r.cmd_id)}`);
}

export const refRows = (ref: readonly RefRecord[]): string[] => [...ref].sort((a, b) => a.partition - b.partition || a.offset - b.offset).map((r) => `${r.partition}:${r.offset}:${r.id}`);

/**
 * The invariant that must hold at every instant, crash or not: the table holds exactly the records
 * below each partition's stored next offset, each once. Returns the stored offsets.
 */
export async function consistentWithOffsets(db: SinkAdapter, table: string, sinkId: string, topic: string, ref: readonly RefRecord[]): Promise<{ ok: boolean; offsets: Map<number, number>; rows: string[]; expected: string[] }> {
  const offsets = await readOffsets(db, db.dialect, 'vltava_sink_offsets', sinkId, topic).catch(() => new Map<number, number>());
  const rows = await journalRows(db, table);
  const expected = refRows(ref.filter((r) => r.offset < (offsets.get(r.partition) ?? 0)));
  return { ok: JSON.stringify(rows) === JSON.stringify(expected), offsets, rows, expected };
}

/** Polls `check` every 100 ms until it holds; throws with `describe()` after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, describe: () => Promise<string> | string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms: ${await describe()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// --- child sinks ----------------------------------------------------------------------------------

const childEntry = fileURLToPath(new URL('./sinkChild.js', import.meta.url));

export interface SinkChild {
  readonly process: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export function spawnSinkChild(config: import('./sinkChild.js').SinkChildConfig): SinkChild {
  const child = spawn(process.execPath, ['--no-warnings', childEntry, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (l: string) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.pattern.test(line)) waiters.splice(i, 1)[0]!.resolve(line);
  });
  // 'close', not 'exit': after 'exit' the last lines may still be in the pipe (the 'killing' line).
  const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  return {
    process: child,
    lines,
    exited,
    waitFor(pattern, timeoutMs = 60_000) {
      const hit = lines.find((l) => pattern.test(l));
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`sink child: no line matching ${pattern} within ${timeoutMs} ms; lines: ${lines.slice(-10).join(' | ')}`)), timeoutMs);
        const onExit = (): void => {
          clearTimeout(timer);
          reject(new Error(`sink child exited before a line matching ${pattern}; lines: ${lines.slice(-10).join(' | ')}`));
        };
        void exited.then(onExit);
        waiters.push({
          pattern,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}
