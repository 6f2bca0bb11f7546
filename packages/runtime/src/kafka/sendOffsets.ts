/**
 * `Transaction.sendOffsets` with the retries kafkajs 2.2.4 forgets.
 *
 * kafkajs retries TxnOffsetCommit only on UNKNOWN_TOPIC_OR_PARTITION and COORDINATOR_LOAD_IN_PROGRESS,
 * and it means to re-discover the group coordinator on NOT_COORDINATOR, but the broker's error type in
 * kafkajs is named NOT_COORDINATOR_FOR_GROUP, so that branch never matches and the call fails at once.
 * It happens for real whenever a group's coordinator is new or moving (a fresh broker, a coordinator
 * failover). Calling sendOffsets again inside the same transaction is safe: AddOffsetsToTxn is
 * idempotent within a transaction and the coordinator is looked up again.
 */
import type { Transaction } from 'kafkajs';
import { kafkaErrorType } from './kafkaErrors.js';

type SendOffsetsArgs = Parameters<Transaction['sendOffsets']>[0];

const RETRIABLE_COORDINATOR_ERRORS = new Set([
  'NOT_COORDINATOR_FOR_GROUP',
  'NOT_COORDINATOR',
  'COORDINATOR_NOT_AVAILABLE',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'COORDINATOR_LOAD_IN_PROGRESS',
  'GROUP_LOAD_IN_PROGRESS',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'CONCURRENT_TRANSACTIONS',
]);

export interface RetryOptions {
  /** Attempts in all (default 10). */
  readonly attempts?: number;
  /** First backoff in ms, doubled per attempt up to 1 s (default 50). */
  readonly initialBackoffMs?: number;
}

export function isRetriableCoordinatorError(err: unknown): boolean {
  const type = kafkaErrorType(err);
  return type !== undefined && RETRIABLE_COORDINATOR_ERRORS.has(type);
}

export async function sendOffsetsWithRetry(tx: Pick<Transaction, 'sendOffsets'>, args: SendOffsetsArgs, opts: RetryOptions = {}): Promise<void> {
  const attempts = opts.attempts ?? 10;
  let backoff = opts.initialBackoffMs ?? 50;
  for (let attempt = 1; ; attempt++) {
    try {
      await tx.sendOffsets(args);
      return;
    } catch (e) {
      if (attempt >= attempts || !isRetriableCoordinatorError(e)) throw e;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 1_000);
    }
  }
}
