import test from 'ava';
import { defaultPartition, murmur2, toPositive } from './murmur2.js';

// Reference values from Apache Kafka's UtilsTest.testMurmur2 (the Java client's partitioner hash).
const cases: [Buffer, number][] = [
  [Buffer.from('21'), -973932308],
  [Buffer.from('foobar'), -790332482],
  [Buffer.from('a-little-bit-long-string'), -985981536],
  [Buffer.from('a-little-bit-longer-string'), -1486304829],
  [Buffer.from('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8'), -58897971],
  [Buffer.from('abc'), 479470107],
];

test('murmur2 matches the Java client', (t) => {
  for (const [bytes, expected] of cases) t.is(murmur2(bytes), expected, bytes.toString());
});

test('defaultPartition = toPositive(murmur2) % n', (t) => {
  t.is(toPositive(-1), 0x7fffffff);
  for (const [bytes, h] of cases) t.is(defaultPartition(bytes, 7), (h & 0x7fffffff) % 7);
  t.is(defaultPartition(Buffer.alloc(0), 3), (murmur2(Buffer.alloc(0)) & 0x7fffffff) % 3);
});
