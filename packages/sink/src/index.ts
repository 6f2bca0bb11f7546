// First, so that the kafkajs fixes (read_committed) are applied before kafkajs is used.
import '@vltava/runtime/kafkajs-fixes';

export { DatabaseSink, SinkConfigError, type DatabaseSinkConfig, type SinkRecord, type IdSource, type SinkMode, type SinkStep, type SinkStepInfo, type SinkEvent } from './databaseSink.js';
export { quoteIdent, quoteTable, type SinkAdapter, type SqlExecutor, type Dialect, type Row, type SqlValue } from './adapter.js';
export { DEFAULT_OFFSETS_TABLE, readOffsets } from './sql.js';
export { sqliteAdapter, type SqliteAdapterOptions } from './sqlite.js';
export { audit, formatReport, idOf, type AuditOptions, type AuditReport, type AuditId, type AuditRecord, type IdOccurrence } from './audit.js';
