/**
 * A plain TCP proxy for database connections in tests: forwards bytes both ways and can cut every
 * connection now, or cut a connection right after the next bytes it forwards from the client (so a
 * COMMIT reaches the server and its answer never reaches the client).
 *
 * tools/chaos/src/faultProxy.ts is a Kafka-protocol proxy (it frames Kafka requests and rewrites
 * Metadata responses), so it cannot stand between a client and PostgreSQL; this is its protocol-blind
 * counterpart.
 */
import { Socket, createServer, type AddressInfo, type Server } from 'node:net';

export class TcpProxy {
  private readonly pairs = new Set<{ client: Socket; server: Socket }>();
  private cutAfterClientData = false;
  cuts = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(upstream: { host: string; port: number }): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => {
      const up = new Socket();
      const pair = { client, server: up };
      proxy!.pairs.add(pair);
      const close = (): void => {
        client.destroy();
        up.destroy();
        proxy!.pairs.delete(pair);
      };
      client.pause();
      up.connect(upstream.port, upstream.host, () => client.resume());
      client.on('data', (d: Buffer) => {
        if (proxy!.cutAfterClientData) {
          proxy!.cutAfterClientData = false;
          // Let the bytes reach the server (the write callback: handed to the kernel), then cut
          // before its answer can come back.
          up.write(d, () => proxy!.cutPair(pair));
        } else up.write(d);
      });
      up.on('data', (d: Buffer) => client.write(d));
      for (const s of [client, up]) {
        s.on('error', close);
        s.on('close', close);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    proxy = new TcpProxy(server, (server.address() as AddressInfo).port);
    return proxy;
  }

  /** Number of open proxied connections. */
  get open(): number {
    return this.pairs.size;
  }

  /** Closes both sides of every open connection now; returns how many. */
  cutAll(): number {
    const n = this.pairs.size;
    for (const p of [...this.pairs]) this.cutPair(p);
    return n;
  }

  /** Cuts the connection whose client sends next, right after those bytes went upstream. */
  cutAfterNextClientWrite(): void {
    this.cutAfterClientData = true;
  }

  private cutPair(p: { client: Socket; server: Socket }): void {
    this.cuts++;
    p.client.destroy();
    p.server.destroy();
    this.pairs.delete(p);
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
