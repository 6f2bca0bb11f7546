#!/usr/bin/env node
/**
 * vltava-kafka: a real local Apache Kafka without Docker.
 *
 *   vltava-kafka up [--version 4.3.1] [--port 9092]   start a broker in the background, print its address
 *   vltava-kafka up --secure [--user name[:password]]  the same with TLS, SASL/SCRAM-SHA-512 and ACLs (docs/security.md)
 *   vltava-kafka status                                 is it running and answering metadata requests?
 *   vltava-kafka down [--timeout-ms 20000]              SIGTERM, then SIGKILL after the timeout
 *   vltava-kafka fetch [--version 4.3.1]                download the jars into the cache only
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { loadSecurity } from './security.js';
import {
  DEFAULT_KAFKA_VERSION,
  LocalKafkaError,
  ensureJars,
  isAlive,
  metadataOk,
  readStateFile,
  resolveVersion,
  type RunningKafka,
  startLocalKafka,
  stopRecordedBroker,
  writeStateFile,
} from './kafkaLocal.js';

const usage = `usage: vltava-kafka <up|down|status|fetch> [--version V] [--port N] [--timeout-ms N] [--secure [--user NAME[:PASSWORD]]...]
  up      start a single-node KRaft broker from the official Apache Kafka jars (default ${DEFAULT_KAFKA_VERSION}, or $KAFKA_VERSION)
          --secure: a SASL_SSL listener (throwaway CA, SCRAM-SHA-512 user admin and each --user; PLAIN too, for
          librdkafka < 2.6.1) with ACLs enforced
  down    stop it (SIGTERM, then SIGKILL after --timeout-ms, default 20000)
  status  say whether it runs and answers metadata requests (exit 1 if not)
  fetch   download the jars for --version into the cache (~/.cache/vltava/kafka or $VLTAVA_KAFKA_CACHE)`;

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      version: { type: 'string' },
      port: { type: 'string' },
      'timeout-ms': { type: 'string' },
      secure: { type: 'boolean' },
      user: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const cmd = positionals[0];
  if (values.help || !cmd) {
    console.log(usage);
    return values.help ? 0 : 2;
  }
  switch (cmd) {
    case 'up': {
      const existing = readStateFile();
      if (existing && isAlive(existing.pid)) {
        console.log(`Kafka ${existing.version} is already running at ${existing.brokers} (pid ${existing.pid}).`);
        console.log(existing.brokers);
        return 0;
      }
      const port = values.port === undefined ? 9092 : Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new LocalKafkaError(`--port must be 0..65535, got "${values.port}"`);
      if (values.user !== undefined && !values.secure) throw new LocalKafkaError('--user needs --secure');
      const users = (values.user ?? []).map((u) => {
        const i = u.indexOf(':');
        return i < 0 ? u : { name: u.slice(0, i), password: u.slice(i + 1) };
      });
      const broker = await startLocalKafka({
        version: values.version,
        port,
        detached: true,
        ...(values.secure ? { security: { tls: true, sasl: 'SCRAM-SHA-512', users, acls: true, plain: true } as const } : {}),
      });
      writeStateFile({
        brokers: broker.brokers,
        version: broker.version,
        pid: broker.pid,
        port: broker.port,
        controllerPort: broker.controllerPort,
        dir: broker.dir,
        startedAt: new Date().toISOString(),
        ...(broker.security ? { security: { protocol: broker.security.protocol, dir: broker.security.dir } } : {}),
      });
      console.error(`Kafka ${broker.version} ready in ${broker.startMs} ms (pid ${broker.pid}, logs in ${broker.dir}/broker.log).`);
      if (broker.security) printSecure(broker);
      else console.error(`Try: kcat -b ${broker.brokers} -L     Stop: pnpm kafka:down`);
      console.log(broker.brokers);
      return 0;
    }
    case 'down': {
      const timeout = values['timeout-ms'] === undefined ? 20_000 : Number(values['timeout-ms']);
      const state = await stopRecordedBroker(undefined, timeout);
      console.log(state ? `Stopped Kafka ${state.version} at ${state.brokers} (pid ${state.pid}).` : 'No local broker is recorded as running.');
      return 0;
    }
    case 'status': {
      const state = readStateFile();
      if (!state) {
        console.log('No local broker recorded. Start one with `pnpm kafka:up`.');
        return 1;
      }
      const alive = isAlive(state.pid);
      const client = state.security ? loadSecurity(state.security.dir).kafkajs() : {};
      const answers = alive && (await metadataOk(state.brokers, 5_000, client));
      console.log(
        `Kafka ${state.version} at ${state.brokers}${state.security ? ` (${state.security.protocol}, credentials in ${state.security.dir})` : ''}: pid ${state.pid} ${alive ? 'running' : 'not running'}, metadata ${answers ? 'OK' : 'not answering'} (dir ${state.dir})`,
      );
      return answers ? 0 : 1;
    }
    case 'fetch': {
      const version = resolveVersion(values.version);
      const t0 = Date.now();
      const lib = ensureJars(version, undefined, (m) => console.error(m));
      console.log(`Kafka ${version} jars in ${lib} (${Date.now() - t0} ms)`);
      return 0;
    }
    default:
      console.error(usage);
      return 2;
  }
}

/** Where the secured broker's client settings are; passwords stay in the files (mode 0600), not on the terminal. */
function printSecure(broker: RunningKafka): void {
  const s = broker.security!;
  console.error(`Secured: ${s.protocol}, ${s.mechanism}, ACLs ${s.acls ? 'enforced (super user ' + s.admin?.name + ')' : 'off'}; users ${[s.admin, ...s.users].map((u) => u?.name).join(', ')}.`);
  console.error(`  CA certificate (PEM):      ${s.caFile}`);
  console.error(`  users and passwords:       ${join(s.dir, 'security.json')}`);
  console.error(`  admin, Java tools:         kafka-acls.sh --bootstrap-server ${broker.brokers} --command-config ${join(s.dir, 'admin.properties')} --list`);
  console.error(`  admin, kcat:               kcat -b ${broker.brokers} -F ${join(s.dir, 'admin.kcat.conf')} -L`);
  console.error('  Stop: pnpm kafka:down');
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof LocalKafkaError ? `error: ${e.message}` : e);
    process.exit(1);
  },
);
