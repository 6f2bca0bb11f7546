/**
 * The word-count topology of the Vltava runs, as a module of its own so that the stream threads of
 * `KafkaStreams.fromModule` (worker threads) can import it: the default export `topology` is a
 * zero-arg function. The topics come from the environment (copied into each worker), set by
 * vltavaApp.ts from its AppConfig. With VLTAVA_BENCH_POINT_ONLY=1 (the soak's point-only variant)
 * the count store is declared without range scans (no in-memory key index); the topology is
 * otherwise examples/word-count's, node for node.
 */
import { buildWordCountTopology, words } from '@vltava/example-word-count';
import { Serdes, StreamsBuilder, type Topology } from '@vltava/dsl';

export const INPUT_ENV = 'VLTAVA_BENCH_INPUT_TOPIC';
export const OUTPUT_ENV = 'VLTAVA_BENCH_OUTPUT_TOPIC';
export const POINT_ONLY_ENV = 'VLTAVA_BENCH_POINT_ONLY';

export function topology(): Topology {
  const inputTopic = process.env[INPUT_ENV];
  const outputTopic = process.env[OUTPUT_ENV];
  if (!inputTopic || !outputTopic) throw new Error(`wordCountTopology: set ${INPUT_ENV} and ${OUTPUT_ENV} (vltavaApp.ts does) before importing it in a stream thread`);
  if (process.env[POINT_ONLY_ENV] !== '1') return buildWordCountTopology({ inputTopic, outputTopic });
  const builder = new StreamsBuilder();
  builder
    .stream(inputTopic, { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'lines' })
    .flatMapValues((line) => words(line), { name: 'split-words' })
    .groupBy((_key, word) => word, { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'by-word' })
    .count({ name: 'counts', rangeScans: false })
    .toStream({ name: 'count-updates' })
    .to(outputTopic, { keySerde: Serdes.string(), valueSerde: Serdes.int64(), name: 'to-word-counts' });
  return builder.build();
}

export default topology;
