/**
 * Type-level tests for windows and joins: each `Expect<Equal<...>>` fails `tsc -b` if inference
 * regresses (a windowed count is `KTable<Windowed<K>, number>`; a join's value type is what the
 * joiner returns; left/outer joins hand the joiner `| null`).
 */
import test from 'ava';
import type { KStream } from './kStream.js';
import type { KTable } from './kTable.js';
import type { Windowed } from './stores.js';
import { Serdes } from './serdes.js';
import { StreamsBuilder } from './streamsBuilder.js';
import { JoinWindows, SessionWindows, SlidingWindows, Suppressed, TimeWindows } from './windows.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

interface Click {
  readonly user: string;
  readonly page: string;
}
interface User {
  readonly name: string;
  readonly countryId: string;
}

const b = new StreamsBuilder();
const clicks = b.stream('clicks', { keySerde: Serdes.string(), valueSerde: Serdes.json<Click>() });
const users = b.table('users', { name: 'users', keySerde: Serdes.string(), valueSerde: Serdes.json<User>() });
const countries = b.table('countries', { name: 'countries', keySerde: Serdes.string(), valueSerde: Serdes.string() });
const global = b.globalTable('pages', { name: 'pages', keySerde: Serdes.string(), valueSerde: Serdes.int32() });
const views = b.stream('views', { keySerde: Serdes.string(), valueSerde: Serdes.int32() });

const perMinute = clicks.groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(60_000, 5_000)).count({ name: 'per-minute' });
const hopping = clicks.groupByKey().windowedBy(TimeWindows.ofSizeWithNoGrace(60_000).advanceBy(10_000)).aggregate(() => [] as string[], (_k, c, a) => [...a, c.page], { name: 'pages' + '-hop' });
const sliding = clicks.groupByKey().windowedBy(SlidingWindows.ofTimeDifferenceWithNoGrace(1_000)).reduce((a, c) => (a.page > c.page ? a : c), { name: 'max-page' });
const sessions = clicks.groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(30_000, 0)).count({ name: 'sessions' });
const final = perMinute.suppress(Suppressed.untilWindowCloses({ name: 'final' }));
const enriched = clicks.join(users, (c, u) => ({ page: c.page, name: u.name }), { name: 'enrich' });
const leftEnriched = clicks.leftJoin(users, (c, u) => u?.name ?? c.user, { name: 'enrich-left' });
const withViews = clicks.join(views, (c, v) => `${c.page}:${v}`, { name: 'cv', windows: JoinWindows.ofTimeDifferenceWithNoGrace(1_000) });
const outer = clicks.outerJoin(views, (c, v) => [c, v] as const, { name: 'cv-outer', windows: JoinWindows.ofTimeDifferenceWithNoGrace(1_000) });
const tt = users.leftJoin(users.mapValues((u) => u.name.length), (u, n) => ({ ...u, n }), { name: 'tt' });
const fk = users.join(countries, (u, country) => `${u.name} (${country})`, { name: 'fk', foreignKeyExtractor: (u) => u.countryId });
const globalJoined = clicks.leftJoin(global, (c, n) => n ?? c.page.length, { name: 'g', keyMapper: (_k, c) => c.page });

export type Checks = [
  Expect<Equal<typeof perMinute, KTable<Windowed<string>, number>>>,
  Expect<Equal<typeof hopping, KTable<Windowed<string>, string[]>>>,
  Expect<Equal<typeof sliding, KTable<Windowed<string>, Click>>>,
  Expect<Equal<typeof sessions, KTable<Windowed<string>, number>>>,
  Expect<Equal<typeof final, KTable<Windowed<string>, number>>>,
  Expect<Equal<typeof enriched, KStream<string, { page: string; name: string }>>>,
  Expect<Equal<typeof leftEnriched, KStream<string, string>>>,
  Expect<Equal<typeof withViews, KStream<string, string>>>,
  Expect<Equal<typeof outer, KStream<string, readonly [Click | null, number | null]>>>,
  Expect<Equal<typeof tt, KTable<string, { n: number | null; name: string; countryId: string }>>>,
  Expect<Equal<typeof fk, KTable<string, string>>>,
  Expect<Equal<typeof globalJoined, KStream<string, number>>>,
];

export function compileErrors(): void {
  // @ts-expect-error: a stream-stream join needs windows
  clicks.join(views, (c, v) => [c, v], { name: 'x' });
  // @ts-expect-error: joins need a name
  clicks.join(users, (c, u) => [c, u], {});
  // @ts-expect-error: suppress works on windowed tables only
  users.suppress(Suppressed.untilWindowCloses({ name: 's' }));
  // @ts-expect-error: an inner stream-table join never hands the joiner null
  clicks.join(users, (_c, u: null) => u, { name: 'y' });
  // @ts-expect-error: a global join needs a key mapper
  clicks.join(global, (c) => c, { name: 'z' });
}

test('windowed and join types compile (see the Checks type)', (t) => {
  t.is(perMinute.queryableStoreName, 'per-minute');
  t.is(fk.queryableStoreName, 'fk');
});
