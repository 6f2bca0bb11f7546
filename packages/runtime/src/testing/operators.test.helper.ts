/**
 * Test support (not shipped API): topologies with the newer operators (suppress untilTimeLimit,
 * cogroup, a versioned stream-table join with grace), shared by the broker tests in
 * operatorsEos.test.ts, their child app and the TopologyTestDriver model they are checked against.
 */
import { BufferConfig, Serdes, StreamsBuilder, Suppressed, type Topology } from '@vltava/dsl';

export type OperatorScenario = 'suppress' | 'cogroup' | 'versioned';

export interface ScenarioTopics {
  /** suppress: events; cogroup: clicks; versioned: orders */
  readonly a: string;
  /** cogroup: buys; versioned: prices */
  readonly b: string;
  readonly output: string;
}

const str = Serdes.string();
const int = Serdes.int64();

export function operatorTopology(scenario: OperatorScenario, t: ScenarioTopics): Topology {
  const b = new StreamsBuilder();
  if (scenario === 'suppress') {
    b.stream(t.a, { keySerde: str, valueSerde: str })
      .groupByKey()
      .count({ name: 'counts', caching: false })
      .suppress(Suppressed.untilTimeLimit(40, BufferConfig.maxRecords(25).emitEarlyWhenFull(), { name: 'counts-limited' }))
      .toStream()
      .to(t.output, { keySerde: str, valueSerde: int });
  } else if (scenario === 'cogroup') {
    const clicks = b.stream(t.a, { keySerde: str, valueSerde: str }).groupByKey();
    const buys = b.stream(t.b, { keySerde: str, valueSerde: int }).groupByKey();
    clicks
      .cogroup<{ clicks: number; spent: number }>((_u, _page, a) => ({ clicks: a.clicks + 1, spent: a.spent }))
      .cogroup(buys, (_u, amount, a) => ({ clicks: a.clicks, spent: a.spent + amount }))
      .aggregate(() => ({ clicks: 0, spent: 0 }), { name: 'user-stats', valueSerde: Serdes.json(), caching: false })
      .toStream()
      .to(t.output, { keySerde: str, valueSerde: Serdes.json() });
  } else {
    const prices = b.table(t.b, { name: 'prices', keySerde: str, valueSerde: int, versioned: { historyRetentionMs: 1_000_000 } });
    b.stream(t.a, { keySerde: str, valueSerde: int })
      .join(prices, (qty, price) => `${qty}x${price}`, { name: 'priced', gracePeriodMs: 30 })
      .to(t.output, { keySerde: str, valueSerde: str });
  }
  return b.build();
}

export interface InputRecord {
  readonly topic: 'a' | 'b';
  readonly key: string;
  /** string for string topics; number for int64 topics */
  readonly value: string | number;
  readonly timestamp: number;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Deterministic input of a scenario, in two phases (phase 2 is produced right before the crash). */
export function scenarioInput(scenario: OperatorScenario, n: number, seed = 5): { phase1: InputRecord[]; phase2: InputRecord[] } {
  const r = rng(seed);
  const out: InputRecord[] = [];
  const keys = 40;
  if (scenario === 'versioned') {
    // prices first (out-of-order timestamps), all in phase 1; orders after, in both phases
    for (let i = 0; i < 300; i++) out.push({ topic: 'b', key: `sku${i % keys}`, value: 1 + Math.floor(r() * 100), timestamp: Math.floor(r() * 10_000) });
    const prices = out.length;
    for (let i = 0; i < n; i++) out.push({ topic: 'a', key: `sku${Math.floor(r() * keys)}`, value: 1 + Math.floor(r() * 5), timestamp: i * 10 + Math.floor(r() * 25) });
    const split = prices + Math.floor(n / 2);
    return { phase1: out.slice(0, split), phase2: out.slice(split) };
  }
  for (let i = 0; i < n; i++) {
    const key = `u${Math.floor(r() ** 2 * keys)}`;
    const ts = i * 3 + Math.floor(r() * 20); // mostly increasing, some disorder
    if (scenario === 'cogroup' && r() < 0.4) out.push({ topic: 'b', key, value: 1 + Math.floor(r() * 50), timestamp: ts });
    else out.push({ topic: 'a', key, value: `p${i % 7}`, timestamp: ts });
  }
  return { phase1: out.slice(0, Math.floor(n / 2)), phase2: out.slice(Math.floor(n / 2)) };
}

/** Whether a scenario's topic `a`/`b` holds int64 values. */
export function isInt64(scenario: OperatorScenario, topic: 'a' | 'b'): boolean {
  return (scenario === 'cogroup' && topic === 'b') || (scenario === 'versioned');
}
