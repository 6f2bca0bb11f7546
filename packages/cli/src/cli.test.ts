/** The `vltava` bin without a broker: describe, store inspect, usage errors, an unreachable broker. */
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Serdes, type CollectedRecord, type KeyValueStore, type StoreSpec, type WindowStore } from '@vltava/dsl';
import { openTaskStores } from '@vltava/state';
import { wordCountTopology } from './fixtures/wordCountTopology.js';
import { fixture, vltava } from './testing.test.helper.js';

const line = (s: string): string => (s.endsWith('\n') ? s : `${s}\n`);

test('describe prints topology.describe() of a module: text, and Mermaid with --mermaid', async (t) => {
  const text = await vltava(['describe', fixture('wordCountTopology.js')]);
  t.is(text.code, 0, text.stderr);
  t.is(text.stdout, line(wordCountTopology().describe().toString()));
  t.regex(text.stdout, /Sub-topology: 0[\s\S]*Sub-topology: 1/);
  t.regex(text.stdout, /<appId>-counts-repartition/);

  const mermaid = await vltava(['describe', '--mermaid', fixture('wordCountTopology.js')]);
  t.is(mermaid.code, 0, mermaid.stderr);
  t.is(mermaid.stdout, line(wordCountTopology().describe().toMermaid()));
  t.regex(mermaid.stdout, /^flowchart TD/);

  // a default export that is an async function returning a StreamsBuilder
  const fn = await vltava(['describe', fixture('defaultFunction.js')]);
  t.is(fn.code, 0, fn.stderr);
  t.regex(fn.stdout, /Source: orders \(topics: \[orders\]\)[\s\S]*Sink: out \(topic: big-orders\)/);

  // a TypeScript source module, through Node's type stripping (Node >= 22.18 / 23.6)
  const ts = await vltava(['describe', fixture('defaultFunction.js').replace(/dist(\/fixtures\/defaultFunction)\.js$/, 'src$1.ts')]);
  t.is(ts.code, 0, ts.stderr);
  t.is(ts.stdout, fn.stdout);
});

test('describe: clear errors for a missing module, a module without a topology, an unknown export', async (t) => {
  const missing = await vltava(['describe', 'no/such/module.js']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /topology module no\/such\/module\.js not found/);
  const none = await vltava(['describe', fixture('serdes.js')]);
  t.is(none.code, 1);
  t.regex(none.stderr, /exports no topology: export it as default or as "topology".*it exports: keySerde, valueSerde/);
  const named = await vltava(['describe', fixture('wordCountTopology.js'), '--export', 'nope']);
  t.is(named.code, 1);
  t.regex(named.stderr, /has no export "nope" \(it exports: topology, wordCountTopology\)/);
  const byName = await vltava(['describe', fixture('wordCountTopology.js'), '--export', 'wordCountTopology']);
  t.is(byName.code, 0, byName.stderr);
});

test('usage errors: unknown command, unknown flag, missing option, bad values exit 2 with what to do', async (t) => {
  const cases: [string[], RegExp][] = [
    [['frobnicate'], /unknown command "frobnicate"; commands: describe, reset, topics, store/],
    [['reset', '--application-id', 'a', '--brokers', 'h:1', '--input-topics', 'x', '--to-earlist'], /vltava reset: Unknown option '--to-earlist'\nRun "vltava reset --help"/],
    [['reset', '--brokers', 'h:1', '--input-topics', 'x'], /missing option --application-id <id>/],
    [['reset', '--application-id', 'a', '--input-topics', 'x'], /missing option --brokers <host:port,...>/],
    [['reset', '--application-id', 'a', '--brokers', 'h:1'], /missing option --input-topics/],
    [['reset', '--application-id', 'a', '--brokers', 'nohostport', '--input-topics', 'x'], /--brokers expects host:port/],
    [['reset', '--application-id', 'bad id', '--brokers', 'h:1', '--input-topics', 'x'], /--application-id must match/],
    [['reset', '--application-id', 'a', '--brokers', 'h:1', '--input-topics', 'x', '--to-earliest', '--to-offset', '3'], /choose one of --to-earliest, --to-offset/],
    [['reset', '--application-id', 'a', '--brokers', 'h:1', '--input-topics', 'x', '--to-datetime', 'yesterday'], /--to-datetime expects an ISO 8601 date-time/],
    [['reset', '--application-id', 'a', '--brokers', 'h:1', '--input-topics', 'x', '--to-offset=-3'], /--to-offset must be an integer >= 0/],
    [['topics', '--application-id', 'a'], /vltava topics: missing option --brokers/],
    [['describe'], /vltava describe: missing argument\(s\): expected <module>/],
    [['store', 'inspect', '/tmp'], /missing argument\(s\): expected <state-dir> <application-id> <task-id>/],
    [['store', 'list'], /unknown subcommand "list"/],
    [['store', 'inspect', '/tmp', 'a', '0_0', 'kv', '--kind', 'tree'], /--kind must be keyValue, window or session/],
  ];
  for (const [args, message] of cases) {
    const r = await vltava(args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message, args.join(' '));
    t.is(r.stdout, '', 'nothing on stdout');
  }
  const help = await vltava(['reset', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /--dry-run\s+print every change, make none/);
});

test('an unreachable broker ends the command with a message, in bounded time', async (t) => {
  // refused at once, and a blackhole address that never answers: both end well within the timeout
  for (const brokers of ['127.0.0.1:1', '10.255.255.1:9092']) {
    const r = await vltava(['topics', '--application-id', 'a', '--brokers', brokers, '--timeout-ms', '4000'], { timeoutMs: 20_000 });
    t.is(r.code, 1, r.stderr);
    t.regex(r.stderr, new RegExp(`could not reach the brokers ${brokers.replace(/\./g, '\\.')}.*`));
    t.true(r.ms < 12_000, `took ${r.ms} ms`);
    const reset = await vltava(['reset', '--application-id', 'a', '--brokers', brokers, '--input-topics', 'x', '--timeout-ms', '4000'], { timeoutMs: 20_000 });
    t.is(reset.code, 1);
    t.regex(reset.stderr, /vltava reset: could not reach the brokers/);
  }
});

const kv = (name: string): StoreSpec => ({ name, kind: 'keyValue', keySerde: Serdes.string(), valueSerde: Serdes.json(), logging: true, caching: false }) as StoreSpec;

test('store inspect prints a LevelDB store written by @vltava/state, decoded by a serdes module or as utf8/hex', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'vltava-cli-store-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const collected: CollectedRecord[] = [];
  const specs: StoreSpec[] = [
    kv('orders'),
    { name: 'raw', kind: 'keyValue', keySerde: Serdes.bytes(), valueSerde: Serdes.bytes(), logging: true, caching: false } as StoreSpec,
    { name: 'per-minute', kind: 'window', keySerde: Serdes.string(), valueSerde: Serdes.int64(), logging: true, caching: false, retentionMs: 3_600_000, windowSizeMs: 60_000 } as StoreSpec,
  ];
  const stores = await openTaskStores({ applicationId: 'shop', taskId: '1_3', partition: 3, specs, collector: { send: (r) => void collected.push(r) }, backend: 'leveldb', stateDir });
  const orders = stores.getStore<KeyValueStore<string, unknown>>('orders');
  orders.put('o-1', { total: 120, items: ['a', 'b'] });
  orders.put('o-2', { total: 7, items: [] });
  orders.put('ü-3', { total: 1, items: ['ß'] });
  stores.getStore<KeyValueStore<Buffer, Buffer>>('raw').put(Buffer.from([0, 1, 255]), Buffer.from('plain text'));
  stores.getStore<WindowStore<string, number>>('per-minute').put('alice', 3, 120_000);
  stores.flush();
  await stores.commit(new Map([['orders', 2], ['raw', 0], ['per-minute', 0]]));
  orders.put('o-4', { total: 9, items: [] }); // not committed: never in LevelDB
  const dir = join(stateDir, 'shop', '1_3');

  // the task directory is locked while the stores are open
  const locked = await vltava(['store', 'inspect', stateDir, 'shop', '1_3', 'orders']);
  t.is(locked.code, 1);
  t.regex(locked.stderr, new RegExp(`is locked by pid ${process.pid} on host ${hostname()}.*a running instance owns task 1_3.*Stop it first`));
  await stores.close();

  const list = await vltava(['store', 'inspect', stateDir, 'shop', '1_3']);
  t.is(list.code, 0, list.stderr);
  t.regex(list.stdout, /orders {2}checkpoint 2\n[\s\S]*per-minute {2}checkpoint 0\n[\s\S]*raw {2}checkpoint 0/);

  const plain = await vltava(['store', 'inspect', stateDir, 'shop', '1_3', 'orders']);
  t.is(plain.code, 0, plain.stderr);
  t.regex(plain.stdout, /checkpoint: changelog offset 2/);
  t.regex(plain.stdout, /"o-1" => "\{\\"total\\":120,\\"items\\":\[\\"a\\",\\"b\\"\]\}"/, 'utf8 without serdes');
  t.regex(plain.stdout, /"ü-3" =>/);
  t.notRegex(plain.stdout, /o-4/, 'uncommitted writes are not in the database');
  t.regex(plain.stdout, /3 entries\n$/);
  t.false(existsSync(join(dir, 'vltava.lock')), 'the lock inspect held while reading is released');

  const decoded = await vltava(['store', 'inspect', stateDir, 'shop', '1_3', 'orders', '--serdes', fixture('serdes.js'), '--json']);
  t.is(decoded.code, 0, decoded.stderr);
  const entries = decoded.stdout.trim().split('\n').map((l) => JSON.parse(l) as { key: unknown; value: unknown; keyHex: string });
  t.deepEqual(
    entries.map((e) => [e.key, e.value]),
    [
      ['o-1', { total: 120, items: ['a', 'b'] }],
      ['o-2', { total: 7, items: [] }],
      ['ü-3', { total: 1, items: ['ß'] }],
    ],
  );
  t.is(entries[0]!.keyHex, Buffer.from('o-1').toString('hex'));

  const raw = await vltava(['store', 'inspect', stateDir, 'shop', '1_3', 'raw']);
  t.regex(raw.stdout, /0x0001ff => "plain text"/, 'hex for bytes that are not printable utf8');

  const win = await vltava(['store', 'inspect', stateDir, 'shop', '1_3', 'per-minute', '--kind', 'window']);
  t.is(win.code, 0, win.stderr);
  t.regex(win.stdout, /"alice" @\[120000\] => 0x0000000000000003/);

  const limited = await vltava(['store', 'inspect', stateDir, 'shop', '1_3', 'orders', '--limit', '1']);
  t.regex(limited.stdout, /1 entry \(--limit 1\)/);

  const noStore = await vltava(['store', 'inspect', stateDir, 'shop', '1_3', 'nope']);
  t.is(noStore.code, 1);
  t.regex(noStore.stderr, /task 1_3 has no store "nope".*its stores: orders, per-minute, raw/);
  const noTask = await vltava(['store', 'inspect', stateDir, 'shop', '0_0', 'orders']);
  t.regex(noTask.stderr, /task 0_0 of "shop" has no local database.*tasks with state here: 1_3/);

  // a lock left by a live process of another program is refused; one of a dead process is ignored
  writeFileSync(join(dir, 'vltava.lock'), JSON.stringify({ pid: process.pid, host: hostname(), since: 'now' }));
  t.is((await vltava(['store', 'inspect', stateDir, 'shop', '1_3', 'orders'])).code, 1);
  writeFileSync(join(dir, 'vltava.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), since: 'then' }));
  t.is((await vltava(['store', 'inspect', stateDir, 'shop', '1_3', 'orders'])).code, 0, 'stale lock of a dead pid');
  mkdirSync(join(stateDir, 'empty-app'));
  t.regex((await vltava(['store', 'inspect', stateDir, 'nope', '0_0', 'x'])).stderr, /no state for application "nope"/);
});

test('audit runs vltava-audit of @vltava/sink', async (t) => {
  const r = await vltava(['audit']);
  t.is(r.code, 2, 'a usage error of vltava-audit');
  t.regex(r.stdout + r.stderr, /usage: vltava-audit --input <topic>/);
});
