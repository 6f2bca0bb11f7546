/**
 * Standby replicas (issue 15): with numStandbyReplicas 1, a kill -9 of an instance moves its stateful
 * tasks to the instance that kept a standby copy, which restores only the tail of the changelog.
 * Without standbys, the same takeover restores the whole changelog. Outputs verified with kcat.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { awaitCaughtUp, readCommittedKcat, useKafka, type TestKafka } from '@vltava/kafka-local/testing';
import { spawnApp, type ChildApp } from './testing/childApp.test.helper.js';
import { corpus, finalCounts, referenceCounts } from './testing/wordCount.test.helper.js';

const kafka = useKafka(test);
const sorted = (m: Map<string, number>): [string, number][] => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

async function produceLines(k: TestKafka, topic: string, lines: readonly string[], offset = 0): Promise<void> {
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < lines.length; i += 250) await producer.send({ topic, messages: lines.slice(i, i + 250).map((value, j) => ({ key: `line-${offset + i + j}`, value })) });
  await producer.disconnect();
}

async function changelogSize(k: TestKafka, topic: string): Promise<Map<number, number>> {
  return new Map((await k.admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
}

/** Records restored per stateful task by `app` after line `from` of its output. */
function restoredAfter(app: ChildApp, from: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const l of app.lines.slice(from)) {
    if (!l.startsWith('restored 1_')) continue;
    const [, task, , restored] = l.split(' ');
    out.set(task!, (out.get(task!) ?? 0) + Number(restored));
  }
  return out;
}

for (const standbys of [1, 0] as const) {
  test(`[broker] kill -9 of an instance ${standbys === 1 ? 'with' : 'without'} standby replicas: the survivor restores ${standbys === 1 ? 'only the tail' : 'the whole changelog'}; exact results`, async (t) => {
    const k = kafka();
    const [input, output] = await k.createTopics([{ prefix: `sb${standbys}-lines`, partitions: 2 }, { prefix: `sb${standbys}-counts`, partitions: 2 }]);
    const applicationId = k.uniqueName(`sb${standbys}-app`);
    const lines = corpus(6_000, 2_000, 5);
    const base = { input, output, applicationId, brokers: k.brokers, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, commitIntervalMs: 100, numStandbyReplicas: standbys };
    const apps = ['a', 'b'].map((n) => spawnApp(n, { ...base, stateDir: mkdtempSync(join(tmpdir(), 'vltava-sb-')) }));
    t.teardown(() => apps.forEach((a) => a.signal('SIGKILL')));
    await Promise.all(apps.map((a) => a.waitUntil(() => a.tasks().size === 2, 'running 2 tasks', 90_000)));
    await produceLines(k, input!, lines.slice(0, 5_000));
    await awaitCaughtUp(k.admin, applicationId, input!, 90_000);
    await awaitCaughtUp(k.admin, applicationId, `${applicationId}-counts-repartition`, 90_000);
    const changelog = `${applicationId}-counts-changelog`;
    const victim = apps.find((a) => [...a.tasks()].some((id) => id.startsWith('1_')))!;
    const survivor = apps.find((a) => a !== victim)!;
    const moving = [...victim.tasks()].filter((id) => id.startsWith('1_'));
    if (standbys === 1) {
      // The survivor's standby of each moving task has caught up with the changelog.
      const ends = await changelogSize(k, changelog);
      await survivor.waitUntil(
        () => moving.every((id) => survivor.lines.filter((l) => l.startsWith(`standby ${id} `)).reduce((n, l) => n + Number(l.split(' ')[2]), 0) >= (ends.get(Number(id.split('_')[1]))! - 1) * 0.5),
        'standbys caught up',
        60_000,
      );
    }
    await produceLines(k, input!, lines.slice(5_000, 5_500), 5_000);
    await awaitCaughtUp(k.admin, applicationId, input!, 90_000);
    const mark = survivor.lines.length;
    victim.signal('SIGKILL');
    await victim.exited;
    await produceLines(k, input!, lines.slice(5_500), 5_500);
    await survivor.waitUntil(() => survivor.tasks().size === 4, 'running all 4 tasks', 90_000);
    await awaitCaughtUp(k.admin, applicationId, input!, 90_000);
    await awaitCaughtUp(k.admin, applicationId, `${applicationId}-counts-repartition`, 90_000);
    survivor.signal('SIGTERM');
    await survivor.exited;

    const sizes = await changelogSize(k, changelog);
    const restored = restoredAfter(survivor, mark);
    t.log(`changelog ${[...sizes].map(([p, n]) => `p${p}=${n}`).join(' ')}; restored on takeover: ${[...restored].map(([id, n]) => `${id}=${n}`).join(' ')}`);
    for (const id of moving) {
      const size = sizes.get(Number(id.split('_')[1]))!;
      if (standbys === 1) t.true((restored.get(id) ?? 0) < size * 0.25, `${id}: restored ${restored.get(id)} of ${size}: only the tail`);
      else t.true((restored.get(id) ?? 0) > size * 0.5, `${id}: restored ${restored.get(id)} of ${size}: everything`);
    }
    t.deepEqual(sorted(finalCounts(await readCommittedKcat(k.brokers, output!))), sorted(referenceCounts(lines)));
  });
}
