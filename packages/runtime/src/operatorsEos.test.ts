/**
 * The newer operators on a real broker, through a kill -9 inside a transaction: suppress
 * (untilTimeLimit with a record limit), cogroup, and a stream-table join over a versioned table with
 * a grace period. Each runs in a child process (exactly-once); it is armed to SIGKILL itself at the
 * next 'after-offsets' point (outputs and offsets sent, transaction not committed); a second instance
 * on a fresh state directory restores every store from its changelog and finishes. The committed
 * output, read with kcat (librdkafka, not the client under test), is compared with the same topology
 * run in memory on the executor (StreamTask, one task per partition) over the same input.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { defaultPartition, Serdes, type CollectedRecord } from '@vltava/dsl';
import { openTaskStoresSync } from '@vltava/state';
import { awaitCaughtUp, readCommittedKcat, useKafka, type TestKafka } from '@vltava/kafka-local/testing';
import { StreamTask } from '@vltava/executor';
import { isInt64, operatorTopology, scenarioInput, type InputRecord, type OperatorScenario, type ScenarioTopics } from './testing/operators.test.helper.js';

const kafka = useKafka(test);
const PARTITIONS = 2;
const entry = fileURLToPath(new URL('./testing/operatorsApp.test.helper.js', import.meta.url));

interface Child {
  readonly name: string;
  readonly lines: string[];
  readonly exited: Promise<unknown>;
  readonly process: ChildProcess;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

function spawnChild(name: string, config: Record<string, unknown>): Child {
  const child = spawn(process.execPath, [entry, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (l: string) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.pattern.test(line)) waiters.splice(i, 1)[0]!.resolve(line);
  });
  return {
    name,
    lines,
    process: child,
    exited: once(child, 'exit'),
    waitFor(pattern, timeoutMs = 60_000) {
      const hit = lines.find((l) => pattern.test(l));
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms; last lines: ${lines.slice(-15).join(' | ')}`)), timeoutMs);
        waiters.push({ pattern, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
  };
}

const str = Serdes.string();
const int = Serdes.int64();

function encode(scenario: OperatorScenario, r: InputRecord): { key: Buffer; value: Buffer; partition: number } {
  const key = str.serialize(r.key);
  const value = isInt64(scenario, r.topic) ? int.serialize(r.value as number) : str.serialize(r.value as string);
  return { key, value, partition: defaultPartition(key, PARTITIONS) };
}

async function produce(k: TestKafka, scenario: OperatorScenario, topics: ScenarioTopics, records: readonly InputRecord[]): Promise<void> {
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (const side of ['a', 'b'] as const) {
    const mine = records.filter((r) => r.topic === side);
    for (let i = 0; i < mine.length; i += 200) {
      await producer.send({
        topic: topics[side],
        messages: mine.slice(i, i + 200).map((r) => {
          const e = encode(scenario, r);
          return { key: e.key, value: e.value, partition: e.partition, timestamp: String(r.timestamp) };
        }),
      });
    }
  }
  await producer.disconnect();
}

/** The same topology on the executor, in memory, one task per partition, each partition's records in `order`. */
function model(scenario: OperatorScenario, topics: ScenarioTopics, order: readonly InputRecord[]): Map<string, string[]> {
  const topology = operatorTopology(scenario, topics);
  const out: CollectedRecord[] = [];
  const collector = { send: (r: CollectedRecord) => void out.push(r) };
  const tasks = Array.from({ length: PARTITIONS }, (_, p) => {
    const stores = openTaskStoresSync({ applicationId: 'model', taskId: `0_${p}`, partition: p, specs: topology.storeSpecs(0), collector, backend: 'memory', cacheMaxBytes: 0 });
    return new StreamTask({ topology, subtopology: 0, partition: p, applicationId: 'model', stores, collector });
  });
  const offsets = new Map<string, number>();
  for (const r of order) {
    const e = encode(scenario, r);
    const topic = topics[r.topic];
    const id = `${topic}/${e.partition}`;
    const offset = offsets.get(id) ?? 0;
    offsets.set(id, offset + 1);
    tasks[e.partition]!.process({ topic, partition: e.partition, offset, key: e.key, value: e.value, timestamp: r.timestamp, headers: {} });
  }
  return byKey(out.filter((r) => r.topic === topics.output).map((r) => ({ key: r.key, text: r.value?.toString('latin1') ?? '' })));
}

function byKey(records: readonly { key: Buffer | null; text: string }[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const r of records) {
    const k = r.key?.toString() ?? '';
    m.set(k, [...(m.get(k) ?? []), r.text]);
  }
  return new Map([...m].sort(([a], [b]) => (a < b ? -1 : 1)));
}

interface Run {
  readonly committed: Map<string, string[]>;
  readonly topics: ScenarioTopics;
  readonly a: Child;
  readonly b: Child;
}

/**
 * Produces `phases[0..n-2]`, waiting after each until the app has committed all of it, arms the
 * crash, produces the last phase, and once the first instance died starts the second one on a
 * fresh state directory and lets it finish.
 */
async function crashAndRestore(k: TestKafka, scenario: OperatorScenario, phases: readonly (readonly InputRecord[])[]): Promise<Run> {
  const names = await k.createTopics([
    { prefix: `op-${scenario}-a`, partitions: PARTITIONS },
    { prefix: `op-${scenario}-b`, partitions: PARTITIONS },
    { prefix: `op-${scenario}-out`, partitions: PARTITIONS },
  ]);
  const topics: ScenarioTopics = { a: names[0]!, b: names[1]!, output: names[2]! };
  const applicationId = k.uniqueName(`op-${scenario}`);
  const config = (dir: string) => ({ scenario, topics, applicationId, brokers: k.brokers, stateDir: dir, commitIntervalMs: 100, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 });
  // only topics with records: a partition nobody wrote to has no committed offset to wait for
  const written = new Set<string>();
  const feed = async (records: readonly InputRecord[]) => {
    await produce(k, scenario, topics, records);
    for (const r of records) written.add(topics[r.topic]);
  };
  const caughtUp = async (who: Child) => {
    try {
      for (const t of written) await awaitCaughtUp(k.admin, applicationId, t, 90_000);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${who.name}: ${who.lines.slice(-20).join('\n')}`);
    }
  };
  const a = spawnChild('a', config(mkdtempSync(join(tmpdir(), 'vltava-op-a-'))));
  let b: Child | undefined;
  try {
    await a.waitFor(/^state RUNNING/, 90_000);
    for (const phase of phases.slice(0, -1)) {
      await feed(phase);
      await caughtUp(a);
    }
    a.process.kill('SIGUSR2');
    await a.waitFor(/^armed/);
    await feed(phases[phases.length - 1]!);
    await a.waitFor(/^crash after-offsets/, 60_000);
    await a.exited;
    b = spawnChild('b', config(mkdtempSync(join(tmpdir(), 'vltava-op-b-'))));
    await b.waitFor(/^state RUNNING/, 90_000);
    await caughtUp(b);
    b.process.kill('SIGTERM');
    await b.exited;
  } finally {
    a.process.kill('SIGKILL');
    b?.process.kill('SIGKILL');
  }
  const committed = byKey((await readCommittedKcat(k.brokers, topics.output)).map((r) => ({ key: r.key, text: r.value?.toString('latin1') ?? '' })));
  return { committed, topics, a, b: b! };
}

const restoredSome = (c: Child, store: string): boolean => c.lines.some((l) => l.startsWith('restored ') && l.split(' ')[2] === store && Number(l.split(' ')[3]) > 0);

test.serial('[broker] suppress(untilTimeLimit, maxRecords emit-early) through a kill -9 mid-transaction: the same emissions as one uninterrupted run', async (t) => {
  const k = kafka();
  const input = scenarioInput('suppress', 1_600);
  const run = await crashAndRestore(k, 'suppress', [input.phase1, input.phase2]);
  t.true(restoredSome(run.b, 'counts-limited'), 'the suppress buffer was restored from its changelog');
  t.true(restoredSome(run.b, 'counts'));
  const expected = model('suppress', run.topics, [...input.phase1, ...input.phase2]);
  t.true([...expected.values()].reduce((n, v) => n + v.length, 0) > 100);
  t.deepEqual(run.committed, expected);
});

test.serial('[broker] cogroup through a kill -9 mid-transaction: each input record counted once, final aggregates exact', async (t) => {
  const k = kafka();
  const input = scenarioInput('cogroup', 1_600);
  const all = [...input.phase1, ...input.phase2];
  const run = await crashAndRestore(k, 'cogroup', [input.phase1, input.phase2]);
  t.true(restoredSome(run.b, 'user-stats'));
  // The interleaving of the two input topics in a task depends on fetch order, so the intermediate
  // aggregates may differ from the model's; the final ones and the number of updates may not.
  const expected = model('cogroup', run.topics, all);
  t.deepEqual([...run.committed.keys()], [...expected.keys()]);
  for (const [key, updates] of expected) {
    const got = run.committed.get(key)!;
    t.is(got.length, updates.length, `${key}: one update per input record, no duplicate, none lost`);
    t.deepEqual(JSON.parse(got[got.length - 1]!), JSON.parse(updates[updates.length - 1]!), key);
    const totals = got.map((s) => JSON.parse(s) as { clicks: number; spent: number }).map((v) => v.clicks + v.spent);
    t.true(totals.every((v, i) => i === 0 || v > totals[i - 1]!), `${key}: updates strictly grow`);
  }
});

test.serial('[broker] a stream-table join over a versioned table with grace through a kill -9 mid-transaction: every order priced as of its time, once', async (t) => {
  const k = kafka();
  const input = scenarioInput('versioned', 1_200);
  const prices = input.phase1.filter((r) => r.topic === 'b');
  const firstOrders = input.phase1.filter((r) => r.topic === 'a');
  const run = await crashAndRestore(k, 'versioned', [prices, firstOrders, input.phase2]);
  t.true(restoredSome(run.b, 'prices'), 'the versioned table was restored from its changelog');
  t.true(restoredSome(run.b, 'priced-buffer'), 'the grace buffer was restored from its changelog');
  const expected = model('versioned', run.topics, [...prices, ...firstOrders, ...input.phase2]);
  t.true([...expected.values()].reduce((n, v) => n + v.length, 0) > 1_000);
  t.deepEqual(run.committed, expected);
});
