/**
 * Key index snapshots: the sorted keys of one store, as of one changelog checkpoint, in a file next
 * to the task database. Loading a snapshot is a file read plus substring slicing, much cheaper than
 * iterating the keys out of LevelDB (async, one JS object per key). After a crash the snapshot may
 * be older than the database checkpoint; `restore` brings the index up to date from the changelog
 * records between the two (keys only, presence checked with getSync), so a resume costs the records
 * since the last snapshot, not the size of the store.
 *
 * Format (a latin1 string): a header line `vltava-keys-2 <dbId> <checkpoint> <count> <chunks> <crc32>`,
 * then a directory of 8 chars per chunk (key count and byte length, big-endian), then per key
 * 4 chars of big-endian length and the key's bytes. The crc32 covers directory and keys. Loading
 * reads the directory only: chunks stay packed until touched. Written to a temp file and renamed.
 */
import { readFile, rename, rm, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { ChunkSnapshot, PackedChunk } from './sortedKeys.js';

const MAGIC = 'vltava-keys-2';

export function snapshotPath(dir: string, store: string): string {
  return join(dir, `${Buffer.from(store, 'utf8').toString('hex')}.keys`);
}

export interface IndexSnapshot {
  readonly dbId: string;
  readonly checkpoint: number;
  readonly count: number;
  /** Packed chunks over the file's string (see SortedKeys.appendPacked). */
  readonly chunks: PackedChunk[];
}

const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve));

const u32 = (n: number): string => String.fromCharCode((n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);

function readU32(s: string, at: number): number {
  return s.charCodeAt(at) * 16777216 + (s.charCodeAt(at + 1) << 16) + (s.charCodeAt(at + 2) << 8) + s.charCodeAt(at + 3);
}

/** Writes the snapshot; `chunks` must be a private copy (the live index keeps changing meanwhile). */
export async function writeIndexSnapshot(path: string, dbId: string, checkpoint: number, chunks: readonly ChunkSnapshot[]): Promise<void> {
  let count = 0;
  const directory: string[] = [];
  const data: string[] = [];
  let piece: string[] = [];
  for (const chunk of chunks) {
    let region: string;
    let n: number;
    if (isPacked(chunk)) {
      region = chunk.src.slice(chunk.at, chunk.end); // untouched since loaded: the same bytes
      n = chunk.count;
    } else {
      for (const k of chunk) piece.push(u32(k.length), k);
      region = piece.join('');
      piece = [];
      n = chunk.length;
    }
    if (n === 0) continue;
    count += n;
    directory.push(u32(n), u32(region.length));
    data.push(region);
    if (data.length % 256 === 0) await yieldNow(); // keep the event loop (and the task) running
  }
  const body = Buffer.from(directory.join('') + data.join(''), 'latin1');
  const header = Buffer.from(`${MAGIC} ${dbId} ${checkpoint} ${count} ${directory.length / 2} ${crc32(body)}\n`, 'latin1');
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  await writeFile(tmp, Buffer.concat([header, body]));
  await rename(tmp, path);
}

/** Reads a snapshot; undefined if missing, unreadable or failing its checksum. */
export async function readIndexSnapshot(path: string): Promise<IndexSnapshot | undefined> {
  let file: Buffer;
  try {
    file = await readFile(path);
  } catch {
    return undefined;
  }
  const nl = file.indexOf(10);
  if (nl < 0) return undefined;
  const header = file.toString('latin1', 0, nl).split(' ');
  if (header[0] !== MAGIC || header.length !== 6) return undefined;
  const [dbId, checkpoint, count, nChunks, crc] = [header[1] as string, Number(header[2]), Number(header[3]), Number(header[4]), Number(header[5])];
  if (![checkpoint, count, nChunks, crc].every(Number.isSafeInteger)) return undefined;
  if (crc32(file.subarray(nl + 1)) !== crc) return undefined;
  const s = file.toString('latin1', nl + 1);
  const chunks: PackedChunk[] = [];
  let at = nChunks * 8;
  let total = 0;
  for (let c = 0; c < nChunks; c++) {
    const n = readU32(s, c * 8);
    const bytes = readU32(s, c * 8 + 4);
    if (n === 0 || at + bytes > s.length) return undefined;
    const firstLen = readU32(s, at);
    chunks.push({ src: s, at, end: at + bytes, count: n, first: s.slice(at + 4, at + 4 + firstLen) });
    at += bytes;
    total += n;
  }
  if (at !== s.length || total !== count) return undefined;
  return { dbId, checkpoint, count, chunks };
}

function isPacked(c: ChunkSnapshot): c is PackedChunk {
  return !Array.isArray(c);
}

export async function deleteIndexSnapshot(path: string): Promise<void> {
  await rm(path, { force: true });
}
