/**
 * One ledger instance as a process: `node examples/ledger/dist/instance.js '<json config>'`.
 * Start several with the same applicationId and they share the work.
 *
 * Config (JSON in argv[2]): LedgerAppConfig fields that are JSON (applicationId, brokers, partitions,
 * topics, stateDir, commitIntervalMs, sessionTimeoutMs, ...), plus for fault-injection runs:
 *   crashAt: { point: 'before-send'|'after-send'|'after-offsets'|'after-commit'|'after-checkpoint', after: N, onSignal?: true }
 *     — SIGKILL this process the N-th time any task reaches that point of the commit protocol
 *       (counting from the moment SIGUSR2 arrives, with onSignal).
 * Prints one line per event on stdout: `state <S>`, `running <task> <restored>`, `revoked <task>`,
 * `migrated <task>`, `committed <task> <records>`, `crash <point> <task>`, `error <message>`.
 * SIGTERM closes cleanly (final commit) and exits 0.
 */
import type { CommitPoint } from '@vltava/runtime';
import { createLedgerApp, type LedgerAppConfig } from './ledgerApp.js';

interface InstanceConfig extends Omit<LedgerAppConfig, 'logger' | 'faultInjection' | 'isKnownAccount'> {
  readonly crashAt?: { readonly point: CommitPoint; readonly after: number; readonly onSignal?: boolean };
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as InstanceConfig;
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const { crashAt, ...appConfig } = cfg;
let hits = 0;
let armed = crashAt !== undefined && crashAt.onSignal !== true;
process.on('SIGUSR2', () => {
  armed = crashAt !== undefined;
  say(`armed ${crashAt?.point ?? 'nothing'} ${crashAt?.after ?? 0}`);
});
const app = createLedgerApp({
  ...appConfig,
  logger: {
    info: () => undefined,
    warn: (m) => say(`warn ${m.replace(/\n/g, ' ')}`),
    error: (m) => say(`error ${m.replace(/\n/g, ' ')}`),
  },
  ...(crashAt === undefined
    ? {}
    : {
        faultInjection: (point: CommitPoint, taskId: string) => {
          if (!armed || point !== crashAt.point || ++hits < crashAt.after) return;
          say(`crash ${point} ${taskId}`);
          process.kill(process.pid, 'SIGKILL');
        },
      }),
});
app.on('app.state', ({ to }) => say(`state ${to}`));
app.on('task.running', ({ taskId, restored }) => say(`running ${taskId} ${restored}`));
app.on('task.revoked', ({ taskId }) => say(`revoked ${taskId}`));
app.on('task.migrated', ({ taskId }) => say(`migrated ${taskId}`));
app.on('task.committed', ({ taskId, records, offsets }) => say(`committed ${taskId} ${records} ${JSON.stringify(offsets)}`));
app.on('error', ({ error, taskId }) => say(`error ${taskId ?? '-'} ${error.message.replace(/\n/g, ' ')}`));
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
await app.start();
