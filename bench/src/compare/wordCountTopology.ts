/**
 * The word-count topology of the Vltava runs, as a module of its own so that the stream threads of
 * `KafkaStreams.fromModule` (worker threads) can import it: the default export `topology` is a
 * zero-arg function. The topics come from the environment (copied into each worker), set by
 * vltavaApp.ts from its AppConfig.
 */
import { buildWordCountTopology } from '@vltava/example-word-count';
import type { Topology } from '@vltava/dsl';

export const INPUT_ENV = 'VLTAVA_BENCH_INPUT_TOPIC';
export const OUTPUT_ENV = 'VLTAVA_BENCH_OUTPUT_TOPIC';

export function topology(): Topology {
  const inputTopic = process.env[INPUT_ENV];
  const outputTopic = process.env[OUTPUT_ENV];
  if (!inputTopic || !outputTopic) throw new Error(`wordCountTopology: set ${INPUT_ENV} and ${OUTPUT_ENV} (vltavaApp.ts does) before importing it in a stream thread`);
  return buildWordCountTopology({ inputTopic, outputTopic });
}

export default topology;
