import { Serdes, StreamsBuilder, type Topology } from '@vltava/dsl';

export interface WordCountOptions {
  /** Input topic of text lines (default "text-lines"). */
  readonly inputTopic?: string;
  /** Output topic of word -> count updates (default "word-counts"). */
  readonly outputTopic?: string;
}

const WORD_SPLIT = /[^\p{L}\p{N}']+/u;

/** Splits a line into lower-case words. */
export function words(line: string): string[] {
  const out: string[] = [];
  for (const w of line.toLowerCase().split(WORD_SPLIT)) if (w.length > 0) out.push(w);
  return out;
}

/**
 * The classic: lines in, a running count per word out.
 *
 *   text-lines --flatMapValues(words)--> groupBy(word) --[<appId>-counts-repartition]--> count(store "counts") --> word-counts
 */
export function buildWordCountTopology(opts: WordCountOptions = {}): Topology {
  const builder = new StreamsBuilder();
  builder
    .stream(opts.inputTopic ?? 'text-lines', { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'lines' })
    .flatMapValues((line) => words(line), { name: 'split-words' })
    .groupBy((_key, word) => word, { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'by-word' })
    .count({ name: 'counts' })
    .toStream({ name: 'count-updates' })
    .to(opts.outputTopic ?? 'word-counts', { keySerde: Serdes.string(), valueSerde: Serdes.int64(), name: 'to-word-counts' });
  return builder.build();
}
