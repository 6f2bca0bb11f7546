/**
 * The kafkajs the client tests run against. By default the workspace's own kafkajs with the
 * runtime's fixes applied (what `@vltava/runtime` uses). To show that a test fails without a fix:
 *
 *   VLTAVA_KAFKAJS=/path/to/pristine/kafkajs VLTAVA_KAFKAJS_FIXES=off pnpm exec ava packages/runtime/dist/kafka/clientContract.test.js
 *
 * (a pristine kafkajs 2.2.4: `npm pack kafkajs@2.2.4 && tar xzf kafkajs-2.2.4.tgz`; the workspace
 * copy carries pnpm's patch). `VLTAVA_KAFKAJS_FIXES=off` alone leaves the workspace patch in place.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as KafkaJS from 'kafkajs';
import { applyKafkajsFixes } from './kafkajsFixes.js';

const require = createRequire(import.meta.url);

export const kafkajsDir = process.env.VLTAVA_KAFKAJS !== undefined && process.env.VLTAVA_KAFKAJS !== ''
  ? path.resolve(process.env.VLTAVA_KAFKAJS)
  : path.dirname(require.resolve('kafkajs/package.json'));

applyKafkajsFixes({ kafkajsDir });

/** The kafkajs package under test. */
export const kafkajs = require(kafkajsDir) as typeof KafkaJS;

/** Requires one of its internal modules, e.g. `src/consumer/batch.js`. */
export function kafkajsInternal<T = any>(rel: string): T {
  return require(path.join(kafkajsDir, rel)) as T;
}

export const underTest = `kafkajs at ${kafkajsDir}${process.env.VLTAVA_KAFKAJS_FIXES === 'off' ? ' WITHOUT the runtime fixes' : ' with the runtime fixes'}`;

const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../..');
const PNPM_PATCH = path.join(repoRoot, 'patches/kafkajs@2.2.4.patch');

/**
 * A fresh copy of kafkajs as npm installs it: the workspace's kafkajs copied to a temp dir with
 * pnpm's patch (patches/kafkajs@2.2.4.patch) reversed. Each call returns a new copy, so it is its
 * own module instance: fixes applied to one copy do not reach another.
 */
export function upstreamKafkajsCopy(): string {
  const src = path.dirname(require.resolve('kafkajs/package.json'));
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'vltava-kafkajs-')), 'kafkajs');
  cpSync(src, dir, { recursive: true, dereference: true });
  if (existsSync(PNPM_PATCH)) reversePatch(dir, readFileSync(PNPM_PATCH, 'utf8'));
  return dir;
}

/** Reverses a unified diff (as pnpm writes it) on `dir`, hunk by hunk; hunks already reversed are skipped. */
function reversePatch(dir: string, diff: string): void {
  for (const file of diff.split(/^diff --git /m).slice(1)) {
    const target = /^\+\+\+ b\/(.+)$/m.exec(file)?.[1];
    if (target === undefined) continue;
    const p = path.join(dir, target);
    let text = readFileSync(p, 'utf8');
    for (const hunk of file.split(/^@@.*@@.*$/m).slice(1)) {
      const lines = hunk.replace(/^\n/, '').replace(/\n$/, '').split('\n');
      const before = lines.filter((l) => !l.startsWith('+')).map((l) => l.slice(1)).join('\n');
      const after = lines.filter((l) => !l.startsWith('-')).map((l) => l.slice(1)).join('\n');
      if (text.includes(after)) text = text.replace(after, before);
      else if (!text.includes(before)) throw new Error(`cannot reverse a hunk of ${target}`);
    }
    writeFileSync(p, text);
  }
}
