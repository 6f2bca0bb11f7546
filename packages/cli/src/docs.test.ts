/** The docs type-check (scripts/check-docs.mjs) runs in CI through this test. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const script = join(root, 'scripts/check-docs.mjs');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [script, ...args], { cwd: root, timeout: 110_000 }, (err, stdout, stderr) => {
      done({ code: err === null ? 0 : Number((err as { code?: number }).code ?? -1), stdout, stderr });
    });
  });
}

test('every ```ts block in docs/*.md, packages/*/README.md and README.md type-checks against the workspace packages', async (t) => {
  t.timeout(120_000);
  const r = await run([]);
  t.is(r.code, 0, r.stderr);
  const m = /^ok: (\d+) TypeScript block\(s\) in (\d+) file\(s\) type-checked/m.exec(r.stdout);
  t.truthy(m, r.stdout);
  t.true(Number(m![1]) >= 40, `only ${m![1]} blocks found`);
});

test('the docs check reports a block that does not compile at its Markdown line, and skips ```ts nocheck blocks', async (t) => {
  t.timeout(120_000);
  const dir = mkdtempSync(join(tmpdir(), 'vltava-docs-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const md = join(dir, 'broken.md');
  writeFileSync(
    md,
    [
      '# A page', // 1
      '', // 2
      '```ts', // 3
      "import { Serdes } from '@vltava/dsl';", // 4
      'const n: number = Serdes.string();', // 5: the error
      '```', // 6
      '', // 7
      '```ts nocheck', // 8
      'this is not TypeScript at all', // 9
      '```', // 10
      '', // 11
      '- in a list:', // 12
      '  ```ts', // 13
      '  builder.stream(\'t\').mapValues((v) => v).to(\'u\');', // 14: uses the shared context
      '  ```', // 15
    ].join('\n'),
  );
  const r = await run([md]);
  t.is(r.code, 1);
  t.regex(r.stderr, /broken\.md:5:\d+: error TS2322: Type 'Serde<string>' is not assignable to type 'number'/);
  t.notRegex(r.stderr, /broken\.md:(9|14)/);
  t.regex(r.stdout, /FAILED: 2 TypeScript block\(s\) in 1 file\(s\) type-checked, 1 marked nocheck/);
});
