/**
 * The published packages as a user gets them: packs @vltava/dsl, state, executor, runtime, test-driver and cli
 * with `pnpm pack` (which rewrites `workspace:*`), checks what is in the tarballs (LICENSE, no build
 * info, no tests, source maps that resolve, manifests without private packages, exports with a
 * `default` condition), installs them with npm into a fresh project and there runs a
 * TopologyTestDriver test (ESM), `require()` of every package (Node >= 22.12 loads ESM
 * synchronously), a type-check of a TypeScript test against the installed declarations, and the
 * `vltava` bin. No broker: the runtime's kafkajs fixes are covered by
 * packages/runtime/src/kafka/npmInstall.test.ts.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';

const exec = promisify(execFile);
const root = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const PUBLISHED = ['dsl', 'state', 'executor', 'runtime', 'test-driver', 'cli'];

interface Manifest {
  name: string;
  private?: boolean;
  exports?: Record<string, Record<string, string>>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  repository?: { url: string; directory: string };
  homepage?: string;
  bugs?: { url: string };
  license?: string;
  keywords?: string[];
}

/** Names of the workspace packages that are private (never on npm). */
function privateWorkspacePackages(): Set<string> {
  const out = new Set<string>();
  for (const group of ['packages', 'tools', 'examples']) {
    for (const d of readdirSync(path.join(root, group))) {
      const f = path.join(root, group, d, 'package.json');
      if (!existsSync(f)) continue;
      const m = JSON.parse(readFileSync(f, 'utf8')) as Manifest;
      if (m.private === true) out.add(m.name);
    }
  }
  out.add((JSON.parse(readFileSync(path.join(root, 'bench/package.json'), 'utf8')) as Manifest).name);
  return out;
}

const DRIVER_TEST = `
import assert from 'node:assert/strict';
import { Serdes, StreamsBuilder } from '@vltava/dsl';
import { TopologyTestDriver } from '@vltava/test-driver';

const builder = new StreamsBuilder();
builder
  .stream('text-lines', { keySerde: Serdes.string(), valueSerde: Serdes.string() })
  .flatMapValues((line) => line.toLowerCase().split(/\\W+/).filter(Boolean))
  .groupBy((_key, word) => word, { keySerde: Serdes.string(), valueSerde: Serdes.string() })
  .count({ name: 'counts' })
  .toStream()
  .to('word-counts', { keySerde: Serdes.string(), valueSerde: Serdes.int64() });
export const topology = builder.build();

if (process.argv[1] === import.meta.filename) {
  const driver = new TopologyTestDriver(topology, { applicationId: 'wc' });
  const lines = driver.createInputTopic('text-lines', { keySerde: Serdes.string(), valueSerde: Serdes.string() });
  const counts = driver.createOutputTopic('word-counts', { keySerde: Serdes.string(), valueSerde: Serdes.int64() });
  lines.pipeValueList(['a b a', 'B c']);
  assert.deepEqual(counts.readKeyValuesToList(), [
    { key: 'a', value: 1 }, { key: 'b', value: 1 }, { key: 'a', value: 2 }, { key: 'b', value: 2 }, { key: 'c', value: 1 },
  ]);
  assert.equal(driver.getKeyValueStore('counts').get('b'), 2);
  driver.close();
  console.log('driver test passed');
}
`;

const REQUIRE_TEST = `
const assert = require('node:assert/strict');
const dsl = require('@vltava/dsl');
const state = require('@vltava/state');
const runtime = require('@vltava/runtime');
const task = require('@vltava/executor');
const driver = require('@vltava/test-driver');
const cli = require('@vltava/cli');
assert.equal(typeof dsl.StreamsBuilder, 'function');
assert.equal(typeof state.openTaskStores, 'function');
assert.equal(typeof runtime.KafkaStreams, 'function');
assert.equal(typeof task, 'object');
assert.equal(typeof driver.TopologyTestDriver, 'function');
assert.equal(typeof cli.main, 'function');
console.log('require passed');
`;

const TS_TEST = `
import { Serdes, StreamsBuilder, type KTable } from '@vltava/dsl';
import { TopologyTestDriver } from '@vltava/test-driver';
import type { StreamsConfig } from '@vltava/runtime';

const builder = new StreamsBuilder();
const counts: KTable<string, number> = builder
  .stream('in', { keySerde: Serdes.string(), valueSerde: Serdes.string() })
  .groupBy((_k, v) => v, { keySerde: Serdes.string(), valueSerde: Serdes.string() })
  .count({ name: 'counts' });
counts.toStream().to('out', { keySerde: Serdes.string(), valueSerde: Serdes.int64() });
const driver = new TopologyTestDriver(builder.build(), { applicationId: 'ts' });
const n: number | undefined = driver.getKeyValueStore<string, number>('counts').get('x');
const config: StreamsConfig = { applicationId: 'ts', brokers: ['localhost:9092'] };
// @ts-expect-error a wrong value type must not compile against the installed declarations
const wrong: string = driver.getKeyValueStore<string, number>('counts').get('x');
export { n, config, wrong };
`;

test('the packed packages: contents and manifests; npm-installed in a fresh project, a driver test, require(), types and the bin work', async (t) => {
  t.timeout(240_000);
  const started = Date.now();
  const dir = mkdtempSync(path.join(tmpdir(), 'vltava-pack-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tarballs = path.join(dir, 'tarballs');
  for (const pkg of PUBLISHED) await exec('pnpm', ['pack', '--pack-destination', tarballs], { cwd: path.join(root, 'packages', pkg) });
  const privates = privateWorkspacePackages();
  t.true(privates.has('@vltava/kafka-local'));

  const files: Record<string, string> = {};
  for (const pkg of PUBLISHED) {
    const tgz = readdirSync(tarballs).find((f) => f.startsWith(`vltava-${pkg}-`) && f.endsWith('.tgz'))!;
    t.truthy(tgz, `packed ${pkg}`);
    files[pkg] = path.join(tarballs, tgz);
    const unpacked = path.join(dir, 'unpacked', pkg);
    mkdirSync(unpacked, { recursive: true });
    await exec('tar', ['xzf', files[pkg]!, '-C', unpacked]);
    const base = path.join(unpacked, 'package');
    const list = (await exec('tar', ['tzf', files[pkg]!])).stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    t.true(list.includes('LICENSE'), `${pkg}: LICENSE`);
    t.regex(readFileSync(path.join(base, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0, January 2004/);
    t.true(list.includes('README.md'), `${pkg}: README.md`);
    t.deepEqual(list.filter((f) => /tsbuildinfo|\.test\.|(^|\/)fixtures\//.test(f)), [], `${pkg}: no build info, tests or fixtures`);
    // every source map points at files that are in the tarball
    const maps = list.filter((f) => f.endsWith('.map'));
    t.true(maps.length > 0, `${pkg}: source maps`);
    const dangling: string[] = [];
    for (const m of maps) {
      const map = JSON.parse(readFileSync(path.join(base, m), 'utf8')) as { sources: string[] };
      for (const s of map.sources) if (!existsSync(path.resolve(path.dirname(path.join(base, m)), s))) dangling.push(`${m} -> ${s}`);
    }
    t.deepEqual(dangling, [], `${pkg}: source maps resolve`);

    const manifest = JSON.parse(readFileSync(path.join(base, 'package.json'), 'utf8')) as Manifest;
    t.not(manifest.private, true);
    t.is(manifest.license, 'Apache-2.0');
    t.is(manifest.repository?.url, 'git+https://github.com/vltava/vltava.git');
    t.is(manifest.repository?.directory, `packages/${pkg}`);
    t.truthy(manifest.homepage);
    t.truthy(manifest.bugs?.url);
    t.true((manifest.keywords ?? []).length > 0);
    const named = { ...manifest.dependencies, ...manifest.devDependencies, ...manifest.peerDependencies, ...manifest.optionalDependencies };
    t.deepEqual(Object.keys(named).filter((n) => privates.has(n)), [], `${pkg}: no private workspace packages in the manifest`);
    t.false(JSON.stringify(named).includes('workspace:'), `${pkg}: workspace: rewritten`);
    for (const [sub, conds] of Object.entries(manifest.exports ?? {})) {
      t.is(conds.default, conds.import, `${pkg} exports[${sub}] has a default condition`);
      t.true(list.includes(conds.types!.replace(/^\.\//, '')), `${pkg} exports[${sub}].types is packed`);
    }
  }
  // The test driver's install is Kafka-free: its dependency closure among the packed packages has no kafkajs.
  const depsOf = (pkg: string): Record<string, string> =>
    (JSON.parse(readFileSync(path.join(dir, 'unpacked', pkg, 'package', 'package.json'), 'utf8')) as Manifest).dependencies ?? {};
  const closure = new Set<string>();
  const visit = (pkg: string): void => {
    for (const dep of Object.keys(depsOf(pkg))) {
      if (closure.has(dep)) continue;
      closure.add(dep);
      if (dep.startsWith('@vltava/')) visit(dep.slice('@vltava/'.length));
    }
  };
  visit('test-driver');
  t.false(closure.has('kafkajs'), `@vltava/test-driver pulls no Kafka client: ${[...closure].join(', ')}`);
  t.false(closure.has('@vltava/runtime'));
  t.true(closure.has('@vltava/executor'));
  t.log(`packed and checked in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const app = path.join(dir, 'app');
  mkdirSync(app);
  const deps = Object.fromEntries(PUBLISHED.map((p) => [`@vltava/${p}`, `file:${files[p]}`]));
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'npm-user', private: true, type: 'module', dependencies: deps }));
  writeFileSync(path.join(app, 'wordCount.test.mjs'), DRIVER_TEST);
  writeFileSync(path.join(app, 'require.cjs'), REQUIRE_TEST);
  writeFileSync(path.join(app, 'types.ts'), TS_TEST);
  writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'es2023', lib: ['es2023'], module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, types: ['node'], typeRoots: [path.join(root, 'node_modules/@types')] }, files: ['types.ts'] }),
  );
  await exec('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: app, timeout: 180_000 });
  t.log(`npm install in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const driverRun = await exec(process.execPath, ['wordCount.test.mjs'], { cwd: app });
  t.regex(driverRun.stdout, /driver test passed/);
  const requireRun = await exec(process.execPath, ['require.cjs'], { cwd: app });
  t.regex(requireRun.stdout, /require passed/);
  // the installed declarations type-check a user's TypeScript, skipLibCheck off (the workspace's tsc and @types/node: not installed there)
  await t.notThrowsAsync(exec(path.join(root, 'node_modules/.bin/tsc'), ['-p', app], { cwd: app }));
  const bin = await exec(path.join(app, 'node_modules/.bin/vltava'), ['describe', 'wordCount.test.mjs'], { cwd: app });
  t.regex(bin.stdout, /Sub-topology: 0[\s\S]*Sink: .*\(topic: word-counts\)/);
  // @vltava/sink is an optional peer: without it, `vltava audit` says what to install
  const audit = await exec(path.join(app, 'node_modules/.bin/vltava'), ['audit'], { cwd: app }).catch((e: { code: number; stderr: string }) => e);
  t.is((audit as { code: number }).code, 1);
  t.regex((audit as { stderr: string }).stderr, /vltava audit is the lost\/duplicated checker of @vltava\/sink, which is not installed: npm install @vltava\/sink/);
  t.log(`total ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
