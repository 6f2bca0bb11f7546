import test from 'ava';
import { clusterId } from './kafkaLocal.js';

test("a KRaft cluster id never starts with '-' (kafka-storage would take it for an option)", (t) => {
  // 1 id in 64 starts with '-' when drawn plainly: 20,000 draws would all but surely hit one.
  for (let i = 0; i < 20_000; i++) {
    const id = clusterId();
    if (id.startsWith('-') || !/^[A-Za-z0-9_-]{22}$/.test(id)) t.fail(`bad cluster id ${id}`);
  }
  t.pass();
});
