import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Admin } from 'kafkajs';
import { applicationId, brokers, integer, list, parse } from './args.js';
import { groupOffsets, groupState, internalTopics, topicOffsets, withAdmin } from './admin.js';
import { CliError, UsageError } from './errors.js';
import { lockedBy } from './lock.js';
import type { Io } from './io.js';

export const RESET_HELP = `Usage: vltava reset --application-id <id> --brokers <host:port,...> --input-topics <a,b,...> [options]

Resets a Vltava application so that it reprocesses its input from scratch, like Kafka Streams'
kafka-streams-application-reset. Stop every instance first: the reset refuses while the consumer
group <id> has active members.

  1. the group's committed offsets of the input topics move to the start (or --to-datetime /
     --to-offset / --to-latest); this also drops the stream time committed with them;
  2. the internal topics <id>-*-repartition and <id>-*-changelog are deleted (the app recreates them);
  3. the local state must go too: with --state-dir <dir>, <dir>/<id> is deleted; otherwise delete
     it on every host that ran the app.

Options:
  --application-id <id>    the applicationId (consumer group, internal-topic prefix)
  --brokers <list>         bootstrap host:port list
  --input-topics <list>    the app's input topics (comma-separated)
  --to-earliest            reset to the first offset of each partition (the default)
  --to-latest              reset to the end: skip everything written so far
  --to-datetime <ISO>      reset to the first record at or after this time (e.g. 2026-12-01T10:00:00Z)
  --to-offset <n>          reset every partition to offset n (clamped to the partition's range)
  --state-dir <dir>        also delete the local state <dir>/<id> (refused if a live process holds it)
  --dry-run                print every change, make none
  --timeout-ms <ms>        give up after this long (default 30000)
`;

type Target = { readonly kind: 'earliest' } | { readonly kind: 'latest' } | { readonly kind: 'datetime'; readonly ts: number; readonly iso: string } | { readonly kind: 'offset'; readonly offset: number };

export interface OffsetChange {
  readonly topic: string;
  readonly partition: number;
  readonly from: number;
  readonly to: number;
}

export async function reset(argv: readonly string[], io: Io): Promise<number> {
  const { values } = parse(
    'reset',
    argv,
    {
      'application-id': { type: 'string' },
      brokers: { type: 'string' },
      'input-topics': { type: 'string' },
      'to-earliest': { type: 'boolean' },
      'to-latest': { type: 'boolean' },
      'to-datetime': { type: 'string' },
      'to-offset': { type: 'string' },
      'state-dir': { type: 'string' },
      'dry-run': { type: 'boolean' },
      'timeout-ms': { type: 'string' },
    },
    { min: 0, max: 0, names: 'no positional arguments' },
  );
  if (values.help === true) {
    io.out(RESET_HELP);
    return 0;
  }
  const appId = applicationId('reset', values);
  const bootstrap = brokers('reset', values);
  const inputs = [...new Set(list('reset', values, 'input-topics'))];
  const target = parseTarget(values);
  const dryRun = values['dry-run'] === true;
  const timeoutMs = integer('reset', values, 'timeout-ms', 1) ?? 30_000;
  const stateDir = typeof values['state-dir'] === 'string' ? resolve(values['state-dir']) : undefined;
  const appStateDir = stateDir === undefined ? undefined : join(stateDir, appId);
  if (appStateDir !== undefined && !dryRun) refuseLockedState(appStateDir);

  const prefix = dryRun ? '[dry-run] would ' : '';
  const done = await withAdmin({ brokers: bootstrap, timeoutMs }, async (admin) => {
    const group = await groupState(admin, appId);
    if (group.members.length > 0) {
      throw new CliError(
        `refusing to reset "${appId}": its consumer group has ${group.members.length} active member(s) (state ${group.state}): ` +
          group.members.map((m) => `${m.clientId}@${m.clientHost}`).join(', ') +
          `. Stop every instance of the application, wait for the group to become empty (its session timeout), and run the reset again.`,
      );
    }
    const existing = new Set(await admin.listTopics());
    const missing = inputs.filter((t) => !existing.has(t));
    if (missing.length > 0) throw new CliError(`input topic(s) ${missing.map((t) => JSON.stringify(t)).join(', ')} do not exist: check --input-topics`);
    const changes = await plannedOffsets(admin, appId, inputs, target);
    const internal = await internalTopics(admin, appId);
    io.out(`Application "${appId}" (group state ${group.state}, no active members) on ${bootstrap.join(',')}${dryRun ? ': dry run, nothing is changed' : ''}`);
    io.out(`Input offsets (${describeTarget(target)}):`);
    for (const c of changes) {
      io.out(`  ${prefix}${dryRun ? 'set' : 'reset'} ${c.topic} partition ${c.partition}: ${c.from < 0 ? 'none' : c.from} -> ${c.to}`);
    }
    if (!dryRun) {
      for (const topic of inputs) {
        await admin.setOffsets({ groupId: appId, topic, partitions: changes.filter((c) => c.topic === topic).map((c) => ({ partition: c.partition, offset: String(c.to) })) });
      }
    }
    io.out(internal.length === 0 ? 'Internal topics: none found' : 'Internal topics:');
    for (const t of internal) io.out(`  ${prefix}delete ${t}`);
    for (const t of internal.others ?? []) io.out(`  keep ${t}: it belongs to another application (a consumer group with a longer id owns it)`);
    if (!dryRun && internal.length > 0) {
      await admin.deleteTopics({ topics: internal, timeout: Math.min(timeoutMs, 30_000) });
      // deletion is asynchronous on the brokers: wait until the metadata no longer lists them, so an
      // app started right after the reset creates them afresh instead of finding them half-deleted
      for (let left = internal; left.length > 0; ) {
        const now = new Set(await admin.listTopics());
        left = left.filter((t) => now.has(t));
        if (left.length > 0) await new Promise((r) => setTimeout(r, 200));
      }
    }
    return { changes, internal };
  });

  if (appStateDir === undefined) {
    io.out(`Local state: delete ${join('<stateDir>', appId)} on every host that ran the app before starting it again (or rerun with --state-dir <stateDir>); otherwise its stores keep the old state.`);
  } else if (!existsSync(appStateDir)) {
    io.out(`Local state: ${appStateDir} does not exist, nothing to delete`);
  } else {
    io.out(`Local state: ${prefix}delete ${appStateDir}`);
    if (!dryRun) {
      refuseLockedState(appStateDir);
      rmSync(appStateDir, { recursive: true, force: true });
    }
  }
  io.out(dryRun ? 'Dry run: nothing was changed.' : `Reset done: ${done.changes.length} partition offset(s) reset, ${done.internal.length} internal topic(s) deleted.`);
  return 0;
}

function parseTarget(values: Record<string, string | boolean | undefined>): Target {
  const given = ['to-earliest', 'to-latest', 'to-datetime', 'to-offset'].filter((k) => values[k] !== undefined);
  if (given.length > 1) throw new UsageError(`vltava reset: choose one of --${given.join(', --')}`, 'reset');
  if (values['to-latest'] === true) return { kind: 'latest' };
  const dt = values['to-datetime'];
  if (typeof dt === 'string') {
    const ts = Date.parse(dt);
    if (!/^\d{4}-\d{2}-\d{2}/.test(dt) || Number.isNaN(ts)) throw new UsageError(`vltava reset: --to-datetime expects an ISO 8601 date-time such as 2026-12-01T10:00:00Z, got ${JSON.stringify(dt)}`, 'reset');
    return { kind: 'datetime', ts, iso: new Date(ts).toISOString() };
  }
  const offset = integer('reset', values, 'to-offset', 0);
  if (offset !== undefined) return { kind: 'offset', offset };
  return { kind: 'earliest' };
}

function describeTarget(t: Target): string {
  switch (t.kind) {
    case 'earliest':
      return 'to the earliest offset';
    case 'latest':
      return 'to the latest offset';
    case 'datetime':
      return `to the first record at or after ${t.iso}`;
    case 'offset':
      return `to offset ${t.offset}, within each partition's range`;
  }
}

async function plannedOffsets(admin: Admin, appId: string, inputs: readonly string[], target: Target): Promise<OffsetChange[]> {
  const committed = await groupOffsets(admin, appId, inputs);
  const out: OffsetChange[] = [];
  for (const topic of inputs) {
    const ranges = await topicOffsets(admin, topic);
    const byTime =
      target.kind === 'datetime' ? new Map((await admin.fetchTopicOffsetsByTimestamp(topic, target.ts)).map((p) => [p.partition, Number(p.offset)])) : undefined;
    for (const r of ranges) {
      const to =
        target.kind === 'earliest'
          ? r.low
          : target.kind === 'latest'
            ? r.high
            : target.kind === 'offset'
              ? Math.min(Math.max(target.offset, r.low), r.high)
              : Math.min(Math.max(byTime?.get(r.partition) ?? r.high, r.low), r.high);
      out.push({ topic, partition: r.partition, from: committed.get(topic)?.get(r.partition) ?? -1, to });
    }
  }
  return out;
}

/** Refuses when any task directory under `appStateDir` is locked by a live process. */
function refuseLockedState(appStateDir: string): void {
  if (!existsSync(appStateDir)) return;
  for (const task of readdirSync(appStateDir)) {
    const holder = lockedBy(join(appStateDir, task));
    if (holder !== undefined) {
      throw new CliError(
        `refusing to reset: the local state ${join(appStateDir, task)} is locked by pid ${holder.pid} on host ${holder.host} (since ${holder.since}): an instance of the app is still running there. Stop it first.`,
      );
    }
  }
}
