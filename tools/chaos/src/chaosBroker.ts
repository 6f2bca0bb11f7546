/**
 * The chaos run's own broker (never the shared one), which it can restart with its data: the first
 * start comes from `startLocalKafka`; a restart stops it (SIGTERM, a clean shutdown) and runs the same
 * `kafka.Kafka server.properties` again on the same port and log directory, as an operator would.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { ensureJars, isAlive, metadataOk, startLocalKafka, type RunningKafka } from '@vltava/kafka-local';

export interface ChaosBroker {
  readonly brokers: string;
  readonly dir: string;
  /** The Apache Kafka version ($KAFKA_VERSION, default 4.3.1). */
  readonly version: string;
  /** Stops the broker and starts it again with the same data; resolves when it answers metadata. */
  restart(): Promise<{ downMs: number }>;
  stop(): Promise<void>;
  /** Kills the broker at once (for exit handlers). */
  killNow(): void;
}

async function stopPid(pid: number, timeoutMs = 30_000): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  while (isAlive(pid)) await new Promise((r) => setTimeout(r, 50));
}

export async function startChaosBroker(home: string): Promise<ChaosBroker> {
  // A short minimum session timeout: a killed instance's tasks move within seconds.
  const first: RunningKafka = await startLocalKafka({ port: 0, home, heapMb: 512, serverProperties: { 'group.min.session.timeout.ms': 2_000 } });
  let pid = first.pid;
  const lib = ensureJars(first.version);
  const log4j2 = join(first.dir, 'log4j2.properties');
  const loggingFlag = existsSync(log4j2) ? `-Dlog4j2.configurationFile=${log4j2}` : `-Dlog4j.configuration=file:${join(first.dir, 'log4j.properties')}`;
  return {
    brokers: first.brokers,
    dir: first.dir,
    version: first.version,
    async restart() {
      const t0 = Date.now();
      await stopPid(pid);
      const logFd = openSync(join(first.dir, 'broker.log'), 'a');
      const child = spawn(
        'java',
        ['-Xms256m', '-Xmx512m', '-XX:+UseG1GC', '-Djava.awt.headless=true', loggingFlag, `-Dkafka.logs.dir=${join(first.dir, 'logs')}`, '-cp', `${lib}/*`, 'kafka.Kafka', join(first.dir, 'server.properties')],
        { detached: true, stdio: ['ignore', logFd, logFd] },
      );
      closeSync(logFd);
      pid = child.pid!;
      const deadline = Date.now() + 90_000;
      while (!(await metadataOk(first.brokers, 3_000))) {
        if (!isAlive(pid)) throw new Error(`the restarted broker exited; see ${join(first.dir, 'broker.log')}`);
        if (Date.now() > deadline) throw new Error(`the restarted broker did not answer within 90 s; see ${join(first.dir, 'broker.log')}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      return { downMs: Date.now() - t0 };
    },
    stop: () => stopPid(pid),
    killNow() {
      try {
        if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    },
  };
}
