import test from 'ava';
import { ProcessingError, Serdes, StreamsBuilder, defaultPartition } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

const str = Serdes.string();
const int = Serdes.int64();

function topology() {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: int }).mapValues((v) => v * 2).to('out', { keySerde: str, valueSerde: int });
  return b.build();
}

/** Pipes raw bytes: a valid int64 value, a 3-byte garbage value, another valid one. */
function pipeBadInput(d: TopologyTestDriver): void {
  const raw = d.createInputTopic('in', { keySerde: str, valueSerde: Serdes.bytes() });
  raw.pipeInput('ok-1', int.serialize(1), 10);
  raw.pipeInput('bad', Buffer.from([1, 2, 3]), 20);
  raw.pipeInput('ok-2', int.serialize(2), 30);
}

test("deserialization handler 'fail' (default) stops with a ProcessingError naming topic, partition and offset", (t) => {
  const d = new TopologyTestDriver(topology());
  const e = t.throws(() => pipeBadInput(d), { instanceOf: ProcessingError });
  t.is(e.topic, 'in');
  t.is(e.partition, 0);
  t.is(e.offset, 1);
  t.is(e.node, 'KSTREAM-SOURCE-0000000000');
  t.is(e.taskId, '0_0');
  t.regex(e.message, /Could not deserialize the value of record in\/0@1 with serde "int64": .*expected 8 bytes.*set deserializationExceptionHandler/);
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readValuesToList(), [2]);
});

test("deserialization handler 'log-and-continue' skips, logs and counts the bad record", (t) => {
  const warnings: string[] = [];
  const d = new TopologyTestDriver(topology(), { deserializationExceptionHandler: 'log-and-continue', logger: { warn: (m) => warnings.push(m) } });
  pipeBadInput(d);
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readValuesToList(), [2, 4]);
  t.is(d.metrics().deserializationErrors, 1);
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, /Skipping record in\/0@1/);
});

test('deserialization handler dead-letter sends the raw record with error headers', (t) => {
  const d = new TopologyTestDriver(topology(), { deserializationExceptionHandler: { deadLetterTopic: 'in-dlq' } });
  pipeBadInput(d);
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readValuesToList(), [2, 4]);
  const dlq = d.createOutputTopic('in-dlq', { keySerde: str, valueSerde: Serdes.bytes() });
  const r = dlq.readRecord();
  t.true(dlq.isEmpty());
  t.is(r.key, 'bad');
  t.deepEqual(r.value, Buffer.from([1, 2, 3]));
  t.is(r.timestamp, 20);
  t.is(r.headers?.['vltava.error.topic'], 'in');
  t.is(r.headers?.['vltava.error.offset'], '1');
  t.regex(String(r.headers?.['vltava.error.message']), /cannot deserialize value with serde "int64"/);
});

test('an exception in user code becomes a ProcessingError naming node, topic, partition and offset', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: int })
    .filter(() => true)
    .mapValues(
      (v) => {
        if (v === 13) throw new RangeError('unlucky');
        return v;
      },
      { name: 'risky' },
    )
    .to('out', { keySerde: str, valueSerde: int });
  const d = new TopologyTestDriver(b.build(), { defaultPartitions: 2 });
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: int });
  i.pipeInput('a', 1);
  const e = t.throws(() => i.pipeInput('b', 13), { instanceOf: ProcessingError });
  t.is(e.node, 'risky');
  t.is(e.topic, 'in');
  const partition = defaultPartition(Buffer.from('b'), 2);
  t.is(e.partition, partition);
  t.is(e.offset, partition === defaultPartition(Buffer.from('a'), 2) ? 1 : 0);
  t.true(e.cause instanceof RangeError);
  t.regex(e.message, /Processor "risky" in task 0_\d threw on record in\/\d@\d: unlucky/);
});

test('an exception in a punctuator becomes a ProcessingError naming the node', (t) => {
  const b = new StreamsBuilder();
  b.stream('in').process(
    () => ({
      init: (ctx) => void ctx.schedule(10, 'wall-clock', () => {
        throw new Error('tick failed');
      }),
      process() {},
    }),
    { name: 'ticker' },
  );
  const d = new TopologyTestDriver(b.build());
  const e = t.throws(() => d.advanceWallClockTime(10), { instanceOf: ProcessingError });
  t.is(e.node, 'ticker');
  t.is(e.topic, undefined);
  t.regex(e.message, /threw on a punctuation: tick failed/);
});

test('a serialization error at a sink names the sink node', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str }).mapValues((v) => Number(v)).to('out', { keySerde: str, valueSerde: int, name: 'to-out' });
  const d = new TopologyTestDriver(b.build());
  const e = t.throws(() => d.createInputTopic('in', { keySerde: str, valueSerde: str }).pipeInput('k', '1.5'), { instanceOf: ProcessingError });
  t.is(e.node, 'to-out');
  t.regex(e.message, /not a safe integer/);
});

test("processingExceptionHandler 'log-and-continue' skips the failing record and counts it", (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: int })
    .mapValues(
      (v) => {
        if (v === 13) throw new RangeError('unlucky');
        return v * 10;
      },
      { name: 'risky' },
    )
    .to('out', { keySerde: str, valueSerde: int });
  const warnings: string[] = [];
  const d = new TopologyTestDriver(b.build(), { processingExceptionHandler: 'log-and-continue', logger: { warn: (m) => warnings.push(m) } });
  d.createInputTopic('in', { keySerde: str, valueSerde: int }).pipeKeyValueList([1, 13, 2].map((v) => ({ key: 'k', value: v })));
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readValuesToList(), [10, 20]);
  t.is(d.metrics().processingErrors, 1);
  t.regex(warnings[0]!, /Skipping record in\/0@1: Processor "risky" .* unlucky/);
});

test('processing handler dead-letter (the same option as the runtime): the failed input record goes to the topic with error headers, processing continues', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: int })
    .mapValues((v) => {
      if (v === 13) throw new Error('unlucky');
      return v * 2;
    }, { name: 'double' })
    .to('out', { keySerde: str, valueSerde: int });
  const d = new TopologyTestDriver(b.build(), { processingExceptionHandler: { deadLetterTopic: 'in-dead' } });
  const input = d.createInputTopic('in', { keySerde: str, valueSerde: int });
  input.pipeInput('a', 1, 10);
  input.pipeInput('b', 13, 20);
  input.pipeInput('c', 3, 30);
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readValuesToList(), [2, 6]);
  const dead = d.createOutputTopic('in-dead', { keySerde: str, valueSerde: int });
  const r = dead.readRecord();
  t.true(dead.isEmpty());
  t.is(r.key, 'b');
  t.is(r.value, 13);
  t.is(r.timestamp, 20);
  t.is(r.headers?.['vltava.error.node'], 'double');
  t.is(r.headers?.['vltava.error.offset'], '1');
  t.is(r.headers?.['vltava.error.class'], 'Error');
  t.regex(String(r.headers?.['vltava.error.message']), /unlucky/);
});
