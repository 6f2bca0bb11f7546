/**
 * Records benchmark figures in docs/benchmarks.md. Each benchmark owns one section, delimited by
 * `<!-- bench:NAME:start -->` / `<!-- bench:NAME:end -->` markers, and rewrites only that section,
 * so benchmarks can run in any order. Figures are also printed to stdout.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

const docPath = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));

export interface BenchRow {
  readonly metric: string;
  readonly value: string;
  readonly note?: string;
}

export function machineLine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
}

/** Prints the rows and replaces the named section of docs/benchmarks.md with them. */
export function recordSection(name: string, title: string, command: string, rows: readonly BenchRow[], notes = ''): void {
  const table = [
    `| metric | value | note |`,
    `| --- | ---: | --- |`,
    ...rows.map((r) => `| ${r.metric} | ${r.value} | ${r.note ?? ''} |`),
  ].join('\n');
  for (const r of rows) console.log(`${r.metric}: ${r.value}${r.note ? `  (${r.note})` : ''}`);
  const body = [
    `<!-- bench:${name}:start -->`,
    `### ${title}`,
    '',
    `Command: \`${command}\` · measured ${new Date().toISOString().slice(0, 10)} on ${machineLine()}`,
    '',
    table,
    notes ? `\n${notes}` : '',
    `<!-- bench:${name}:end -->`,
  ].join('\n');
  let doc = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '# Benchmarks\n';
  const re = new RegExp(`<!-- bench:${name}:start -->[\\s\\S]*?<!-- bench:${name}:end -->`);
  doc = re.test(doc) ? doc.replace(re, body) : `${doc.trimEnd()}\n\n${body}\n`;
  writeFileSync(docPath, doc);
}

/** Formats a rate such as 1234567 -> "1,234,567". */
export const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
