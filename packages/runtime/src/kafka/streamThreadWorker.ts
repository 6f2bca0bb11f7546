/**
 * One stream thread (numStreamThreads > 1): a worker thread that imports the topology module itself
 * and runs an inner KafkaStreams (numStreamThreads 1) as its own group member. It relays its state,
 * the events the app listens to, its logs and its answers to the shell on the main thread
 * (streamThreads.ts), and claims each task's directory there before the task opens it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Serde } from '@vltava/dsl';
import { KafkaStreams, type Logger, type StreamsConfig, type StreamsEvents } from '../index.js';
import { STREAM_THREADS, loadTopology, streamThreadContext, toWire, type FromWorker, type SyncReply, type SyncRequest, type TaskClaim, type ThreadsInternal, type ToWorker, type WorkerInit } from '../streamThreads.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: FromWorker): void => port.postMessage(m);

function log(level: 'debug' | 'info' | 'warn' | 'error', message: string, meta?: Readonly<Record<string, unknown>>): void {
  try {
    post({ t: 'log', level, message, ...(meta === undefined ? {} : { meta }) });
  } catch {
    // meta holds something a worker cannot send (a function, a socket): its JSON instead
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(JSON.stringify(meta, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x instanceof Error ? x.message : x))) as Record<string, unknown>;
    } catch {
      /* none */
    }
    post({ t: 'log', level, message, meta: json });
  }
}

const logger: Logger = {
  debug: (m, meta) => log('debug', m, meta),
  info: (m, meta) => log('info', m, meta),
  warn: (m, meta) => log('warn', m, meta),
  error: (m, meta) => log('error', m, meta),
};

let tokens = 0;
const grants = new Map<number, () => void>();
function claim(taskId: string): TaskClaim {
  const token = ++tokens;
  let released = false;
  const granted = new Promise<void>((r) => grants.set(token, r));
  post({ t: 'claim', token, taskId });
  return {
    granted,
    release: () => {
      if (released) return;
      released = true;
      grants.delete(token);
      post({ t: 'release', token });
    },
  };
}

/** A serde that hands over bytes serialized on the main thread (prefixScan, queryMetadataForKey). */
const bytes = (b: Uint8Array): Serde<unknown> => ({ name: 'bytes', serialize: () => Buffer.from(b.buffer, b.byteOffset, b.byteLength), deserialize: (d) => d });

let app: KafkaStreams | undefined;
let setupError: unknown;
streamThreadContext.name = init.threadName;
try {
  const topology = await loadTopology(init.href, init.exportName);
  const description = String(topology.describe());
  if (description !== init.description) {
    throw new Error(
      `stream thread ${init.threadName} imported a different topology from ${init.href} than the main thread did: the module must build the same topology every time it is imported (no randomness, no environment that differs between threads).`,
    );
  }
  const internal: ThreadsInternal = { kind: 'worker', threadName: init.threadName, claim };
  app = new KafkaStreams(topology, { ...init.config, logger, [STREAM_THREADS]: internal } as StreamsConfig);
} catch (e) {
  setupError = e;
}

if (app !== undefined) {
  const a = app;
  a.on('app.state', ({ from, to }) => post({ t: 'state', from, to, ...(to === 'ERROR' && a.health().error !== undefined ? { error: toWire(a.health().error) } : {}) }));
  const offCommitted = a.on('task.committed', () => {
    offCommitted();
    post({ t: 'committed' });
  });
  const relays = new Map<string, () => void>();
  const listen = (event: string, on: boolean): void => {
    if (!on) {
      relays.get(event)?.();
      relays.delete(event);
      return;
    }
    if (relays.has(event)) return;
    relays.set(
      event,
      a.on(event as keyof StreamsEvents, (p: unknown) => {
        const payload = p as Record<string, unknown>;
        post({ t: 'event', name: event, payload: event === 'error' ? { ...payload, error: toWire(payload.error) } : payload });
      }),
    );
  };
  for (const e of init.listening) listen(e, true);

  // Synchronous reads: the main thread waits in Atomics.wait for this answer.
  const signal = new Int32Array(init.signal);
  const answer = (req: SyncRequest): unknown => {
    if (req.op === 'metrics') return a.metrics();
    const store = a.store<unknown, unknown>(req.name);
    switch (req.method) {
      case 'get':
        return store.get(req.args[0]);
      case 'range':
        return [...store.range(req.args[0], req.args[1])];
      case 'all':
        return [...store.all()];
      case 'prefixScan':
        return [...store.prefixScan(undefined, bytes(req.args[0] as Uint8Array))];
      case 'approximateNumEntries':
        return store.approximateNumEntries();
    }
  };
  init.syncPort.on('message', (req: SyncRequest) => {
    let reply: SyncReply;
    try {
      reply = { id: req.id, ok: true, value: answer(req) };
    } catch (e) {
      reply = { id: req.id, ok: false, error: toWire(e) };
    }
    try {
      init.syncPort.postMessage(reply);
    } catch (e) {
      init.syncPort.postMessage({ id: req.id, ok: false, error: toWire(new Error(`the answer cannot be sent from the stream thread: ${(e as Error).message} (store values cross threads by structured clone)`)) } satisfies SyncReply);
    }
    Atomics.store(signal, 0, 1);
    Atomics.notify(signal, 0);
  });

  port.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'start':
        a.start().then(
          () => post({ t: 'started' }),
          (e: unknown) => post({ t: 'startFailed', error: toWire(e) }),
        );
        return;
      case 'listen':
        listen(m.event, m.on);
        return;
      case 'grant':
        grants.get(m.token)?.();
        grants.delete(m.token);
        return;
      case 'ask': {
        const q = m.op === 'allMetadata' ? a.allMetadata() : a.queryMetadataForKey(m.store, undefined, bytes(m.key));
        q.then(
          (value) => post({ t: 'reply', id: m.id, ok: true, value }),
          (e: unknown) => post({ t: 'reply', id: m.id, ok: false, error: toWire(e) }),
        );
        return;
      }
      case 'close':
        void a
          .close({ timeoutMs: m.timeoutMs })
          .catch(() => undefined)
          .finally(() => setImmediate(() => process.exit(0)));
        return;
    }
  });
  post({ t: 'ready' });
} else {
  port.on('message', (m: ToWorker) => {
    if (m.t === 'start') post({ t: 'startFailed', error: toWire(setupError) });
    if (m.t === 'close') process.exit(0);
  });
}
