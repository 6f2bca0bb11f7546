export { TopologyTestDriver } from './topologyTestDriver.js';
export type { TopologyTestDriverConfig } from './topologyTestDriver.js';
export { TestInputTopic } from './testInputTopic.js';
export type { InputTopicOptions } from './testInputTopic.js';
export { TestOutputTopic } from './testOutputTopic.js';
export type { OutputTopicOptions } from './testOutputTopic.js';
export type { TestRecord } from './testRecord.js';
