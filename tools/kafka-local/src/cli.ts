#!/usr/bin/env node
/**
 * vltava-kafka: a real local Apache Kafka without Docker.
 *
 *   vltava-kafka up [--version 4.3.1] [--port 9092]   start a broker in the background, print its address
 *   vltava-kafka status                                 is it running and answering metadata requests?
 *   vltava-kafka down [--timeout-ms 20000]              SIGTERM, then SIGKILL after the timeout
 *   vltava-kafka fetch [--version 4.3.1]                download the jars into the cache only
 */
import { parseArgs } from 'node:util';
import {
  DEFAULT_KAFKA_VERSION,
  LocalKafkaError,
  ensureJars,
  isAlive,
  metadataOk,
  readStateFile,
  resolveVersion,
  startLocalKafka,
  stopRecordedBroker,
  writeStateFile,
} from './kafkaLocal.js';

const usage = `usage: vltava-kafka <up|down|status|fetch> [--version V] [--port N] [--timeout-ms N]
  up      start a single-node KRaft broker from the official Apache Kafka jars (default ${DEFAULT_KAFKA_VERSION}, or $KAFKA_VERSION)
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
      const broker = await startLocalKafka({ version: values.version, port, detached: true });
      writeStateFile({
        brokers: broker.brokers,
        version: broker.version,
        pid: broker.pid,
        port: broker.port,
        controllerPort: broker.controllerPort,
        dir: broker.dir,
        startedAt: new Date().toISOString(),
      });
      console.error(`Kafka ${broker.version} ready in ${broker.startMs} ms (pid ${broker.pid}, logs in ${broker.dir}/broker.log).`);
      console.error(`Try: kcat -b ${broker.brokers} -L     Stop: pnpm kafka:down`);
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
      const answers = alive && (await metadataOk(state.brokers));
      console.log(
        `Kafka ${state.version} at ${state.brokers}: pid ${state.pid} ${alive ? 'running' : 'not running'}, metadata ${answers ? 'OK' : 'not answering'} (dir ${state.dir})`,
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

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof LocalKafkaError ? `error: ${e.message}` : e);
    process.exit(1);
  },
);
