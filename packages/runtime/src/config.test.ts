import test from 'ava';
import { ConfigError } from '@vltava/dsl';
import { consoleLogger, resolveConfig, type StreamsConfig } from './config.js';
import { tickIntervalMs } from './kafkaStreams.js';

const base: StreamsConfig = { applicationId: 'app', brokers: ['127.0.0.1:9092'] };

test('an unknown or misspelled config key is an error that names the key and suggests the right one', (t) => {
  const err = t.throws(() => resolveConfig({ ...base, commitIntervalMS: 50 } as unknown as StreamsConfig), { instanceOf: ConfigError });
  t.regex(err!.message, /Unknown config key "commitIntervalMS" \(did you mean "commitIntervalMs"\?\)/);
  const two = t.throws(() => resolveConfig({ ...base, sesionTimeoutMs: 1, fooBarBaz: 2 } as unknown as StreamsConfig), { instanceOf: ConfigError });
  t.regex(two!.message, /keys "sesionTimeoutMs" \(did you mean "sessionTimeoutMs"\?\), "fooBarBaz"/);
});

test('an invalid deserializationExceptionHandler is rejected at construction (it used to make every commit fail with "Invalid topic")', (t) => {
  const err = t.throws(() => resolveConfig({ ...base, deserializationExceptionHandler: 'skip' as never }), { instanceOf: ConfigError });
  t.regex(err!.message, /deserializationExceptionHandler must be 'fail', 'log-and-continue' or \{ deadLetterTopic/);
  t.throws(() => resolveConfig({ ...base, deserializationExceptionHandler: { deadLetterTopic: '' } }), { instanceOf: ConfigError });
  t.is(resolveConfig({ ...base, deserializationExceptionHandler: 'log-and-continue' }).deserializationExceptionHandler, 'log-and-continue');
});

test('every documented key resolves, with its default', (t) => {
  const c = resolveConfig(base);
  t.is(c.repartitionPurgeIntervalMs, 30_000);
  t.is(c.commitIntervalMs, 100);
  t.throws(() => resolveConfig({ ...base, repartitionPurgeIntervalMs: 0 }), { instanceOf: ConfigError, message: /repartitionPurgeIntervalMs must be an integer >= 1/ });
  t.throws(() => resolveConfig({ ...base, clock: 5 as never }), { instanceOf: ConfigError, message: /clock must be a function/ });
});

test('consoleLogger drops what is below its level and keeps structured fields as JSON', (t) => {
  const lines: string[] = [];
  const orig = { info: console.info, warn: console.warn, debug: console.debug, error: console.error };
  console.info = console.warn = console.debug = console.error = (l: string) => void lines.push(l);
  try {
    const log = consoleLogger('warn');
    log.debug?.('d');
    log.info('i');
    log.warn('w', { broker: 'b:1', retry: 2 });
    log.error('e');
  } finally {
    Object.assign(console, orig);
  }
  t.deepEqual(lines, ['[vltava] WARN w {"broker":"b:1","retry":2}', '[vltava] ERROR e']);
  t.throws(() => resolveConfig({ ...base, logLevel: 'verbose' as never }), { instanceOf: ConfigError, message: /logLevel must be/ });
});

test('fetch sizes bound the fetch side of memory: defaults, and bad values are errors naming the key', (t) => {
  const c = resolveConfig(base);
  t.is(c.maxPartitionFetchBytes, 256 * 1024);
  t.is(c.fetchMaxBytes, 1024 * 1024);
  t.is(resolveConfig({ ...base, maxPartitionFetchBytes: 65_536 }).maxPartitionFetchBytes, 65_536);
  t.throws(() => resolveConfig({ ...base, maxPartitionFetchBytes: 0 }), { instanceOf: ConfigError, message: /maxPartitionFetchBytes must be an integer >= 1024/ });
  t.throws(() => resolveConfig({ ...base, fetchMaxBytes: 1.5 as never }), { instanceOf: ConfigError, message: /fetchMaxBytes must be an integer >= 1024/ });
});

test('the commit tick is a tenth of the commit interval, 5 to 100 ms (a coarse tick adds up to one tick to each hop)', (t) => {
  t.is(tickIntervalMs(100), 10);
  t.is(tickIntervalMs(10), 5);
  t.is(tickIntervalMs(30_000), 100);
});
