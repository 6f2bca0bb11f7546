/**
 * The chaos run: the ledger on a real broker (its own, started here), 1–3 instances as child
 * processes, a steady stream of commands with client resends, and faults one after another:
 *   - sigkill:       kill -9 of an instance at a random moment;
 *   - commit-point:  an instance kills itself (SIGKILL) at a chosen step of the commit protocol
 *                    (before-send, after-send, after-offsets, after-commit, after-checkpoint), via
 *                    the runtime's `faultInjection` setting, armed by SIGUSR2;
 *   - zombie:        SIGSTOP until the group has moved its tasks, then SIGCONT: it must be fenced;
 *   - broker-restart: the broker stops and starts again with its data (once);
 *   - commit-error:  a transient error thrown (not a kill) at a chosen step of the commit protocol in
 *                    a chosen task, through the `faultInjection` hook, armed by an IPC message;
 *   - network:       the instances reach the broker through a fault proxy each (faultProxy.ts),
 *                    which cuts, stalls or resets their connections: mid-commit (on the next
 *                    AddPartitionsToTxn/AddOffsetsToTxn/TxnOffsetCommit/EndTxn), mid-fetch (on the
 *                    next Fetch) or at a random moment;
 *   - fence:         a foreign transactional producer initialises a task's transactional id
 *                    `<appId>-<taskId>` (begin + abort a transaction), fencing the owner;
 *   - retention:     deleteRecords on an input partition (commands or the credits repartition topic)
 *                    below the group's committed offset, as retention would in a backfill (every other
 *                    time followed by kill -9 of the task's owner, so it restarts at the new log
 *                    start): must lose nothing.
 * Killed instances come back after a random pause (0–3 s), so 1, 2 or 3 instances run at a time,
 * and restart on their old state directory (a crash must not need a state wipe).
 * Then everything catches up, and the journal, balances and rejections are read read_committed by
 * kcat (librdkafka, not the client under test) and by kafkajs; the two readings must agree, and
 * kcat's is checked: 0 lost, 0 duplicated, the invariants, and the final balances of a sequential
 * reference model (examples/ledger/src/verifyLedger.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Workload, createLedgerTopics, ledgerTopics, referenceModel, type Command, type LedgerReport } from '@vltava/example-ledger';
import { createTopicsAndWait } from '@vltava/kafka-local';
import { awaitCaughtUp, readCommitted } from '@vltava/kafka-local/testing';
import type { CommitPoint } from '@vltava/runtime';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { startChaosBroker, type ChaosBroker } from './chaosBroker.js';
import { COMMIT_APIS, FETCH_APIS, FaultProxy, type ProxyFaultKind } from './faultProxy.js';
import { chaosEntry, spawnInstance, until as waitFor, type Instance } from './instances.js';
import { chaosServer, memberIdsOf, removeMembers } from './removeMember.js';
import { kcatVersion, readCommittedWithKcat } from './kcatReader.js';
import { commandProducer, fmt, verifyOnBroker } from './ledgerIo.js';

export type FaultKind = 'sigkill' | 'commit-point' | 'zombie' | 'broker-restart' | 'commit-error' | 'network' | 'fence' | 'retention';

/** Every kind `kinds` may name (broker-restart is separate: once, half-way, unless disabled). */
export const FAULT_KINDS: readonly FaultKind[] = ['sigkill', 'commit-point', 'zombie', 'commit-error', 'network', 'fence', 'retention'];
export const NEW_FAULT_KINDS: readonly FaultKind[] = ['commit-error', 'network', 'fence', 'retention'];

export interface Fault {
  readonly kind: FaultKind;
  /** Seconds since the fault phase began. */
  readonly atS: number;
  readonly target: string;
  readonly detail: string;
  /** From the fault until every task committed again (ms), if it did within the limit. */
  recoveryMs?: number;
}

export interface ChaosOptions {
  /** How long faults are injected (the run goes on until `minFaults` are done). */
  readonly durationMs: number;
  readonly minFaults: number;
  readonly seed?: number;
  readonly partitions?: number;
  readonly maxInstances?: number;
  /** Commands per second (default 300). */
  readonly rate?: number;
  readonly brokerRestart?: boolean;
  /** Which kinds to inject, in turn (default FAULT_KINDS; a kind may appear twice to weigh it). */
  readonly kinds?: readonly FaultKind[];
  /** Go on until each of these kinds was injected at least this many times. */
  readonly minPerKind?: Partial<Record<FaultKind, number>>;
  /** How long a fault's recovery (every task committing again) may take before it is reported as none (default 60 s). */
  readonly recoveryLimitMs?: number;
  /** How long the group may take to commit to the end of its inputs after the faults (default 180 s). */
  readonly catchUpMs?: number;
  /** After a kill (sigkill, commit-point), remove the dead member from the group at once, so that its
   * tasks are taken over within a heartbeat instead of after its session timeout (removeMember.ts). */
  readonly immediateTakeover?: boolean;
  /** The commit steps a commit-point kill picks from (default: all five). */
  readonly points?: readonly CommitPoint[];
  readonly log?: (line: string) => void;
}

export interface ChaosReport {
  readonly seed: number;
  readonly partitions: number;
  readonly durationS: number;
  readonly faults: readonly Fault[];
  readonly faultCounts: Readonly<Record<FaultKind, number>>;
  readonly instancesStarted: number;
  readonly ledger: LedgerReport;
  /** journal entries + balance updates + rejections read back and checked. */
  readonly recordsVerified: number;
  readonly recovery: { readonly count: number; readonly minMs: number; readonly medianMs: number; readonly maxMs: number };
  readonly violations: readonly string[];
  /** Faults after which some task did not commit again within the recovery limit. */
  readonly noRecovery: readonly string[];
  /** The client whose reading was checked, and whether kafkajs read the same. */
  readonly verifier: string;
  readonly ok: boolean;
}

export const POINTS: readonly CommitPoint[] = ['before-send', 'after-send', 'after-offsets', 'after-commit', 'after-checkpoint'];
const SLOTS = ['a', 'b', 'c'];

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const seed = opts.seed ?? Date.now() % 100_000;
  const partitions = opts.partitions ?? 4;
  const slots = SLOTS.slice(0, Math.max(1, Math.min(3, opts.maxInstances ?? 3)));
  const rate = opts.rate ?? 300;
  const workload = new Workload({ seed, accounts: 40 });
  const rnd = (n: number): number => workload.int(n);
  const home = mkdtempSync(join(tmpdir(), 'vltava-chaos-'));
  const t0 = Date.now();
  let broker: ChaosBroker | undefined;
  const instances = new Map<string, Instance>();
  const wanted = new Set<string>();
  const onExit = (): void => {
    for (const i of instances.values()) i.signal('SIGKILL');
    broker?.killNow();
  };
  process.once('exit', onExit);
  const violations: string[] = [];
  /** Faults after which some task did not commit again within the limit (reported, not violations). */
  const noRecovery: string[] = [];
  const faults: Fault[] = [];
  const everyInstance: Instance[] = [];
  let started = 0;
  const cleanups: (() => Promise<void>)[] = [];
  const plan: FaultKind[] = (opts.kinds ?? FAULT_KINDS).filter((x) => x !== 'broker-restart');
  for (const x of plan) if (!FAULT_KINDS.includes(x)) throw new Error(`unknown fault kind ${x}; the kinds are ${FAULT_KINDS.join(', ')}`);
  if (plan.length === 0) throw new Error(`kinds must name at least one of ${FAULT_KINDS.join(', ')}`);
  // The verifier must be there before a long run starts, not after it.
  const kcat = kcatVersion();
  try {
    log(`chaos: seed ${seed}, ${partitions} partitions, up to ${slots.length} instances, ${rate} commands/s, faults for ${Math.round(opts.durationMs / 1000)} s (at least ${opts.minFaults})`);
    broker = await startChaosBroker(home);
    const b = broker;
    log(`chaos: own broker at ${b.brokers} (Kafka ${b.version}, ${b.dir})${opts.immediateTakeover ? '; immediate takeovers: a killed member leaves the group at once' : ''}`);
    const kafka = new Kafka({ clientId: 'vltava-chaos', brokers: [b.brokers], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const applicationId = `ledger-chaos-${seed}`;
    const topics = await createLedgerTopics(admin, { partitions, topics: ledgerTopics() });
    const taskIds = Array.from({ length: partitions }, (_, p) => `0_${p}`);
    const repartition = `${applicationId}-credits-repartition`;
    const fenceScratch = `${applicationId}-fence-scratch`;
    // kafkajs' waitForLeaders gives up on the UNKNOWN_TOPIC_OR_PARTITION a KRaft broker answers at first.
    await createTopicsAndWait(admin, [{ topic: fenceScratch, numPartitions: 1, replicationFactor: 1 }]);
    // With network faults, each slot's instances reach the broker through a proxy of their own.
    const proxies = new Map<string, FaultProxy>();
    if (plan.includes('network')) for (const s of slots) proxies.set(s, await FaultProxy.start({ upstream: b.brokers }));
    cleanups.push(async () => {
      for (const px of proxies.values()) await px.close();
    });

    // --- instances -----------------------------------------------------------------------------
    const lastCommit = new Map<string, number>();
    const base = { applicationId, partitions, commitIntervalMs: 100, sessionTimeoutMs: 4_000, heartbeatIntervalMs: 400, brokerRetryTimeoutMs: 120_000 };
    const spawnSlot = (slot: string): Instance => {
      const points = opts.points !== undefined && opts.points.length > 0 ? opts.points : POINTS;
      const crashAt = { point: points[rnd(points.length)]!, after: 1 + rnd(40), onSignal: true };
      const brokers = [proxies.get(slot)?.bootstrap ?? b.brokers];
      // The very first instance throws at the first commit of the run (a task with no committed
      // offset yet: issue 11, defect 1), when commit errors are in the plan.
      // At a step where the transaction aborts, in every task it starts, once each.
      const ABORTING: readonly CommitPoint[] = ['before-send', 'after-send', 'after-offsets'];
      const throwFirst = started === 0 && plan.includes('commit-error') ? { type: 'throw', point: ABORTING[rnd(ABORTING.length)]!, id: 0, everyTask: true } : undefined;
      const name = `${slot}#${++started}`;
      const server = opts.immediateTakeover ? { applicationServer: chaosServer(name) } : {};
      const inst = spawnInstance(name, { ...base, ...server, brokers, stateDir: join(home, `state-${slot}`), crashAt, ...(throwFirst ? { throwFirst } : {}) }, { entry: chaosEntry, ipc: true });
      instances.set(slot, inst);
      everyInstance.push(inst);
      inst.onLine((l) => {
        const [word, task] = l.text.split(' ');
        if (word === 'committed' && task) lastCommit.set(task, l.at);
        if (word === 'error' || word === 'stderr') log(`  ${inst.name}: ${l.text.slice(0, 300)}`);
        if (l.text === 'state ERROR') {
          log(`  ${inst.name} is in ERROR; replacing it`);
          inst.signal('SIGKILL');
        }
      });
      void inst.exited.then(({ signal, code }) => {
        if (instances.get(slot) !== inst || !wanted.has(slot)) return;
        if (signal !== 'SIGKILL' || !faultsOn) log(`  ${inst.name} exited (${signal ?? code}); restarting it`);
        // Come back after a random pause, so that 1–3 instances run at a time.
        setTimeout(() => {
          if (instances.get(slot) === inst && wanted.has(slot)) spawnSlot(slot);
        }, faultsOn ? rnd(3_000) : 0);
      });
      return inst;
    };
    const live = (): Instance[] => [...instances.entries()].filter(([s, i]) => wanted.has(s) && i.isAlive()).map(([, i]) => i);
    const owners = (): Set<string> => new Set(live().flatMap((i) => [...i.tasks()]));
    let faultsOn = true;
    for (const s of slots) {
      wanted.add(s);
      spawnSlot(s);
    }

    // --- commands ------------------------------------------------------------------------------
    const sent: Command[] = [];
    let producing = true;
    let paused = false;
    let sendErrors = 0;
    const producer: Producer = await commandProducer(kafka);
    const producerLoop = (async () => {
      const perTick = Math.max(1, Math.round(rate / 20));
      let next = Date.now();
      while (producing) {
        next += 50;
        if (!paused) {
          const batch = workload.batch(perTick);
          for (;;) {
            try {
              await producer.send({ topic: topics.commands, messages: batch.map((r) => ({ key: r.key, value: r.value })) });
              break;
            } catch (e) {
              // A retry may write the batch twice: that is a client resend, which the ledger must absorb.
              sendErrors++;
              if (sendErrors % 10 === 1) log(`  producer: ${(e as Error).message}; retrying`);
              await new Promise((r) => setTimeout(r, 500));
            }
          }
          for (const r of batch) sent.push(r.command);
        }
        const wait = next - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        else next = Date.now();
      }
    })();

    await Promise.all(live().map((i) => i.waitFor(/^running /, 120_000)));
    await waitFor(() => taskIds.every((t) => lastCommit.has(t)), 'every task committed once', 120_000);
    log(`chaos: ${live().length} instances running all ${partitions} tasks; faults begin`);

    // --- faults --------------------------------------------------------------------------------
    const tf = Date.now();
    const elapsedS = (): number => Math.round((Date.now() - tf) / 100) / 10;

    const recoveryLimitMs = opts.recoveryLimitMs ?? 60_000;
    const recovered = async (fault: Fault, since: number): Promise<void> => {
      try {
        await waitFor(() => taskIds.every((t) => (lastCommit.get(t) ?? 0) > since), 'every task committing again', recoveryLimitMs);
        fault.recoveryMs = Math.max(...taskIds.map((t) => lastCommit.get(t)! - since));
      } catch {
        const stale = taskIds.filter((t) => (lastCommit.get(t) ?? 0) <= since);
        log(`  ! no recovery within ${recoveryLimitMs / 1000} s after ${fault.kind} ${fault.target}: ${stale.join(',')} not committing; owners: ${[...owners()].join(',') || 'none'}`);
        noRecovery.push(`${fault.kind} ${fault.target} at ${fault.atS} s: tasks ${stale.join(',')} did not commit again within ${recoveryLimitMs / 1000} s`);
      }
    };
    /** --immediate-takeover: the dead member leaves the group now (its tasks move within a heartbeat). */
    const memberIds = async (victim: Instance): Promise<string[]> =>
      opts.immediateTakeover ? memberIdsOf(admin, applicationId, chaosServer(victim.name)).catch(() => []) : [];
    const takeOver = async (victim: Instance, before: readonly string[]): Promise<string> => {
      if (!opts.immediateTakeover) return '';
      const ids = [...before, ...(await memberIds(victim))];
      const removed = await removeMembers(kafka, applicationId, ids).catch((e: Error) => {
        log(`  ! could not remove ${victim.name}'s member: ${e.message}`);
        return [];
      });
      return removed.length > 0 ? ', member removed at once' : ids.length > 0 ? ', member already gone' : ', member not found';
    };
    let brokerRestarted = !(opts.brokerRestart ?? true);
    let k = 0;
    let throwSeq = 0;
    const count = (kind: FaultKind): number => faults.filter((f) => f.kind === kind).length;
    const perKindShort = (): boolean => Object.entries(opts.minPerKind ?? {}).some(([kind, n]) => plan.includes(kind as FaultKind) && count(kind as FaultKind) < (n ?? 0));
    const slotOf = (i: Instance): string | undefined => [...instances.entries()].find(([, x]) => x === i)?.[0];
    // minFaults and minPerKind extend the run, up to twice its duration plus two minutes.
    const hardStop = tf + opts.durationMs * 2 + 120_000;
    while ((Date.now() - tf < opts.durationMs || faults.length < opts.minFaults || perKindShort()) && Date.now() < hardStop) {
      // Start each fault from a healthy group: every task owned and committing.
      await waitFor(() => taskIds.every((t) => owners().has(t)), 'all tasks owned', recoveryLimitMs * 1.5).catch(() => log(`  ! not every task owned after ${(recoveryLimitMs * 1.5) / 1000} s: ${taskIds.filter((t) => !owners().has(t)).join(',')} not running anywhere`));
      let kind: FaultKind = plan[k % plan.length]!;
      if (!brokerRestarted && Date.now() - tf > opts.durationMs / 2) kind = 'broker-restart';
      else k++; // the broker restart takes no kind's turn
      const victims = live();
      if (kind === 'zombie' && (victims.length < 2 || victims.every((v) => v.tasks().size === 0))) kind = 'sigkill';
      if (victims.length === 0) {
        await waitFor(() => live().length > 0, 'an instance alive', 30_000);
        continue;
      }
      const withTasks = victims.filter((v) => v.tasks().size > 0);
      const victim = (withTasks.length > 0 ? withTasks : victims)[rnd(withTasks.length > 0 ? withTasks.length : victims.length)]!;
      let fault: Fault;
      if (kind === 'sigkill') {
        await new Promise((r) => setTimeout(r, rnd(1_500))); // a random moment (deliberately not synchronised)
        if (!victim.isAlive()) continue;
        const had = victim.tasks().size;
        const before = await memberIds(victim);
        const at = Date.now();
        victim.signal('SIGKILL');
        await victim.exited;
        const removed = await takeOver(victim, before);
        fault = { kind, atS: elapsedS(), target: victim.name, detail: `kill -9 (${had} tasks)${removed}` };
        faults.push(fault);
        await recovered(fault, at);
      } else if (kind === 'commit-point') {
        const before = await memberIds(victim);
        const from = victim.lines.length;
        const at = Date.now();
        victim.signal('SIGUSR2');
        const crash = await victim.waitFor(/^crash /, 30_000, from).catch(() => undefined);
        if (crash === undefined) {
          log(`  ${victim.name} did not reach its armed commit point; killing it`);
          victim.signal('SIGKILL');
          await victim.exited;
          continue;
        }
        await victim.exited;
        const removed = await takeOver(victim, before);
        fault = { kind, atS: elapsedS(), target: victim.name, detail: `${crash.text.slice('crash '.length)}${removed}` };
        faults.push(fault);
        await recovered(fault, at);
      } else if (kind === 'zombie') {
        const had = victim.tasks();
        const at = Date.now();
        const from = victim.lines.length;
        victim.signal('SIGSTOP');
        const others = (): Set<string> => new Set(live().filter((i) => i !== victim).flatMap((i) => [...i.tasks()]));
        await waitFor(() => [...had].every((t) => others().has(t)), 'its tasks taken over', 60_000).catch(() => log(`  ! ${victim.name}'s tasks were not taken over within 60 s`));
        victim.signal('SIGCONT');
        const woke = await victim.waitFor(/^(migrated|revoked|state REBALANCING)/, 30_000, from).catch(() => undefined);
        fault = { kind, atS: elapsedS(), target: victim.name, detail: `stopped ${Math.round((Date.now() - at) / 100) / 10} s with ${had.size} tasks; then: ${woke?.text ?? 'no line'}` };
        faults.push(fault);
        await recovered(fault, at);
      } else if (kind === 'commit-error') {
        await new Promise((r) => setTimeout(r, rnd(1_500))); // a random moment
        const owned = [...victim.tasks()];
        const task = owned.length > 0 ? owned[rnd(owned.length)] : undefined;
        const point = POINTS[rnd(POINTS.length)]!;
        const id = ++throwSeq;
        const from = victim.lines.length;
        victim.send({ type: 'throw', point, id, ...(task === undefined ? {} : { taskId: task }) });
        const hit = await victim.waitFor(new RegExp(`^thrown \\S+ \\S+ ${id}$`), 15_000, from).catch(() => undefined);
        if (hit === undefined) {
          victim.send({ type: 'disarm' });
          log(`  ${victim.name}: ${task ?? 'no task'} did not reach ${point} within 15 s; no fault`);
          continue;
        }
        fault = { kind, atS: elapsedS(), target: victim.name, detail: `threw at ${point} in ${task ?? hit.text.split(' ')[2]}` };
        faults.push(fault);
        await recovered(fault, hit.at);
      } else if (kind === 'network') {
        const slot = slotOf(victim);
        const proxy = slot === undefined ? undefined : proxies.get(slot);
        if (proxy === undefined) continue;
        const actions: ProxyFaultKind[] = ['cut', 'stall', 'reset'];
        const action = actions[rnd(actions.length)]!;
        const where = (['commit', 'fetch', 'random'] as const)[rnd(3)]!;
        const stallMs = 500 + rnd(5_500);
        const at = Date.now();
        let what: string;
        if (where === 'random') {
          await new Promise((r) => setTimeout(r, rnd(1_500)));
          const n = action === 'stall' ? proxy.stall(stallMs) : action === 'cut' ? proxy.cut() : proxy.reset();
          what = `${n} connections at a random moment`;
        } else {
          // Mid-commit: one of the transaction's requests, chosen at random (AddPartitionsToTxn comes first in every commit).
          const apis = where === 'commit' ? [COMMIT_APIS[rnd(COMMIT_APIS.length)]!] : FETCH_APIS;
          const pf = await proxy.faultOnRequest(apis, action, { stallMs, timeoutMs: 15_000 }).catch(() => undefined);
          if (pf === undefined) {
            log(`  ${victim.name}: no ${where} request through its proxy within 15 s; no fault`);
            continue;
          }
          what = `mid-${where} (api key ${pf.apiKey})`;
        }
        fault = { kind, atS: elapsedS(), target: victim.name, detail: `${action}${action === 'stall' ? ` ${stallMs} ms` : ''} ${what}` };
        faults.push(fault);
        await recovered(fault, at);
      } else if (kind === 'fence') {
        const task = taskIds[rnd(taskIds.length)]!;
        const owner = live().find((i) => i.tasks().has(task));
        const from = owner?.lines.length ?? 0;
        const at = Date.now();
        // A foreign producer with the task's transactional id: InitProducerId bumps the epoch, which
        // fences the owner's producer and aborts its open transaction.
        const fencer = kafka.producer({ transactionalId: `${applicationId}-${task}`, idempotent: true, maxInFlightRequests: 1 });
        try {
          await fencer.connect();
          const tx = await fencer.transaction(); // InitProducerId: the owner is fenced from here on
          try {
            await tx.send({ topic: fenceScratch, messages: [{ value: `fence ${task}` }] });
            await tx.abort();
          } catch (e) {
            // The owner may re-initialise at once (it rejoins and restarts the task), fencing the
            // fencer in turn: expected, the fence already happened.
            const type = (e as { type?: string }).type;
            if (type !== 'INVALID_PRODUCER_EPOCH' && type !== 'PRODUCER_FENCED' && type !== 'INVALID_TXN_STATE') throw e;
          }
        } finally {
          await fencer.disconnect().catch(() => undefined);
        }
        const woke = await owner?.waitFor(new RegExp(`^(migrated ${task}|revoked ${task}|state ERROR)`), 20_000, from).catch(() => undefined);
        fault = { kind, atS: elapsedS(), target: task, detail: `fenced ${task} (owner ${owner?.name ?? 'none'}); then: ${woke?.text ?? 'no migrated line within 20 s'}` };
        faults.push(fault);
        await recovered(fault, at);
      } else if (kind === 'retention') {
        await new Promise((r) => setTimeout(r, rnd(1_500)));
        const topic = rnd(2) === 0 ? topics.commands : repartition;
        const partition = rnd(partitions);
        const committed = Number((await admin.fetchOffsets({ groupId: applicationId, topics: [topic] }))[0]?.partitions.find((p) => p.partition === partition)?.offset ?? -1);
        const low = Number((await admin.fetchTopicOffsets(topic)).find((p) => p.partition === partition)?.low ?? 0);
        if (!(committed > low)) {
          log(`  retention: nothing below the committed offset of ${topic} ${partition} (${low}..${committed}); no fault`);
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        const at = Date.now();
        await admin.deleteTopicRecords({ topic, partitions: [{ partition, offset: String(committed) }] });
        // Every other time the owner is also killed, so that its task restarts exactly at the new log start.
        const owner = rnd(2) === 0 ? live().find((i) => i.tasks().has(`0_${partition}`)) : undefined;
        if (owner !== undefined) {
          owner.signal('SIGKILL');
          await owner.exited;
        }
        fault = { kind, atS: elapsedS(), target: `${topic.replace(applicationId, '<app>')}/${partition}`, detail: `deleted offsets ${low}..${committed - 1} (below the committed ${committed})${owner ? `, then kill -9 of the owner ${owner.name}` : ''}` };
        faults.push(fault);
        await recovered(fault, at);
      } else {
        paused = true;
        const at = Date.now();
        const { downMs } = await b.restart();
        paused = false;
        brokerRestarted = true;
        fault = { kind, atS: elapsedS(), target: b.brokers, detail: `down ${Math.round(downMs / 100) / 10} s` };
        faults.push(fault);
        await recovered(fault, at);
      }
      log(`fault ${String(faults.length).padStart(2)} ${fault.atS.toFixed(1).padStart(6)} s  ${fault.kind.padEnd(14)} ${fault.target.padEnd(6)} ${fault.detail}; recovered in ${fault.recoveryMs === undefined ? '?' : `${fault.recoveryMs} ms`} (${live().length} instances)`);
    }

    // --- catch up and verify -------------------------------------------------------------------
    faultsOn = false;
    producing = false;
    await producerLoop;
    await producer.disconnect();
    for (const s of slots) {
      const i = instances.get(s);
      i?.signal('SIGCONT');
      if (i === undefined || !i.isAlive()) spawnSlot(s);
    }
    log(`chaos: ${fmt(sent.length)} commands sent; waiting for the ledger to catch up`);
    const catchUpMs = opts.catchUpMs ?? 180_000;
    for (const topic of [topics.commands, repartition]) {
      // A group that never catches up is a finding, not a crash of the tool: report it and verify anyway.
      await awaitCaughtUp(admin, applicationId, topic, catchUpMs).catch((e: unknown) => violations.push(`not caught up: ${(e as Error).message}; owners: ${[...owners()].join(',') || 'none'}`));
    }
    wanted.clear();
    for (const i of instances.values()) i.signal('SIGTERM');
    const closed = Promise.all([...instances.values()].map((i) => i.exited));
    const stuck = setTimeout(() => {
      log('  instances did not close within 30 s of SIGTERM; killing them');
      for (const i of instances.values()) i.signal('SIGKILL');
    }, 30_000);
    await closed;
    clearTimeout(stuck);
    const ref = referenceModel(sent);
    log(`chaos: verifying with ${kcat.replace(/ \(.*$/, '')} (kcat) and kafkajs, both read_committed`);
    const { report, readerDiffs } = await verifyOnBroker(kafka, topics, ref, { brokers: b.brokers });
    violations.push(...report.violations);
    for (const d of readerDiffs) violations.push(`readers disagree: ${d}`);
    if (report.lost.length > 0) {
      // Where the lost commands were: their partition names the task that should have processed them.
      for (const l of await locate(b.brokers, topics.commands, new Set(report.lost.slice(0, 10))).catch((e: unknown) => [`locating lost commands failed: ${(e as Error).message}`])) violations.push(`lost: ${l}`);
    }
    await admin.disconnect();
    // The first instance's throws at the first commit of each task it ran (fault id 0).
    for (const l of everyInstance[0]?.lines.filter((x) => /^thrown \S+ \S+ 0$/.test(x.text)) ?? []) {
      const [, point, task] = l.text.split(' ');
      faults.push({ kind: 'commit-error', atS: Math.round((l.at - tf) / 100) / 10, target: everyInstance[0]!.name, detail: `threw at ${point} in ${task}: the first commit of ${task} in this process` });
    }
    faults.sort((x, y) => x.atS - y.atS);
    const counts = Object.fromEntries([...FAULT_KINDS, 'broker-restart'].map((x) => [x, 0])) as Record<FaultKind, number>;
    for (const f of faults) counts[f.kind]++;
    if (faults.length < opts.minFaults) violations.push(`only ${faults.length} faults injected, ${opts.minFaults} required`);
    for (const [kind, n] of Object.entries(opts.minPerKind ?? {})) {
      if (plan.includes(kind as FaultKind) && counts[kind as FaultKind] < (n ?? 0)) violations.push(`only ${counts[kind as FaultKind]} ${kind} faults injected, ${n} required`);
    }
    if (violations.length > 0) {
      // Keep the evidence: every instance's event lines, in time order, and the fault list.
      const file = join(tmpdir(), `vltava-chaos-${seed}-${Date.now()}.log`);
      // Forensics: which producer (id, epoch) wrote each copy of a duplicated command's records.
      const dupIds = new Set(report.duplicated);
      for (const topic of [`${applicationId}-credits-repartition`, topics.rejections, topics.journal]) {
        for (const f of await writersOf(kafka, topic, dupIds).catch((e: unknown) => [`forensics failed on ${topic}: ${(e as Error).message}`])) violations.push(`forensics: ${f}`);
      }
      const all = everyInstance.flatMap((i) => i.lines.map((l) => `${new Date(l.at).toISOString()} ${i.name.padEnd(5)} ${l.text}`)).sort();
      writeFileSync(file, [...faults.map((f) => `fault ${f.atS}s (since ${new Date(tf).toISOString()}) ${f.kind} ${f.target} ${f.detail}`), ...all, ...violations].join('\n'));
      log(`chaos: instance lines and violations saved to ${file}`);
    }
    const rec = faults.map((f) => f.recoveryMs).filter((x): x is number => x !== undefined).sort((x, y) => x - y);
    return {
      seed,
      partitions,
      durationS: Math.round((Date.now() - t0) / 1000),
      faults,
      faultCounts: counts,
      instancesStarted: started,
      ledger: report,
      recordsVerified: report.journalEntries + report.balanceUpdates + report.rejectionRecords,
      recovery: { count: rec.length, minMs: rec[0] ?? 0, medianMs: rec[Math.floor(rec.length / 2)] ?? 0, maxMs: rec.at(-1) ?? 0 },
      violations,
      noRecovery,
      verifier: `${kcat.replace(/^Version /, 'kcat ').replace(/ \(.*$/, '')} (kafkajs ${readerDiffs.length === 0 ? 'agrees' : `differs on ${readerDiffs.length}`})`,
      ok: violations.length === 0,
    };
  } finally {
    for (const c of cleanups) await c().catch(() => undefined);
    wanted.clear();
    for (const i of instances.values()) i.signal('SIGKILL');
    await Promise.all([...instances.values()].map((i) => i.exited));
    await broker?.stop();
    process.off('exit', onExit);
    rmSync(home, { recursive: true, force: true });
  }
}

export function formatReport(r: ChaosReport): string {
  const L = r.ledger;
  const lines = [
    `| | |`,
    `| --- | --- |`,
    `| result | ${r.ok ? '**PASS**' : '**FAIL**'} |`,
    `| duration | ${r.durationS} s (seed ${r.seed}, ${r.partitions} partitions, ${r.instancesStarted} instance processes started) |`,
    `| faults injected | ${r.faults.length}: ${Object.entries(r.faultCounts).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(', ')} |`,
    `| commands sent | ${fmt(L.commandsSent)} (${fmt(L.resends)} client resends), ${fmt(L.acceptedIds)} accepted, ${fmt(L.rejectedIds)} rejected |`,
    `| records verified | ${fmt(r.recordsVerified)} (${fmt(L.journalEntries)} journal entries, ${fmt(L.balanceUpdates)} balance updates, ${fmt(L.rejectionRecords)} rejections) |`,
    `| lost / duplicated | ${L.lost.length} / ${L.duplicated.length} |`,
    `| violations | ${r.violations.length} |`,
    `| verified with | ${r.verifier} |`,
    `| recovery (fault → every task committing again) | min ${r.recovery.minMs} ms, median ${r.recovery.medianMs} ms, max ${r.recovery.maxMs} ms (${r.recovery.count} faults) |`,
  ];
  if (r.violations.length > 0) lines.push('', 'Violations:', '', ...r.violations.map((v) => `- ${v}`));
  if (r.noRecovery.length > 0) lines.push('', 'No recovery within the limit:', '', ...r.noRecovery.map((v) => `- ${v}`));
  lines.push('', '| # | at | fault | target | detail | recovery |', '| --- | --- | --- | --- | --- | --- |');
  r.faults.forEach((f, i) => lines.push(`| ${i + 1} | ${f.atS.toFixed(1)} s | ${f.kind} | ${f.target} | ${f.detail} | ${f.recoveryMs === undefined ? '—' : `${f.recoveryMs} ms`} |`));
  return lines.join('\n');
}

/**
 * Reads a whole topic (read_committed, the app stopped) and describes every record whose value names
 * one of `ids` as its commandId: where it is and which transactional producer (id, epoch) wrote it.
 */
async function writersOf(kafka: Kafka, topic: string, ids: ReadonlySet<string>): Promise<string[]> {
  if (ids.size === 0) return [];
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
  await admin.disconnect();
  const out: string[] = [];
  const consumer = kafka.consumer({ groupId: `forensics-${Date.now()}-${Math.random()}`, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const done = new Set([...ends].filter(([, end]) => end === 0).map(([p]) => p));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), 60_000);
    const check = (): void => {
      if (done.size === ends.size) {
        clearTimeout(timer);
        resolve();
      }
    };
    check();
    void consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const v = m.value?.toString() ?? '';
          const id = /"commandId":"([^"]+)"/.exec(v)?.[1];
          if (id !== undefined && ids.has(id)) {
            const b = (m as unknown as { batchContext?: { producerId: string; producerEpoch: number; inTransaction: boolean; firstSequence: number; firstOffset: string } }).batchContext;
            out.push(`${id} at ${topic} ${batch.partition}/${m.offset} written by producer ${b?.producerId}/epoch ${b?.producerEpoch} (transactional ${b?.inTransaction}, batch first offset ${b?.firstOffset}, first sequence ${b?.firstSequence})`);
          }
        }
        if (Number(batch.lastOffset()) + 1 >= (ends.get(batch.partition) ?? 0)) done.add(batch.partition);
        check();
      },
    });
  });
  await consumer.disconnect();
  return out;
}

/** Where commands with these ids sit in the commands topic (partition = the task 0_<partition>), read by kcat. */
async function locate(brokers: string, topic: string, ids: ReadonlySet<string>): Promise<string[]> {
  if (ids.size === 0) return [];
  const out: string[] = [];
  for (const r of await readCommittedWithKcat(brokers, topic)) {
    const id = /"id":"([^"]+)"/.exec(r.text)?.[1];
    if (id !== undefined && ids.has(id)) out.push(`${id} is at ${topic} ${r.partition}/${r.offset} (task 0_${r.partition})`);
  }
  return out;
}
