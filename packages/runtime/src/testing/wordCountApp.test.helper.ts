/**
 * A word-count app in a child process, for the runtime's crash, failover and zombie tests.
 * Config: JSON in argv[2] ({ input, output, applicationId, brokers, stateDir, commitIntervalMs?, processingGuarantee? }).
 * Prints one line per event: `state <S>`, `running <taskId> <restored>`, `migrated <taskId>`,
 * `committed <taskId> <records>`, `error <message>`. SIGTERM closes cleanly.
 */
import { KafkaStreams, type CommitPoint, type StreamsConfig } from '../index.js';
import { wordCountTopology } from './wordCount.test.helper.js';

interface ChildConfig extends Omit<StreamsConfig, 'logger' | 'faultInjection'> {
  readonly input: string;
  readonly output: string;
  /** SIGKILL this process at the n-th time any task reaches `point` of the commit protocol. */
  readonly crashAt?: { readonly point: CommitPoint; readonly nth: number };
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
const say = (line: string): void => void process.stdout.write(`${line}\n`);
let hits = 0;
const crashAt = cfg.crashAt;
const { input: _input, output: _output, crashAt: _crashAt, ...streamsConfig } = cfg;
const app = new KafkaStreams(wordCountTopology(cfg.input, cfg.output), {
  ...streamsConfig,
  kafka: process.env.CHILD_KAFKA_LOG ? { logLevel: 4 } : {},
  faultInjection: crashAt
    ? (point, taskId) => {
        if (point === crashAt.point && ++hits === crashAt.nth) {
          say(`crash ${point} ${taskId}`);
          process.kill(process.pid, 'SIGKILL');
        }
      }
    : undefined,
  logger: {
    info: () => undefined,
    warn: (m) => say(`warn ${m.replace(/\n/g, ' ').slice(0, 300)}`),
    error: (m) => say(`error ${m.replace(/\n/g, ' ')}`),
  },
});
app.on('app.state', ({ to }) => say(`state ${to}`));
app.on('task.running', ({ taskId, restored }) => say(`running ${taskId} ${restored}`));
app.on('task.restore.end', ({ taskId, store, restored, total }) => say(`restored ${taskId} ${store} ${restored} ${total}`));
app.on('task.migrated', ({ taskId }) => say(`migrated ${taskId}`));
app.on('task.revoked', ({ taskId }) => say(`revoked ${taskId}`));
if (cfg.input.includes('zb-')) app.on('task.processed', ({ taskId, records }) => say(`processed ${taskId} ${records}`));
app.on('task.committed', ({ taskId, records, offsets }) => say(`committed ${taskId} ${records} ${JSON.stringify(offsets)}`));
app.on('task.created', ({ taskId }) => say(`created ${taskId}`));
app.on('task.standby.updated', ({ taskId, applied }) => say(`standby ${taskId} ${applied}`));
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
await app.start();
