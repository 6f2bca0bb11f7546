export { main, HELP } from './main.js';
export { CliError, UsageError } from './errors.js';
export type { Io } from './io.js';
export { isInternalTopic } from './admin.js';
export type { TopicsReport, TopicReport, GroupOffsetReport } from './topics.js';
export type { OffsetChange } from './reset.js';
