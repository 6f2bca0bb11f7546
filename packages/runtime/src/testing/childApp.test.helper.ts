/** Spawning the word-count child app and awaiting its event lines. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('./wordCountApp.test.helper.js', import.meta.url));

export interface ChildApp {
  readonly name: string;
  readonly process: ChildProcess;
  readonly lines: string[];
  /** Resolves with the first line (already printed or future) that matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves once `predicate()` holds (checked now and after every line). */
  waitUntil(predicate: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Tasks this child currently runs (from running/revoked/migrated lines). */
  tasks(): Set<string>;
  readonly exited: Promise<unknown>;
  signal(sig: NodeJS.Signals): void;
}

export function spawnApp(name: string, config: Record<string, unknown>): ChildApp {
  const child = spawn(process.execPath, [entry, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (l: string) => void }[] = [];
  const conditions: { predicate: () => boolean; resolve: () => void }[] = [];
  const owned = new Set<string>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    const [word, task] = line.split(' ');
    if (word === 'running' && task) owned.add(task);
    if ((word === 'revoked' || word === 'migrated') && task) owned.delete(task);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.pattern.test(line)) waiters.splice(i, 1)[0]!.resolve(line);
    }
    for (let i = conditions.length - 1; i >= 0; i--) {
      if (conditions[i]!.predicate()) conditions.splice(i, 1)[0]!.resolve();
    }
  });
  const exited = once(child, 'exit');
  return {
    name,
    process: child,
    lines,
    tasks: () => new Set(owned),
    exited,
    signal: (sig) => void child.kill(sig),
    waitUntil(predicate, what, timeoutMs = 60_000) {
      if (predicate()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: not ${what} within ${timeoutMs} ms; lines: ${lines.slice(-40).join(' | ')}`)), timeoutMs);
        conditions.push({
          predicate,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    waitFor(pattern, timeoutMs = 60_000) {
      const hit = lines.find((l) => pattern.test(l));
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms; lines: ${lines.slice(-10).join(' | ')}`)), timeoutMs);
        waiters.push({
          pattern,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      });
    },
  };
}
