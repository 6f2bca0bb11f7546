/** Word count as a KafkaStreams app, and the topics it needs. */
import { KafkaStreams, type StreamsConfig } from '@vltava/runtime';
import type { Admin } from 'kafkajs';
import { buildWordCountTopology, type WordCountOptions } from './buildWordCountTopology.js';

export function createWordCountApp(config: StreamsConfig & WordCountOptions): KafkaStreams {
  const { inputTopic, outputTopic, ...streams } = config;
  return new KafkaStreams(
    buildWordCountTopology({ ...(inputTopic ? { inputTopic } : {}), ...(outputTopic ? { outputTopic } : {}) }),
    streams,
  );
}

/** Creates the input and output topics if missing (the app creates only its internal topics). */
export async function createWordCountTopics(admin: Admin, opts: { partitions: number; inputTopic?: string; outputTopic?: string }): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const topics = [opts.inputTopic ?? 'text-lines', opts.outputTopic ?? 'word-counts'].filter((t) => !existing.has(t));
  if (topics.length > 0) await admin.createTopics({ waitForLeaders: true, topics: topics.map((topic) => ({ topic, numPartitions: opts.partitions, replicationFactor: 1 })) });
}
