/** Reads the .cpuprofile files `node --cpu-prof` wrote and sums self time per function and per area. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CpuProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}
interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileRow {
  readonly name: string;
  readonly where: string;
  readonly selfPct: number;
}

export interface ProfileSummary {
  readonly top: readonly ProfileRow[];
  readonly areas: readonly ProfileRow[];
  readonly totalMs: number;
}

/** Which part of the system a script belongs to. */
export function areaOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)' || fn === '(program)') return fn;
  if (url.includes('/kafkajs/')) {
    const m = /kafkajs\/src\/(.*?)\//.exec(url);
    return `kafkajs ${m?.[1] ?? ''}`.trim();
  }
  for (const [needle, name] of [
    ['/packages/runtime/', '@vltava/runtime'],
    ['/packages/state/', '@vltava/state'],
    ['/packages/dsl/', '@vltava/dsl'],
    ['classic-level', 'classic-level (LevelDB)'],
    ['abstract-level', 'abstract-level'],
    ['msgpackr', 'msgpackr'],
    ['/examples/word-count/', 'word-count topology'],
  ] as const)
    if (url.includes(needle)) return name;
  if (url.startsWith('node:') || url === '') return fn.startsWith('(') ? fn : 'node internals / native';
  return url.replace(/^.*node_modules\//, '').split('/')[0] ?? url;
}

export function analyzeProfile(dir: string, topN = 15): ProfileSummary {
  const self = new Map<string, { name: string; where: string; us: number }>();
  const areas = new Map<string, number>();
  let total = 0;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))) {
    const prof = JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile;
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    prof.samples.forEach((id, i) => {
      const dt = prof.timeDeltas[i] ?? 0;
      const node = byId.get(id);
      if (!node) return;
      const { functionName, url, lineNumber } = node.callFrame;
      const name = functionName || '(anonymous)';
      if (name === '(idle)') return;
      total += dt;
      const where = `${url.replace(/^.*\/(node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?|work\/main\/)/, '')}:${lineNumber + 1}`;
      const key = `${name} ${where}`;
      const e = self.get(key) ?? { name, where, us: 0 };
      e.us += dt;
      self.set(key, e);
      const a = areaOf(url, name);
      areas.set(a, (areas.get(a) ?? 0) + dt);
    });
  }
  const pct = (us: number): number => (total ? (100 * us) / total : 0);
  return {
    totalMs: total / 1000,
    top: [...self.values()].sort((a, b) => b.us - a.us).slice(0, topN).map((e) => ({ name: e.name, where: e.where, selfPct: pct(e.us) })),
    areas: [...areas].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([name, us]) => ({ name, where: '', selfPct: pct(us) })),
  };
}
