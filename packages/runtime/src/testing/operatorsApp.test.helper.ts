/**
 * A child-process app running one of the operator scenarios (operators.test.helper.ts), for
 * operatorsEos.test.ts. Config: JSON in argv[2] ({ scenario, topics, applicationId, brokers, stateDir,
 * commitIntervalMs? }). Prints `state <S>`, `running <task> <restored>`, `restored <task> <store> <n>`,
 * `committed <task> <records>`, `armed`, `crash <point> <task>`, `error <message>`.
 * SIGUSR2 arms a crash: the process SIGKILLs itself at the next 'after-offsets' point of any task,
 * i.e. inside a transaction whose outputs and offsets were sent but not committed. SIGTERM closes.
 */
import { KafkaStreams, type StreamsConfig } from '../index.js';
import { operatorTopology, type OperatorScenario, type ScenarioTopics } from './operators.test.helper.js';

interface ChildConfig extends Omit<StreamsConfig, 'logger' | 'faultInjection'> {
  readonly scenario: OperatorScenario;
  readonly topics: ScenarioTopics;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const { scenario, topics, ...streamsConfig } = cfg;
let armed = false;
process.on('SIGUSR2', () => {
  armed = true;
  say('armed');
});
const app = new KafkaStreams(operatorTopology(scenario, topics), {
  ...streamsConfig,
  faultInjection: (point, taskId) => {
    if (armed && point === 'after-offsets') {
      say(`crash ${point} ${taskId}`);
      process.kill(process.pid, 'SIGKILL');
    }
  },
  logger: {
    info: () => undefined,
    warn: (m) => say(`warn ${m.replace(/\n/g, ' ').slice(0, 300)}`),
    error: (m) => say(`error ${m.replace(/\n/g, ' ')}`),
  },
});
app.on('app.state', ({ to }) => say(`state ${to}`));
app.on('task.running', ({ taskId, restored }) => say(`running ${taskId} ${restored}`));
app.on('task.restore.end', ({ taskId, store, restored }) => say(`restored ${taskId} ${store} ${restored}`));
app.on('task.committed', ({ taskId, records }) => say(`committed ${taskId} ${records}`));
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
await app.start();
