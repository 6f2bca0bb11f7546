/**
 * The runtime on a secured broker of its own (tools/kafka-local `security`): TLS with a throwaway CA,
 * SASL/SCRAM-SHA-512 users, ACLs enforced by StandardAuthorizer. The word count runs exactly once as a
 * least-privilege user whose ACLs (docs/security.md) the admin creates through the admin API; the
 * output is verified by kcat over SASL_SSL. A second test records every log line, event and error of
 * a secured app, of an authentication failure and of authorization failures, and greps them for the
 * passwords and the private keys.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import test from 'ava';
import { Kafka, logLevel, type Admin, type ITopicConfig, type LogEntry } from 'kafkajs';
import { startLocalKafka, type RunningKafka, type ScramUser } from '@vltava/kafka-local';
import { awaitCaughtUp, kcatScramWorksWithKafka4, readCommittedKcat } from '@vltava/kafka-local/testing';
import { KafkaStreams, type Logger, type StreamsConfig, type StreamsEvents } from './index.js';
import { corpus, finalCounts, referenceCounts, wordCountTopology } from './testing/wordCount.test.helper.js';

const secret = (): string => randomBytes(18).toString('hex');
const APP: ScramUser = { name: 'wordcount', password: secret() };
const READER: ScramUser = { name: 'reader', password: secret() };
const STRANGER: ScramUser = { name: 'stranger', password: secret() };
const HALF: ScramUser = { name: 'half', password: secret() };
const ADMIN: ScramUser = { name: 'admin', password: secret() };
const WRONG_PASSWORD = secret();

// kafkajs' ACL enums, spelled out (docs/security.md has the kafka-acls.sh equivalents).
const TOPIC = 2, GROUP = 3, TRANSACTIONAL_ID = 5;
const READ = 3, WRITE = 4, CREATE = 5, DELETE = 6, DESCRIBE_CONFIGS = 10;
const LITERAL = 3, PREFIXED = 4;
const ALLOW = 3;

interface Acl {
  readonly resourceType: number;
  readonly resourceName: string;
  readonly resourcePatternType: number;
  readonly operation: number;
}

/** Exactly what a Vltava app needs (docs/security.md, "The ACLs of an app"). */
function vltavaAcls(applicationId: string, sources: readonly string[], sinks: readonly string[]): Acl[] {
  return [
    ...sources.map((t) => ({ resourceType: TOPIC, resourceName: t, resourcePatternType: LITERAL, operation: READ })),
    ...sinks.flatMap((t) => [
      { resourceType: TOPIC, resourceName: t, resourcePatternType: LITERAL, operation: WRITE },
      { resourceType: TOPIC, resourceName: t, resourcePatternType: LITERAL, operation: DESCRIBE_CONFIGS },
    ]),
    // Internal topics (repartition, changelog): create, read, write, deleteRecords (the purge), describeConfigs.
    // (ALL would do too; these five are the least. DESCRIBE is implied by any of them.)
    ...[CREATE, READ, WRITE, DELETE, DESCRIBE_CONFIGS].map((operation) => ({ resourceType: TOPIC, resourceName: `${applicationId}-`, resourcePatternType: PREFIXED, operation })),
    { resourceType: GROUP, resourceName: applicationId, resourcePatternType: LITERAL, operation: READ },
    // The restore consumers (`<appId>-restore-<random>`) and the global-table consumer (`<appId>-global-<random>`).
    { resourceType: GROUP, resourceName: `${applicationId}-`, resourcePatternType: PREFIXED, operation: READ },
    // Task producers: transactionalId `<appId>-<taskId>` (WRITE implies DESCRIBE; no IDEMPOTENT_WRITE on the cluster is needed).
    { resourceType: TRANSACTIONAL_ID, resourceName: `${applicationId}-`, resourcePatternType: PREFIXED, operation: WRITE },
  ];
}

const aclText = (a: Acl): string => `${a.resourceType}:${a.resourcePatternType}:${a.resourceName}:${a.operation}`;

/** The ACLs a user holds, as the admin API describes them. */
async function aclsOf(admin: Admin, user: ScramUser): Promise<string[]> {
  const d = await admin.describeAcls({ resourceType: 1 /* ANY */, resourcePatternType: 1 /* ANY */, principal: `User:${user.name}`, operation: 1, permissionType: 1 });
  return d.resources.flatMap((r) => r.acls.map((a) => aclText({ ...r, operation: a.operation }))).sort();
}

/** Creates the ACLs and waits until the broker describes them (they reach the authorizer through the metadata log). */
async function grant(admin: Admin, user: ScramUser, acls: readonly Acl[]): Promise<void> {
  const before = await aclsOf(admin, user);
  await admin.createAcls({ acl: acls.map((a) => ({ ...a, principal: `User:${user.name}`, host: '*', permissionType: ALLOW })) });
  const want = [...new Set([...before, ...acls.map(aclText)])].sort();
  const deadline = Date.now() + 15_000;
  while (JSON.stringify(await aclsOf(admin, user)) !== JSON.stringify(want)) {
    if (Date.now() > deadline) throw new Error(`the ACLs of ${user.name} did not show up within 15 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let broker: RunningKafka | undefined;
let home: string | undefined;
let adminKafka: Kafka;
let admin: Admin;
/** kcat's SASL mechanism: SCRAM-SHA-512 where its librdkafka can do SCRAM with Kafka 4, else PLAIN (same TLS, users and ACLs). */
let kcatMechanism: 'SCRAM-SHA-512' | 'PLAIN';

test.before(async () => {
  kcatMechanism = kcatScramWorksWithKafka4() ? 'SCRAM-SHA-512' : 'PLAIN';
  home = mkdtempSync(join(tmpdir(), 'vltava-secure-kafka-'));
  broker = await startLocalKafka({
    port: 0,
    home,
    heapMb: 512,
    security: { tls: true, sasl: 'SCRAM-SHA-512', admin: ADMIN, users: [APP, READER, STRANGER, HALF], acls: true, plain: kcatMechanism === 'PLAIN' },
  });
  adminKafka = new Kafka({ brokers: [broker.brokers], clientId: 'security-test-admin', logLevel: logLevel.NOTHING, ...broker.security!.kafkajs() });
  admin = adminKafka.admin();
  await admin.connect();
});

test.after.always(async () => {
  await admin?.disconnect().catch(() => undefined);
  await broker?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

const sorted = (m: Map<string, number>): [string, number][] => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

async function topics(prefix: string, partitions: number, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${prefix}-${i}-${randomBytes(3).toString('hex')}`);
  const specs: ITopicConfig[] = names.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 }));
  await admin.createTopics({ topics: specs, waitForLeaders: true });
  return names;
}

async function produce(topic: string, lines: readonly string[], keyPrefix: string): Promise<void> {
  const producer = adminKafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < lines.length; i += 500) {
    await producer.send({ topic, messages: lines.slice(i, i + 500).map((value, j) => ({ key: `${keyPrefix}-${i + j}`, value })) });
  }
  await producer.disconnect();
}

function config(user: ScramUser, applicationId: string, extra: Partial<StreamsConfig> = {}): StreamsConfig {
  return {
    applicationId,
    brokers: [broker!.brokers],
    stateDir: mkdtempSync(join(tmpdir(), 'vltava-sec-state-')),
    sessionTimeoutMs: 6_000,
    repartitionPurgeIntervalMs: 500,
    kafka: broker!.security!.kafkajs(user),
    ...extra,
  };
}

/** A logger that keeps every line and its fields. */
function recordingLogger(into: string[]): Logger {
  const rec = (level: string) => (message: string, meta?: Readonly<Record<string, unknown>>) => into.push(`${level} ${message} ${inspect(meta, { depth: 20 })}`);
  return { info: rec('info'), warn: rec('warn'), error: rec('error') };
}

test.serial('[broker] word count exactly once over TLS + SASL/SCRAM-SHA-512 as a least-privilege user (ACLs made by the admin), restored on a fresh state dir, verified by kcat over SASL_SSL', async (t) => {
  const [input, output] = await topics('sec-lines', 3, 2);
  const applicationId = `sec-wc-${randomBytes(3).toString('hex')}`;
  const acls = vltavaAcls(applicationId, [input!], [output!]);
  await grant(admin, APP, acls);
  await grant(admin, READER, [{ resourceType: TOPIC, resourceName: output!, resourcePatternType: LITERAL, operation: READ }]);

  // The app user has exactly those ACLs (this test runs first), and the admin API shows them.
  t.deepEqual(await aclsOf(admin, APP), acls.map(aclText).sort());
  t.is(acls.length, 11);

  const first = corpus(1_200);
  const second = corpus(800, 200, 7);
  await produce(input!, first, 'a');

  const logs: string[] = [];
  const run = async (label: string): Promise<{ errors: Error[]; restored: number; states: string[] }> => {
    const app = new KafkaStreams(wordCountTopology(input!, output!), config(APP, applicationId, { logger: recordingLogger(logs) }));
    t.teardown(() => app.close());
    const errors: Error[] = [];
    let restored = 0;
    const states: string[] = [];
    app.on('error', ({ error }) => errors.push(error));
    app.on('task.restore.end', (p) => (restored += p.restored));
    app.on('app.state', ({ to }) => states.push(to));
    await app.start();
    await awaitCaughtUp(admin, applicationId, input!, 90_000);
    await awaitCaughtUp(admin, applicationId, `${applicationId}-counts-repartition`, 90_000);
    await new Promise((r) => setTimeout(r, 1_500)); // a repartition purge (deleteRecords) or two
    await app.close();
    t.log(`${label}: ${states.join(' -> ')}, restored ${restored} changelog records`);
    return { errors, restored, states };
  };

  const r1 = await run('first instance');
  // A second instance on an empty state dir restores the counts from the changelog (a `<appId>-restore-*` group).
  await produce(input!, second, 'b');
  const r2 = await run('second instance, fresh state dir');
  t.deepEqual([...r1.errors, ...r2.errors], []);
  t.is(r1.states.at(-1), 'NOT_RUNNING');
  t.is(r2.states.at(-1), 'NOT_RUNNING');
  t.true(r2.restored > 0, 'the second instance restored its stores from the changelog');
  t.deepEqual(logs.filter((l) => /not authorized|authorization|purging .* failed/i.test(l)), [], 'no authorization problem on the way');

  // The repartition purge ran (deleteRecords, which needs DELETE on the internal topics).
  const low = await admin.fetchTopicOffsets(`${applicationId}-counts-repartition`);
  t.true(low.some((p) => Number(p.low) > 0), `repartition records below the committed offsets were deleted: ${JSON.stringify(low)}`);

  // An independent client (librdkafka) over SASL_SSL, as a user that may only read the output.
  const out = await readCommittedKcat([broker!.brokers], output!, { config: broker!.security!.librdkafka(READER, kcatMechanism) });
  t.log(`kcat (librdkafka, ${kcatMechanism} over TLS) read ${out.length} committed count updates`);
  t.deepEqual(sorted(finalCounts(out)), sorted(referenceCounts([...first, ...second])), 'exactly once: every line counted once');
});

/** Every event of StreamsEvents (the compiler checks that none is missing). */
const EVENTS = {
  'app.state': true,
  'task.created': true,
  'task.running': true,
  'task.revoked': true,
  'task.migrated': true,
  'task.offset.reset': true,
  'task.committed': true,
  'task.record.dropped': true,
  'task.processed': true,
  'task.standby.updated': true,
  'task.restore.start': true,
  'task.restore.progress': true,
  'task.restore.end': true,
  error: true,
} as const satisfies Record<keyof StreamsEvents, true>;

test.serial('[broker] no password or private key appears in logs, errors or events: a secured run, a wrong password, users without ACLs', async (t) => {
  const captured: string[] = [];
  const record = (what: string, x: unknown): void => {
    captured.push(`${what}: ${inspect(x, { depth: 20, showHidden: false })}`);
    if (x instanceof Error) captured.push(`${what} (stack): ${x.stack ?? ''}`, `${what} (json): ${JSON.stringify(x, Object.getOwnPropertyNames(x))}`);
  };
  /** Runs an app with a recording logger, kafkajs at DEBUG with its full log entries, and every event. */
  const attempt = async (label: string, user: ScramUser, applicationId: string, input: string, output: string, extra: Partial<StreamsConfig> = {}): Promise<unknown> => {
    const kafkaLogs: string[] = [];
    const app = new KafkaStreams(
      wordCountTopology(input, output),
      config(user, applicationId, {
        logger: recordingLogger(captured),
        brokerRetryTimeoutMs: 8_000,
        kafka: {
          ...broker!.security!.kafkajs(user),
          logLevel: logLevel.DEBUG,
          logCreator: () => (entry: LogEntry) => kafkaLogs.push(`kafkajs ${JSON.stringify(entry)}`),
        },
        ...extra,
      }),
    );
    t.teardown(() => app.close());
    for (const name of Object.keys(EVENTS) as (keyof StreamsEvents)[]) app.on(name, (payload) => record(`${label} event ${name}`, payload));
    let outcome: unknown = 'started';
    try {
      await app.start();
      await awaitCaughtUp(admin, applicationId, input, 60_000);
    } catch (e) {
      outcome = e;
      record(`${label} start() rejected`, e);
    }
    await app.close().catch((e: unknown) => record(`${label} close() rejected`, e));
    record(`${label} metrics`, app.metrics());
    captured.push(...kafkaLogs);
    t.log(`${label}: ${outcome instanceof Error ? `${outcome.name}: ${outcome.message}` : String(outcome)} (${kafkaLogs.length} kafkajs log entries)`);
    return outcome;
  };

  const [input, output] = await topics('leak-lines', 2, 2);
  await produce(input!, corpus(300), 'l');
  const applicationId = `leak-wc-${randomBytes(3).toString('hex')}`;
  await grant(admin, APP, vltavaAcls(applicationId, [input!], [output!]));

  // 1. A secured run that works.
  t.is(await attempt('secured run', APP, applicationId, input!, output!), 'started');
  // 2. Authentication failure: a wrong password.
  const authn = await attempt('wrong password', { name: APP.name, password: WRONG_PASSWORD }, `${applicationId}-x`, input!, output!);
  // start() rejects with "Cannot reach the Kafka brokers ... within brokerRetryTimeoutMs": with kafkajs'
  // SASL error as its cause when the last attempt's error was that, or just "timed out" when
  // brokerRetryTimeoutMs ran out during a retry (both seen; docs/security.md, "Errors").
  t.true(authn instanceof Error);
  t.regex(String((authn as Error).message), /Cannot reach the Kafka brokers/);
  // 3. Authorization failures: a user with no ACLs, and one that may read and write the user topics but not create internal topics.
  const noAcls = await attempt('user without ACLs', STRANGER, `${applicationId}-s`, input!, output!);
  t.true(noAcls instanceof Error);
  await grant(admin, HALF, vltavaAcls(`${applicationId}-h`, [input!], [output!]).filter((a) => !(a.resourceType === TOPIC && a.resourcePatternType === PREFIXED)));
  const half = await attempt('user without internal-topic ACLs', HALF, `${applicationId}-h`, input!, output!);
  t.true(half instanceof Error);

  const text = captured.join('\n');
  // Not vacuous: the capture holds the runs' logs, the SASL exchanges and the failures.
  t.true(text.length > 10_000 && text.includes(applicationId) && /SASL/.test(text) && /authentication failed/i.test(text), `the capture is not empty (${text.length} characters)`);
  // The check can see a leak: the app's own config, inspected the same way, does hold its password.
  t.true(inspect(config(APP, 'control'), { depth: 20 }).includes(APP.password), 'positive control');
  const passwords = { admin: ADMIN.password, app: APP.password, reader: READER.password, stranger: STRANGER.password, half: HALF.password, wrong: WRONG_PASSWORD };
  for (const [who, pw] of Object.entries(passwords)) t.false(text.includes(pw), `the ${who} password appears in the captured text`);
  // The private keys of the CA and the broker, line by line of their base64 (and the PEM armour).
  const dir = broker!.security!.dir;
  const keyLines = readdirSync(dir)
    .filter((f) => f.endsWith('.key'))
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
    .filter((l) => l.length >= 40 && !l.startsWith('-----'));
  t.true(keyLines.length >= 40, 'the key files were read');
  t.deepEqual(keyLines.filter((l) => text.includes(l)), [], 'no line of a private key appears');
  t.false(/PRIVATE KEY/.test(text));
});
