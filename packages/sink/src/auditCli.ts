#!/usr/bin/env node
/**
 * vltava-audit: checks that every input record took effect exactly once in an output topic or a
 * sink table (see audit.ts). Exit status: 0 clean, 1 a violation (lost, duplicated or unexpected
 * ids), 2 a usage or connection error.
 */
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { audit, formatReport, type AuditId, type AuditOptions, type AuditRecord } from './audit.js';
import type { SinkAdapter } from './adapter.js';

const USAGE = `usage: vltava-audit --input <topic> (--output <topic> | --table <table> --db <sqlite:PATH|postgres://...>) [options]

  --brokers <host:port,...>   default $KAFKA_BROKERS
  --input-id <how>            key | header:<name> | json:<field> | module:<file>#<export>   (default key)
  --output-id <how>           the same, for the output topic (default: as --input-id)
  --id-column <column>        the table's id column (default id)
  --group <groupId>           the processor's consumer group: input ids past its committed offsets are lag, not loss
  --sink-id <sinkId>          a transactional sink: its offsets in the database play that role (table audits)
  --timeout-ms <ms>           wait for a topic to be readable up to its watermark (default 60000)
  --json                      print the report as JSON
  --limit <n>                 ids listed per violation (default 20)`;

async function parseId(spec: string): Promise<AuditId> {
  if (spec === 'key') return 'key';
  if (spec.startsWith('header:')) return { header: spec.slice('header:'.length) };
  if (spec.startsWith('json:')) return { jsonField: spec.slice('json:'.length) };
  if (spec.startsWith('module:')) {
    const [file, name = 'default'] = spec.slice('module:'.length).split('#');
    const mod = (await import(pathToFileURL(path.resolve(file!)).href)) as Record<string, unknown>;
    const fn = mod[name];
    if (typeof fn !== 'function') throw new Error(`--*-id ${spec}: ${file} has no function export "${name}"`);
    return fn as (r: AuditRecord) => string | null;
  }
  throw new Error(`unknown id source "${spec}" (key | header:<name> | json:<field> | module:<file>#<export>)`);
}

async function openDb(spec: string): Promise<SinkAdapter> {
  if (spec.startsWith('sqlite:')) {
    const { sqliteAdapter } = await import('./sqlite.js');
    return sqliteAdapter({ path: spec.slice('sqlite:'.length) });
  }
  if (spec.startsWith('postgres://') || spec.startsWith('postgresql://')) {
    const { postgresAdapter } = await import('./postgres.js');
    return postgresAdapter({ connectionString: spec });
  }
  throw new Error(`--db ${spec}: expected sqlite:<path> or postgres://...`);
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        brokers: { type: 'string' },
        input: { type: 'string' },
        output: { type: 'string' },
        table: { type: 'string' },
        db: { type: 'string' },
        'input-id': { type: 'string', default: 'key' },
        'output-id': { type: 'string' },
        'id-column': { type: 'string', default: 'id' },
        group: { type: 'string' },
        'sink-id': { type: 'string' },
        'timeout-ms': { type: 'string' },
        json: { type: 'boolean', default: false },
        limit: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const brokers = (values.brokers ?? process.env.KAFKA_BROKERS ?? '').split(',').filter((b) => b !== '');
  if (brokers.length === 0 || values.input === undefined || (values.output === undefined) === (values.table === undefined) || (values.table !== undefined && values.db === undefined)) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  let adapter: SinkAdapter | undefined;
  try {
    const inputId = await parseId(values['input-id']);
    const output: AuditOptions['output'] =
      values.output !== undefined
        ? { topic: values.output, id: values['output-id'] === undefined ? inputId : await parseId(values['output-id']) }
        : { table: values.table!, adapter: (adapter = await openDb(values.db!)), idColumn: values['id-column'] };
    const report = await audit({
      brokers,
      input: { topic: values.input, id: inputId },
      output,
      ...(values.group === undefined ? {} : { group: values.group }),
      ...(values['sink-id'] === undefined ? {} : { sinkId: values['sink-id'] }),
      ...(values['timeout-ms'] === undefined ? {} : { timeoutMs: Number(values['timeout-ms']) }),
    });
    process.stdout.write(`${values.json ? JSON.stringify(report, null, 2) : formatReport(report, values.limit === undefined ? 20 : Number(values.limit))}\n`);
    return report.ok ? 0 : 1;
  } catch (e) {
    process.stderr.write(`vltava-audit: ${(e as Error).message}\n`);
    return 2;
  } finally {
    await adapter?.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href || process.argv[1]?.endsWith('vltava-audit')) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
