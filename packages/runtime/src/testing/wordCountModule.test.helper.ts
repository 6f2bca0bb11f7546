/**
 * Test support: the word-count topology as a module for KafkaStreams.fromModule (numStreamThreads):
 * the topics come from the module URL's query, `...wordCountModule.test.helper.js?input=a&output=b`,
 * so that every test imports its own instance.
 */
import { writeFileSync } from 'node:fs';
import { Serdes, StreamsBuilder, type Topology } from '@vltava/dsl';
import { wordCountTopology } from './wordCount.test.helper.js';

const params = new URL(import.meta.url).searchParams;

export function topology(): ReturnType<typeof wordCountTopology> {
  const input = params.get('input');
  const output = params.get('output');
  if (input === null || output === null) throw new Error('wordCountModule: import it as ...?input=<topic>&output=<topic>');
  return wordCountTopology(input, output);
}

/** A differently named export, for the exportName option. */
export const wordCount = topology;

/** Counts per record key, in one sub-topology: every task is stateful (a store "counts"). */
export function keyCount(): Topology {
  const input = params.get('input');
  const output = params.get('output');
  if (input === null || output === null) throw new Error('wordCountModule: import it as ...?input=<topic>&output=<topic>');
  const b = new StreamsBuilder();
  b.stream(input, { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'words' })
    .groupByKey()
    .count({ name: 'counts' })
    .toStream({ name: 'updates' })
    .to(output, { keySerde: Serdes.string(), valueSerde: Serdes.int64(), name: 'out' });
  return b.build();
}

/** Copies values to the output and throws on the value "boom": a processing error inside a stream thread. */
export function poison(): Topology {
  const input = params.get('input');
  const output = params.get('output');
  if (input === null || output === null) throw new Error('wordCountModule: import it as ...?input=<topic>&output=<topic>');
  const b = new StreamsBuilder();
  b.stream(input, { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'in' })
    .mapValues((v) => {
      if (v === 'boom') throw new Error('boom: a poison record');
      return v;
    }, { name: 'check' })
    .to(output, { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'out' });
  return b.build();
}

/**
 * Copies values to the output; the first stream thread to meet the value "boom" throws (it creates
 * the file of the query's `marker` first), later ones copy it: a failure that a replaced thread
 * gets past.
 */
export function poisonOnce(): Topology {
  const input = params.get('input');
  const output = params.get('output');
  const marker = params.get('marker');
  if (input === null || output === null || marker === null) throw new Error('wordCountModule: import it as ...?input=<topic>&output=<topic>&marker=<file>');
  const b = new StreamsBuilder();
  b.stream(input, { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'in' })
    .mapValues((v) => {
      if (v === 'boom') {
        let first = true;
        try {
          writeFileSync(marker, 'thrown', { flag: 'wx' });
        } catch {
          first = false;
        }
        if (first) throw new Error('boom: a poison record, once');
      }
      return v;
    }, { name: 'check' })
    .to(output, { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'out' });
  return b.build();
}
