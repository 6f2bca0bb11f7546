import test from 'ava';
import { ConfigError, ProcessingError, StreamsError, TaskMigratedError, TopologyError } from './errors.js';

test('errors set name from the class and carry retriable, taskId and cause', (t) => {
  const cause = new Error('boom');
  const e = new ProcessingError('failed', { node: 'n', topic: 't', partition: 2, offset: 9 }, { taskId: '0_2', cause });
  t.true(e instanceof StreamsError);
  t.is(e.name, 'ProcessingError');
  t.is(e.taskId, '0_2');
  t.is(e.cause, cause);
  t.is(e.offset, 9);
  t.false(e.retriable);
  t.true(new TaskMigratedError('fenced').retriable);
  t.false(new TopologyError('x').retriable);
  t.is(new ConfigError('x').name, 'ConfigError');
});
