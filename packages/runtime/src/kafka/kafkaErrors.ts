/**
 * Classifying kafkajs errors for the commit protocol.
 *
 * kafkajs wraps broker errors: a `KafkaJSProtocolError` carries `type` (e.g. "PRODUCER_FENCED") and
 * `code`; the retrier wraps it again in `KafkaJSNonRetriableError` / `KafkaJSNumberOfRetriesExceeded`
 * with the original under `cause` (older paths use `originalError`). We walk the whole chain.
 * See docs/kafkajs-notes.md for what each failure looks like against a real broker.
 */
import { StreamsError, TaskMigratedError } from '@vltava/dsl';

/** Broker error types that mean "another producer with this transactional.id has taken over". */
const FENCING_TYPES = new Set(['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED_FENCED']);
/** Numeric codes of the same: INVALID_PRODUCER_EPOCH = 47, PRODUCER_FENCED = 90. */
const FENCING_CODES = new Set([47, 90]);

interface ErrorLike {
  readonly type?: unknown;
  readonly code?: unknown;
  readonly name?: unknown;
  readonly message?: unknown;
  readonly cause?: unknown;
  readonly originalError?: unknown;
}

/** Yields the error and every error it wraps (cause / originalError), at most 10 deep. */
export function* errorChain(err: unknown): Generator<ErrorLike> {
  let e: unknown = err;
  for (let i = 0; i < 10 && e !== null && typeof e === 'object'; i++) {
    const el = e as ErrorLike;
    yield el;
    e = el.cause ?? el.originalError;
  }
}

/** The broker error type (e.g. "PRODUCER_FENCED") anywhere in the chain, if any. */
export function kafkaErrorType(err: unknown): string | undefined {
  for (const e of errorChain(err)) if (typeof e.type === 'string') return e.type;
  return undefined;
}

/** True if the error means this producer was fenced by a newer one with the same transactional.id. */
export function isFencingError(err: unknown): boolean {
  for (const e of errorChain(err)) {
    if (typeof e.type === 'string' && FENCING_TYPES.has(e.type)) return true;
    if (typeof e.code === 'number' && FENCING_CODES.has(e.code)) return true;
    if (e instanceof TaskMigratedError) return true;
  }
  return false;
}

/** Converts a fencing error into the TaskMigratedError the runtime acts on; other errors pass through. */
/** Produce errors a retry of the same records cannot fix. */
const REJECTED_RECORD_TYPES = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE', 'INVALID_TIMESTAMP', 'INVALID_REQUIRED_ACKS']);

export function toTaskError(err: unknown, taskId: string): unknown {
  const type = kafkaErrorType(err);
  if (type !== undefined && REJECTED_RECORD_TYPES.has(type)) {
    // The same records would be rejected again on every retry: stop, saying what was rejected.
    return new StreamsError(
      `Task ${taskId}: the broker rejected records of its commit (${type}: ${(err as Error).message}). Retrying would send the same records again. ` +
        `Check the output topics' limits (max.message.bytes, message.timestamp.*) and productionExceptionHandler (docs/runtime.md).`,
      { taskId, cause: err, retriable: false },
    );
  }
  if (isFencingError(err) && !(err instanceof TaskMigratedError)) {
    return new TaskMigratedError(
      `Task ${taskId} was fenced: another instance now owns it (${kafkaErrorType(err) ?? 'fenced'}). ` +
        'Its uncommitted work is dropped; the task is closed without committing and the group reassigns it.',
      { taskId, cause: err },
    );
  }
  return err;
}

/**
 * If `err` (or an error inside it: kafkajs aggregates per-topic failures in `errors`) is an
 * authorization failure, the broker's error type; else undefined.
 */
export function authorizationFailure(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  const visit = (e: unknown, depth: number): string | undefined => {
    if (e === null || typeof e !== 'object' || seen.has(e) || depth > 5) return undefined;
    seen.add(e);
    const el = e as ErrorLike & { errors?: unknown[]; message?: string };
    if (typeof el.type === 'string' && el.type.endsWith('_AUTHORIZATION_FAILED')) return el.type;
    if (typeof el.message === 'string' && /not authorized|authorization failed/i.test(el.message)) return 'AUTHORIZATION_FAILED';
    for (const inner of [el.cause, el.originalError, ...(Array.isArray(el.errors) ? el.errors : [])]) {
      const t = visit(inner, depth + 1);
      if (t !== undefined) return t;
    }
    return undefined;
  };
  return visit(err, 0);
}
