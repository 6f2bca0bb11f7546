/**
 * Test support (not shipped API): a word-count topology, a seeded corpus and its reference counts,
 * used by the runtime's broker tests and their child processes.
 */
import { Serdes, StreamsBuilder, type Topology } from '@vltava/dsl';

export function wordCountTopology(input: string, output: string): Topology {
  const builder = new StreamsBuilder();
  builder
    .stream(input, { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'lines' })
    .flatMapValues((line) => line.split(' ').filter((w) => w.length > 0), { name: 'split' })
    .groupBy((_k, word) => word, { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'by-word' })
    .count({ name: 'counts' })
    .toStream({ name: 'updates' })
    .to(output, { keySerde: Serdes.string(), valueSerde: Serdes.int64(), name: 'out' });
  return builder.build();
}

/** A deterministic corpus of `lines` lines over a vocabulary of `vocabulary` words. */
export function corpus(lines: number, vocabulary = 200, seed = 42): string[] {
  let s = seed >>> 0;
  const rnd = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const n = 1 + Math.floor(rnd() * 8);
    const words: string[] = [];
    for (let j = 0; j < n; j++) words.push(`w${Math.floor(rnd() ** 2 * vocabulary)}`);
    out.push(words.join(' '));
  }
  return out;
}

export function referenceCounts(lines: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) for (const w of l.split(' ')) if (w) m.set(w, (m.get(w) ?? 0) + 1);
  return m;
}

/** The final count per word in a stream of count updates: the largest count seen per key. */
export function finalCounts(records: readonly { key: Buffer | null; value: Buffer | null }[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of records) {
    if (r.key === null || r.value === null) continue;
    const w = r.key.toString();
    const c = Number(r.value.readBigInt64BE(0));
    if (c > (m.get(w) ?? 0)) m.set(w, c);
  }
  return m;
}
