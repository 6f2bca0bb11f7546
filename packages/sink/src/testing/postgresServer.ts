/**
 * A throwaway PostgreSQL server for tests: `initdb` into a temp dir, `pg_ctl start` on 127.0.0.1 and
 * a free port, trust auth, stopped (and deleted) on teardown. With `PGURL` or `DATABASE_URL` set it
 * uses that server instead. It never skips: with neither a URL nor the server binaries it throws an
 * error that says how to install them.
 *
 * As root, initdb and postgres refuse to run; the helper then runs them as the `postgres` user
 * (`runuser -u postgres --`) in a temp dir chowned to it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Whether this helper started it (false: PGURL / DATABASE_URL). */
  readonly owned: boolean;
  stop(): Promise<void>;
}

export class PostgresMissingError extends Error {
  constructor(detail: string) {
    super(
      `PostgreSQL is needed by the sink tests and none was found (${detail}). Install the server with ` +
        '`apt-get install -y postgresql-15` (Debian/Ubuntu; .ci/run does it), or point PGURL at a server you own ' +
        '(PGURL=postgres://user:pass@host:5432/db).',
    );
    this.name = 'PostgresMissingError';
  }
}

/** The directory with initdb / pg_ctl: PG_BIN, else the newest /usr/lib/postgresql/<v>/bin. */
export function postgresBinDir(opts: { root?: string; pgBin?: string | undefined } = {}): string {
  const fromEnv = 'pgBin' in opts ? opts.pgBin : process.env.PG_BIN;
  if (fromEnv !== undefined && existsSync(path.join(fromEnv, 'initdb'))) return fromEnv;
  const root = opts.root ?? '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new PostgresMissingError(`no initdb under ${root}/*/bin and PG_BIN is not set`);
  return path.join(root, versions[0]!, 'bin');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Starts a throwaway server (or returns the PGURL one). `fsync: false` (the default) for speed in tests. */
export async function startPostgres(opts: { fsync?: boolean } = {}): Promise<PostgresServer> {
  const external = process.env.PGURL ?? process.env.DATABASE_URL;
  if (external !== undefined && external !== '') {
    const u = new URL(external);
    return { url: external, host: u.hostname, port: Number(u.port || 5432), owned: false, stop: async () => undefined };
  }
  const bin = postgresBinDir();
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]): void => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args]] : [path.join(bin, cmd), args];
    const r = spawnSync(file, argv, { encoding: 'utf8', timeout: 120_000 });
    if (r.error !== undefined || r.status !== 0) {
      throw new Error(`postgres test server: ${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}): ${(r.stderr ?? '').slice(-1500)}${(r.stdout ?? '').slice(-500)}`);
    }
  };
  const dir = mkdtempSync(path.join(tmpdir(), 'vltava-pg-'));
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const data = path.join(dir, 'data');
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    const settings = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=100${opts.fsync === true ? '' : ' -c fsync=off -c synchronous_commit=off -c full_page_writes=off'}`;
    try {
      run('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-o', settings, '-w', '-t', '60', 'start']);
      break;
    } catch (e) {
      if (attempt >= 2) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }
  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    host: '127.0.0.1',
    port,
    owned: true,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
