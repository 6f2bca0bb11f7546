/**
 * The deterministic workload of the crash tests, shared by the crashing child process and the test
 * that checks the state after restart. Each round is a list of writes; a model Map replays them.
 */
import type { KeyValueStore, SessionStore, StoreSpec, WindowStore } from '@vltava/dsl';
import type { TaskStores } from './api.js';
import { kvSpec, sessionSpec, windowSpec } from './testSupport.test.helper.js';

export const CRASH_APP = 'crashapp';
export const CRASH_TASK = '0_1';

export const crashSpecs: StoreSpec[] = [
  kvSpec('kv'),
  kvSpec('cached', { caching: true }),
  windowSpec('win', { retentionMs: 1e12, windowSizeMs: 10 }),
  sessionSpec('sess', { retentionMs: 1e12 }),
];

export type Op =
  | { store: 'kv' | 'cached'; key: string; value: number | null }
  | { store: 'win'; key: string; start: number; value: number | null }
  | { store: 'sess'; key: string; start: number; end: number; value: number | null };

export function roundOps(round: number): Op[] {
  const ops: Op[] = [];
  for (let i = 0; i < 12; i++) {
    const n = round * 12 + i;
    ops.push({ store: 'kv', key: `k${(n * 7) % 17}`, value: n % 5 === 4 ? null : n });
    ops.push({ store: 'cached', key: `c${n % 3}`, value: n });
  }
  ops.push({ store: 'win', key: `w${round % 2}`, start: round * 10, value: round });
  ops.push({ store: 'win', key: 'w0', start: 0, value: round });
  ops.push({ store: 'sess', key: 's', start: round, end: round + 5, value: round });
  if (round > 1) ops.push({ store: 'sess', key: 's', start: round - 1, end: round + 4, value: null });
  return ops;
}

export function apply(stores: TaskStores, ops: readonly Op[]): void {
  for (const op of ops) {
    switch (op.store) {
      case 'kv':
      case 'cached': {
        const s = stores.getStore<KeyValueStore<string, unknown>>(op.store);
        if (op.value === null) s.delete(op.key);
        else s.put(op.key, op.value);
        break;
      }
      case 'win':
        stores.getStore<WindowStore<string, unknown>>('win').put(op.key, op.value ?? undefined, op.start);
        break;
      case 'sess': {
        const s = stores.getStore<SessionStore<string, unknown>>('sess');
        const session = { key: op.key, window: { start: op.start, end: op.end } };
        if (op.value === null) s.remove(session);
        else s.put(session, op.value);
        break;
      }
    }
  }
}

/** The expected state after the given committed rounds, as sorted "store/key=value" lines. */
export function model(rounds: readonly number[]): string[] {
  const m = new Map<string, number>();
  for (const r of rounds) {
    for (const op of roundOps(r)) {
      const id =
        op.store === 'win' ? `win/${op.key}@${op.start}` : op.store === 'sess' ? `sess/${op.key}@${op.start}-${op.end}` : `${op.store}/${op.key}`;
      if (op.value === null) m.delete(id);
      else m.set(id, op.value);
    }
  }
  return [...m].map(([k, v]) => `${k}=${v}`).sort();
}

/** The actual state of the stores, in the same form as `model`. */
export function dump(stores: TaskStores): string[] {
  const out: string[] = [];
  for (const name of ['kv', 'cached'] as const) {
    for (const e of stores.getStore<KeyValueStore<string, unknown>>(name).all()) out.push(`${name}/${e.key}=${String(e.value)}`);
  }
  for (const e of stores.getStore<WindowStore<string, unknown>>('win').all()) out.push(`win/${e.key.key}@${e.key.window.start}=${String(e.value)}`);
  for (const e of stores.getStore<SessionStore<string, unknown>>('sess').findSessions('s', -1e15, 1e15)) {
    out.push(`sess/${e.key.key}@${e.key.window.start}-${e.key.window.end}=${String(e.value)}`);
  }
  return out.sort();
}
