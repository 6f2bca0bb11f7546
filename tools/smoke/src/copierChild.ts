/**
 * Child-process entry of the copier, for the crash tests: the parent kills it with
 * SIGKILL (or it kills itself through `crashAt`) and starts it again.
 * Config comes in as JSON in argv[2]. It prints `init <ms>` once and `committed <total>` after each commit.
 */
import { startCopier, type CopierOptions } from './copier.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as CopierOptions;
const copier = await startCopier({
  ...opts,
  transform: (v) => v.toUpperCase(),
  onCommit: (total) => process.stdout.write(`committed ${total}\n`),
});
process.stdout.write(`init ${copier.initMs}\n`);
process.on('SIGTERM', () => {
  void copier.stop().then(() => process.exit(0));
});
