/**
 * A sink as a child process, for the kill -9 tests: config as JSON in argv[2]; prints one line per
 * event on stdout (`assigned`, `committed <partition> <next>`, `fenced ...`, `error ...`) and, with
 * `killAt`, SIGKILLs itself the `batch`-th time a batch reaches `step`.
 */
import { writeSync } from 'node:fs';
import { DatabaseSink, type SinkMode, type SinkRecord, type SinkStep } from '../index.js';
import { postgresAdapter } from '../postgres.js';
import { sqliteAdapter } from '../sqlite.js';
import { toJournalRow } from './fixture.js';

export interface SinkChildConfig {
  readonly brokers: string[];
  readonly topic: string;
  readonly sinkId: string;
  readonly groupId?: string;
  readonly mode: SinkMode;
  readonly db: { readonly kind: 'sqlite'; readonly path: string } | { readonly kind: 'postgres'; readonly url: string };
  readonly table: string;
  readonly maxBatchRecords: number;
  readonly killAt?: { readonly step: SinkStep; readonly batch: number };
  /** What to write: the test journal (default), or the ledger example's balances / journal. */
  readonly preset?: 'journal' | 'ledger-balances' | 'ledger-journal';
}

interface JournalEntry {
  readonly commandId: string;
  readonly account: string;
  readonly side: string;
  readonly amount: number;
  readonly balance: number;
}

const presets = {
  journal: (mode: SinkMode) => ({ toRow: toJournalRow, ...(mode === 'idempotent' ? { id: { header: 'command-id' } as const } : {}) }),
  // A KTable-like topic (account -> balance): upsert by key; the transactional mode makes any write safe.
  'ledger-balances': () => ({ insertMode: 'upsert' as const, id: 'key' as const, idColumn: 'account', toRow: (r: SinkRecord) => ({ balance: JSON.parse(r.value!.toString()) as number }) }),
  // The journal: appended, one row per entry (a transfer has a debit and a credit).
  'ledger-journal': () => ({
    toRow: (r: SinkRecord) => {
      const e = JSON.parse(r.value!.toString()) as JournalEntry;
      return { entry_id: `${e.commandId}:${e.side}`, command_id: e.commandId, account: e.account, side: e.side, amount: e.amount, balance: e.balance, src_partition: r.partition, src_offset: r.offset };
    },
  }),
};

const cfg = JSON.parse(process.argv[2] ?? '{}') as SinkChildConfig;
// Synchronous: a line written just before SIGKILL must not be lost in the pipe's async queue.
const out = (line: string): void => void writeSync(1, `${line}\n`);
let reached = 0;
const sink = new DatabaseSink({
  sinkId: cfg.sinkId,
  brokers: cfg.brokers,
  topics: cfg.topic,
  mode: cfg.mode,
  adapter: cfg.db.kind === 'sqlite' ? sqliteAdapter({ path: cfg.db.path }) : postgresAdapter({ connectionString: cfg.db.url }),
  table: cfg.table,
  ...presets[cfg.preset ?? 'journal'](cfg.mode),
  maxBatchRecords: cfg.maxBatchRecords,
  consumer: { sessionTimeout: 6_000, heartbeatInterval: 500, ...(cfg.groupId === undefined ? {} : { groupId: cfg.groupId }) },
  onEvent: (e) => {
    if (e.type === 'assigned') out(`assigned ${JSON.stringify(e.partitions)}`);
    else if (e.type === 'committed') out(`committed ${e.partition} ${e.nextOffset}`);
    else if (e.type === 'fenced') out(`fenced ${e.partition} ${e.expected} ${e.stored}`);
    else if (e.type === 'error') out(`error ${e.error.message}`);
  },
  hooks: {
    step: (step, info) => {
      if (cfg.killAt !== undefined && step === cfg.killAt.step && ++reached === cfg.killAt.batch) {
        out(`killing ${step} ${info.partition} ${info.firstOffset}-${info.nextOffset}`);
        process.kill(process.pid, 'SIGKILL');
      }
    },
  },
});
sink.start().then(
  () => out('started'),
  (e: unknown) => {
    out(`error ${(e as Error).message}`);
    process.exit(1);
  },
);
sink.failure().catch(() => process.exit(1));
process.on('SIGTERM', () => void sink.stop().then(() => process.exit(0)));
