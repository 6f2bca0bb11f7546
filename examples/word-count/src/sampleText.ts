/** Sample text for the word-count producer: short lines written for this example, picked at random. */
export const SAMPLE_LINES: readonly string[] = [
  'the river runs through the old town and under the stone bridge',
  'every record is counted once and only once',
  'a stream is a table in motion and a table is a stream at rest',
  'the bridge has thirty arches and the river has no hurry',
  'kill the process and the counts come back where they were',
  'state lives next to the code and the changelog keeps it safe',
  'the old town clock strikes the hour over the river',
  'one transaction carries the outputs the offsets and the state',
  'words flow in and counts flow out',
  'a zombie may wake up but it cannot write',
];

/** A deterministic pseudo-random line generator (seeded), so runs and tests can be repeated. */
export function sampleLines(n: number, seed = 1): string[] {
  let s = seed >>> 0 || 1;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(SAMPLE_LINES[s % SAMPLE_LINES.length]!);
  }
  return out;
}

/** The `n` largest counts, largest first (ties by word). */
export function topCounts(counts: ReadonlyMap<string, number>, n = 10): [string, number][] {
  return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, n);
}
