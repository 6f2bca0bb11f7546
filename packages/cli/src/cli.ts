#!/usr/bin/env node
import { main } from './main.js';

// kafkajs 2.2.4 schedules timers with negative delays on Node >= 23 (TimeoutNegativeWarning):
// harmless, and not the user's business. Every other warning is printed as Node would.
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name !== 'TimeoutNegativeWarning') process.stderr.write(`${w.name}: ${w.message}\n`);
});

const code = await main(process.argv.slice(2));
// kafkajs may keep sockets or timers alive after a failure: the command is over, so exit.
process.exit(code);
