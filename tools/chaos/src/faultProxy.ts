/**
 * A TCP fault proxy for Kafka clients: it sits between apps and the broker and can, on demand or at
 * random times, **cut** connections (close both sides), **stall** them (stop forwarding for N ms;
 * the data is held back, not lost) and **reset** them (RST to both sides). A fault can also wait for
 * the next request of given API keys (EndTxn, Fetch, ...) and hit that connection just after the
 * request went upstream, so that requests fail or time out mid-commit and mid-fetch.
 *
 * Advertised addresses. A Kafka client bootstraps from one address, then connects to the addresses
 * the broker advertises in Metadata (and FindCoordinator) responses, which would bypass a plain TCP
 * proxy. There are two ways round that: start the broker with an advertised listener pointing at the
 * proxy, or rewrite those responses. We rewrite, because it works against any broker without
 * restarting it: the shared test broker, the chaos run's own broker, a KAFKA_BROKERS cluster; and it
 * leaves the broker's real address to everyone else (the verifier, the command producer), so only
 * the apps under test see the faults. The cost is a little protocol parsing, kept small:
 *   - requests are only *read*, never changed: each frame is `int32 size, int16 api_key,
 *     int16 api_version, int32 correlation_id, ...`; the proxy remembers api key and version per
 *     correlation id, per connection;
 *   - responses are `int32 size, int32 correlation_id, ...`; those answering Metadata (key 3) or
 *     FindCoordinator (key 10) are buffered whole, their broker/coordinator host and port replaced
 *     by a listener of this proxy that forwards to that broker (one listener per upstream broker,
 *     opened on first sight), and re-framed; every other response streams through untouched.
 *   Both the classic and the flexible encodings (Metadata v9+, FindCoordinator v3+: compact strings,
 *   tagged fields, batched coordinators in v4+) are handled, so kafkajs and librdkafka both work.
 *   DescribeCluster (key 60) is not rewritten; kafkajs does not send it.
 */
import { Socket, createServer, type AddressInfo, type Server } from 'node:net';

export const ApiKey = { Produce: 0, Fetch: 1, ListOffsets: 2, Metadata: 3, OffsetCommit: 8, OffsetFetch: 9, FindCoordinator: 10, JoinGroup: 11, Heartbeat: 12, SyncGroup: 14, InitProducerId: 22, AddPartitionsToTxn: 24, AddOffsetsToTxn: 25, EndTxn: 26, TxnOffsetCommit: 28 } as const;

/** The requests of a commit of the runtime's transactional protocol. */
export const COMMIT_APIS: readonly number[] = [ApiKey.AddPartitionsToTxn, ApiKey.AddOffsetsToTxn, ApiKey.TxnOffsetCommit, ApiKey.EndTxn];
export const FETCH_APIS: readonly number[] = [ApiKey.Fetch];

export type ProxyFaultKind = 'cut' | 'stall' | 'reset';

export interface ProxyConnection {
  readonly id: number;
  /** The upstream broker address this connection forwards to. */
  readonly upstream: string;
  readonly openedAt: number;
  /** Api keys of the requests sent upstream and not yet answered. */
  inFlight(): number[];
  isOpen(): boolean;
}

export interface ProxyFault {
  readonly kind: ProxyFaultKind;
  readonly at: number;
  readonly connections: number;
  /** For request-triggered faults: the api key that triggered it. */
  readonly apiKey?: number;
  readonly stallMs?: number;
}

export interface FaultProxyOptions {
  /** Bootstrap address of the real broker, `host:port`. */
  readonly upstream: string;
  /** Interface to listen on (default 127.0.0.1); also the host written into rewritten responses. */
  readonly host?: string;
}

interface Listener {
  readonly server: Server;
  readonly port: number;
}

const splitAddr = (a: string): { host: string; port: number } => {
  const i = a.lastIndexOf(':');
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
};

export class FaultProxy {
  readonly host: string;
  private readonly listeners = new Map<string, Promise<Listener>>();
  private readonly conns = new Set<Conn>();
  private readonly triggers = new Set<{ apis: ReadonlySet<number>; fire: (c: Conn, apiKey: number) => void }>();
  private seq = 0;
  private closed = false;
  readonly faults: ProxyFault[] = [];
  readonly stats = { accepted: 0, metadataRewrites: 0, coordinatorRewrites: 0 };
  private bootstrapPort = 0;

  private constructor(readonly upstream: string, host: string) {
    this.host = host;
  }

  static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
    const p = new FaultProxy(opts.upstream, opts.host ?? '127.0.0.1');
    p.bootstrapPort = (await p.listenerFor(opts.upstream)).port;
    return p;
  }

  /** What the clients under test use as their bootstrap broker list. */
  get bootstrap(): string {
    return `${this.host}:${this.bootstrapPort}`;
  }

  /** Proxy ports by upstream address (those opened so far). */
  async ports(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [u, l] of this.listeners) out.set(u, (await l).port);
    return out;
  }

  connections(): Conn[] {
    return [...this.conns].filter((c) => c.isOpen());
  }

  /** Closes (FIN) both sides of every matching open connection; returns how many. */
  cut(filter: (c: Conn) => boolean = () => true): number {
    return this.apply('cut', this.connections().filter(filter));
  }

  /** Sends RST to both sides of every matching open connection; returns how many. */
  reset(filter: (c: Conn) => boolean = () => true): number {
    return this.apply('reset', this.connections().filter(filter));
  }

  /** Stops forwarding on every matching open connection for `ms` (data held back); returns how many. */
  stall(ms: number, filter: (c: Conn) => boolean = () => true): number {
    return this.apply('stall', this.connections().filter(filter), ms);
  }

  /**
   * Waits for the next request with one of `apiKeys` (on any connection), and right after it was
   * forwarded upstream applies `kind` to that connection: the broker may act on the request, the
   * client does not get (or gets late) the answer. Rejects after `timeoutMs`.
   */
  faultOnRequest(apiKeys: readonly number[], kind: ProxyFaultKind, opts: { stallMs?: number; timeoutMs?: number } = {}): Promise<ProxyFault> {
    return new Promise((resolve, reject) => {
      const trigger = {
        apis: new Set(apiKeys),
        fire: (c: Conn, apiKey: number): void => {
          this.triggers.delete(trigger);
          clearTimeout(timer);
          // After the current chunk was written upstream.
          setImmediate(() => {
            this.apply(kind, [c], opts.stallMs, apiKey);
            resolve(this.faults.at(-1)!);
          });
        },
      };
      const timer = setTimeout(() => {
        this.triggers.delete(trigger);
        reject(new Error(`faultProxy: no request with api key ${apiKeys.join('/')} within ${opts.timeoutMs ?? 30_000} ms`));
      }, opts.timeoutMs ?? 30_000);
      this.triggers.add(trigger);
    });
  }

  /**
   * Random faults until the returned function is called: every `minMs`–`maxMs` one of `kinds` hits
   * all open connections (or, with `oneConnection`, one of them). `rnd(n)` picks an integer < n.
   */
  randomFaults(opts: { minMs: number; maxMs: number; kinds?: readonly ProxyFaultKind[]; stallMs?: readonly [number, number]; oneConnection?: boolean; rnd?: (n: number) => number; onFault?: (f: ProxyFault) => void }): () => void {
    const rnd = opts.rnd ?? ((n: number) => Math.floor(Math.random() * n));
    const kinds = opts.kinds ?? ['cut', 'stall', 'reset'];
    const [s0, s1] = opts.stallMs ?? [500, 3_000];
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const next = (): void => {
      timer = setTimeout(() => {
        if (stopped) return;
        const kind = kinds[rnd(kinds.length)]!;
        const open = this.connections();
        const targets = opts.oneConnection && open.length > 0 ? [open[rnd(open.length)]!] : open;
        if (targets.length > 0) {
          this.apply(kind, targets, s0 + rnd(Math.max(1, s1 - s0)));
          opts.onFault?.(this.faults.at(-1)!);
        }
        next();
      }, opts.minMs + rnd(Math.max(1, opts.maxMs - opts.minMs)));
    };
    next();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.conns) c.kill('cut');
    for (const l of this.listeners.values()) {
      const { server } = await l;
      await new Promise<void>((r) => server.close(() => r()));
    }
  }

  private apply(kind: ProxyFaultKind, targets: readonly Conn[], stallMs = 1_000, apiKey?: number): number {
    for (const c of targets) {
      if (kind === 'stall') c.stall(stallMs);
      else c.kill(kind);
    }
    this.faults.push({ kind, at: Date.now(), connections: targets.length, ...(apiKey === undefined ? {} : { apiKey }), ...(kind === 'stall' ? { stallMs } : {}) });
    return targets.length;
  }

  /** The proxy listener that forwards to `upstream`, opened on first use. */
  listenerFor(upstream: string): Promise<Listener> {
    let l = this.listeners.get(upstream);
    if (l === undefined) {
      l = new Promise<Listener>((resolve, reject) => {
        const server = createServer((client) => this.accept(client, upstream));
        server.once('error', reject);
        server.listen(0, this.host, () => resolve({ server, port: (server.address() as AddressInfo).port }));
      });
      this.listeners.set(upstream, l);
    }
    return l;
  }

  private accept(client: Socket, upstream: string): void {
    if (this.closed) {
      client.destroy();
      return;
    }
    this.stats.accepted++;
    const conn = new Conn(++this.seq, upstream, client, this, (c, apiKey) => {
      for (const t of [...this.triggers]) if (t.apis.has(apiKey)) t.fire(c, apiKey);
    });
    this.conns.add(conn);
    conn.onClose(() => this.conns.delete(conn));
  }

  /** Rewrites one Metadata / FindCoordinator response frame (without its size prefix). */
  async rewrite(apiKey: number, version: number, frame: Buffer): Promise<Buffer> {
    const map = async (host: string, port: number): Promise<{ host: string; port: number }> => ({ host: this.host, port: (await this.listenerFor(`${host}:${port}`)).port });
    if (apiKey === ApiKey.Metadata) {
      this.stats.metadataRewrites++;
      return rewriteMetadata(frame, version, map);
    }
    this.stats.coordinatorRewrites++;
    return rewriteFindCoordinator(frame, version, map);
  }
}

/** One proxied connection: client socket <-> upstream socket. */
class Conn implements ProxyConnection {
  readonly openedAt = Date.now();
  private readonly server: Socket;
  private open = true;
  private readonly pending = new Map<number, { apiKey: number; version: number }>();
  private readonly closeListeners: (() => void)[] = [];
  private stallTimer: NodeJS.Timeout | undefined;
  // client -> upstream framing state
  private reqHead = Buffer.alloc(0);
  private reqSkip = 0;
  // upstream -> client framing state
  private resHead = Buffer.alloc(0);
  private resSkip = 0;
  private resCollect: { parts: Buffer[]; need: number; apiKey: number; version: number } | undefined;
  /** Writes to the client, in order (a rewrite may wait for a listener to open). */
  private toClient: Promise<void> = Promise.resolve();

  constructor(
    readonly id: number,
    readonly upstream: string,
    private readonly client: Socket,
    private readonly proxy: FaultProxy,
    private readonly onRequest: (c: Conn, apiKey: number) => void,
  ) {
    const { host, port } = splitAddr(upstream);
    this.server = new Socket();
    client.pause();
    this.server.connect(port, host, () => client.resume());
    client.setNoDelay(true);
    this.server.setNoDelay(true);
    client.on('data', (d: Buffer) => this.fromClient(d));
    this.server.on('data', (d: Buffer) => this.fromServer(d));
    for (const s of [client, this.server]) {
      s.on('error', () => this.kill('cut'));
      s.on('close', () => this.kill('cut'));
      s.on('end', () => this.kill('cut'));
    }
  }

  isOpen(): boolean {
    return this.open;
  }

  inFlight(): number[] {
    return [...this.pending.values()].map((p) => p.apiKey);
  }

  onClose(f: () => void): void {
    this.closeListeners.push(f);
  }

  stall(ms: number): void {
    if (!this.open) return;
    this.client.pause();
    this.server.pause();
    clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(() => {
      if (!this.open) return;
      this.client.resume();
      this.server.resume();
    }, ms);
  }

  kill(how: 'cut' | 'reset'): void {
    if (!this.open) return;
    this.open = false;
    clearTimeout(this.stallTimer);
    for (const s of [this.client, this.server]) {
      if (how === 'reset' && !s.destroyed && typeof s.resetAndDestroy === 'function' && s.readyState === 'open') s.resetAndDestroy();
      else s.destroy();
    }
    for (const f of this.closeListeners) f();
  }

  private fromClient(d: Buffer): void {
    if (!this.open) return;
    this.server.write(d);
    // Read request headers: size(4) api_key(2) api_version(2) correlation_id(4).
    let pos = 0;
    while (pos < d.length) {
      if (this.reqSkip > 0) {
        const n = Math.min(this.reqSkip, d.length - pos);
        this.reqSkip -= n;
        pos += n;
        continue;
      }
      const take = Math.min(12 - this.reqHead.length, d.length - pos);
      this.reqHead = Buffer.concat([this.reqHead, d.subarray(pos, pos + take)]);
      pos += take;
      if (this.reqHead.length < 12) break;
      const size = this.reqHead.readInt32BE(0);
      const apiKey = this.reqHead.readInt16BE(4);
      const version = this.reqHead.readInt16BE(6);
      const corr = this.reqHead.readInt32BE(8);
      this.reqHead = Buffer.alloc(0);
      this.reqSkip = size - 8;
      // Produce with acks=0 gets no response; nobody sends it here (idempotent/transactional producers use acks=-1).
      this.pending.set(corr, { apiKey, version });
      this.onRequest(this, apiKey);
    }
  }

  private fromServer(d: Buffer): void {
    if (!this.open) return;
    let pos = 0;
    while (pos < d.length) {
      if (this.resCollect !== undefined) {
        const c = this.resCollect;
        const n = Math.min(c.need, d.length - pos);
        c.parts.push(d.subarray(pos, pos + n));
        c.need -= n;
        pos += n;
        if (c.need === 0) {
          this.resCollect = undefined;
          const frame = Buffer.concat(c.parts);
          this.sendToClient(
            this.proxy.rewrite(c.apiKey, c.version, frame).then((body) => {
              const size = Buffer.alloc(4);
              size.writeInt32BE(body.length);
              return Buffer.concat([size, body]);
            }),
          );
        }
        continue;
      }
      if (this.resSkip > 0) {
        const n = Math.min(this.resSkip, d.length - pos);
        this.sendToClient(d.subarray(pos, pos + n));
        this.resSkip -= n;
        pos += n;
        continue;
      }
      const take = Math.min(8 - this.resHead.length, d.length - pos);
      this.resHead = Buffer.concat([this.resHead, d.subarray(pos, pos + take)]);
      pos += take;
      if (this.resHead.length < 8) break;
      const head = this.resHead;
      this.resHead = Buffer.alloc(0);
      const size = head.readInt32BE(0);
      const corr = head.readInt32BE(4);
      const req = this.pending.get(corr);
      this.pending.delete(corr);
      if (req !== undefined && (req.apiKey === ApiKey.Metadata || req.apiKey === ApiKey.FindCoordinator)) {
        this.resCollect = { parts: [head.subarray(4)], need: size - 4, apiKey: req.apiKey, version: req.version };
        if (this.resCollect.need === 0) {
          // Degenerate (no body): pass it on as it is.
          this.resCollect = undefined;
          this.sendToClient(head);
        }
      } else {
        this.sendToClient(head);
        this.resSkip = size - 4;
      }
    }
  }

  private sendToClient(b: Buffer | Promise<Buffer>): void {
    if (Buffer.isBuffer(b)) {
      // Fast path: nothing queued behind a rewrite.
      this.toClient = this.toClient.then(() => {
        if (this.open) this.client.write(b);
      });
      return;
    }
    this.toClient = this.toClient.then(async () => {
      const buf = await b.catch((e: unknown) => {
        // A response we cannot parse: fail loudly by cutting the connection, never forward a guess.
        process.stderr.write(`faultProxy: rewrite failed (${(e as Error).message}); cutting connection ${this.id}\n`);
        this.kill('cut');
        return undefined;
      });
      if (buf !== undefined && this.open) this.client.write(buf);
    });
  }
}

// --- Kafka protocol encoding, just what the two rewrites need -------------------------------------

class Reader {
  constructor(
    readonly buf: Buffer,
    public pos = 0,
  ) {}
  int16(): number {
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  uvarint(): number {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw new Error('truncated varint');
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
      shift += 7;
    }
  }
  /** A string (nullable), classic (int16 length) or compact (uvarint length + 1). */
  string(compact: boolean): string | null {
    const len = compact ? this.uvarint() - 1 : this.int16();
    if (len < 0) return null;
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    if (this.pos + len > this.buf.length) throw new Error('truncated string');
    this.pos += len;
    return s;
  }
  arrayLength(compact: boolean): number {
    return compact ? this.uvarint() - 1 : this.int32();
  }
  skipTaggedFields(): void {
    const n = this.uvarint();
    for (let i = 0; i < n; i++) {
      this.uvarint();
      this.pos += this.uvarint();
    }
  }
}

const uvarint = (n: number): Buffer => {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
};
const int16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const str = (s: string | null, compact: boolean): Buffer => {
  if (s === null) return compact ? uvarint(0) : int16(-1);
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([compact ? uvarint(b.length + 1) : int16(b.length), b]);
};

type AddrMap = (host: string, port: number) => Promise<{ host: string; port: number }>;

/** An error answer carries no address (host '', port -1): keep it as it is. */
const mapOrKeep = (map: AddrMap, host: string, port: number): Promise<{ host: string; port: number }> => (host === '' || port <= 0 ? Promise.resolve({ host, port }) : map(host, port));

/**
 * Metadata response (frame = correlation id onwards): header [tagged fields if v9+],
 * [throttle_time_ms if v3+], brokers[node_id, host, port, rack (v1+), tagged fields (v9+)], rest.
 */
export async function rewriteMetadata(frame: Buffer, version: number, map: AddrMap): Promise<Buffer> {
  const flexible = version >= 9;
  const r = new Reader(frame, 4);
  if (flexible) r.skipTaggedFields();
  if (version >= 3) r.int32();
  const prefix = frame.subarray(0, r.pos);
  const n = r.arrayLength(flexible);
  const parts: Buffer[] = [prefix, flexible ? uvarint(n + 1) : int32(n)];
  for (let i = 0; i < n; i++) {
    const nodeId = r.int32();
    const host = r.string(flexible) ?? '';
    const port = r.int32();
    const rack = version >= 1 ? r.string(flexible) : undefined;
    const tagStart = r.pos;
    if (flexible) r.skipTaggedFields();
    const to = await mapOrKeep(map, host, port);
    parts.push(int32(nodeId), str(to.host, flexible), int32(to.port));
    if (version >= 1) parts.push(str(rack ?? null, flexible));
    if (flexible) parts.push(frame.subarray(tagStart, r.pos));
  }
  parts.push(frame.subarray(r.pos));
  return Buffer.concat(parts);
}

/**
 * FindCoordinator response: header [tagged fields if v3+], throttle (v1+), then either one
 * coordinator (v0–v3: error_code, error_message (v1+), node_id, host, port) or, v4+, an array of
 * coordinators (key, node_id, host, port, error_code, error_message, tagged fields); rest.
 */
export async function rewriteFindCoordinator(frame: Buffer, version: number, map: AddrMap): Promise<Buffer> {
  const flexible = version >= 3;
  const r = new Reader(frame, 4);
  if (flexible) r.skipTaggedFields();
  if (version >= 1) r.int32();
  if (version <= 3) {
    r.int16();
    if (version >= 1) r.string(flexible);
    r.int32();
    const prefix = frame.subarray(0, r.pos);
    const host = r.string(flexible) ?? '';
    const port = r.int32();
    const to = await mapOrKeep(map, host, port);
    return Buffer.concat([prefix, str(to.host, flexible), int32(to.port), frame.subarray(r.pos)]);
  }
  const prefix = frame.subarray(0, r.pos);
  const n = r.arrayLength(true);
  const parts: Buffer[] = [prefix, uvarint(n + 1)];
  for (let i = 0; i < n; i++) {
    const keyStart = r.pos;
    r.string(true);
    r.int32();
    const head = frame.subarray(keyStart, r.pos);
    const host = r.string(true) ?? '';
    const port = r.int32();
    const tailStart = r.pos;
    r.int16();
    r.string(true);
    r.skipTaggedFields();
    const to = await mapOrKeep(map, host, port);
    parts.push(head, str(to.host, true), int32(to.port), frame.subarray(tailStart, r.pos));
  }
  parts.push(frame.subarray(r.pos));
  return Buffer.concat(parts);
}
