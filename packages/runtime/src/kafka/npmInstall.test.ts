/**
 * The fixes travel with the published package: packs @vltava/runtime and its workspace dependencies
 * (`pnpm pack`, which rewrites `workspace:*` to the version), installs the tarballs with npm (not
 * pnpm) into a fresh project, where kafkajs comes from the registry as is, and runs a script there:
 * the self-check passes and a read_committed round trip through the broker is right. The same script
 * with VLTAVA_KAFKAJS_FIXES=off shows what npm users would otherwise get.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { useKafka } from '@vltava/kafka-local/testing';

const kafka = useKafka(test);
const exec = promisify(execFile);
const packagesDir = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');

const SCRIPT = `
import { createRequire } from 'node:module';
import * as runtime from '@vltava/runtime';
import { checkKafkajsFixes } from '@vltava/runtime/kafkajs-fixes';
const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs');
const out = { kafkajs: require.resolve('kafkajs'), upstream: !require('fs').readFileSync(require.resolve('kafkajs/src/consumer/filterAbortedMessages.js'), 'utf8').includes('Vltava') };
out.report = await checkKafkajsFixes();
try { await runtime.requireKafkajsFixes('exactly-once'); out.exactlyOnce = 'allowed'; } catch (e) { out.exactlyOnce = e.name + ': ' + e.message; }
const [topic, brokers] = [process.env.TOPIC, process.env.BROKERS.split(',')];
const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
const p = kafka.producer({ transactionalId: topic + '-' + process.pid, idempotent: true, maxInFlightRequests: 1 });
await p.connect();
const aborted = await p.transaction();
for (const [key, value] of [['a', 'a'], [Buffer.alloc(4), 'int32(0)'], ['b', 'b']]) await aborted.send({ topic, messages: [{ key, value, partition: 0 }] });
await aborted.abort();
const committed = await p.transaction();
await committed.send({ topic, messages: [{ key: 'c', value: 'c', partition: 0 }] });
await committed.commit();
await p.disconnect();
const consumer = kafka.consumer({ groupId: topic + '-' + process.pid, readUncommitted: false, maxWaitTimeInMs: 200 });
const values = [];
await consumer.connect();
await consumer.subscribe({ topics: [topic], fromBeginning: true });
let timer;
await new Promise((resolve) => {
  const end = (offset) => { if (Number(offset) >= 5) resolve(); };
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => end(e.payload.lastOffset));
  consumer.run({ eachMessage: async ({ message }) => { values.push(message.value.toString()); end(message.offset); } });
  timer = setTimeout(resolve, 30000);
});
clearTimeout(timer);
await consumer.disconnect();
out.readCommitted = values;
console.log(JSON.stringify(out));
`;

test('[broker] npm install of the packed @vltava/runtime: the kafkajs fixes are in effect on the registry kafkajs', async (t) => {
  t.timeout(180_000);
  const started = Date.now();
  const dir = mkdtempSync(path.join(tmpdir(), 'vltava-npm-'));
  const tarballs = path.join(dir, 'tarballs');
  for (const pkg of ['dsl', 'state', 'executor', 'runtime']) {
    await exec('pnpm', ['pack', '--pack-destination', tarballs], { cwd: path.join(packagesDir, pkg) });
  }
  const tgz = readdirSync(tarballs);
  const file = (name: string): string => `file:${path.join(tarballs, tgz.find((f) => f.startsWith(`vltava-${name}-`))!)}`;
  const app = path.join(dir, 'app');
  await exec('mkdir', ['-p', app]);
  writeFileSync(
    path.join(app, 'package.json'),
    JSON.stringify({ name: 'npm-user', private: true, type: 'module', dependencies: { '@vltava/runtime': file('runtime'), '@vltava/executor': file('executor'), '@vltava/dsl': file('dsl'), '@vltava/state': file('state') } }),
  );
  writeFileSync(path.join(app, 'main.js'), SCRIPT);
  await exec('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: app, timeout: 150_000 });
  const manifest = JSON.parse(readFileSync(path.join(app, 'node_modules/@vltava/runtime/package.json'), 'utf8')) as { dependencies: Record<string, string> };
  t.false(JSON.stringify(manifest.dependencies).includes('workspace:'), `pnpm pack rewrote workspace: ${JSON.stringify(manifest.dependencies)}`);
  t.log(`packed and installed with npm in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const runScript = async (env: Record<string, string>): Promise<any> => {
    const [topic] = await kafka().createTopics([{ prefix: 'npm-install' }]);
    const { stdout } = await exec(process.execPath, ['main.js'], { cwd: app, env: { ...process.env, ...env, TOPIC: topic!, BROKERS: kafka().brokers.join(',') }, timeout: 60_000 });
    return JSON.parse(stdout.trim().split('\n').at(-1)!);
  };

  const fixed = await runScript({});
  t.true(fixed.upstream, `npm installed the registry kafkajs, without pnpm's patch: ${fixed.kafkajs}`);
  t.true(fixed.report.ok, JSON.stringify(fixed.report.checks, null, 1));
  t.is(fixed.exactlyOnce, 'allowed');
  t.deepEqual(fixed.readCommitted, ['c'], 'read_committed through the broker');

  const off = await runScript({ VLTAVA_KAFKAJS_FIXES: 'off' });
  t.false(off.report.checks.find((c: { name: string }) => c.name === 'read-committed').ok);
  t.regex(off.exactlyOnce, /^KafkajsFixMissingError: Refusing to run exactly-once/);
  t.deepEqual(off.readCommitted, ['int32(0)', 'b', 'c'], 'without the fixes the registry kafkajs leaks the aborted records');
  t.log(`total ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
