/**
 * The independent check of a ledger run: a simple sequential reference model of the commands that
 * were sent, compared with what the ledger committed (read back with read_committed).
 *
 * Written separately from the topology on purpose: it shares only the command types, so a bug in
 * the topology's rules is not repeated here.
 */
import type { Command, JournalEntry, Rejection, RejectionCode } from './commands.js';

export interface ReferenceResult {
  /** Final balance per account (accounts never touched are absent). */
  readonly balances: Map<string, number>;
  /** Command id -> the command, for accepted commands (first occurrence). */
  readonly accepted: Map<string, Command>;
  /** Command id -> expected rejection code. */
  readonly rejected: Map<string, RejectionCode>;
  /** Records sent, resends included. */
  readonly sent: number;
  readonly resends: number;
  readonly depositedTotal: number;
}

const knownDefault = (a: string): boolean => /^acc-\d{1,9}$/.test(a);

/** Applies commands one after the other, each id once (the first time it is seen). */
export function referenceModel(commands: Iterable<Command>, isKnownAccount: (a: string) => boolean = knownDefault): ReferenceResult {
  const balances = new Map<string, number>();
  const accepted = new Map<string, Command>();
  const rejected = new Map<string, RejectionCode>();
  let sent = 0;
  let resends = 0;
  let depositedTotal = 0;
  for (const c of commands) {
    sent++;
    if (accepted.has(c.id) || rejected.has(c.id)) {
      resends++;
      continue;
    }
    const okAmount = Number.isInteger(c.amount) && c.amount > 0 && c.amount <= 1e12;
    if (!okAmount) {
      rejected.set(c.id, 'invalid-amount');
    } else if (c.type === 'deposit') {
      if (!isKnownAccount(c.account)) rejected.set(c.id, 'unknown-account');
      else {
        balances.set(c.account, (balances.get(c.account) ?? 0) + c.amount);
        depositedTotal += c.amount;
        accepted.set(c.id, c);
      }
    } else if (!isKnownAccount(c.from) || !isKnownAccount(c.to)) {
      rejected.set(c.id, 'unknown-account');
    } else if (c.from === c.to) {
      rejected.set(c.id, 'same-account');
    } else if ((balances.get(c.from) ?? 0) < c.amount) {
      rejected.set(c.id, 'insufficient-funds');
    } else {
      balances.set(c.from, balances.get(c.from)! - c.amount);
      balances.set(c.to, (balances.get(c.to) ?? 0) + c.amount);
      accepted.set(c.id, c);
    }
  }
  return { balances, accepted, rejected, sent, resends, depositedTotal };
}

/** One committed output record, decoded. Records of one partition must be in offset order. */
export interface Out<V> {
  readonly key: string | null;
  readonly value: V;
  readonly partition: number;
  readonly offset: number;
}

export interface LedgerOutputs {
  readonly journal: readonly Out<JournalEntry>[];
  readonly balances: readonly Out<number>[];
  readonly rejections: readonly Out<Rejection>[];
}

export interface LedgerReport {
  readonly commandsSent: number;
  readonly resends: number;
  readonly acceptedIds: number;
  readonly rejectedIds: number;
  readonly journalEntries: number;
  readonly balanceUpdates: number;
  readonly rejectionRecords: number;
  /** Ids whose effect (a journal entry or a rejection) is missing. */
  readonly lost: string[];
  /** Ids with an effect more than once. */
  readonly duplicated: string[];
  /** Every broken invariant, one line each (lost and duplicated ids included, first 20). */
  readonly violations: string[];
  readonly ok: boolean;
}

const byPosition = <V>(a: Out<V>, b: Out<V>): number => a.partition - b.partition || a.offset - b.offset;

/**
 * Compares what the ledger committed with the reference model. Checks:
 * - every accepted deposit has exactly one deposit entry, every accepted transfer exactly one debit
 *   (on `from`) and one credit (on `to`), with the right amounts; nothing else has entries;
 * - every rejected id has exactly one rejection, with the expected code; accepted ids have none;
 * - no balance, in the balances topic or the journal, is ever negative;
 * - each account's journal is a chain: every entry's balance = the previous one +/- its amount;
 * - the last balance of each account equals the model's, and money is conserved (their sum equals
 *   the accepted deposits, and debits equal credits).
 * `extraRejections` counts rejections the caller accounts for itself (e.g. the fuzzer's malformed
 * records, which have no command id); rejections without a command id are ignored here.
 */
export function verifyLedger(ref: ReferenceResult, out: LedgerOutputs): LedgerReport {
  const violations: string[] = [];
  const lost = new Set<string>();
  const duplicated = new Set<string>();

  const entriesById = new Map<string, JournalEntry[]>();
  const where = new Map<JournalEntry, string>();
  for (const { value: e, partition, offset } of out.journal) {
    let l = entriesById.get(e.commandId);
    if (l === undefined) entriesById.set(e.commandId, (l = []));
    l.push(e);
    where.set(e, `${partition}/${offset}`);
  }
  for (const [id, cmd] of ref.accepted) {
    const es = entriesById.get(id) ?? [];
    const want =
      cmd.type === 'deposit'
        ? [{ side: 'deposit', account: cmd.account, amount: cmd.amount }]
        : [
            { side: 'debit', account: cmd.from, amount: cmd.amount },
            { side: 'credit', account: cmd.to, amount: cmd.amount },
          ];
    for (const w of want) {
      const hits = es.filter((e) => e.side === w.side);
      if (hits.length === 0) {
        lost.add(id);
        violations.push(`${id}: no ${w.side} entry`);
      } else if (hits.length > 1) {
        duplicated.add(id);
        violations.push(`${id}: ${hits.length} ${w.side} entries (journal partition/offset ${hits.map((h) => where.get(h)).join(', ')})`);
      }
      for (const h of hits) if (h.account !== w.account || h.amount !== w.amount) violations.push(`${id}: ${w.side} of ${h.amount} on ${h.account}, expected ${w.amount} on ${w.account}`);
    }
    const extra = es.filter((e) => !want.some((w) => w.side === e.side));
    if (extra.length > 0) violations.push(`${id}: unexpected ${extra.map((e) => e.side).join(', ')} entries`);
  }
  for (const id of entriesById.keys()) {
    if (!ref.accepted.has(id)) violations.push(`${id}: journal entries for a command that ${ref.rejected.has(id) ? 'should be rejected' : 'was never sent'}`);
  }

  const rejectionsById = new Map<string, Rejection[]>();
  for (const { value: r } of out.rejections) {
    if (r.commandId === undefined) continue;
    let l = rejectionsById.get(r.commandId);
    if (l === undefined) rejectionsById.set(r.commandId, (l = []));
    l.push(r);
  }
  for (const [id, code] of ref.rejected) {
    const rs = rejectionsById.get(id) ?? [];
    if (rs.length === 0) {
      lost.add(id);
      violations.push(`${id}: no rejection (expected ${code})`);
    } else if (rs.length > 1) {
      duplicated.add(id);
      violations.push(`${id}: rejected ${rs.length} times (read from ${rs.map((r) => `${r.input.partition}/${r.input.offset}`).join(', ')})`);
    }
    for (const r of rs) if (r.code !== code) violations.push(`${id}: rejected as ${r.code}, expected ${code}`);
  }
  for (const id of rejectionsById.keys()) if (ref.accepted.has(id)) violations.push(`${id}: accepted and rejected`);

  // Balances: never negative; the last per account equals the model.
  const last = new Map<string, number>();
  for (const b of [...out.balances].sort(byPosition)) {
    if (b.key === null) {
      violations.push(`balance update without an account at ${b.partition}/${b.offset}`);
      continue;
    }
    if (!(b.value >= 0)) violations.push(`${b.key}: negative balance ${b.value} at ${b.partition}/${b.offset}`);
    last.set(b.key, b.value);
  }
  const accounts = new Set([...ref.balances.keys(), ...last.keys()]);
  for (const a of accounts) {
    if ((last.get(a) ?? 0) !== (ref.balances.get(a) ?? 0)) violations.push(`${a}: final balance ${last.get(a) ?? 0}, the model says ${ref.balances.get(a) ?? 0}`);
  }
  const total = [...last.values()].reduce((s, x) => s + x, 0);
  if (total !== ref.depositedTotal) violations.push(`money not conserved: balances sum to ${total}, deposits to ${ref.depositedTotal}`);

  // The journal of each account is a chain of balances.
  const chain = new Map<string, number>();
  let debits = 0;
  let credits = 0;
  for (const { value: e, partition, offset } of [...out.journal].sort(byPosition)) {
    const delta = e.side === 'debit' ? -e.amount : e.amount;
    if (e.side === 'debit') debits += e.amount;
    if (e.side === 'credit') credits += e.amount;
    const prev = chain.get(e.account) ?? 0;
    if (e.balance !== prev + delta) violations.push(`${e.account}: journal entry ${e.commandId} at ${partition}/${offset} says balance ${e.balance}, previous ${prev} ${delta >= 0 ? '+' : '-'} ${Math.abs(delta)}`);
    if (e.balance < 0) violations.push(`${e.account}: negative balance ${e.balance} in the journal (${e.commandId})`);
    chain.set(e.account, e.balance);
  }
  if (debits !== credits) violations.push(`debits (${debits}) differ from credits (${credits})`);

  const shown = violations.slice(0, 20);
  if (violations.length > 20) shown.push(`... and ${violations.length - 20} more`);
  return {
    commandsSent: ref.sent,
    resends: ref.resends,
    acceptedIds: ref.accepted.size,
    rejectedIds: ref.rejected.size,
    journalEntries: out.journal.length,
    balanceUpdates: out.balances.length,
    rejectionRecords: out.rejections.length,
    lost: [...lost],
    duplicated: [...duplicated],
    violations: shown,
    ok: violations.length === 0,
  };
}

/** Decodes raw committed records (JSON values) into LedgerOutputs. */
export function decodeOutputs(raw: {
  journal: readonly RawRecord[];
  balances: readonly RawRecord[];
  rejections: readonly RawRecord[];
}): LedgerOutputs {
  const dec = <V>(r: RawRecord): Out<V> => ({ key: r.key?.toString() ?? null, value: JSON.parse(r.value!.toString()) as V, partition: r.partition, offset: Number(r.offset) });
  return { journal: raw.journal.map((r) => dec<JournalEntry>(r)), balances: raw.balances.map((r) => dec<number>(r)), rejections: raw.rejections.map((r) => dec<Rejection>(r)) };
}

export interface RawRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly partition: number;
  readonly offset: string;
}
