import test from 'ava';
import { TaskMigratedError } from '@vltava/dsl';
import { isFencingError, kafkaErrorType, toTaskError } from './kafkaErrors.js';

test('fencing is recognised through kafkajs wrappers', (t) => {
  const protocol = Object.assign(new Error('There is a newer producer with the same transactionalId'), { type: 'PRODUCER_FENCED', code: 90 });
  const wrapped = Object.assign(new Error('retries exceeded'), { name: 'KafkaJSNonRetriableError', cause: protocol });
  t.true(isFencingError(protocol));
  t.true(isFencingError(wrapped));
  t.is(kafkaErrorType(wrapped), 'PRODUCER_FENCED');
  t.true(isFencingError({ originalError: { code: 47 } }));
});

test('other errors are not fencing and pass through toTaskError', (t) => {
  const e = Object.assign(new Error('leader not available'), { type: 'LEADER_NOT_AVAILABLE', code: 5 });
  t.false(isFencingError(e));
  t.false(isFencingError(undefined));
  t.is(toTaskError(e, '0_1'), e);
  const migrated = toTaskError(Object.assign(new Error('x'), { type: 'INVALID_PRODUCER_EPOCH' }), '0_1');
  t.true(migrated instanceof TaskMigratedError);
  t.is((migrated as TaskMigratedError).taskId, '0_1');
  t.regex((migrated as Error).message, /fenced/);
});

test('sendOffsetsWithRetry retries coordinator errors and gives up on others', async (t) => {
  const { sendOffsetsWithRetry } = await import('./sendOffsets.js');
  const notCoordinator = Object.assign(new Error('This is not the correct coordinator for this group'), { type: 'NOT_COORDINATOR_FOR_GROUP', code: 16 });
  let calls = 0;
  await sendOffsetsWithRetry(
    { sendOffsets: async () => { if (++calls < 3) throw notCoordinator; } },
    { consumerGroupId: 'g', topics: [] },
    { initialBackoffMs: 1 },
  );
  t.is(calls, 3);
  const fenced = Object.assign(new Error('fenced'), { type: 'INVALID_PRODUCER_EPOCH' });
  let fencedCalls = 0;
  await t.throwsAsync(
    sendOffsetsWithRetry({ sendOffsets: async () => { fencedCalls++; throw fenced; } }, { consumerGroupId: 'g', topics: [] }, { initialBackoffMs: 1 }),
    { is: fenced },
  );
  t.is(fencedCalls, 1, 'fencing is never retried');
  let limited = 0;
  await t.throwsAsync(
    sendOffsetsWithRetry({ sendOffsets: async () => { limited++; throw notCoordinator; } }, { consumerGroupId: 'g', topics: [] }, { attempts: 4, initialBackoffMs: 1 }),
  );
  t.is(limited, 4);
});
