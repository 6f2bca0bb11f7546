import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Serdes } from '@vltava/dsl';
import { TopologyTestDriver } from '@vltava/test-driver';
import { buildWordCountTopology, words } from './buildWordCountTopology.js';

test('words() splits on anything that is not a letter, digit or apostrophe', (t) => {
  t.deepEqual(words('Hello, hello  WORLD! It’s 2026'), ['hello', 'hello', 'world', 'it', 's', '2026']);
  t.deepEqual(words('   '), []);
});

test('word count in the TopologyTestDriver, over 3 partitions', (t) => {
  const driver = new TopologyTestDriver(buildWordCountTopology(), { applicationId: 'wordcount', defaultPartitions: 3 });
  const lines = driver.createInputTopic('text-lines', { keySerde: Serdes.string(), valueSerde: Serdes.string() });
  const counts = driver.createOutputTopic('word-counts', { keySerde: Serdes.string(), valueSerde: Serdes.int64() });

  lines.pipeValueList(['The quick brown fox', 'jumps over the lazy dog', 'the END']);
  t.deepEqual(
    counts.readKeyValuesToMap(),
    new Map([
      ['the', 3],
      ['quick', 1],
      ['brown', 1],
      ['fox', 1],
      ['jumps', 1],
      ['over', 1],
      ['lazy', 1],
      ['dog', 1],
      ['end', 1],
    ]),
  );

  lines.pipeInput('line-4', 'fox fox');
  t.deepEqual(counts.readKeyValuesToList(), [
    { key: 'fox', value: 2 },
    { key: 'fox', value: 3 },
  ]);
  t.is(driver.getKeyValueStore<string, number>('counts').get('the'), 3);
  driver.close();
});

test('the topology has two sub-topologies split at wordcount-counts-repartition', (t) => {
  const topology = buildWordCountTopology();
  t.is(topology.subtopologies.length, 2);
  t.deepEqual(topology.internalTopics('wordcount').map((i) => i.name), ['wordcount-counts-repartition', 'wordcount-counts-changelog']);
});

test('docs/dsl.md shows the current describe().toMermaid() picture of this topology', (t) => {
  const doc = readFileSync(fileURLToPath(new URL('../../../docs/dsl.md', import.meta.url)), 'utf8');
  const mermaid = buildWordCountTopology().describe().toMermaid();
  t.true(doc.includes('```mermaid\n' + mermaid + '```'), 'regenerate the picture in docs/dsl.md from buildWordCountTopology().describe().toMermaid()');
});

test('the final counts match a plain in-memory count, whatever the partitioning and cache size', (t) => {
  let seed = 7;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    return seed % n;
  };
  const vocabulary = ['alpha', 'beta', 'gamma', 'delta', 'épsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa', 'λ'];
  const lines = Array.from({ length: 300 }, () => Array.from({ length: 1 + rand(12) }, () => vocabulary[rand(vocabulary.length)]!).join(' '));
  const expected = new Map<string, number>();
  for (const line of lines) for (const w of words(line)) expected.set(w, (expected.get(w) ?? 0) + 1);

  for (const [partitions, cacheMaxBytes] of [[1, 0], [5, 0], [3, 1 << 20]] as const) {
    const driver = new TopologyTestDriver(buildWordCountTopology(), { defaultPartitions: partitions, cacheMaxBytes });
    const input = driver.createInputTopic('text-lines', { keySerde: Serdes.string(), valueSerde: Serdes.string() });
    const output = driver.createOutputTopic('word-counts', { keySerde: Serdes.string(), valueSerde: Serdes.int64() });
    lines.forEach((line, i) => (i % 3 === 0 ? input.pipeInput(`line-${i}`, line) : input.pipeValue(line)));
    const sorted = (m: Map<string | null, number>): [string | null, number][] => [...m].sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    t.deepEqual(sorted(output.readKeyValuesToMap()), sorted(expected), `${partitions} partitions, cache ${cacheMaxBytes}`);
    const store = driver.getKeyValueStore<string, number>('counts');
    for (const [w, n] of expected) t.is(store.get(w), n);
    driver.close();
  }
});
