export type * from './api.js';
export { openTaskStores, openTaskStoresSync, DEFAULT_CACHE_MAX_BYTES } from './taskStores.js';
export { InMemoryChangelog } from './inMemoryChangelog.js';
export type { ChangelogTransaction, LastOffsets } from './inMemoryChangelog.js';
export { ChangelogTruncatedError } from './changelogTruncatedError.js';
export { MemoryBudget } from './memoryBudget.js';
export type { PendingBytes } from './memoryBudget.js';
export { lockTaskDir, cleanUnownedTaskDirs, taskDirectory } from './stateDirectory.js';
export type { TaskDirLock, LockHolder, CleanTaskDirsOptions } from './stateDirectory.js';
