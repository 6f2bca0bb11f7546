import { StateStoreError } from '@vltava/dsl';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { open, readFile, readdir, rm, stat, unlink } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';

/** `<stateDir>/<appId>/<taskId>`: everything of one task lives here (LevelDB in `db/`, the lock). */
export function taskDirectory(stateDir: string, applicationId: string, taskId: string): string {
  return join(stateDir, applicationId, taskId);
}

export const LOCK_FILE = 'vltava.lock';

export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
  /** Identifies the holding process incarnation: a pid is reused (pid 1 in every container start). */
  readonly token?: string;
}

/** This process incarnation's lock token, and the lock files it holds right now. */
const INCARNATION = randomUUID();
const heldHere = new Set<string>();

/** An exclusive claim on a task directory by this process. */
export interface TaskDirLock {
  readonly dir: string;
  release(): Promise<void>;
}

/**
 * Locks a task directory so that two instances cannot open the same task. The lock is a file
 * created with O_EXCL holding the holder's pid and host. A lock left by a dead process on this host
 * (pid no longer alive) is taken over; a lock held by a live process, or by another host on shared
 * storage, is an error naming the directory and the holder.
 */
export async function lockTaskDir(dir: string): Promise<TaskDirLock> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  const me: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), token: INCARNATION };
  if (heldHere.has(path)) {
    throw new StateStoreError(
      `state directory ${dir} is locked by this process (pid ${process.pid} on host ${hostname()}): a task's previous instance has not closed yet. ` +
        `This is a bug in the task lifecycle if it persists; the task is retried once the old instance closed.`,
      { retriable: true },
    );
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(JSON.stringify(me));
      } finally {
        await fh.close();
      }
      let released = false;
      heldHere.add(path);
      return {
        dir,
        release: async () => {
          if (released) return;
          released = true;
          await unlink(path).catch(() => undefined);
          heldHere.delete(path);
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readHolder(path);
    if (holder !== undefined && !isStale(holder)) {
      throw new StateStoreError(
        `state directory ${dir} is locked by pid ${holder.pid} on host ${holder.host} (since ${holder.since}): ` +
          `another instance owns this task. Stop that instance, or give this one its own stateDir; ` +
          `if that process is gone, delete ${path}.`,
      );
    }
    // stale (dead holder on this host) or unreadable (crashed while writing it): take it over
    await unlink(path).catch(() => undefined);
  }
  throw new StateStoreError(`could not lock state directory ${dir}: the lock file ${path} keeps reappearing; another process is racing for this task`);
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    const h = JSON.parse(await readFile(path, 'utf8')) as Partial<LockHolder>;
    if (typeof h.pid === 'number' && typeof h.host === 'string') return { pid: h.pid, host: h.host, since: String(h.since), ...(typeof h.token === 'string' ? { token: h.token } : {}) };
  } catch {
    // missing or half-written
  }
  return undefined;
}

/**
 * A holder on another host is never stale (shared storage: we cannot tell). On this host, a holder
 * with our pid is this process only if this incarnation holds the lock now (its token is ours and
 * the file is in `heldHere`); otherwise it was an earlier process that had the same pid, e.g. pid 1
 * of a container before a restart, and it is dead. Any other pid is stale when no process has it.
 */
function isStale(h: LockHolder): boolean {
  if (h.host !== hostname()) return false;
  if (h.pid === process.pid) return h.token !== INCARNATION;
  try {
    process.kill(h.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export interface CleanTaskDirsOptions {
  readonly stateDir: string;
  readonly applicationId: string;
  /** Tasks this instance currently owns: never removed. */
  readonly ownedTaskIds: Iterable<string>;
  /** Only directories untouched for this long are removed (default 10 minutes, like Kafka Streams). */
  readonly delayMs?: number;
  /** Injected clock (ms). */
  readonly now?: number;
}

/**
 * Removes the directories of tasks this instance no longer owns, once they have been idle for
 * `delayMs` (a task that comes back soon can reuse its state). Locked directories (held by a live
 * process) are skipped. The runtime calls this periodically. Returns the removed directories.
 */
export async function cleanUnownedTaskDirs(options: CleanTaskDirsOptions): Promise<string[]> {
  const appDir = join(options.stateDir, options.applicationId);
  const owned = new Set(options.ownedTaskIds);
  const delay = options.delayMs ?? 600_000;
  const now = options.now ?? Date.now();
  let entries: string[];
  try {
    entries = await readdir(appDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const removed: string[] = [];
  for (const name of entries) {
    if (owned.has(name)) continue;
    const dir = join(appDir, name);
    const st = await stat(dir).catch(() => undefined);
    if (st === undefined || !st.isDirectory()) continue;
    if (now - lastTouched(st.mtimeMs, await newestMtime(dir)) < delay) continue;
    const holder = await readHolder(join(dir, LOCK_FILE));
    if (holder !== undefined && !isStale(holder)) continue;
    await rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

function lastTouched(a: number, b: number): number {
  return Math.max(a, b);
}

async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  const db = join(dir, 'db');
  const names = await readdir(db).catch(() => [] as string[]);
  for (const n of names) {
    const st = await stat(join(db, n)).catch(() => undefined);
    if (st !== undefined && st.mtimeMs > newest) newest = st.mtimeMs;
  }
  return newest;
}
