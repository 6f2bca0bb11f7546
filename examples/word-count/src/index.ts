export { buildWordCountTopology, words } from './buildWordCountTopology.js';
export type { WordCountOptions } from './buildWordCountTopology.js';
