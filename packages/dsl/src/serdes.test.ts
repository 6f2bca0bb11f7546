import test from 'ava';
import { Serdes } from './serdes.js';

test('string, json, msgpack and bytes round-trip', (t) => {
  for (const v of ['', 'a', 'héllo ✓', 'plain ascii key', 'a longer ascii string over sixteen bytes', '日本語', 'x\u0000y']) {
    t.is(Serdes.string().deserialize(Serdes.string().serialize(v)), v);
  }
  const obj = { a: 1, b: [1, 'x', null], c: { d: true } };
  t.deepEqual(Serdes.json<typeof obj>().deserialize(Serdes.json<typeof obj>().serialize(obj)), obj);
  const mp = Serdes.msgpack<typeof obj>();
  t.deepEqual(mp.deserialize(mp.serialize(obj)), obj);
  const buf = Buffer.from([1, 2, 3]);
  t.is(Serdes.bytes().serialize(buf), buf);
});

test('msgpack is deterministic and decodes buffers independently', (t) => {
  const a = Serdes.msgpack<unknown>();
  const b = Serdes.msgpack<unknown>();
  const v = { id: 'x', n: 12345, tags: ['a', 'b'] };
  t.deepEqual(a.serialize(v), b.serialize(v));
  const first = a.serialize({ k: 1 });
  a.serialize({ other: 'value', that: 'overwrites buffers' });
  t.deepEqual(b.deserialize(first), { k: 1 });
});

test('int64 is Kafka LongSerde big-endian two’s complement', (t) => {
  const s = Serdes.int64();
  t.deepEqual([...s.serialize(1)], [0, 0, 0, 0, 0, 0, 0, 1]);
  t.deepEqual([...s.serialize(-1)], [255, 255, 255, 255, 255, 255, 255, 255]);
  t.deepEqual([...s.serialize(2 ** 32)], [0, 0, 0, 1, 0, 0, 0, 0]);
  for (const n of [0, 1, -1, 2 ** 40 + 7, -(2 ** 45) - 3, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]) {
    t.is(s.deserialize(s.serialize(n)), n);
  }
  t.throws(() => s.serialize(1.5), { message: /not a safe integer/ });
  t.throws(() => s.deserialize(Buffer.alloc(3)), { message: /expected 8 bytes/ });
});

test('double and int32 are big-endian', (t) => {
  const d = Serdes.double();
  t.is(d.serialize(1.5).readDoubleBE(0), 1.5);
  t.is(d.deserialize(d.serialize(-0.125)), -0.125);
  t.deepEqual([...Serdes.int32().serialize(258)], [0, 0, 1, 2]);
});

const sortedBy = (values: number[], serde: { serialize(n: number): Buffer }): number[] =>
  values
    .map((v) => ({ v, b: serde.serialize(v) }))
    .sort((x, y) => Buffer.compare(x.b, y.b))
    .map((x) => x.v);

test('orderedInt64 and orderedDouble sort by byte order like numbers', (t) => {
  const ints = [5, -3, 0, 2 ** 40, -(2 ** 40), 1, -1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER];
  t.deepEqual(sortedBy(ints, Serdes.orderedInt64()), [...ints].sort((a, b) => a - b));
  // plain int64 does not preserve order for negatives: that is why the ordered variant exists
  t.notDeepEqual(sortedBy(ints, Serdes.int64()), [...ints].sort((a, b) => a - b));
  const doubles = [1.5, -2.25, 0, -1e300, 1e300, 3, -0.001, Infinity, -Infinity];
  t.deepEqual(sortedBy(doubles, Serdes.orderedDouble()), [...doubles].sort((a, b) => a - b));
  for (const v of ints) t.is(Serdes.orderedInt64().deserialize(Serdes.orderedInt64().serialize(v)), v);
  for (const v of doubles) t.is(Serdes.orderedDouble().deserialize(Serdes.orderedDouble().serialize(v)), v);
});

test('windowed serde: key bytes then big-endian start and end, sorted by start within a key', (t) => {
  const w = Serdes.windowed(Serdes.string());
  const bytes = w.serialize({ key: 'ab', window: { start: 1000, end: 2000 } });
  t.is(bytes.length, 2 + 16);
  t.is(bytes.subarray(0, 2).toString(), 'ab');
  t.deepEqual(w.deserialize(bytes), { key: 'ab', window: { start: 1000, end: 2000 } });
  const starts = [5000, 1, 300, 2 ** 33];
  const sorted = starts
    .map((s) => w.serialize({ key: 'k', window: { start: s, end: s + 10 } }))
    .sort(Buffer.compare)
    .map((b) => w.deserialize(b).window.start);
  t.deepEqual(sorted, [...starts].sort((a, b) => a - b));
});

test('string serde: every length of the short-string fast paths, with a non-ASCII char at each position, round-trips', (t) => {
  const s = Serdes.string();
  for (let n = 0; n <= 20; n++) {
    const ascii = 'abcdefghijklmnopqrstuvwxyz'.slice(0, n);
    t.is(s.deserialize(s.serialize(ascii)), ascii, `ascii length ${n}`);
    t.is(s.deserialize(Buffer.from(ascii, 'latin1')), ascii, `ascii bytes length ${n}`);
    for (let i = 0; i < n; i++) {
      const mixed = ascii.slice(0, i) + 'é' + ascii.slice(i + 1);
      t.is(s.deserialize(s.serialize(mixed)), mixed, `é at ${i} of ${n}`);
      // a byte above 127 that is not valid UTF-8 decodes as U+FFFD, as Buffer#toString does
      const raw = Buffer.from(ascii, 'latin1');
      raw[i] = 0xff;
      t.is(s.deserialize(raw), raw.toString('utf8'), `0xff at ${i} of ${n}`);
    }
  }
});

test('string serde: serialize gives the UTF-8 bytes at every length around the short-string fast path', (t) => {
  const s = Serdes.string();
  for (let n = 0; n <= 40; n++) {
    const ascii = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH'.slice(0, n);
    t.deepEqual(s.serialize(ascii), Buffer.from(ascii, 'utf8'), `ascii length ${n}`);
    for (const i of [0, Math.floor(n / 2), n - 1]) {
      if (i < 0) continue;
      for (const ch of ['é', '日', '\u{1f600}', '\u007f', '\u0080', '\ud800']) {
        const mixed = ascii.slice(0, i) + ch + ascii.slice(i + 1);
        t.deepEqual(s.serialize(mixed), Buffer.from(mixed, 'utf8'), `${JSON.stringify(ch)} at ${i} of ${n}`);
      }
    }
  }
});
