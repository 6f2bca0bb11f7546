/**
 * A real, single-node Apache Kafka broker (KRaft: combined broker and controller on 127.0.0.1),
 * built from the official jars on Maven Central. No Docker needed: Java 17+ and Maven are enough.
 *
 *   const broker = await startLocalKafka({ version: '4.3.1', port: 0 });
 *   // broker.brokers === '127.0.0.1:<port>'
 *   await broker.stop();
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { prepareSecurity, type LocalKafkaSecurity, type LocalKafkaSecurityOptions, type SecurityProtocol } from './security.js';

/**
 * The newest Apache Kafka 4.x whose artifacts are complete on Maven Central.
 * (4.4.0's kafka_2.13 is published but kafka-tools 4.4.0 is not, so it cannot be assembled yet.)
 */
export const DEFAULT_KAFKA_VERSION = '4.3.1';
/** The last 3.x line; supported and tested with `KAFKA_VERSION=3.9.1`. */
export const LEGACY_KAFKA_VERSION = '3.9.1';

export class LocalKafkaError extends Error {
  override readonly name = 'LocalKafkaError';
}

export interface LocalKafkaOptions {
  /** Apache Kafka version (default: $KAFKA_VERSION or DEFAULT_KAFKA_VERSION). 3.9.x and 4.x are supported. */
  readonly version?: string;
  /** Client port on 127.0.0.1 (default 9092; 0 picks a free port). */
  readonly port?: number;
  /** Controller port (default: a free port). */
  readonly controllerPort?: number;
  /** Where run directories and the state file live (default: $VLTAVA_KAFKA_HOME or <repo>/.kafka). */
  readonly home?: string;
  /** Where jars are cached (default: $VLTAVA_KAFKA_CACHE or ~/.cache/vltava/kafka). */
  readonly cacheDir?: string;
  /** Keep the broker running after this Node process exits (the CLI's `up`). Default false. */
  readonly detached?: boolean;
  /** Maximum heap in MiB (default 1024). */
  readonly heapMb?: number;
  /** How long to wait for readiness (default 60 s). */
  readonly startTimeoutMs?: number;
  /** Extra server.properties entries. */
  readonly serverProperties?: Readonly<Record<string, string | number | boolean>>;
  /**
   * A secured broker (src/security.ts): TLS with a throwaway CA, SASL/SCRAM users created at format
   * time, ACLs (StandardAuthorizer). Default: a PLAINTEXT broker.
   */
  readonly security?: LocalKafkaSecurityOptions;
}

export interface RunningKafka {
  /** Bootstrap address, e.g. "127.0.0.1:9092". */
  readonly brokers: string;
  readonly version: string;
  readonly pid: number;
  readonly port: number;
  readonly controllerPort: number;
  /** The run directory: server.properties, data/, broker.log. */
  readonly dir: string;
  /** Milliseconds from spawn to ready (log line + metadata answered). */
  readonly startMs: number;
  /** SIGTERM, then SIGKILL after `timeoutMs` (default 20 s). */
  stop(timeoutMs?: number): Promise<void>;
  /** Stops the broker and starts it again on the same data and ports (a broker restart); resolves when ready. */
  restart(stopTimeoutMs?: number): Promise<void>;
  /** Set when started with `security`: the CA, the users and client settings (kafkajs, kcat). */
  readonly security?: LocalKafkaSecurity;
}

export interface BrokerStateFile {
  readonly brokers: string;
  readonly version: string;
  readonly pid: number;
  readonly port: number;
  readonly controllerPort: number;
  readonly dir: string;
  readonly startedAt: string;
  /** Set for a secured broker (`up --secure`): its protocol and the directory with security.json, ca.pem, admin.properties. */
  readonly security?: { readonly protocol: SecurityProtocol; readonly dir: string };
}

const repoRoot = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

export function defaultHome(): string {
  return process.env.VLTAVA_KAFKA_HOME ?? join(repoRoot, '.kafka');
}

export function defaultCacheDir(): string {
  return process.env.VLTAVA_KAFKA_CACHE ?? join(homedir(), '.cache', 'vltava', 'kafka');
}

export function resolveVersion(version?: string): string {
  const v = version ?? process.env.KAFKA_VERSION ?? DEFAULT_KAFKA_VERSION;
  if (!/^(3\.9|4\.\d+)\.\d+$/.test(v)) {
    throw new LocalKafkaError(
      `Unsupported Kafka version "${v}". Use a 4.x release (default ${DEFAULT_KAFKA_VERSION}) or ${LEGACY_KAFKA_VERSION}.`,
    );
  }
  return v;
}

const isKafka3 = (version: string): boolean => version.startsWith('3.');

// ---------------------------------------------------------------------------------------------
// Prerequisites and jars
// ---------------------------------------------------------------------------------------------

/** Checks that Java 17+ is on PATH; returns its major version. */
export function checkJava(): number {
  const r = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (r.error) {
    throw new LocalKafkaError(
      'Java was not found on PATH. The local Kafka broker needs Java 17 or newer ' +
        '(Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`), or point Vltava at a broker with KAFKA_BROKERS=host:port.',
    );
  }
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${r.stderr}${r.stdout}`);
  const major = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : NaN;
  if (!(major >= 17)) {
    throw new LocalKafkaError(
      `Java ${Number.isNaN(major) ? '(unknown version)' : major} is too old: Kafka 4 brokers need Java 17 or newer. ` +
        'Install a newer JDK, or set KAFKA_BROKERS=host:port to use an existing cluster.',
    );
  }
  return major;
}

function checkMaven(): void {
  const r = spawnSync('mvn', ['-v'], { encoding: 'utf8' });
  if (r.error) {
    throw new LocalKafkaError(
      'Maven (`mvn`) was not found on PATH. It downloads the Kafka jars from Maven Central once ' +
        '(Debian/Ubuntu: `apt-get install maven`). Alternatively set KAFKA_BROKERS=host:port to use an existing cluster.',
    );
  }
}

function pomFor(version: string): string {
  const dep = (g: string, a: string, v: string): string =>
    `    <dependency><groupId>${g}</groupId><artifactId>${a}</artifactId><version>${v}</version></dependency>`;
  // No published POM brings a logging binding; without one the broker is silent.
  const logging = isKafka3(version)
    ? [dep('org.slf4j', 'slf4j-reload4j', '1.7.36'), dep('ch.qos.reload4j', 'reload4j', '1.2.25')]
    : [dep('org.apache.logging.log4j', 'log4j-slf4j-impl', '2.25.2')];
  return `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.vltava</groupId>
  <artifactId>kafka-local-jars</artifactId>
  <version>${version}</version>
  <packaging>pom</packaging>
  <dependencies>
${[dep('org.apache.kafka', 'kafka_2.13', version), dep('org.apache.kafka', 'kafka-tools', version), ...logging].join('\n')}
  </dependencies>
</project>
`;
}

/**
 * Makes sure the jars of `version` are in the cache (downloading them with Maven once) and returns
 * the lib directory. `onProgress` hears about a download.
 */
export function ensureJars(version: string, cacheDir = defaultCacheDir(), onProgress?: (msg: string) => void): string {
  const base = join(cacheDir, version);
  const lib = join(base, 'lib');
  if (existsSync(join(base, '.complete'))) return lib;
  checkMaven();
  mkdirSync(base, { recursive: true });
  writeFileSync(join(base, 'pom.xml'), pomFor(version));
  const tmp = join(base, 'lib.partial');
  rmSync(tmp, { recursive: true, force: true });
  onProgress?.(`Downloading Apache Kafka ${version} jars from Maven Central into ${lib} (once) ...`);
  const r = spawnSync(
    'mvn',
    ['-B', '-q', '-f', join(base, 'pom.xml'), 'dependency:copy-dependencies', `-DoutputDirectory=${tmp}`, '-DincludeScope=runtime'],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.error || r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').filter((l) => l.includes('ERROR')).slice(0, 5).join('\n');
    throw new LocalKafkaError(
      `Could not download Apache Kafka ${version} from Maven Central (mvn exited ${r.status ?? r.error?.message}).\n${out}\n` +
        'Check that this machine reaches Maven Central and that the version exists, or set KAFKA_BROKERS=host:port.',
    );
  }
  rmSync(lib, { recursive: true, force: true });
  renameSync(tmp, lib);
  writeFileSync(join(base, '.complete'), new Date().toISOString());
  return lib;
}

// ---------------------------------------------------------------------------------------------
// Ports and config
// ---------------------------------------------------------------------------------------------

function probePort(port: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      const p = typeof addr === 'object' && addr ? addr.port : port;
      srv.close(() => resolvePort(p));
    });
  });
}

/** Returns `port` if free (or a free port when 0); a clear error when it is taken. */
export async function claimPort(port: number, what: string): Promise<number> {
  try {
    return await probePort(port);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new LocalKafkaError(
        `The ${what} port ${port} on 127.0.0.1 is already taken. Is a broker already running (\`pnpm kafka:status\`)? ` +
          `Stop it with \`pnpm kafka:down\`, or choose another port (--port N, or 0 for any free port).`,
      );
    }
    throw e;
  }
}

function serverProperties(
  dir: string,
  port: number,
  controllerPort: number,
  extra: LocalKafkaOptions['serverProperties'],
  security?: { protocol: SecurityProtocol; props: Record<string, string> },
): string {
  // The client (and inter-broker) listener is named after its protocol; the controller's stays PLAINTEXT.
  const l = security?.protocol ?? 'PLAINTEXT';
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `${l}://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `${l}://127.0.0.1:${port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': l,
    'listener.security.protocol.map': `${l}:${l},CONTROLLER:PLAINTEXT`,
    'log.dirs': join(dir, 'data'),
    'num.partitions': 1,
    // Single node: everything internal has one replica, and small partition counts start fast.
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 4,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 4,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'group.initial.rebalance.delay.ms': 0,
    // Topics are created on purpose (Vltava creates its internal topics); a typo should fail loudly.
    'auto.create.topics.enable': false,
    ...security?.props,
    ...extra,
  };
  return `${Object.entries(props).map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
}

function loggingConfig(version: string, dir: string): { file: string; jvmFlag: string } {
  if (isKafka3(version)) {
    const file = join(dir, 'log4j.properties');
    writeFileSync(
      file,
      [
        'log4j.rootLogger=WARN, stdout',
        'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
        'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
        'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
        'log4j.logger.kafka.server.KafkaRaftServer=INFO',
        '',
      ].join('\n'),
    );
    return { file, jvmFlag: `-Dlog4j.configuration=file:${file}` };
  }
  const file = join(dir, 'log4j2.properties');
  writeFileSync(
    file,
    [
      'status = warn',
      'appender.console.type = Console',
      'appender.console.name = STDOUT',
      'appender.console.layout.type = PatternLayout',
      'appender.console.layout.pattern = [%d] %p %m (%c)%n',
      'rootLogger.level = WARN',
      'rootLogger.appenderRef.stdout.ref = STDOUT',
      'logger.raft.name = kafka.server.KafkaRaftServer',
      'logger.raft.level = INFO',
      '',
    ].join('\n'),
  );
  return { file, jvmFlag: `-Dlog4j2.configurationFile=${file}` };
}

/**
 * A KRaft cluster id: 16 random bytes, base64url without padding (what `StorageTool random-uuid`
 * prints). Like Kafka's Uuid.randomUuid, never one that starts with '-': the storage tool's argument
 * parser would take it for an option ("--cluster-id: expected one argument", 1 start in 64).
 */
export function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Replaces the passwords inside `--add-scram` arguments in a tool's output. */
function redact(text: string, formatArgs: readonly string[]): string {
  let out = text;
  for (const a of formatArgs) {
    const m = /password=([^,\]]+)/.exec(a);
    if (m) out = out.split(m[1]!).join('***');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Start, readiness, stop
// ---------------------------------------------------------------------------------------------

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Answers whether a metadata request to `brokers` succeeds within `timeoutMs`. */
export async function metadataOk(brokers: string, timeoutMs = 5_000, client: Partial<Omit<KafkaConfig, 'brokers'>> = {}): Promise<boolean> {
  const kafka = new Kafka({
    ...client,
    brokers: brokers.split(','),
    clientId: 'vltava-kafka-local',
    logLevel: logLevel.NOTHING,
    connectionTimeout: Math.min(timeoutMs, 3_000),
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await Promise.race([
      (async () => {
        await admin.connect();
        await admin.describeCluster();
      })(),
      delay(timeoutMs).then(() => {
        throw new Error('timeout');
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function stopPid(pid: number, timeoutMs: number): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await delay(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
  while (isAlive(pid)) await delay(50);
}

function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Starts a broker and resolves when it is ready: the log says "Kafka Server started" and metadata answers. */
export async function startLocalKafka(opts: LocalKafkaOptions = {}): Promise<RunningKafka> {
  const version = resolveVersion(opts.version);
  checkJava();
  const lib = ensureJars(version, opts.cacheDir, (m) => process.stderr.write(`${m}\n`));
  const port = await claimPort(opts.port ?? 9092, 'client');
  let controllerPort = await claimPort(opts.controllerPort ?? 0, 'controller');
  if (controllerPort === port) controllerPort = await claimPort(0, 'controller');
  const home = opts.home ?? defaultHome();
  const dir = join(home, 'runs', `${new Date().toISOString().replace(/[:.]/g, '-')}-${port}`);
  mkdirSync(join(dir, 'data'), { recursive: true });
  const propsFile = join(dir, 'server.properties');
  const secured = opts.security ? prepareSecurity(dir, opts.security) : undefined;
  const security = secured?.security;
  writeFileSync(
    propsFile,
    serverProperties(dir, port, controllerPort, opts.serverProperties, security && secured ? { protocol: security.protocol, props: secured.serverProperties } : undefined),
    { mode: secured ? 0o600 : 0o644 },
  );
  const logging = loggingConfig(version, dir);
  const cp = `${lib}/*`;
  const t0 = Date.now();

  // SCRAM credentials go into the metadata log at format time (KRaft has no ZooKeeper to hold them).
  const fmt = spawnSync('java', [logging.jvmFlag, '-cp', cp, 'kafka.tools.StorageTool', 'format', '-t', clusterId(), '-c', propsFile, ...(secured?.formatArgs ?? [])], {
    encoding: 'utf8',
  });
  if (fmt.status !== 0) {
    const out = `${fmt.stdout}${fmt.stderr}`;
    throw new LocalKafkaError(`Formatting the KRaft storage in ${dir} failed:\n${secured ? redact(out, secured.formatArgs) : out}`);
  }

  const logFile = join(dir, 'broker.log');
  const heap = opts.heapMb ?? 1024;
  const brokers = `127.0.0.1:${port}`;
  const timeoutMs = opts.startTimeoutMs ?? 60_000;

  /** Spawns the broker on the formatted run directory and waits until it is ready; returns its pid. */
  const launch = async (): Promise<number> => {
    const logStart = existsSync(logFile) ? statSync(logFile).size : 0;
    const logFd = openSync(logFile, 'a');
    const child = spawn(
      'java',
      [
        `-Xms256m`,
        `-Xmx${heap}m`,
        '-XX:+UseG1GC',
        '-XX:MaxGCPauseMillis=20',
        '-Djava.awt.headless=true',
        logging.jvmFlag,
        `-Dkafka.logs.dir=${join(dir, 'logs')}`,
        '-cp',
        cp,
        'kafka.Kafka',
        propsFile,
      ],
      { detached: true, stdio: ['ignore', logFd, logFd] },
    );
    closeSync(logFd);
    const pid = child.pid;
    if (pid === undefined) throw new LocalKafkaError('Could not spawn `java` for the broker.');
    if (opts.detached) child.unref();
    let exited = false;
    child.once('exit', () => (exited = true));
    const deadline = Date.now() + timeoutMs;
    let logged = false;
    for (;;) {
      if (exited || !isAlive(pid)) {
        throw new LocalKafkaError(`The Kafka broker exited during start-up. Last lines of ${logFile}:\n${logTail(logFile)}`);
      }
      if (Date.now() > deadline) {
        await stopPid(pid, 5_000);
        throw new LocalKafkaError(`The Kafka broker was not ready within ${timeoutMs} ms. Last lines of ${logFile}:\n${logTail(logFile)}`);
      }
      if (!logged) logged = readFileSync(logFile).subarray(logStart).includes('Kafka Server started');
      if (logged && (await metadataOk(brokers, 3_000, security?.kafkajs()))) return pid;
      await delay(logged ? 200 : 100);
    }
  };

  let pid = await launch();
  const startMs = Date.now() - t0;
  const state: BrokerStateFile = {
    brokers,
    version,
    pid,
    port,
    controllerPort,
    dir,
    startedAt: new Date().toISOString(),
    ...(security ? { security: { protocol: security.protocol, dir: security.dir } } : {}),
  };
  writeFileSync(join(dir, 'broker.json'), JSON.stringify(state, null, 2));
  const { security: _recorded, ...rest } = state;
  return {
    ...rest,
    ...(security ? { security } : {}),
    get pid() {
      return pid;
    },
    startMs,
    stop: async (timeoutMs = 20_000) => {
      await stopPid(pid, timeoutMs);
    },
    restart: async (timeoutMs = 20_000) => {
      await stopPid(pid, timeoutMs);
      pid = await launch();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The state file of the CLI's broker (`pnpm kafka:up`)
// ---------------------------------------------------------------------------------------------

export function stateFilePath(home = defaultHome()): string {
  return join(home, 'current.json');
}

export function readStateFile(home = defaultHome()): BrokerStateFile | undefined {
  const f = stateFilePath(home);
  if (!existsSync(f)) return undefined;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as BrokerStateFile;
  } catch {
    return undefined;
  }
}

export function writeStateFile(state: BrokerStateFile, home = defaultHome()): void {
  mkdirSync(home, { recursive: true });
  writeFileSync(stateFilePath(home), JSON.stringify(state, null, 2));
}

/** Stops the broker recorded in the state file (SIGTERM, then SIGKILL) and removes its data. */
export async function stopRecordedBroker(home = defaultHome(), timeoutMs = 20_000): Promise<BrokerStateFile | undefined> {
  const state = readStateFile(home);
  if (!state) return undefined;
  await stopPid(state.pid, timeoutMs);
  rmSync(join(state.dir, 'data'), { recursive: true, force: true });
  rmSync(stateFilePath(home), { force: true });
  return state;
}
