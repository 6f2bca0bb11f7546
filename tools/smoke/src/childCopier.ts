/** Starting the copier as a child process, and watching its output lines as events. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { CopierOptions } from './copier.js';

const entry = fileURLToPath(new URL('./copierChild.js', import.meta.url));

export interface ChildCopier {
  readonly process: ChildProcess;
  /** Resolves with the init time (ms) once the child's transactional producer is initialised. */
  readonly initialised: Promise<number>;
  /** Resolves when the child has committed at least `n` records in total. */
  committed(n: number): Promise<void>;
  /** Resolves with the exit signal/code when the child ends. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

export function spawnCopier(opts: Omit<CopierOptions, 'transform' | 'onCommit'>): ChildCopier {
  const child = spawn(process.execPath, [entry, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let total = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  let resolveInit!: (ms: number) => void;
  const initialised = new Promise<number>((r) => (resolveInit = r));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const [word, num] = line.split(' ');
    if (word === 'init') resolveInit(Number(num));
    if (word === 'committed') {
      total = Number(num);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (total >= waiters[i]!.n) waiters.splice(i, 1)[0]!.resolve();
      }
    }
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  return {
    process: child,
    initialised,
    committed: (n) => (total >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
    exited,
    kill: (signal = 'SIGKILL') => {
      child.kill(signal);
    },
  };
}
