/**
 * A seeded stream of ledger commands whose outcome does not depend on timing.
 *
 * Credits reach the destination account asynchronously (through the repartition topic), so whether
 * a transfer has sufficient funds could depend on when earlier credits arrived. The generator avoids
 * that on purpose, so the result can be compared with a sequential model: an accepted transfer never
 * takes more than the source account's deposits minus its debits so far (credits not counted, so it
 * is covered whatever arrived), and an "insufficient funds" transfer asks for more money than exists.
 * Resends repeat an earlier command byte for byte, with the same key.
 */
import { MAX_AMOUNT, commandKey, type Command } from './commands.js';

export interface WorkloadRecord {
  readonly key: string;
  readonly value: Buffer;
  readonly command: Command;
  /** True for a resend of an earlier command (same key, id and bytes). */
  readonly resend: boolean;
}

export interface WorkloadOptions {
  readonly seed?: number;
  readonly accounts?: number;
  /** Share of records that resend an earlier command (default 0.07). */
  readonly resendRate?: number;
}

export class Workload {
  readonly accounts: string[];
  private state: number;
  private readonly own = new Map<string, number>();
  private readonly sent: WorkloadRecord[] = [];
  private seq = 0;
  private readonly resendRate: number;
  private readonly run: string;

  constructor(opts: WorkloadOptions = {}) {
    this.state = (opts.seed ?? 1) >>> 0 || 1;
    this.accounts = Array.from({ length: opts.accounts ?? 20 }, (_, i) => `acc-${i}`);
    this.resendRate = opts.resendRate ?? 0.07;
    this.run = (opts.seed ?? 1).toString(36);
  }

  /** A number in [0, 1). */
  random(): number {
    this.state = (Math.imul(this.state, 1664525) + 1013904223) >>> 0;
    return this.state / 2 ** 32;
  }

  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  private nextId(): string {
    return `cmd-${this.run}-${++this.seq}`;
  }

  /** The next record to send. */
  next(): WorkloadRecord {
    if (this.sent.length > 10 && this.random() < this.resendRate) {
      const earlier = this.pick(this.sent);
      return { ...earlier, resend: true };
    }
    const cmd = this.nextCommand();
    const rec: WorkloadRecord = { key: commandKey(cmd), value: Buffer.from(JSON.stringify(cmd)), command: cmd, resend: false };
    this.sent.push(rec);
    return rec;
  }

  batch(n: number): WorkloadRecord[] {
    return Array.from({ length: n }, () => this.next());
  }

  private nextCommand(): Command {
    const id = this.nextId();
    const r = this.random();
    const a = this.pick(this.accounts);
    const other = (x: string): string => {
      const i = this.accounts.indexOf(x);
      return this.accounts[(i + 1 + this.int(this.accounts.length - 1)) % this.accounts.length]!;
    };
    const funded = this.accounts.filter((x) => (this.own.get(x) ?? 0) > 0);
    if (r < 0.3 || funded.length === 0) {
      const amount = 1 + this.int(1_000);
      this.own.set(a, (this.own.get(a) ?? 0) + amount);
      return { type: 'deposit', id, account: a, amount };
    }
    if (r < 0.85) {
      const from = this.pick(funded);
      const amount = 1 + this.int(Math.min(this.own.get(from)!, 500));
      this.own.set(from, this.own.get(from)! - amount);
      return { type: 'transfer', id, from, to: other(from), amount };
    }
    if (r < 0.9) return { type: 'transfer', id, from: a, to: other(a), amount: MAX_AMOUNT }; // insufficient funds
    if (r < 0.93) return { type: 'transfer', id, from: a, to: 'mallory', amount: 10 }; // unknown account
    if (r < 0.96) return { type: 'deposit', id, account: a, amount: this.pick([0, -5, 1.5, MAX_AMOUNT + 1]) }; // invalid amount
    if (r < 0.98) return { type: 'transfer', id, from: a, to: a, amount: 1 }; // same account
    return { type: 'transfer', id, from: a, to: other(a), amount: -this.int(100) }; // negative amount
  }
}
