/**
 * Key index snapshots: the sorted keys of one store, as of one changelog checkpoint, in a file next
 * to the task database. Loading a snapshot is a file read plus substring slicing, much cheaper than
 * iterating the keys out of LevelDB (async, one JS object per key). After a crash the snapshot may
 * be older than the database checkpoint; `restore` brings the index up to date from the changelog
 * records between the two (keys only, presence checked with getSync), so a resume costs the records
 * since the last snapshot, not the size of the store.
 *
 * Format (a latin1 string): `vltava-keys-1 <dbId> <checkpoint> <count>\n` then per key 4 chars of
 * big-endian length and the key's bytes. Written to a temp file and renamed (atomic).
 */
import { readFile, rename, rm, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';

const MAGIC = 'vltava-keys-1';

export function snapshotPath(dir: string, store: string): string {
  return join(dir, `${Buffer.from(store, 'utf8').toString('hex')}.keys`);
}

export interface IndexSnapshot {
  readonly dbId: string;
  readonly checkpoint: number;
  readonly keys: string[];
}

const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Writes the snapshot; `chunks` must be a private copy (the live index keeps changing meanwhile). */
export async function writeIndexSnapshot(path: string, dbId: string, checkpoint: number, chunks: readonly (readonly string[])[]): Promise<void> {
  let count = 0;
  for (const c of chunks) count += c.length;
  const parts: string[] = [`${MAGIC} ${dbId} ${checkpoint} ${count}\n`];
  let piece: string[] = [];
  for (const chunk of chunks) {
    for (const k of chunk) {
      const n = k.length;
      piece.push(String.fromCharCode((n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255), k);
    }
    if (piece.length >= 100_000) {
      parts.push(piece.join(''));
      piece = [];
      await yieldNow(); // keep the event loop (and the task) running
    }
  }
  parts.push(piece.join(''));
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  await writeFile(tmp, Buffer.from(parts.join(''), 'latin1'));
  await rename(tmp, path);
}

/** Reads a snapshot; undefined if missing or unreadable (then the index is loaded from the db). */
export async function readIndexSnapshot(path: string): Promise<IndexSnapshot | undefined> {
  let s: string;
  try {
    s = (await readFile(path)).toString('latin1');
  } catch {
    return undefined;
  }
  const nl = s.indexOf('\n');
  const header = s.slice(0, nl).split(' ');
  if (nl < 0 || header[0] !== MAGIC || header.length !== 4) return undefined;
  const dbId = header[1] as string;
  const checkpoint = Number(header[2]);
  const count = Number(header[3]);
  if (!Number.isSafeInteger(checkpoint) || !Number.isSafeInteger(count)) return undefined;
  const keys = new Array<string>(count);
  let at = nl + 1;
  for (let i = 0; i < count; i++) {
    if (at + 4 > s.length) return undefined;
    const n = s.charCodeAt(at) * 16777216 + (s.charCodeAt(at + 1) << 16) + (s.charCodeAt(at + 2) << 8) + s.charCodeAt(at + 3);
    at += 4;
    if (at + n > s.length) return undefined;
    keys[i] = s.slice(at, at + n);
    at += n;
  }
  if (at !== s.length) return undefined;
  return { dbId, checkpoint, keys };
}

export async function deleteIndexSnapshot(path: string): Promise<void> {
  await rm(path, { force: true });
}
