import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  readonly values: Record<string, string | boolean | undefined>;
  readonly positionals: string[];
}

/**
 * `node:util` parseArgs in strict mode, with its errors turned into a UsageError that names the
 * command and the way to get its help.
 */
export function parse(command: string, argv: readonly string[], options: Options, positionals: { min: number; max: number; names: string }): Parsed {
  let res: ReturnType<typeof parseArgs>;
  try {
    res = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    const msg = (err as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new UsageError(`vltava ${command}: ${msg}`, command);
  }
  const values = res.values as Record<string, string | boolean | undefined>;
  if (values.help === true) return { values, positionals: res.positionals };
  if (res.positionals.length < positionals.min) {
    throw new UsageError(`vltava ${command}: missing argument(s): expected ${positionals.names}`, command);
  }
  if (res.positionals.length > positionals.max) {
    throw new UsageError(`vltava ${command}: unexpected argument(s): ${res.positionals.slice(positionals.max).join(' ')}`, command);
  }
  return { values, positionals: res.positionals };
}

export function required(command: string, values: Parsed['values'], name: string, what: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v.length === 0) throw new UsageError(`vltava ${command}: missing option --${name} <${what}>`, command);
  return v;
}

export function list(command: string, values: Parsed['values'], name: string, what = 'a,b,...'): string[] {
  const v = required(command, values, name, what);
  const items = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) throw new UsageError(`vltava ${command}: --${name} lists nothing`, command);
  return items;
}

export function integer(command: string, values: Parsed['values'], name: string, min = 0): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`vltava ${command}: --${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`, command);
  }
  return n;
}

/** `host:port` entries; a missing port or a non-numeric one is a usage error. */
export function brokers(command: string, values: Parsed['values']): string[] {
  const items = list(command, values, 'brokers', 'host:port,...');
  for (const b of items) {
    const m = /^(.+):(\d{1,5})$/.exec(b);
    if (m === null || Number(m[2]) > 65535) throw new UsageError(`vltava ${command}: --brokers expects host:port[,host:port...], got ${JSON.stringify(b)}`, command);
  }
  return items;
}

export const APPLICATION_ID = /^[A-Za-z0-9._-]+$/;

export function applicationId(command: string, values: Parsed['values']): string {
  const id = required(command, values, 'application-id', 'id');
  if (!APPLICATION_ID.test(id)) throw new UsageError(`vltava ${command}: --application-id must match [A-Za-z0-9._-]+, got ${JSON.stringify(id)}`, command);
  return id;
}
