/**
 * The ledger topology.
 *
 *   ledger-commands (key: debited account, value: command JSON bytes)
 *     -> parse            malformed / unkeyed / mis-keyed records -> ledger-rejections
 *     -> dedupe by id     store "command-ids": a resent command id is dropped
 *     -> debit            store "balances": validate (amount, accounts, funds), apply a deposit or
 *                         debit the source account; a transfer's credit is sent on, keyed by `to`
 *     -> [<appId>-credits-repartition] -> credit   store "balances": credit the destination
 *   every change -> ledger-balances (account -> balance) and ledger-journal (account -> entry)
 *
 * `debit` and `credit` share the "balances" store, so they run in one sub-topology whose tasks read
 * both the commands and the credits repartition topic, partition by partition: an account's balance
 * lives in exactly one task, debits and credits of one account are applied by that task, and the
 * commit protocol commits a debit, its credit record, the balance changelog and the input offsets
 * in one transaction.
 */
import {
  Serdes,
  Stores,
  StreamsBuilder,
  type KeyValueStore,
  type Processor,
  type ProcessorContext,
  type RecordHeaders,
  type StreamRecord,
  type Topology,
} from '@vltava/dsl';
import { businessRule, defaultIsKnownAccount, parseCommand, type Command, type Credit, type JournalEntry, type Rejection, type RejectionCode } from './commands.js';

export interface LedgerTopics {
  readonly commands: string;
  readonly balances: string;
  readonly journal: string;
  readonly rejections: string;
}

export const DEFAULT_TOPICS: LedgerTopics = {
  commands: 'ledger-commands',
  balances: 'ledger-balances',
  journal: 'ledger-journal',
  rejections: 'ledger-rejections',
};

export interface LedgerOptions {
  readonly topics?: Partial<LedgerTopics>;
  /** Which accounts exist (default: names like `acc-17`). */
  readonly isKnownAccount?: (account: string) => boolean;
  /**
   * Partitions of the commands topic (default 4). The credits repartition topic gets as many, so
   * that an account's debits and credits meet in one task; the runtime refuses a mismatch.
   */
  readonly partitions?: number;
  /** How long a command id is remembered for deduplication, in stream time (default 7 days). */
  readonly dedupeRetentionMs?: number;
}

/** What the debit and credit processors emit; routed to the output topics by kind. */
export type LedgerEvent =
  | { readonly kind: 'journal'; readonly entry: JournalEntry }
  | { readonly kind: 'balance'; readonly balance: number }
  | { readonly kind: 'rejection'; readonly rejection: Rejection }
  | { readonly kind: 'credit'; readonly credit: Credit };

type Parsed = { readonly ok: true; readonly command: Command } | { readonly ok: false; readonly rejection: Rejection };

const BALANCES = 'balances';

function refOf(headers: RecordHeaders | undefined): string | undefined {
  const h = headers?.['client-ref'];
  return h === undefined ? undefined : h.toString().slice(0, 200);
}

function inputOf(ctx: ProcessorContext<never, never> | ProcessorContext<string | null, Parsed> | ProcessorContext<string, LedgerEvent>): Rejection['input'] {
  const m = ctx.recordMetadata();
  return { topic: m?.topic ?? '', partition: m?.partition ?? -1, offset: m?.offset ?? -1 };
}

function rejection(code: RejectionCode, reason: string, input: Rejection['input'], headers: RecordHeaders | undefined, commandId?: string): Rejection {
  const ref = refOf(headers);
  return { code, reason, input, ...(commandId === undefined ? {} : { commandId }), ...(ref === undefined ? {} : { ref }) };
}

/** Raw bytes -> a command, or a rejection. Never throws. */
class ParseProcessor implements Processor<string | null, Buffer | null, string | null, Parsed> {
  private ctx!: ProcessorContext<string | null, Parsed>;
  init(ctx: ProcessorContext<string | null, Parsed>): void {
    this.ctx = ctx;
  }
  process(r: StreamRecord<string | null, Buffer | null>): void {
    const p = parseCommand(r.key, r.value);
    const value: Parsed = p.ok ? p : { ok: false, rejection: rejection(p.code, p.reason, inputOf(this.ctx), r.headers, p.commandId) };
    this.ctx.forward({ key: r.key, value, timestamp: r.timestamp, headers: r.headers });
  }
}

/** Validates a command against the debited account's balance, then applies it. */
class DebitProcessor implements Processor<string, Command, string, LedgerEvent> {
  private ctx!: ProcessorContext<string, LedgerEvent>;
  private balances!: KeyValueStore<string, number>;
  constructor(private readonly isKnownAccount: (account: string) => boolean) {}
  init(ctx: ProcessorContext<string, LedgerEvent>): void {
    this.ctx = ctx;
    this.balances = ctx.getStateStore(BALANCES);
  }
  process(r: StreamRecord<string, Command>): void {
    const cmd = r.value;
    const account = cmd.type === 'deposit' ? cmd.account : cmd.from;
    const before = this.balances.get(account) ?? 0;
    const broken = businessRule(cmd, before, this.isKnownAccount);
    const ts = r.timestamp;
    if (broken !== undefined) {
      const value: LedgerEvent = { kind: 'rejection', rejection: rejection(broken.code, broken.reason, inputOf(this.ctx), r.headers, cmd.id) };
      this.ctx.forward({ key: cmd.id, value, timestamp: ts });
      return;
    }
    if (cmd.type === 'deposit') {
      const balance = before + cmd.amount;
      this.balances.put(account, balance);
      this.ctx.forward({ key: account, value: { kind: 'journal', entry: { commandId: cmd.id, account, side: 'deposit', amount: cmd.amount, balance } }, timestamp: ts });
      this.ctx.forward({ key: account, value: { kind: 'balance', balance }, timestamp: ts });
      return;
    }
    const balance = before - cmd.amount;
    this.balances.put(account, balance);
    this.ctx.forward({
      key: account,
      value: { kind: 'journal', entry: { commandId: cmd.id, account, side: 'debit', amount: cmd.amount, balance, counterparty: cmd.to } },
      timestamp: ts,
    });
    this.ctx.forward({ key: account, value: { kind: 'balance', balance }, timestamp: ts });
    this.ctx.forward({ key: cmd.to, value: { kind: 'credit', credit: { commandId: cmd.id, from: cmd.from, to: cmd.to, amount: cmd.amount } }, timestamp: ts });
  }
}

/** Credits the destination account (this task owns it: the credit was repartitioned by `to`). */
class CreditProcessor implements Processor<string, Credit, string, LedgerEvent> {
  private ctx!: ProcessorContext<string, LedgerEvent>;
  private balances!: KeyValueStore<string, number>;
  init(ctx: ProcessorContext<string, LedgerEvent>): void {
    this.ctx = ctx;
    this.balances = ctx.getStateStore(BALANCES);
  }
  process(r: StreamRecord<string, Credit>): void {
    const c = r.value;
    const balance = (this.balances.get(c.to) ?? 0) + c.amount;
    this.balances.put(c.to, balance);
    this.ctx.forward({
      key: c.to,
      value: { kind: 'journal', entry: { commandId: c.commandId, account: c.to, side: 'credit', amount: c.amount, balance, counterparty: c.from } },
      timestamp: r.timestamp,
    });
    this.ctx.forward({ key: c.to, value: { kind: 'balance', balance }, timestamp: r.timestamp });
  }
}

export function buildLedgerTopology(opts: LedgerOptions = {}): Topology {
  const topics: LedgerTopics = { ...DEFAULT_TOPICS, ...opts.topics };
  const isKnownAccount = opts.isKnownAccount ?? defaultIsKnownAccount;
  const str = Serdes.string();
  const json = <T>() => Serdes.json<T>();
  const b = new StreamsBuilder();
  b.addStateStore(Stores.keyValueStore({ name: BALANCES, keySerde: str, valueSerde: Serdes.int64() }));

  const parsed = b
    .stream<string | null, Buffer | null>(topics.commands, { keySerde: str, valueSerde: Serdes.bytes(), name: 'commands' })
    .process<string | null, Parsed>(() => new ParseProcessor(), { name: 'parse' });

  parsed
    .flatMap((_k, p) => (p.ok ? [] : [{ key: p.rejection.commandId ?? null, value: p.rejection }]), { name: 'malformed' })
    .to(topics.rejections, { keySerde: str as never, valueSerde: json<Rejection>(), name: 'to-rejections-malformed' });

  const debitEvents = parsed
    .flatMap((k, p) => (p.ok ? [{ key: k!, value: p.command }] : []), { name: 'well-formed' })
    .dedupe((_account, cmd) => cmd.id, { name: 'command-ids', retentionMs: opts.dedupeRetentionMs ?? 7 * 24 * 3600_000 })
    .process<string, LedgerEvent>(() => new DebitProcessor(isKnownAccount), { name: 'debit', stores: [BALANCES] });

  const creditEvents = debitEvents
    .flatMap((k, e) => (e.kind === 'credit' ? [{ key: k, value: e.credit }] : []), { name: 'credits' })
    .repartition({ name: 'credits', keySerde: str, valueSerde: json<Credit>(), numberOfPartitions: opts.partitions ?? 4 })
    .process<string, LedgerEvent>(() => new CreditProcessor(), { name: 'credit', stores: [BALANCES] });

  const events = debitEvents.merge(creditEvents, { name: 'events' });
  events
    .flatMap((k, e) => (e.kind === 'journal' ? [{ key: k, value: e.entry }] : []), { name: 'journal' })
    .to(topics.journal, { keySerde: str, valueSerde: json<JournalEntry>(), name: 'to-journal' });
  events
    .flatMap((k, e) => (e.kind === 'balance' ? [{ key: k, value: e.balance }] : []), { name: 'balances' })
    .to(topics.balances, { keySerde: str, valueSerde: json<number>(), name: 'to-balances' });
  events
    .flatMap((k, e) => (e.kind === 'rejection' ? [{ key: k, value: e.rejection }] : []), { name: 'rejections' })
    .to(topics.rejections, { keySerde: str, valueSerde: json<Rejection>(), name: 'to-rejections' });
  return b.build();
}
