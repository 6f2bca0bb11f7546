/**
 * The ledger's vocabulary: commands clients send, the records the ledger writes, and the parsing
 * of raw command bytes (which never throws: anything unusable becomes a rejection with a reason).
 */

/** A deposit into `account`. Keyed by `account`. */
export interface DepositCommand {
  readonly type: 'deposit';
  /** Chosen by the client, unique per command; a resend carries the same id. */
  readonly id: string;
  readonly account: string;
  /** In minor units (cents): a positive integer. */
  readonly amount: number;
}

/** A transfer from `from` to `to`. Keyed by `from` (the debited account). */
export interface TransferCommand {
  readonly type: 'transfer';
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly amount: number;
}

export type Command = DepositCommand | TransferCommand;

/** The key a command must be sent with: the account it debits (or deposits into). */
export function commandKey(cmd: Command): string {
  return cmd.type === 'deposit' ? cmd.account : cmd.from;
}

/** One line of the journal, keyed by `account`. `balance` is the account's balance after the entry. */
export interface JournalEntry {
  readonly commandId: string;
  readonly account: string;
  readonly side: 'deposit' | 'debit' | 'credit';
  readonly amount: number;
  readonly balance: number;
  /** The other account of a transfer. */
  readonly counterparty?: string;
}

export type RejectionCode =
  | 'malformed'
  | 'too-large'
  | 'missing-key'
  | 'key-mismatch'
  | 'invalid-amount'
  | 'unknown-account'
  | 'same-account'
  | 'insufficient-funds';

/** A command the ledger refused, keyed by the command id (or the record key when there is no id). */
export interface Rejection {
  readonly code: RejectionCode;
  /** What was wrong, for a human. */
  readonly reason: string;
  readonly commandId?: string;
  /** The `client-ref` header of the input record, if it had one. */
  readonly ref?: string;
  /** Where the command was read. */
  readonly input: { readonly topic: string; readonly partition: number; readonly offset: number };
}

/** A credit on its way to the destination account's task (the repartition topic's value). */
export interface Credit {
  readonly commandId: string;
  readonly from: string;
  readonly to: string;
  readonly amount: number;
}

/** Largest accepted amount (10^12 minor units): sums stay far below Number.MAX_SAFE_INTEGER. */
export const MAX_AMOUNT = 1_000_000_000_000;
/** Largest accepted command, in bytes. */
export const MAX_COMMAND_BYTES = 16 * 1024;
/** Longest accepted command id or account name. */
export const MAX_ID_LENGTH = 200;

export type Parsed = { readonly ok: true; readonly command: Command } | { readonly ok: false; readonly code: RejectionCode; readonly reason: string; readonly commandId?: string };

const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_ID_LENGTH;

/**
 * Raw command bytes (and the record key) to a command, or the reason they are not one. Checks the
 * shape only (size, JSON, fields and their types, key = debited account); amounts, accounts and
 * funds are the ledger's business rules, checked where the balance lives.
 */
export function parseCommand(key: string | null, value: Buffer | null): Parsed {
  if (value === null || value.length === 0) return { ok: false, code: 'malformed', reason: 'empty value' };
  if (value.length > MAX_COMMAND_BYTES) return { ok: false, code: 'too-large', reason: `command of ${value.length} bytes; the limit is ${MAX_COMMAND_BYTES}` };
  let raw: unknown;
  try {
    raw = JSON.parse(value.toString('utf8'));
  } catch {
    return { ok: false, code: 'malformed', reason: 'not JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, code: 'malformed', reason: 'not a JSON object' };
  const o = raw as Record<string, unknown>;
  const commandId = isText(o.id) ? o.id : undefined;
  const bad = (reason: string): Parsed => ({ ok: false, code: 'malformed', reason, ...(commandId === undefined ? {} : { commandId }) });
  if (commandId === undefined) return bad(`"id" must be a string of 1..${MAX_ID_LENGTH} characters`);
  if (typeof o.amount !== 'number') return bad('"amount" must be a number');
  let command: Command;
  if (o.type === 'deposit') {
    if (!isText(o.account)) return bad('a deposit needs "account"');
    command = { type: 'deposit', id: commandId, account: o.account, amount: o.amount };
  } else if (o.type === 'transfer') {
    if (!isText(o.from) || !isText(o.to)) return bad('a transfer needs "from" and "to"');
    command = { type: 'transfer', id: commandId, from: o.from, to: o.to, amount: o.amount };
  } else {
    return bad('"type" must be "deposit" or "transfer"');
  }
  if (key === null) return { ok: false, code: 'missing-key', reason: 'the record has no key; send it keyed by the debited account', commandId };
  if (key !== commandKey(command)) {
    return { ok: false, code: 'key-mismatch', reason: `the record key "${key.slice(0, 50)}" is not the debited account "${commandKey(command)}"`, commandId };
  }
  return { ok: true, command };
}

/** The business rules, given the debited account's balance. Returns a rejection or undefined. */
export function businessRule(cmd: Command, balance: number, isKnownAccount: (account: string) => boolean): { code: RejectionCode; reason: string } | undefined {
  if (!Number.isSafeInteger(cmd.amount) || cmd.amount <= 0 || cmd.amount > MAX_AMOUNT) {
    return { code: 'invalid-amount', reason: `amount must be an integer in 1..${MAX_AMOUNT}, got ${cmd.amount}` };
  }
  if (cmd.type === 'deposit') {
    if (!isKnownAccount(cmd.account)) return { code: 'unknown-account', reason: `unknown account "${cmd.account}"` };
    return undefined;
  }
  if (!isKnownAccount(cmd.from)) return { code: 'unknown-account', reason: `unknown account "${cmd.from}"` };
  if (!isKnownAccount(cmd.to)) return { code: 'unknown-account', reason: `unknown account "${cmd.to}"` };
  if (cmd.from === cmd.to) return { code: 'same-account', reason: 'a transfer needs two different accounts' };
  if (balance < cmd.amount) return { code: 'insufficient-funds', reason: `balance ${balance} of "${cmd.from}" is below ${cmd.amount}` };
  return undefined;
}

/** The default account registry: names like `acc-0`, `acc-17`. */
export const defaultIsKnownAccount = (account: string): boolean => /^acc-\d{1,9}$/.test(account);
