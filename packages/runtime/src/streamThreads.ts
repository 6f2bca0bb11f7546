/**
 * numStreamThreads > 1 (Kafka Streams' num.stream.threads): the KafkaStreams object is a shell over N
 * stream threads, each a Node worker thread running today's single-threaded machinery (an inner
 * KafkaStreams with numStreamThreads 1): its own group member, consumer, producers and tasks. The
 * shell relays states, events, logs, metrics and interactive queries, and keeps two process-wide
 * things that threads cannot keep for themselves:
 *
 * - task directory claims: the lock files of @vltava/state identify a process incarnation per module
 *   instance, and every worker has its own instance with the same pid, so a thread would take a
 *   sibling's lock for a stale one. Before a task opens its directory its thread claims the task
 *   here; a claim held by a sibling waits until that sibling's instance has released everything.
 * - the cleanup of unowned task directories, which runs here over the union of every thread's claims
 *   (no claim is granted while it runs), so that no thread deletes a sibling's directory.
 *
 * Synchronous reads from the main thread (store(), metrics()) are a message round trip: the request
 * goes over a MessagePort, the main thread blocks in Atomics.wait until the worker answers and takes
 * the reply with receiveMessageOnPort.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { ConfigError, StreamsError, type KeyValue, type ReadOnlyKeyValueStore, type Serde, type Topology } from '@vltava/dsl';
import { cleanUnownedTaskDirs } from '@vltava/state';
import type { ResolvedConfig, StreamsConfig } from './config.js';
import type { KeyQueryMetadata, StreamsMetadata, StreamsMetrics, StreamsState } from './kafkaStreams.js';

/** Set in a stream thread's worker before it imports the topology module: fromModule there is a mistake. */
export const streamThreadContext: { name: string | undefined } = { name: undefined };

/** Internal config key (a symbol: not a config key users can set) that marks a shell or a worker's inner app. */
export const STREAM_THREADS = Symbol.for('vltava.streamThreads');

export type ThreadsInternal =
  | { readonly kind: 'shell'; readonly href: string; readonly exportName: string }
  | { readonly kind: 'worker'; readonly threadName: string; claim(taskId: string): TaskClaim };

/** A thread's claim on a task directory, from the shell. */
export interface TaskClaim {
  readonly granted: Promise<void>;
  release(): void;
}

/** One stream thread, as metadataForLocalThreads() shows it (Kafka Streams' ThreadMetadata). */
export interface ThreadMetadata {
  /** `<applicationId>-StreamThread-<n>`, n from 1. */
  readonly threadName: string;
  /** The thread's own state (its inner app's); NOT_RUNNING once it has closed or died. */
  readonly threadState: StreamsState;
  readonly activeTasks: readonly string[];
  readonly standbyTasks: readonly string[];
}

export const threadName = (applicationId: string, index: number): string => `${applicationId}-StreamThread-${index + 1}`;

// ---- wire format ------------------------------------------------------------------------------

export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string | undefined;
  readonly retriable?: boolean;
  readonly config?: boolean;
  readonly taskId?: string | undefined;
}

export function toWire(e: unknown): WireError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const s = e as Error & { retriable?: unknown; taskId?: unknown };
  return {
    name: e.name,
    message: e.message,
    stack: e.stack,
    ...(typeof s.retriable === 'boolean' ? { retriable: s.retriable } : {}),
    ...(e instanceof ConfigError ? { config: true } : {}),
    ...(typeof s.taskId === 'string' ? { taskId: s.taskId } : {}),
  };
}

export function fromWire(w: WireError): Error {
  const e = w.config === true ? new ConfigError(w.message) : new StreamsError(w.message, { retriable: w.retriable ?? false, ...(w.taskId !== undefined ? { taskId: w.taskId } : {}) });
  e.name = w.name;
  if (w.stack !== undefined) e.stack = w.stack;
  return e;
}

export interface WorkerInit {
  readonly index: number;
  readonly threadName: string;
  readonly href: string;
  readonly exportName: string;
  /** The app's config without its functions (logger and handler are relayed, the rest refused). */
  readonly config: StreamsConfig;
  /** The main thread's topology.describe(): the worker checks that it imported the same topology. */
  readonly description: string;
  readonly listening: readonly string[];
  readonly signal: SharedArrayBuffer;
  readonly syncPort: MessagePort;
}

export type ToWorker =
  | { readonly t: 'start' }
  | { readonly t: 'listen'; readonly event: string; readonly on: boolean }
  | { readonly t: 'close'; readonly timeoutMs: number }
  | { readonly t: 'grant'; readonly token: number }
  | { readonly t: 'ask'; readonly id: number; readonly op: 'allMetadata' } | { readonly t: 'ask'; readonly id: number; readonly op: 'queryMetadataForKey'; readonly store: string; readonly key: Uint8Array };

export type FromWorker =
  | { readonly t: 'ready' }
  | { readonly t: 'log'; readonly level: 'debug' | 'info' | 'warn' | 'error'; readonly message: string; readonly meta?: Readonly<Record<string, unknown>> }
  | { readonly t: 'state'; readonly from: StreamsState; readonly to: StreamsState; readonly error?: WireError }
  | { readonly t: 'event'; readonly name: string; readonly payload: Record<string, unknown> }
  | { readonly t: 'claim'; readonly token: number; readonly taskId: string }
  | { readonly t: 'release'; readonly token: number }
  | { readonly t: 'committed' }
  | { readonly t: 'started' }
  | { readonly t: 'startFailed'; readonly error: WireError }
  | { readonly t: 'reply'; readonly id: number; readonly ok: boolean; readonly value?: unknown; readonly error?: WireError };

export type SyncRequest =
  | { readonly id: number; readonly op: 'metrics' }
  | { readonly id: number; readonly op: 'store'; readonly name: string; readonly method: 'get' | 'range' | 'all' | 'prefixScan' | 'approximateNumEntries'; readonly args: readonly unknown[] };

export interface SyncReply {
  readonly id: number;
  readonly ok: boolean;
  readonly value?: unknown;
  readonly error?: WireError;
}

// ---- loading the topology module ----------------------------------------------------------------

/** The module's URL: a URL as is, a path against the working directory; a bare package name is refused (it would resolve from here). */
export function moduleHref(specifier: string | URL): string {
  if (specifier instanceof URL) return specifier.href;
  if (typeof specifier !== 'string' || specifier.length === 0) {
    throw new ConfigError(`KafkaStreams.fromModule(specifier, ...): specifier must be a module path or URL, e.g. new URL('./topology.js', import.meta.url); got ${String(specifier)}.`);
  }
  if (specifier.startsWith('.') || isAbsolute(specifier)) return pathToFileURL(resolve(specifier)).href;
  if (/^[a-z][a-z0-9+.-]+:/i.test(specifier)) return new URL(specifier).href;
  throw new ConfigError(
    `KafkaStreams.fromModule: "${specifier}" is a package name, which would resolve from @vltava/runtime rather than from your code. Pass import.meta.resolve('${specifier}') (it resolves from your module), a URL such as new URL('./topology.js', import.meta.url), or a file path.`,
  );
}

const isTopology = (x: unknown): x is Topology =>
  typeof x === 'object' && x !== null && typeof (x as Topology).describe === 'function' && Array.isArray((x as Topology).subtopologies) && (x as Topology).stores instanceof Map;

/** Imports the module and returns its `exportName` export: a Topology, or a function returning one (or a Promise of one). */
export async function loadTopology(href: string, exportName: string, warn?: (message: string) => void): Promise<Topology> {
  const entry = process.argv[1] === undefined ? undefined : pathToFileURL(resolve(process.argv[1])).href;
  if (href === entry || href.split('?')[0] === entry) {
    throw new ConfigError(
      `KafkaStreams.fromModule: ${href} is the program's entry module: importing it from itself waits for itself, and every stream thread would run the program again. Put the topology in a module of its own (export function topology() { ... }) and pass that module.`,
    );
  }
  // A module that imports the module calling fromModule (a cycle) waits forever: say so.
  const slow = warn === undefined ? undefined : setTimeout(() => warn(`KafkaStreams.fromModule: importing ${href} has taken 10 s; if it (or a module it imports) is the one calling fromModule, the import waits for itself: keep the topology in a module of its own.`), 10_000);
  slow?.unref();
  let mod: Record<string, unknown>;
  try {
    mod = (await import(href)) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`KafkaStreams.fromModule: could not import ${href}: ${(e as Error).message}`, { cause: e });
  } finally {
    clearTimeout(slow);
  }
  if (!(exportName in mod)) {
    throw new ConfigError(
      `KafkaStreams.fromModule: ${href} has no export "${exportName}" (its exports: ${Object.keys(mod).join(', ') || '(none)'}). Export the topology as \`export const ${exportName} = builder.build()\` or \`export function ${exportName}() { ... }\`, or pass { exportName }.`,
    );
  }
  const exported = mod[exportName];
  const value: unknown = typeof exported === 'function' ? await (exported as () => unknown)() : exported;
  if (!isTopology(value)) {
    throw new ConfigError(`KafkaStreams.fromModule: the export "${exportName}" of ${href} is neither a Topology nor a function returning one (got ${typeof value}); export builder.build().`);
  }
  return value;
}

/** Checks what a worker cannot receive and returns the config it gets. */
export function workerConfig(config: StreamsConfig, resolved: ResolvedConfig): StreamsConfig {
  const n = resolved.numStreamThreads;
  for (const key of ['clock', 'faultInjection'] as const) {
    if (config[key] !== undefined) {
      throw new ConfigError(`${key} cannot be used with numStreamThreads ${n}: it is a function, and functions cannot be sent to the stream threads (worker threads). Leave it unset or use numStreamThreads 1.`);
    }
  }
  if (resolved.numStandbyReplicas > 0) {
    throw new ConfigError(
      `numStandbyReplicas cannot be used with numStreamThreads ${n} yet: the threads of one process share its state directory, and a standby could be placed on a sibling thread of its active task. Use numStreamThreads 1 (run more instances) or numStandbyReplicas 0.`,
    );
  }
  const { logger: _l, uncaughtExceptionHandler: _u, clock: _c, faultInjection: _f, numStreamThreads: _n, ...rest } = config;
  try {
    structuredClone(rest);
  } catch (e) {
    const bad = Object.keys(rest).find((k) => {
      try {
        structuredClone((rest as Record<string, unknown>)[k]);
        return false;
      } catch {
        return true;
      }
    });
    throw new ConfigError(
      `${bad ?? 'the config'} cannot be sent to the stream threads (worker threads) with numStreamThreads ${n}: ${(e as Error).message}. Only data crosses to a worker: a function in it (e.g. kafka.sasl.oauthBearerProvider, kafka.socketFactory) needs numStreamThreads 1.`,
    );
  }
  return { ...rest, numStreamThreads: 1 };
}

// ---- the shell -----------------------------------------------------------------------------------

/** What the shell needs of the KafkaStreams object it serves. */
export interface ShellHost {
  readonly config: ResolvedConfig;
  readonly topology: Topology;
  readonly rawConfig: StreamsConfig;
  readonly href: string;
  readonly exportName: string;
  state(): StreamsState;
  setState(to: StreamsState): void;
  /** Emits to the app's listeners (only if any). */
  emit(event: string, payload: unknown): void;
  /** The app goes to ERROR with this error of thread `threadId` (SHUTDOWN_CLIENT); `errorEmitted`: the thread already sent the error event. */
  fail(error: Error, errorEmitted: boolean, threadId: string): void;
}

/** How long a synchronous read waits for a thread (it waits at most for the thread's current batch). */
const SYNC_TIMEOUT_MS = 10_000;
/** sync()'s answer for a thread whose worker has stopped. */
const GONE: unique symbol = Symbol('gone');
const MAX_REPLACEMENTS = 10;

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(e: Error): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

interface Thread {
  readonly index: number;
  readonly name: string;
  worker: Worker;
  port: MessagePort;
  signal: Int32Array;
  state: StreamsState;
  alive: boolean;
  ready: boolean;
  /** The shell asked this worker to stop: its exit is expected. */
  stopping: boolean;
  /** Its start() resolved: from now on an ERROR is a failure for the uncaught exception handler. */
  startedOk: boolean;
  failing: boolean;
  replacements: number;
  crash: Error | undefined;
  started: Deferred;
  exited: Promise<number>;
  lastMetrics: StreamsMetrics | undefined;
}

interface Claim {
  readonly owner: Worker;
  readonly token: number;
  readonly taskId: string;
  granted: boolean;
}

export class StreamThreads {
  private readonly threads: Thread[] = [];
  private readonly listening = new Set<string>();
  private readonly init: StreamsConfig;
  private readonly description: string;
  private seq = 0;
  private closing = false;
  private readonly asks = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  /** Task directory claims: the holder of each task, and every claim by `<worker serial>:<token>`. */
  private readonly holders = new Map<string, { owner: Worker; count: number }>();
  private readonly claims = new Map<string, Claim>();
  private waiting: string[] = [];
  private readonly serials = new WeakMap<Worker, number>();
  private nextSerial = 0;
  private cleaning = false;
  private cleanupTimer: NodeJS.Timeout | undefined;
  /** Set when the app failed: resolves when every thread has stopped. */
  stopped: Promise<void> | undefined;

  constructor(private readonly host: ShellHost) {
    this.init = workerConfig(host.rawConfig, host.config);
    this.description = String(host.topology.describe());
  }

  private get cfg(): ResolvedConfig {
    return this.host.config;
  }

  private spawn(index: number, replacements = 0): Thread {
    const { port1, port2 } = new MessageChannel();
    const signal = new SharedArrayBuffer(4);
    const name = threadName(this.cfg.applicationId, index);
    const init: WorkerInit = {
      index,
      threadName: name,
      href: this.host.href,
      exportName: this.host.exportName,
      config: this.init,
      description: this.description,
      listening: [...this.listening],
      signal,
      syncPort: port2,
    };
    const worker = new Worker(new URL('./kafka/streamThreadWorker.js', import.meta.url), { workerData: init, transferList: [port2] });
    let exited!: (code: number) => void;
    const th: Thread = {
      index,
      name,
      worker,
      port: port1,
      signal: new Int32Array(signal),
      state: 'CREATED',
      alive: true,
      ready: false,
      stopping: false,
      startedOk: false,
      failing: false,
      replacements,
      crash: undefined,
      started: deferred(),
      exited: new Promise<number>((r) => (exited = r)),
      lastMetrics: undefined,
    };
    worker.on('message', (m: FromWorker) => this.onMessage(th, worker, m));
    worker.on('error', (e) => {
      th.crash = e;
      this.cfg.logger.error(`stream thread ${name} crashed: ${e.message}`, { thread: name });
    });
    worker.on('exit', (code) => {
      this.onExit(th, worker, code);
      exited(code);
    });
    return th;
  }

  /**
   * Starts every thread at once (creating the internal topics concurrently is safe: an existing topic
   * is not an error). Joining together, they can share the first generation, whose assignment
   * interleaves the sub-topologies' tasks; a thread joining after another that already owns every
   * task gets the tasks that one does not keep (the assignor keeps its first ones).
   */
  async start(): Promise<void> {
    const cfg = this.cfg;
    this.cleanupTimer = setInterval(() => void this.cleanStateDirs(), Math.max(1_000, Math.min(cfg.stateCleanupDelayMs, 60_000)));
    this.cleanupTimer.unref();
    for (let i = 0; i < cfg.numStreamThreads; i++) this.threads.push(this.spawn(i));
    await Promise.all(this.threads.map((th) => this.startThread(th)));
  }

  private async startThread(th: Thread): Promise<void> {
    th.worker.postMessage({ t: 'start' } satisfies ToWorker);
    await Promise.race([th.started.promise, th.exited.then((code) => Promise.reject(th.crash ?? new StreamsError(`stream thread ${th.name} exited while starting (exit code ${code})`)))]);
  }

  // ---- messages from the threads ----

  private onMessage(th: Thread, from: Worker, m: FromWorker): void {
    if (m.t === 'release') return this.release(from, m.token);
    if (m.t === 'claim') return this.claim(from, m.token, m.taskId);
    if (from !== th.worker) return; // a replaced worker finishing
    switch (m.t) {
      case 'ready':
        th.ready = true;
        return;
      case 'log': {
        const meta = { ...m.meta, thread: th.name };
        const logger = this.cfg.logger;
        if (m.level === 'error') logger.error(m.message, meta);
        else if (m.level === 'warn') logger.warn(m.message, meta);
        else if (m.level === 'info') logger.info(m.message, meta);
        else logger.debug?.(m.message, meta);
        return;
      }
      case 'state': {
        th.state = m.to;
        this.cfg.logger.debug?.(`stream thread ${th.name}: ${m.from} -> ${m.to}`, { thread: th.name });
        // An ERROR while starting rejects the thread's start instead (startFailed).
        if (m.to === 'ERROR') {
          if (th.startedOk) this.threadFailed(th, m.error !== undefined ? fromWire(m.error) : new StreamsError(`stream thread ${th.name} failed`), true);
        } else this.recompute();
        return;
      }
      case 'event': {
        const payload = m.name === 'error' ? { ...m.payload, error: fromWire(m.payload.error as WireError), threadId: th.name } : m.payload;
        this.host.emit(m.name, payload);
        return;
      }
      case 'committed':
        th.replacements = 0;
        return;
      case 'started':
        th.startedOk = true;
        th.started.resolve();
        this.recompute();
        return;
      case 'startFailed':
        th.started.reject(fromWire(m.error));
        return;
      case 'reply': {
        const ask = this.asks.get(m.id);
        if (ask === undefined) return;
        this.asks.delete(m.id);
        if (m.ok) ask.resolve(m.value);
        else ask.reject(fromWire(m.error!));
        return;
      }
    }
  }

  private onExit(th: Thread, worker: Worker, code: number): void {
    for (const [key, c] of [...this.claims]) if (c.owner === worker) this.dropClaim(key);
    this.grantWaiting();
    if (worker !== th.worker) return;
    th.alive = false;
    th.ready = false;
    th.state = 'NOT_RUNNING';
    if (th.stopping || this.closing) return;
    if (!th.startedOk) {
      th.started.reject(th.crash ?? new StreamsError(`stream thread ${th.name} exited (code ${code}) while starting`));
      return;
    }
    this.threadFailed(th, th.crash ?? new StreamsError(`stream thread ${th.name} stopped unexpectedly (exit code ${code}); its tasks go to the other members of the group once its session times out`), false);
  }

  /** Kafka Streams' uncaught exception handler, per thread: REPLACE_THREAD starts a new worker in its place. */
  private threadFailed(th: Thread, error: Error, errorEmitted: boolean): void {
    if (th.failing || this.closing) return;
    th.failing = true;
    let response: 'REPLACE_THREAD' | 'SHUTDOWN_CLIENT' = 'SHUTDOWN_CLIENT';
    try {
      response = this.cfg.uncaughtExceptionHandler?.(error) ?? 'SHUTDOWN_CLIENT';
    } catch (e) {
      this.cfg.logger.error(`uncaughtExceptionHandler threw (${(e as Error).message}); shutting down`);
    }
    if (response === 'REPLACE_THREAD' && th.replacements < MAX_REPLACEMENTS) {
      this.cfg.logger.warn(`replacing stream thread ${th.name} after: ${error.message} (replacement ${th.replacements + 1} of at most ${MAX_REPLACEMENTS} in a row)`, { thread: th.name });
      if (!errorEmitted) this.host.emit('error', { error, threadId: th.name });
      void this.replace(th);
      return;
    }
    this.host.fail(error, errorEmitted, th.name);
    this.stopped = this.stopAll(30_000);
  }

  private async replace(th: Thread): Promise<void> {
    await this.stopThread(th, 30_000);
    if (this.closing) return;
    const next = this.spawn(th.index, th.replacements + 1);
    this.threads[th.index] = next;
    this.recompute();
    try {
      await this.startThread(next);
    } catch (e) {
      if (!next.failing) this.threadFailed(next, e as Error, false);
    }
  }

  /** The app's state from its threads': RUNNING when every thread is. */
  private recompute(): void {
    const s = this.host.state();
    if (this.closing || (s !== 'RUNNING' && s !== 'REBALANCING')) return;
    this.host.setState(this.threads.every((t) => t.state === 'RUNNING') ? 'RUNNING' : 'REBALANCING');
  }

  // ---- task directory claims ----

  private claim(owner: Worker, token: number, taskId: string): void {
    const key = `${this.serialOf(owner)}:${token}`;
    this.claims.set(key, { owner, token, taskId, granted: false });
    this.waiting.push(key);
    this.grantWaiting();
  }

  private release(owner: Worker, token: number): void {
    this.dropClaim(`${this.serialOf(owner)}:${token}`);
    this.grantWaiting();
  }

  /** A number per worker (its threadId turns -1 when it stops, before its exit event). */
  private serialOf(worker: Worker): number {
    let n = this.serials.get(worker);
    if (n === undefined) this.serials.set(worker, (n = ++this.nextSerial));
    return n;
  }

  private dropClaim(key: string): void {
    const c = this.claims.get(key);
    if (c === undefined) return;
    this.claims.delete(key);
    if (!c.granted) {
      this.waiting = this.waiting.filter((k) => k !== key);
      return;
    }
    const h = this.holders.get(c.taskId);
    if (h !== undefined && --h.count <= 0) this.holders.delete(c.taskId);
  }

  private grantWaiting(): void {
    if (this.cleaning) return;
    this.waiting = this.waiting.filter((key) => {
      const c = this.claims.get(key);
      if (c === undefined) return false;
      const h = this.holders.get(c.taskId);
      if (h !== undefined && h.owner !== c.owner) return true;
      if (h === undefined) this.holders.set(c.taskId, { owner: c.owner, count: 1 });
      else h.count++;
      c.granted = true;
      try {
        c.owner.postMessage({ t: 'grant', token: c.token } satisfies ToWorker);
      } catch {
        /* exiting: its exit drops the claim */
      }
      return false;
    });
  }

  /** Removes idle directories of tasks no thread of this process holds; no claim is granted meanwhile. */
  private async cleanStateDirs(): Promise<void> {
    if (this.cleaning || this.closing) return;
    this.cleaning = true;
    try {
      await cleanUnownedTaskDirs({
        stateDir: this.cfg.stateDir,
        applicationId: this.cfg.applicationId,
        ownedTaskIds: [...this.holders.keys()],
        delayMs: this.cfg.stateCleanupDelayMs,
        now: Date.now(),
      });
    } catch (e) {
      this.cfg.logger.warn(`state directory cleanup failed: ${(e as Error).message}`);
    } finally {
      this.cleaning = false;
      this.grantWaiting();
    }
  }

  // ---- events ----

  /** The app has `count` listeners of `event`: threads send it only while someone listens. */
  listen(event: string, count: number): void {
    if (event === 'app.state') return; // the shell's own
    const on = count > 0;
    if (on === this.listening.has(event)) return;
    if (on) this.listening.add(event);
    else this.listening.delete(event);
    for (const th of this.threads) if (th.alive) th.worker.postMessage({ t: 'listen', event, on } satisfies ToWorker);
  }

  // ---- synchronous reads ----

  /** A synchronous request to a thread; `GONE` if its worker has stopped (it holds no tasks any more). */
  private sync(th: Thread, req: SyncRequest): unknown {
    if (th.worker.threadId === -1) return GONE;
    Atomics.store(th.signal, 0, 0);
    th.port.postMessage(req);
    const deadline = Date.now() + SYNC_TIMEOUT_MS;
    for (;;) {
      const got = receiveMessageOnPort(th.port);
      if (got !== undefined) {
        const r = got.message as SyncReply;
        if (r.id !== req.id) continue; // the late answer of a request that timed out
        if (!r.ok) throw fromWire(r.error!);
        return r.value;
      }
      if (th.worker.threadId === -1) return GONE; // stopped before it answered (its exit event is still queued)
      const left = deadline - Date.now();
      if (left <= 0) throw new StreamsError(`stream thread ${th.name} did not answer within ${SYNC_TIMEOUT_MS} ms (it may be stuck or exiting); try again`, { retriable: true });
      Atomics.wait(th.signal, 0, 0, Math.min(left, 50));
      Atomics.store(th.signal, 0, 0);
    }
  }

  private live(): Thread[] {
    return this.threads.filter((t) => t.alive && t.ready);
  }

  /** A read-only view over every thread's tasks (each answers for the tasks it runs). */
  store<K, V>(name: string): ReadOnlyKeyValueStore<K, V> {
    const call = (th: Thread, method: 'get' | 'range' | 'all' | 'prefixScan' | 'approximateNumEntries', args: readonly unknown[]): unknown => this.sync(th, { id: ++this.seq, op: 'store', name, method, args });
    const every = (method: 'range' | 'all' | 'prefixScan', args: readonly unknown[]): KeyValue<K, V>[] =>
      this.live().flatMap((th) => {
        const r = call(th, method, args);
        return r === GONE ? [] : (r as KeyValue<K, V>[]);
      });
    return {
      name,
      get: (key) => {
        for (const th of this.live()) {
          const v = call(th, 'get', [key]);
          if (v !== undefined && v !== GONE) return v as V;
        }
        return undefined;
      },
      range: (from, to) => every('range', [from, to]),
      all: () => every('all', []),
      prefixScan: <P>(prefix: P, serde: Serde<P>) => every('prefixScan', [serde.serialize(prefix, `${this.cfg.applicationId}-${name}-changelog`)]),
      approximateNumEntries: () =>
        this.live().reduce((n, th) => {
          const r = call(th, 'approximateNumEntries', []);
          return n + (r === GONE ? 0 : (r as number));
        }, 0),
    };
  }

  private threadMetrics(): StreamsMetrics[] {
    const out: StreamsMetrics[] = [];
    for (const th of this.threads) {
      if (th.alive && th.ready) {
        try {
          const m = this.sync(th, { id: ++this.seq, op: 'metrics' });
          if (m !== GONE) th.lastMetrics = m as StreamsMetrics;
        } catch {
          /* stuck or exiting: its last metrics */
        }
      }
      if (th.lastMetrics !== undefined) out.push(th.lastMetrics);
    }
    return out;
  }

  /** The threads' metrics, summed (tasks, counters, rates) and combined (latency, lag). */
  metrics(state: StreamsState): StreamsMetrics {
    const all = this.threadMetrics();
    const sum = (f: (m: StreamsMetrics) => number): number => all.reduce((n, m) => n + f(m), 0);
    const merge = (f: (m: StreamsMetrics) => Readonly<Record<string, number>>): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const m of all) for (const [k, v] of Object.entries(f(m))) out[k] = (out[k] ?? 0) + v;
      return out;
    };
    const commits = sum((m) => m.commits);
    return {
      state,
      tasks: all.flatMap((m) => m.tasks).sort(),
      standbyTasks: all.flatMap((m) => m.standbyTasks).sort(),
      recordsProcessed: sum((m) => m.recordsProcessed),
      recordsPerSecond: sum((m) => m.recordsPerSecond),
      droppedRecords: merge((m) => m.droppedRecords),
      commits,
      commitLatencyAvgMs: commits === 0 ? 0 : sum((m) => m.commitLatencyAvgMs * m.commits) / commits,
      commitLatencyMaxMs: all.reduce((n, m) => Math.max(n, m.commitLatencyMaxMs), 0),
      lag: merge((m) => m.lag),
    };
  }

  metadataForLocalThreads(): ThreadMetadata[] {
    return this.threads.map((th) => {
      let m: StreamsMetrics | undefined;
      if (th.alive && th.ready) {
        try {
          const r = this.sync(th, { id: ++this.seq, op: 'metrics' });
          if (r !== GONE) th.lastMetrics = r as StreamsMetrics;
        } catch {
          /* stuck: its last metrics */
        }
        m = th.lastMetrics;
      }
      return { threadName: th.name, threadState: th.state, activeTasks: th.alive ? (m?.tasks ?? []) : [], standbyTasks: th.alive ? (m?.standbyTasks ?? []) : [] };
    });
  }

  // ---- asynchronous questions (answered by any running thread) ----

  private ask<T>(msg: { op: 'allMetadata' } | { op: 'queryMetadataForKey'; store: string; key: Uint8Array }): Promise<T> {
    const th = this.threads.find((t) => t.alive && t.state !== 'CREATED' && t.state !== 'ERROR') ?? this.threads.find((t) => t.alive);
    if (th === undefined) return Promise.reject(new StreamsError('the app has no running stream thread to answer'));
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.asks.set(id, { resolve: resolve as (v: unknown) => void, reject });
      th.worker.postMessage({ t: 'ask', id, ...msg } as ToWorker);
      void th.exited.then(() => {
        if (this.asks.delete(id)) reject(new StreamsError(`stream thread ${th.name} stopped before it answered; try again`, { retriable: true }));
      });
    });
  }

  allMetadata(): Promise<StreamsMetadata[]> {
    return this.ask({ op: 'allMetadata' });
  }

  queryMetadataForKey(store: string, keyBytes: Uint8Array): Promise<KeyQueryMetadata> {
    return this.ask({ op: 'queryMetadataForKey', store, key: keyBytes });
  }

  // ---- stopping ----

  /** Asks a thread to close (commit, then leave) and waits for its worker to exit; terminates it after timeoutMs. */
  private async stopThread(th: Thread, timeoutMs: number): Promise<void> {
    th.stopping = true;
    if (!th.alive) return;
    try {
      th.worker.postMessage({ t: 'close', timeoutMs } satisfies ToWorker);
    } catch {
      /* exiting */
    }
    let timer: NodeJS.Timeout | undefined;
    const exitedInTime = await Promise.race([th.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs + 5_000)))]);
    clearTimeout(timer);
    if (!exitedInTime) {
      this.cfg.logger.warn(`stream thread ${th.name} did not close within ${timeoutMs} ms; terminating it`, { thread: th.name });
      await th.worker.terminate();
    }
  }

  private async stopAll(timeoutMs: number): Promise<void> {
    await Promise.all(this.threads.map((th) => this.stopThread(th, timeoutMs)));
  }

  /** close(): every thread commits and leaves, together. */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
    await this.stopped;
    await this.stopAll(timeoutMs);
    for (const ask of this.asks.values()) ask.reject(new StreamsError('the app closed before a stream thread answered'));
    this.asks.clear();
  }

  /** Test hook: ends a thread's worker abruptly (like a crash of that thread). */
  terminateForTesting(index: number): Promise<number> {
    const th = this.threads[index];
    if (th === undefined) throw new StreamsError(`no stream thread ${index}`);
    return th.worker.terminate();
  }
}

/** Test hook (not exported by the package): ends stream thread `index` (from 0) abruptly, like a crash of that thread. */
export function terminateStreamThreadForTesting(app: object, index: number): Promise<number> {
  const threads = (app as { threads?: StreamThreads }).threads;
  if (threads === undefined) throw new StreamsError('terminateStreamThreadForTesting: the app has one stream thread (numStreamThreads 1)');
  return threads.terminateForTesting(index);
}
