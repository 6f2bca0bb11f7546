/**
 * The sink under faults: the ledger example runs on the broker under a steady workload; its balances
 * go to SQLite and its journal to PostgreSQL, each through two sink instances (child processes
 * sharing one sinkId, so partitions move between them), and faults aimed at the sinks hit them one
 * after another:
 *
 *   sigkill       kill -9 of a random sink instance at a random moment
 *   commit-point  a sink instance is replaced by one that kills itself (SIGKILL) at a chosen step of
 *                 its N-th transaction: before-begin, after-rows (inside the transaction), after-commit
 *   zombie        SIGSTOP of an instance past its session timeout (its partitions move), then SIGCONT:
 *                 its open or stale transaction must be fenced by the offset row
 *   pg-cut        every PostgreSQL connection of the sinks cut (they go through a TCP proxy)
 *   pg-cut-commit the next bytes a sink sends PostgreSQL (a COMMIT, often) go through, then the cut
 *
 * Killed instances come back after 0–2 s. Afterwards: the app drains and stops, every sink catches up
 * to the end of its topic, and the check: SQLite balances = the sequential reference model; the
 * PostgreSQL journal = one row per accepted deposit, one debit and one credit per accepted transfer,
 * nothing twice; each table holds exactly the records below its stored offsets; and the audit of the
 * journal topic against the table passes. Exit 1 on any violation.
 *
 *   pnpm chaos:sink [--faults 30] [--seed N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLedgerApp, createLedgerTopics, referenceModel, Workload } from '@vltava/example-ledger';
import { resolveBrokers } from '@vltava/kafka-local';
import { Kafka, logLevel } from 'kafkajs';
import type { SinkAdapter } from '../adapter.js';
import { audit } from '../audit.js';
import { postgresAdapter } from '../postgres.js';
import { DEFAULT_OFFSETS_TABLE, readOffsets } from '../sql.js';
import { sqliteAdapter } from '../sqlite.js';
import { spawnSinkChild, until, type SinkChild } from '../testing/fixture.js';
import { startPostgres } from '../testing/postgresServer.js';
import type { SinkChildConfig } from '../testing/sinkChild.js';
import { TcpProxy } from '../testing/tcpProxy.js';

export interface SinkChaosOptions {
  readonly faults: number;
  readonly seed: number;
  readonly log?: (line: string) => void;
}

export interface SinkChaosReport {
  readonly ok: boolean;
  readonly faults: Record<string, number>;
  readonly commands: number;
  readonly violations: string[];
  readonly seconds: number;
  readonly journalRows: number;
  readonly balances: number;
  readonly fenced: number;
}

const KINDS = ['sigkill', 'commit-point', 'zombie', 'pg-cut', 'pg-cut-commit'] as const;
type Kind = (typeof KINDS)[number];
const STEPS = ['before-begin', 'after-rows', 'after-commit'] as const;

export async function runSinkChaos(opts: SinkChaosOptions): Promise<SinkChaosReport> {
  const t0 = Date.now();
  const log = opts.log ?? ((l: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${l}`));
  let state = opts.seed >>> 0 || 1;
  const rnd = (n: number): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return Math.floor((state / 2 ** 32) * n);
  };
  const brokers = await resolveBrokers();
  const kafka = new Kafka({ clientId: 'sink-chaos', brokers: brokers.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const run = `sink-chaos-${opts.seed}-${Date.now().toString(36)}`;
  const partitions = 4;
  const topics = await createLedgerTopics(admin, { partitions, topics: { commands: `${run}-commands`, balances: `${run}-balances`, journal: `${run}-journal`, rejections: `${run}-rejections` } });
  const dir = mkdtempSync(path.join(tmpdir(), 'vltava-sink-chaos-'));
  const pg = await startPostgres();
  const proxy = await TcpProxy.start({ host: pg.host, port: pg.port });
  const lite = sqliteAdapter({ path: path.join(dir, 'balances.db') });
  const post = postgresAdapter({ connectionString: pg.url });
  const faults: Record<string, number> = Object.fromEntries(KINDS.map((k) => [k, 0]));
  const violations: string[] = [];
  const children = new Map<string, SinkChild>();
  const everySpawned: SinkChild[] = [];
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const app = createLedgerApp({ applicationId: run, brokers: brokers.brokers, topics, partitions, sessionTimeoutMs: 6_000, logger: quiet, stateDir: path.join(dir, 'state') });
  let fenced = 0;
  try {
    await lite.connect();
    await post.connect();
    await lite.run('CREATE TABLE balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)');
    await post.run('CREATE TABLE journal (entry_id TEXT NOT NULL, command_id TEXT NOT NULL, account TEXT NOT NULL, side TEXT NOT NULL, amount BIGINT NOT NULL, balance BIGINT NOT NULL, src_partition INTEGER NOT NULL, src_offset BIGINT NOT NULL)');
    const base: Record<'balances' | 'journal', SinkChildConfig> = {
      balances: { brokers: brokers.brokers, topic: topics.balances, sinkId: `${run}-balances`, mode: 'transactional', db: { kind: 'sqlite', path: path.join(dir, 'balances.db') }, table: 'balances', maxBatchRecords: 25, preset: 'ledger-balances' },
      journal: { brokers: brokers.brokers, topic: topics.journal, sinkId: `${run}-journal`, mode: 'transactional', db: { kind: 'postgres', url: `postgres://postgres@127.0.0.1:${proxy.port}/postgres` }, table: 'journal', maxBatchRecords: 25, preset: 'ledger-journal' },
    };
    const names = ['balances-a', 'balances-b', 'journal-a', 'journal-b'];
    const cfgOf = (name: string): SinkChildConfig => base[name.startsWith('balances') ? 'balances' : 'journal'];
    const spawnNamed = (name: string, killAt?: SinkChildConfig['killAt']): SinkChild => {
      const c = spawnSinkChild({ ...cfgOf(name), ...(killAt === undefined ? {} : { killAt }) });
      children.set(name, c);
      everySpawned.push(c);
      void c.exited.then(([, sig]) => {
        fenced += c.lines.filter((l) => l.startsWith('fenced ')).length;
        if (children.get(name) !== c || stopping) return;
        const killing = c.lines.find((l) => l.startsWith('killing '));
        if (killing !== undefined) {
          faults['commit-point']!++;
          log(`${name} killed itself at ${killing.slice(8)}`);
        } else if (sig !== 'SIGKILL') violations.push(`${name} exited by itself (${sig ?? 'code'}): ${c.lines.slice(-3).join(' | ')}`);
        // Back after 0–2 s, on the same sink id.
        setTimeout(() => {
          if (!stopping && children.get(name) === c) spawnNamed(name);
        }, rnd(2_000));
      });
      return c;
    };
    let stopping = false;
    await app.start();
    for (const n of names) spawnNamed(n);
    // The workload: 150 commands/s until the faults are done.
    const w = new Workload({ seed: opts.seed, accounts: 20 });
    const sent: ReturnType<Workload['next']>[] = [];
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    let producing = true;
    const pump = (async () => {
      while (producing) {
        const batch = w.batch(30);
        sent.push(...batch);
        await producer.send({ topic: topics.commands, messages: batch.map((r) => ({ key: r.key, value: r.value })) });
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    let done = 0;
    let attempt = 0;
    let order: Kind[] = [...KINDS];
    while (done < opts.faults) {
      await new Promise((r) => setTimeout(r, 1_000 + rnd(2_000)));
      // Every kind in turn (in a random order each round), on a random instance.
      if (attempt % KINDS.length === 0) order = [...KINDS].sort(() => rnd(3) - 1);
      const kind: Kind = order[attempt++ % KINDS.length]!;
      const name = names[rnd(names.length)]!;
      const c = children.get(name)!;
      const alive = c.process.exitCode === null && c.process.signalCode === null;
      if (kind === 'sigkill' && alive) {
        c.process.kill('SIGKILL');
        faults.sigkill!++;
        log(`sigkill ${name}`);
      } else if (kind === 'commit-point' && alive) {
        const killAt = { step: STEPS[rnd(STEPS.length)]!, batch: 1 + rnd(3) };
        children.delete(name);
        c.process.kill('SIGKILL');
        await c.exited;
        spawnNamed(name, killAt);
        log(`${name} replaced by one that dies at ${killAt.step} of its transaction ${killAt.batch}`);
        // Counted when it dies there (above); wait for it so faults do not pile up.
        const armed = children.get(name)!;
        let timer: NodeJS.Timeout | undefined;
        const died = await Promise.race([armed.exited.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), 30_000)))]);
        clearTimeout(timer);
        if (!died) log(`${name} did not reach its armed step within 30 s (no data for its partitions?); it stays`);
      } else if (kind === 'zombie' && alive) {
        c.process.kill('SIGSTOP');
        faults.zombie!++;
        log(`zombie ${name}: SIGSTOP for 8 s`);
        await new Promise((r) => setTimeout(r, 8_000));
        c.process.kill('SIGCONT');
      } else if (kind === 'pg-cut') {
        const n = proxy.cutAll();
        if (n === 0) continue;
        faults['pg-cut']!++;
        log(`pg-cut: ${n} connections`);
      } else if (kind === 'pg-cut-commit') {
        faults['pg-cut-commit']!++;
        proxy.cutAfterNextClientWrite();
        log('pg-cut-commit: the next client write goes through, then the cut');
      } else continue;
      done = Object.values(faults).reduce((a, b) => a + b, 0);
    }
    producing = false;
    await pump;
    await producer.disconnect();
    log(`faults done (${JSON.stringify(faults)}); draining`);
    const caughtUp = async (topic: string): Promise<boolean> => {
      const [c] = await admin.fetchOffsets({ groupId: run, topics: [topic] });
      const ends = await admin.fetchTopicOffsets(topic);
      return ends.every((e) => Number(c?.partitions.find((p) => p.partition === e.partition)?.offset ?? -1) >= Number(e.high));
    };
    await until(async () => (await caughtUp(topics.commands)) && (await caughtUp(`${run}-credits-repartition`)), () => 'the ledger app did not catch up', 120_000);
    await app.close();
    // Every sink instance alive (SIGCONT any stopped one), then until the tables reach the topic ends.
    for (const n of names) {
      const c = children.get(n)!;
      c.process.kill('SIGCONT');
      if (c.process.exitCode !== null || c.process.signalCode !== null) spawnNamed(n);
    }
    const lastOffsets = async (topic: string): Promise<Map<number, number>> => {
      const m = new Map<number, number>();
      const consumerEnds = await admin.fetchTopicOffsets(topic);
      // The ends include the last commit marker; the sink stores last record + 1. Read the records' last offsets with the audit reader.
      const { readUpTo, endOffsets } = await import('../audit.js');
      const { low, high } = await endOffsets(kafka, topic);
      for (const r of await readUpTo(kafka, topic, high, low)) m.set(r.partition, Math.max(m.get(r.partition) ?? 0, r.offset + 1));
      void consumerEnds;
      return m;
    };
    const reachedEnds = async (db: SinkAdapter, sinkId: string, topic: string, ends: Map<number, number>): Promise<boolean> => {
      const o = await readOffsets(db, db.dialect, DEFAULT_OFFSETS_TABLE, sinkId, topic);
      return [...ends].every(([p, e]) => (o.get(p) ?? 0) >= e);
    };
    const [balEnds, jEnds] = await Promise.all([lastOffsets(topics.balances), lastOffsets(topics.journal)]);
    await until(async () => (await reachedEnds(lite, base.balances.sinkId, topics.balances, balEnds)) && (await reachedEnds(post, base.journal.sinkId, topics.journal, jEnds)), () => 'the sinks did not reach the ends', 120_000);
    stopping = true;
    await Promise.all([...children.values()].map((c) => c.stop()));

    // The checks.
    const ref = referenceModel(sent.map((r) => r.command));
    const rows = await lite.all('SELECT account, balance FROM balances');
    const got = new Map(rows.map((r) => [String(r.account), Number(r.balance)]));
    for (const [a, b] of ref.balances) if (got.get(a) !== b) violations.push(`balance of ${a}: ${got.get(a)} in SQLite, ${b} in the reference model`);
    for (const a of got.keys()) if (!ref.balances.has(a)) violations.push(`balance of ${a} in SQLite, not in the reference model`);
    const expected = new Set<string>();
    for (const [id, c] of ref.accepted) {
      if (c.type === 'deposit') expected.add(`${id}:deposit`);
      else {
        expected.add(`${id}:debit`);
        expected.add(`${id}:credit`);
      }
    }
    const entries = (await post.all('SELECT entry_id, COUNT(*) AS n FROM journal GROUP BY entry_id')).map((r) => [String(r.entry_id), Number(r.n)] as const);
    let journalRows = 0;
    for (const [id, n] of entries) {
      journalRows += n;
      if (n > 1) violations.push(`journal entry ${id} ${n} times in PostgreSQL`);
      if (!expected.has(id)) violations.push(`journal entry ${id} in PostgreSQL, not expected by the reference model`);
    }
    const present = new Set(entries.map(([id]) => id));
    for (const id of expected) if (!present.has(id)) violations.push(`journal entry ${id} missing from PostgreSQL`);
    const report = await audit({
      brokers: brokers.brokers,
      input: { topic: topics.journal, id: (r) => { const e = JSON.parse(r.value!.toString()) as { commandId: string; side: string }; return `${e.commandId}:${e.side}`; } },
      output: { table: 'journal', adapter: post, idColumn: 'entry_id' },
      sinkId: base.journal.sinkId,
    });
    if (!report.ok) violations.push(`audit: ${report.lost.length} lost, ${report.duplicated.length} duplicated, ${report.unexpected.length} unexpected`);
    const seconds = Math.round((Date.now() - t0) / 1000);
    log(`${sent.length} commands (${ref.resends} resends, ${ref.rejected.size} rejected); ${got.size} balances in SQLite; ${journalRows} journal rows in PostgreSQL; ${fenced} fenced transactions; audit ${report.ok ? 'PASS' : 'FAIL'}`);
    log(`${violations.length === 0 ? 'exactly once: PASS' : `FAIL: ${violations.slice(0, 10).join('; ')}`}`);
    return { ok: violations.length === 0, faults, commands: sent.length, violations, seconds, journalRows, balances: got.size, fenced };
  } finally {
    for (const c of everySpawned) {
      if (c.process.exitCode !== null || c.process.signalCode !== null) continue;
      c.process.kill('SIGCONT');
      c.process.kill('SIGKILL');
    }
    await app.close().catch(() => undefined);
    await lite.close();
    await post.close();
    await proxy.close();
    await pg.stop();
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
    await admin.disconnect();
    await brokers.release();
    rmSync(dir, { recursive: true, force: true });
  }
}
