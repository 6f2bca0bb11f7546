import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inspect } from 'node:util';
import { ClassicLevel } from 'classic-level';
import { integer, parse } from './args.js';
import { CliError, UsageError } from './errors.js';
import type { Io } from './io.js';
import { claim, LOCK_FILE, lockedBy } from './lock.js';
import { loadModule } from './loadModule.js';

export const STORE_HELP = `Usage: vltava store inspect <state-dir> <application-id> <task-id> [<store>] [options]

Prints the keys and values of a store in a task's local LevelDB database
(<state-dir>/<application-id>/<task-id>/db), with the store's checkpoint (changelog offset).
Without <store>, lists the task's stores. The database must not be in use: a directory locked by a
running instance is refused (stop it, or copy the directory and inspect the copy).

Values are decoded by the serdes exported from --serdes <module> (keySerde, valueSerde; or a
default export with those), else printed as UTF-8 when printable and as hex otherwise.

Options:
  --serdes <module>     a module exporting keySerde and valueSerde (serdes of @vltava/dsl)
  --kind <kind>         keyValue (default), window or session: how store keys are laid out
  --limit <n>           print at most n entries (default: all)
  --json                one JSON object per entry: key, value (decoded, else UTF-8, else null), keyHex,
                        valueHex (window: start; session: start, end)
`;

export interface SerdeLike {
  deserialize(data: Buffer, topic: string): unknown;
}

type Kind = 'keyValue' | 'window' | 'session';

const META = 0x00;
const DATA = 0x01;
const TS = 8;

/** `8 bytes, big-endian, sign bit flipped` (packages/state/src/timeKey.ts). */
function decodeTs(b: Buffer, at: number): number {
  const h = b.readUInt32BE(at);
  const lo = b.readUInt32BE(at + 4);
  return (h - 0x80000000) * 4294967296 + lo;
}

const dataPrefix = (store: string): Buffer => Buffer.concat([Buffer.from([DATA]), Buffer.from(store, 'utf8'), Buffer.from([0])]);
const metaKey = (tag: string, store: string): Buffer => Buffer.concat([Buffer.from([META]), Buffer.from(`${tag}\x00`, 'latin1'), Buffer.from(store, 'utf8')]);

function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.alloc(0);
}

/** The bytes as a string if they are printable UTF-8. */
function printable(b: Buffer): string | undefined {
  const s = b.toString('utf8');
  // eslint-disable-next-line no-control-regex
  return Buffer.from(s, 'utf8').equals(b) && !/[\x00-\x08\x0b-\x1f\x7f\ufffd]/.test(s) ? s : undefined;
}

/** UTF-8 (quoted) when it round-trips and is printable, else hex. */
export function showBytes(b: Buffer): string {
  const s = printable(b);
  return s !== undefined ? JSON.stringify(s) : `0x${b.toString('hex')}`;
}

export async function storeCommand(argv: readonly string[], io: Io): Promise<number> {
  const sub = argv[0];
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.out(STORE_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'inspect') throw new UsageError(`vltava store: unknown subcommand ${JSON.stringify(sub)}: the subcommand is "inspect"`, 'store');
  const { values, positionals } = parse(
    'store inspect',
    argv.slice(1),
    { serdes: { type: 'string' }, kind: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
    { min: 3, max: 4, names: '<state-dir> <application-id> <task-id> [<store>]' },
  );
  if (values.help === true) {
    io.out(STORE_HELP);
    return 0;
  }
  const [stateDir, appId, taskId, store] = positionals as [string, string, string, string | undefined];
  const kindArg = values.kind;
  if (kindArg !== undefined && kindArg !== 'keyValue' && kindArg !== 'window' && kindArg !== 'session') {
    throw new UsageError(`vltava store inspect: --kind must be keyValue, window or session, got ${JSON.stringify(kindArg)}`, 'store inspect');
  }
  const limit = integer('store inspect', values, 'limit', 1) ?? Number.POSITIVE_INFINITY;

  const appDir = join(resolve(stateDir), appId);
  if (!existsSync(appDir)) throw new CliError(`no state for application "${appId}" in ${resolve(stateDir)} (${appDir} does not exist)`);
  const taskDir = join(appDir, taskId);
  const dbDir = join(taskDir, 'db');
  if (!existsSync(dbDir)) {
    const tasks = readdirSync(appDir).filter((t) => existsSync(join(appDir, t, 'db')));
    throw new CliError(`task ${taskId} of "${appId}" has no local database (${dbDir}); tasks with state here: ${tasks.join(', ') || 'none'}`);
  }
  const holder = lockedBy(taskDir);
  if (holder !== undefined) {
    throw new CliError(
      `${taskDir} is locked by pid ${holder.pid} on host ${holder.host} (since ${holder.since}): a running instance owns task ${taskId}. ` +
        `Stop it first, or copy the directory and inspect the copy. If that process is gone, delete ${join(taskDir, LOCK_FILE)}.`,
    );
  }
  let serdes: { key?: SerdeLike; value?: SerdeLike; kind?: Kind } = {};
  if (typeof values.serdes === 'string') serdes = await loadSerdes(values.serdes);

  const release = claim(taskDir);
  try {
    return await inspectDb(io, dbDir, appId, taskId, store, kindArg as Kind | undefined, serdes, limit, values.json === true);
  } finally {
    release?.();
  }
}

async function inspectDb(
  io: Io,
  dbDir: string,
  appId: string,
  taskId: string,
  store: string | undefined,
  kindArg: Kind | undefined,
  serdes: { key?: SerdeLike; value?: SerdeLike; kind?: Kind },
  limit: number,
  json: boolean,
): Promise<number> {
  // LevelDB has no read-only mode: opening may replay its write-ahead log into a table file, which
  // changes files but not the data. Nothing here writes.
  const db = new ClassicLevel<Buffer, Buffer>(dbDir, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false });
  try {
    await db.open({ createIfMissing: false });
  } catch (err) {
    const cause = String((err as { cause?: Error }).cause?.message ?? (err as Error).message);
    if (/lock/i.test(cause)) throw new CliError(`${dbDir} is open in another process (LevelDB lock: ${cause}): stop the running instance first`);
    throw new CliError(`could not open ${dbDir}: ${cause}`);
  }
  try {
    const stores = await listStores(db);
    if (store === undefined) {
      io.out(`Stores of task ${taskId} of "${appId}" (${dbDir}):`);
      for (const s of stores) {
        const cp = await db.get(metaKey('cp', s));
        io.out(`  ${s}  checkpoint ${cp === undefined ? 'none' : decodeTs(cp, 0)}`);
      }
      if (stores.length === 0) io.out('  (none)');
      return 0;
    }
    if (!stores.includes(store)) {
      throw new CliError(`task ${taskId} has no store "${store}" in ${dbDir}; its stores: ${stores.join(', ') || 'none'}`);
    }
    const shape = (await db.get(metaKey('sh', store)))?.toString('utf8');
    const shapeKind = shape?.split(' ')[0];
    const kind: Kind = kindArg ?? serdes.kind ?? (shapeKind === 'window' || shapeKind === 'session' ? shapeKind : 'keyValue');
    const cp = await db.get(metaKey('cp', store));
    const st = await db.get(metaKey('st', store));
    const topic = `${appId}-${store}-changelog`;
    if (!json) {
      io.out(`Store "${store}" of task ${taskId} of "${appId}" (${kind}${shape ? `, shape: ${shape}` : ''})`);
      io.out(`  checkpoint: ${cp === undefined ? 'none (never committed)' : `changelog offset ${decodeTs(cp, 0)}`}${st === undefined ? '' : `, stream time ${decodeTs(st, 0)}`}`);
    }
    const prefix = dataPrefix(store);
    let n = 0;
    for await (const [rawKey, value] of db.iterator({ gte: prefix, lt: prefixEnd(prefix) })) {
      if (n >= limit) break;
      n++;
      const k = rawKey.subarray(prefix.length);
      const entry = decodeEntry(kind, k, value, serdes, topic);
      if (json) io.out(JSON.stringify(entry, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
      else io.out(`  ${entry.keyText}${entry.time} => ${entry.valueText}`);
    }
    if (!json) io.out(`${n} entr${n === 1 ? 'y' : 'ies'}${n >= limit ? ` (--limit ${limit})` : ''}`);
    return 0;
  } finally {
    await db.close();
  }
}

interface Entry {
  keyHex: string;
  valueHex: string;
  key: unknown;
  value: unknown;
  start?: number;
  end?: number;
  keyText: string;
  valueText: string;
  time: string;
}

function decodeEntry(kind: Kind, k: Buffer, v: Buffer, serdes: { key?: SerdeLike; value?: SerdeLike }, topic: string): Entry {
  let keyBytes = k;
  let start: number | undefined;
  let end: number | undefined;
  let time = '';
  if (kind === 'window' && k.length >= 2 * TS) {
    keyBytes = k.subarray(TS, k.length - TS);
    start = decodeTs(k, k.length - TS);
    time = ` @[${start}]`;
  } else if (kind === 'session' && k.length >= 3 * TS) {
    keyBytes = k.subarray(TS, k.length - 2 * TS);
    end = decodeTs(k, k.length - 2 * TS);
    start = decodeTs(k, k.length - TS);
    time = ` @[${start}, ${end}]`;
  }
  const key = decode(serdes.key, keyBytes, topic, 'key');
  const value = decode(serdes.value, v, topic, 'value');
  const text = (d: { decoded: boolean; value: unknown }, b: Buffer): string =>
    d.decoded ? inspect(d.value, { depth: 6, breakLength: Number.POSITIVE_INFINITY, compact: true }) : showBytes(b);
  return {
    keyHex: keyBytes.toString('hex'),
    valueHex: v.toString('hex'),
    // JSON: the decoded value, else the UTF-8 string, else null (the hex is always there)
    key: key.decoded ? key.value : (printable(keyBytes) ?? null),
    value: value.decoded ? value.value : (printable(v) ?? null),
    ...(start !== undefined ? { start } : {}),
    ...(end !== undefined ? { end } : {}),
    keyText: text(key, keyBytes),
    valueText: text(value, v),
    time,
  };
}

function decode(serde: SerdeLike | undefined, b: Buffer, topic: string, what: string): { decoded: boolean; value: unknown } {
  if (serde === undefined) return { decoded: false, value: undefined };
  try {
    return { decoded: true, value: serde.deserialize(b, topic) };
  } catch (err) {
    return { decoded: true, value: `<${what} serde failed: ${(err as Error).message}; bytes 0x${b.toString('hex')}>` };
  }
}

async function listStores(db: ClassicLevel<Buffer, Buffer>): Promise<string[]> {
  const out: string[] = [];
  let from: Buffer = Buffer.from([DATA]);
  const stop = Buffer.from([DATA + 1]);
  for (;;) {
    const keys = await db.keys({ gte: from, lt: stop, limit: 1 }).all();
    const first = keys[0];
    if (first === undefined) break;
    const nul = first.indexOf(0, 1);
    if (nul < 0) break;
    out.push(first.subarray(1, nul).toString('utf8'));
    from = prefixEnd(first.subarray(0, nul + 1));
  }
  // stores with a checkpoint but (now) no entries
  for await (const k of db.keys({ gte: Buffer.from([META, 0x63, 0x70, 0]), lt: Buffer.from([META, 0x63, 0x70, 1]) })) {
    const name = k.subarray(4).toString('utf8');
    if (!out.includes(name)) out.push(name);
  }
  return out.sort();
}

async function loadSerdes(path: string): Promise<{ key?: SerdeLike; value?: SerdeLike; kind?: Kind }> {
  const mod = await loadModule(path, 'serdes');
  const src = (mod.keySerde !== undefined || mod.valueSerde !== undefined ? mod : (mod.default as Record<string, unknown> | undefined)) ?? {};
  const pick = (name: string): SerdeLike | undefined => {
    const s = src[name];
    if (s === undefined) return undefined;
    if (typeof (s as SerdeLike).deserialize !== 'function') throw new CliError(`${path}: ${name} has no deserialize(bytes, topic) method`);
    return s as SerdeLike;
  };
  const key = pick('keySerde');
  const value = pick('valueSerde');
  if (key === undefined && value === undefined) throw new CliError(`${path} exports neither keySerde nor valueSerde (nor a default export with them)`);
  const kind = src.kind;
  if (kind !== undefined && kind !== 'keyValue' && kind !== 'window' && kind !== 'session') throw new CliError(`${path}: kind must be keyValue, window or session`);
  return { ...(key ? { key } : {}), ...(value ? { value } : {}), ...(kind ? { kind: kind as Kind } : {}) };
}
