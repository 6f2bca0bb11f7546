/**
 * One ledger instance for the chaos run: `node tools/chaos/dist/chaosInstance.js '<json config>'`,
 * spawned with an IPC channel. It is examples/ledger's instance (same events, same app) with one
 * more fault: thrown errors at a commit step.
 *
 * Config (JSON in argv[2]): LedgerAppConfig's JSON fields, plus
 *   throwFirst: a ThrowRequest armed from the start (the run's first commit: no committed offset yet);
 *   crashAt: { point, after, onSignal? } — SIGKILL itself the N-th time any task reaches `point`
 *     (counting from SIGUSR2 with onSignal), as examples/ledger/src/instance.ts does;
 * IPC messages (process.send from the parent):
 *   { type: 'throw', point, taskId?, id } — the next time `point` of the commit protocol is reached
 *     (by `taskId`, or by any task), the runtime's `faultInjection` hook throws an Error once: a
 *     transient commit failure, not a kill. Prints `thrown <point> <task> <id>` when it does;
 *   { type: 'disarm' } — forget a throw that has not happened yet.
 * Lines on stdout: `state <S>`, `running <task> <restored>`, `revoked <task>`, `migrated <task>`,
 * `committed <task> <records> <offsets>`, `crash <point> <task>`, `thrown <point> <task> <id>`,
 * `error ...`, `warn ...`. SIGTERM closes cleanly (final commit) and exits 0.
 */
import { createLedgerApp, type LedgerAppConfig } from '@vltava/example-ledger';
import type { CommitPoint } from '@vltava/runtime';

interface InstanceConfig extends Omit<LedgerAppConfig, 'logger' | 'faultInjection' | 'isKnownAccount'> {
  readonly crashAt?: { readonly point: CommitPoint; readonly after: number; readonly onSignal?: boolean };
  /** A throw armed from the start (as the IPC message would arm it): the first commit of the run. */
  readonly throwFirst?: ThrowRequest;
}

export interface ThrowRequest {
  readonly type: 'throw';
  readonly point: CommitPoint;
  readonly taskId?: string;
  readonly id: number;
  /** throwFirst only: throw once in each task, the first time it reaches `point`. */
  readonly everyTask?: boolean;
}

/** The error thrown at a commit step; its message names the fault so logs can be matched to it. */
export class InjectedCommitError extends Error {
  constructor(point: CommitPoint, taskId: string, id: number) {
    super(`chaos: injected transient error #${id} at ${point} in task ${taskId}`);
    this.name = 'InjectedCommitError';
  }
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as InstanceConfig;
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const { crashAt, throwFirst, ...appConfig } = cfg;
let hits = 0;
let armed = crashAt !== undefined && crashAt.onSignal !== true;
const firstEvery = throwFirst?.everyTask === true ? throwFirst : undefined;
let throwNext: ThrowRequest | undefined = firstEvery === undefined ? throwFirst : undefined;
const thrownIn = new Set<string>();
process.on('SIGUSR2', () => {
  armed = crashAt !== undefined;
  say(`armed ${crashAt?.point ?? 'nothing'} ${crashAt?.after ?? 0}`);
});
process.on('message', (m: ThrowRequest | { type: 'disarm' }) => {
  if (m?.type === 'disarm') throwNext = undefined;
  if (m?.type === 'throw') {
    throwNext = m;
    say(`armed-throw ${m.point} ${m.taskId ?? '*'} ${m.id}`);
  }
});
// The parent going away must not leave this process behind.
process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));

const app = createLedgerApp({
  ...appConfig,
  logger: {
    info: () => undefined,
    warn: (m) => say(`warn ${m.replace(/\n/g, ' ')}`),
    error: (m) => say(`error ${m.replace(/\n/g, ' ')}`),
  },
  faultInjection: (point: CommitPoint, taskId: string) => {
    if (firstEvery !== undefined && firstEvery.point === point && !thrownIn.has(taskId)) {
      thrownIn.add(taskId);
      say(`thrown ${point} ${taskId} ${firstEvery.id}`);
      throw new InjectedCommitError(point, taskId, firstEvery.id);
    }
    const t = throwNext;
    if (t !== undefined && t.point === point && (t.taskId === undefined || t.taskId === taskId)) {
      throwNext = undefined;
      say(`thrown ${point} ${taskId} ${t.id}`);
      throw new InjectedCommitError(point, taskId, t.id);
    }
    if (crashAt === undefined || !armed || point !== crashAt.point || ++hits < crashAt.after) return;
    say(`crash ${point} ${taskId}`);
    process.kill(process.pid, 'SIGKILL');
  },
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
