/**
 * Ledger instances as child processes (examples/ledger/dist/instance.js), and their event lines:
 * `state`, `running <task> <restored>`, `revoked`, `migrated`, `committed <task> <records>`,
 * `crash <point> <task>`, `error ...`. Waits are on lines, never on sleeps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ledgerEntry = fileURLToPath(import.meta.resolve('@vltava/example-ledger/instance'));
/** The chaos run's instance: the ledger's, plus thrown commit errors on an IPC message (chaosInstance.ts). */
export const chaosEntry = fileURLToPath(new URL('./chaosInstance.js', import.meta.url));

export interface Line {
  readonly at: number;
  readonly text: string;
}

export interface Instance {
  readonly name: string;
  readonly pid: number;
  readonly lines: Line[];
  readonly startedAt: number;
  /** Resolves with the exit code / signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  isAlive(): boolean;
  /** Tasks this instance runs now, per its lines. */
  tasks(): Set<string>;
  signal(sig: NodeJS.Signals): void;
  /** An IPC message to the instance (only for entries spawned with `ipc`); false if it is gone. */
  send(message: unknown): boolean;
  /** Resolves with the first line (past or future) at index >= `from` that matches. */
  waitFor(pattern: RegExp, timeoutMs: number, from?: number): Promise<Line>;
  /** Resolves once `predicate()` holds (checked now and after every line). */
  waitUntil(predicate: () => boolean, what: string, timeoutMs: number): Promise<void>;
  /** Called for every line (after it is recorded). */
  onLine(listener: (line: Line) => void): void;
}

export function spawnInstance(name: string, config: Record<string, unknown>, opts: { echo?: (name: string, line: string) => void; entry?: string; ipc?: boolean } = {}): Instance {
  const child: ChildProcess = spawn(process.execPath, [opts.entry ?? ledgerEntry, JSON.stringify(config)], { stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'] });
  // A message to a process that just died must not crash the parent.
  child.on('error', () => undefined);
  const lines: Line[] = [];
  const owned = new Set<string>();
  const listeners: ((l: Line) => void)[] = [];
  const checks = new Set<() => void>();
  let alive = true;
  const exited = once(child, 'exit').then(([code, signal]) => {
    alive = false;
    for (const c of [...checks]) c();
    return { code: code as number | null, signal: signal as NodeJS.Signals | null };
  });
  const onText = (text: string): void => {
    const line = { at: Date.now(), text };
    lines.push(line);
    const [word, task] = text.split(' ');
    if (word === 'running' && task) owned.add(task);
    if ((word === 'revoked' || word === 'migrated') && task) owned.delete(task);
    opts.echo?.(name, text);
    for (const l of listeners) l(line);
    for (const c of [...checks]) c();
  };
  createInterface({ input: child.stdout! }).on('line', onText);
  createInterface({ input: child.stderr! }).on('line', (t) => {
    if (!/TimeoutNegativeWarning|Timeout duration was set to 1|node --trace-warnings/.test(t)) onText(`stderr ${t}`);
  });
  const inst: Instance = {
    name,
    pid: child.pid!,
    lines,
    startedAt: Date.now(),
    exited,
    isAlive: () => alive,
    tasks: () => (alive ? new Set(owned) : new Set()),
    signal: (sig) => {
      if (alive) child.kill(sig);
    },
    send: (message) => {
      if (!alive || !child.connected) return false;
      child.send(message as object, (err) => void err);
      return true;
    },
    onLine: (l) => void listeners.push(l),
    waitFor(pattern, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const check = (): void => {
          const hit = lines.slice(from).find((l) => pattern.test(l.text));
          if (hit === undefined && alive) return;
          checks.delete(check);
          clearTimeout(timer);
          if (hit) resolve(hit);
          else reject(new Error(`${name} exited before a line matching ${pattern}; last lines: ${lines.slice(-8).map((l) => l.text).join(' | ')}`));
        };
        timer = setTimeout(() => {
          checks.delete(check);
          reject(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms; last lines: ${lines.slice(-8).map((l) => l.text).join(' | ')}`));
        }, timeoutMs);
        checks.add(check);
        check();
      });
    },
    waitUntil(predicate, what, timeoutMs) {
      return new Promise((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const check = (): void => {
          if (!predicate()) return;
          checks.delete(check);
          clearTimeout(timer);
          resolve();
        };
        timer = setTimeout(() => {
          checks.delete(check);
          reject(new Error(`${name}: not ${what} within ${timeoutMs} ms; last lines: ${lines.slice(-8).map((l) => l.text).join(' | ')}`));
        }, timeoutMs);
        checks.add(check);
        check();
      });
    },
  };
  return inst;
}

/** Polls a condition over several instances' state (every 50 ms) until it holds. */
export function until(cond: () => boolean, what: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const tick = (): void => {
      if (cond()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`not ${what} within ${timeoutMs} ms`));
      setTimeout(tick, 50);
    };
    tick();
  });
}
