import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** The lock file a running task holds in its directory (packages/state/src/stateDirectory.ts). */
export const LOCK_FILE = 'vltava.lock';

export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
}

/**
 * The live holder of a task directory's lock, or undefined when it is free: no lock file, or one
 * left by a process that is gone (same host, pid not alive). A holder on another host counts as
 * live: on shared storage we cannot tell.
 */
export function lockedBy(taskDir: string): LockHolder | undefined {
  let h: Partial<LockHolder>;
  try {
    h = JSON.parse(readFileSync(join(taskDir, LOCK_FILE), 'utf8')) as Partial<LockHolder>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    // half-written: the owner is creating it right now, or crashed while writing it
    return { pid: -1, host: 'unknown', since: 'unknown (unreadable lock file)' };
  }
  if (typeof h.pid !== 'number' || typeof h.host !== 'string') return { pid: -1, host: 'unknown', since: 'unknown (unreadable lock file)' };
  const holder = { pid: h.pid, host: h.host, since: String(h.since) };
  if (holder.host !== hostname()) return holder;
  if (holder.pid === process.pid) return holder;
  try {
    process.kill(holder.pid, 0);
    return holder;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH' ? undefined : holder;
  }
}

/**
 * Claims the task directory for this process while it reads the database, the way a task does
 * (an O_EXCL lock file with pid and host), so an instance starting meanwhile reports who holds it.
 * Returns the release function; undefined when a lock file is already there (a stale one: the
 * caller checked `lockedBy` first; LevelDB's own LOCK still guards the database).
 */
export function claim(taskDir: string): (() => void) | undefined {
  const path = join(taskDir, LOCK_FILE);
  try {
    writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), by: 'vltava store inspect' }), { flag: 'wx' });
  } catch {
    return undefined;
  }
  return () => {
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  };
}
