/** Shared helpers for the state tests (not part of the package: excluded from `files`). */
import type { CollectedRecord, RecordCollector, Serde, StoreSpec } from '@vltava/dsl';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const stringSerde: Serde<string> = {
  name: 'string',
  serialize: (s) => Buffer.from(s, 'utf8'),
  deserialize: (b) => b.toString('utf8'),
};

export const jsonSerde: Serde<unknown> = {
  name: 'json',
  serialize: (v) => Buffer.from(JSON.stringify(v), 'utf8'),
  deserialize: (b) => JSON.parse(b.toString('utf8')) as unknown,
};

export const numberSerde: Serde<number> = {
  name: 'int64',
  serialize: (n) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt(n));
    return b;
  },
  deserialize: (b) => Number(b.readBigInt64BE()),
};

export function kvSpec(name: string, extra: Partial<StoreSpec> = {}): StoreSpec {
  return { name, kind: 'keyValue', keySerde: stringSerde, valueSerde: jsonSerde, logging: true, caching: false, ...extra } as StoreSpec;
}

export function windowSpec(name: string, extra: Partial<StoreSpec> = {}): StoreSpec {
  return {
    name,
    kind: 'window',
    keySerde: stringSerde,
    valueSerde: jsonSerde,
    logging: true,
    caching: false,
    retentionMs: 1000,
    windowSizeMs: 100,
    ...extra,
  } as StoreSpec;
}

export function sessionSpec(name: string, extra: Partial<StoreSpec> = {}): StoreSpec {
  return { name, kind: 'session', keySerde: stringSerde, valueSerde: jsonSerde, logging: true, caching: false, retentionMs: 1000, ...extra } as StoreSpec;
}

/** A collector that keeps everything sent to it. */
export class ListCollector implements RecordCollector {
  records: CollectedRecord[] = [];
  /** Where records go; swapped per transaction in the changelog tests. */
  target: RecordCollector | undefined;
  send(record: CollectedRecord): void {
    this.records.push(record);
    this.target?.send(record);
  }
}

const leftovers = new Set<string>();
process.once('exit', () => {
  for (const dir of leftovers) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temp dir; removed by `cleanup()`, or at process exit if a failing test skipped that. */
export function tempDir(label: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `vltava-state-${label}-`));
  leftovers.add(dir);
  return {
    dir,
    cleanup: () => {
      rmSync(dir, { recursive: true, force: true });
      leftovers.delete(dir);
    },
  };
}

/** Maps the topic -> last offset map of a committed transaction to store -> offset. */
export function offsetsByStore(appId: string, last: ReadonlyMap<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  const prefix = `${appId}-`;
  const suffix = '-changelog';
  for (const [topic, offset] of last) {
    if (topic.startsWith(prefix) && topic.endsWith(suffix)) out.set(topic.slice(prefix.length, -suffix.length), offset);
  }
  return out;
}
