export { buildWordCountTopology, words } from './buildWordCountTopology.js';
export type { WordCountOptions } from './buildWordCountTopology.js';
export { createWordCountApp, createWordCountTopics } from './wordCountApp.js';
export { SAMPLE_LINES, sampleLines, topCounts } from './sampleText.js';
