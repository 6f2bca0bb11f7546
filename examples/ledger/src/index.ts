export { buildLedgerTopology, DEFAULT_TOPICS } from './buildLedgerTopology.js';
export type { LedgerEvent, LedgerOptions, LedgerTopics } from './buildLedgerTopology.js';
export * from './commands.js';
export { Workload } from './workload.js';
export type { WorkloadOptions, WorkloadRecord } from './workload.js';
export { referenceModel, verifyLedger, decodeOutputs } from './verifyLedger.js';
export type { LedgerOutputs, LedgerReport, Out, RawRecord, ReferenceResult } from './verifyLedger.js';
export { createLedgerApp, createLedgerTopics, ledgerTopics } from './ledgerApp.js';
export type { LedgerAppConfig } from './ledgerApp.js';
