#!/usr/bin/env node
/**
 * Type-checks every ```ts code block of the docs: docs/*.md, packages/<pkg>/README.md and README.md
 * (or the Markdown files given as arguments). Each block becomes one module of a temporary project
 * whose node_modules link to the workspace packages (their built dist/, so run `tsc -b` first), and
 * `tsc -p` checks them all at once, strict, as a user's project on Node would be. Errors are reported
 * at their line in the Markdown file.
 *
 * Conventions for doc authors (docs/architecture.md, "Docs type-check"):
 * - ```ts blocks are checked; ```ts nocheck blocks are not (for deliberately incomplete or wrong code:
 *   say in the text why it does not compile);
 * - a block is a module of its own: imports go in the block. A fragment may use a few names without
 *   declaring them: `builder`, `topology` and `app` everywhere (SNIPPET_CONTEXT below), and what
 *   its file declares in a context comment, invisible on the rendered page:
 *       <!-- check-docs context
 *       import type { KStream } from '@vltava/dsl';
 *       interface Order { customer: string; amount: number }
 *       const orders: KStream<string, Order>;
 *       -->
 *   Its import lines are kept; everything else becomes global declarations (`declare global`) of
 *   that file's blocks, so a block that declares or imports the same name simply shadows them.
 *
 * Usage: node scripts/check-docs.mjs [--keep] [--list] [file.md ...]     exit 0: all compile; 1: errors
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const keep = args.includes('--keep');
const listOnly = args.includes('--list');
const given = args.filter((a) => !a.startsWith('--'));

/** The packages a block may import, and where they live. */
const LINKS = {
  '@vltava/dsl': 'packages/dsl',
  '@vltava/state': 'packages/state',
  '@vltava/executor': 'packages/executor',
  '@vltava/runtime': 'packages/runtime',
  '@vltava/test-driver': 'packages/test-driver',
  '@vltava/cli': 'packages/cli',
  '@vltava/sink': 'packages/sink',
  kafkajs: 'packages/runtime/node_modules/kafkajs',
  'prom-client': 'packages/runtime/node_modules/prom-client',
  ava: 'node_modules/ava',
  '@types/node': 'node_modules/@types/node',
};

/**
 * What fragments may use without declaring it. Keep this short: a block that needs more should
 * declare it (a reader copying it needs that too).
 */
const SNIPPET_CONTEXT = `
import type { KStream, KTable, StreamsBuilder, Topology } from '@vltava/dsl';
import type { KafkaStreams } from '@vltava/runtime';
declare global {
  /** a StreamsBuilder the fragment adds to */
  const builder: StreamsBuilder;
  /** a built topology */
  const topology: Topology;
  /** a running app */
  const app: KafkaStreams;
}
export {};
`;

function defaultFiles() {
  const files = [];
  for (const f of readdirSync(path.join(root, 'docs')).sort()) if (f.endsWith('.md')) files.push(path.join('docs', f));
  for (const p of readdirSync(path.join(root, 'packages')).sort()) {
    const readme = path.join('packages', p, 'README.md');
    if (existsSync(path.join(root, readme))) files.push(readme);
  }
  files.push('README.md');
  return files;
}

/** The ```ts blocks of a Markdown file: { line (1-based, of the first code line), code, nocheck }. */
export function extractBlocks(markdown) {
  const lines = markdown.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)\s*(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang, rest] = open;
    let j = i + 1;
    const body = [];
    for (; j < lines.length; j++) {
      const l = lines[j];
      if (l.trim().startsWith(fence[0].repeat(fence.length)) && l.trim().replace(/[`~]/g, '') === '') break;
      body.push(l.startsWith(indent) ? l.slice(indent.length) : l.trimStart());
    }
    if (lang === 'ts' || lang === 'typescript') blocks.push({ line: i + 2, code: body.join('\n'), nocheck: /\bnocheck\b/.test(rest) });
    i = j;
  }
  return blocks;
}

const files = given.length > 0 ? given.map((f) => path.relative(root, path.resolve(f))) : defaultFiles();
const dir = mkdtempSync(path.join(tmpdir(), 'vltava-docs-'));
const blocksDir = path.join(dir, 'blocks');
mkdirSync(blocksDir);
mkdirSync(path.join(dir, 'node_modules', '@vltava'), { recursive: true });
mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
for (const [name, target] of Object.entries(LINKS)) {
  if (existsSync(path.join(root, target))) symlinkSync(path.join(root, target), path.join(dir, 'node_modules', name), 'dir');
}
writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'vltava-docs-check', private: true, type: 'module' }));
writeFileSync(path.join(dir, 'context.d.ts'), SNIPPET_CONTEXT);
writeFileSync(
  path.join(dir, 'tsconfig.json'),
  JSON.stringify({
    compilerOptions: {
      target: 'es2023',
      lib: ['es2023'],
      module: 'nodenext',
      moduleResolution: 'nodenext',
      types: ['node'],
      strict: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck: true,
      noEmit: true,
      allowUnreachableCode: true,
      allowUnusedLabels: true,
    },
    include: ['context.d.ts', 'blocks/*.ts'],
  }),
);

/** The file's `<!-- check-docs context ... -->` comment, as a module of global declarations. */
export function extractContext(markdown) {
  const m = /<!--\s*check-docs context[^\n]*\n([\s\S]*?)-->/.exec(markdown);
  if (!m) return undefined;
  const lines = m[1].split('\n');
  const imports = lines.filter((l) => /^\s*import\s/.test(l));
  const decls = lines.filter((l) => !/^\s*import\s/.test(l));
  return { line: markdown.slice(0, m.index).split('\n').length + 1, code: `${imports.join('\n')}\ndeclare global {\n${decls.join('\n')}\n}\nexport {};\n`, offset: imports.length };
}

const tsc = path.join(root, 'node_modules', '.bin', 'tsc');
/** Type-checks the project in `dir`; returns tsc's diagnostics (empty: all compile). */
function typeCheck() {
  try {
    execFileSync(tsc, ['-p', dir, '--pretty', 'false'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return [];
  } catch (err) {
    return `${err.stdout ?? ''}${err.stderr ?? ''}`.split('\n').filter((l) => l.trim().length > 0);
  }
}

let checked = 0;
let skipped = 0;
const errors = [];
// one project per Markdown file: each file's context is its own
for (const file of files) {
  const markdown = readFileSync(path.join(root, file), 'utf8');
  const origin = new Map(); // block file -> Markdown line of its first line
  rmSync(blocksDir, { recursive: true, force: true });
  mkdirSync(blocksDir);
  const context = extractContext(markdown);
  writeFileSync(path.join(blocksDir, 'fileContext.ts'), context?.code ?? 'export {};\n');
  if (context) origin.set('blocks/fileContext.ts', { line: context.line, adjust: (l) => (l <= context.offset ? l : l - 2) });
  let n = 0;
  for (const b of extractBlocks(markdown)) {
    if (b.nocheck) {
      skipped++;
      continue;
    }
    const name = `L${b.line}.ts`;
    // `export {}` makes every block a module (its own scope; top-level await allowed)
    writeFileSync(path.join(blocksDir, name), `${b.code}\nexport {};\n`);
    origin.set(`blocks/${name}`, { line: b.line, adjust: (l) => l });
    n++;
    if (listOnly) console.log(`${file}:${b.line}`);
  }
  checked += n;
  if (n === 0) continue;
  for (const l of typeCheck()) {
    const m = /^(blocks\/[^(]+)\((\d+),(\d+)\): (.*)$/.exec(l);
    const o = m && origin.get(m[1]);
    errors.push(o ? `${file}:${o.line + o.adjust(Number(m[2])) - 1}:${m[3]}: ${m[4]}` : /^\s/.test(l) ? l : `${file}: ${l}`);
  }
}
const status = errors.length === 0 ? 0 : 1;
if (errors.length > 0) console.error(errors.join('\n'));
console.log(`${status === 0 ? 'ok' : 'FAILED'}: ${checked} TypeScript block(s) in ${files.length} file(s) type-checked, ${skipped} marked nocheck${keep ? `; project kept in ${dir}` : ''}`);
if (!keep) rmSync(dir, { recursive: true, force: true });
process.exit(status);
