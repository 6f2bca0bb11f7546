/** `pnpm chaos:sink [--faults 30] [--seed N]`: see sinkChaos.ts. */
import { parseArgs } from 'node:util';
import { runSinkChaos } from './sinkChaos.js';

const { values } = parseArgs({ options: { faults: { type: 'string', default: '30' }, seed: { type: 'string' } } });
const seed = values.seed === undefined ? Math.floor(Math.random() * 100_000) : Number(values.seed);
console.log(`sink chaos: seed ${seed}, ${values.faults} faults`);
const r = await runSinkChaos({ faults: Number(values.faults), seed });
console.log(JSON.stringify({ seed, ...r, violations: r.violations.slice(0, 20) }));
process.exit(r.ok ? 0 : 1);
