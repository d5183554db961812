/** Seeds 1500-1999 of the consensus simulation (SIMULATED network, clock and crypto). */
import t from 'tap';
import { assertSetChanges, runBatch } from './fixtures/batch.js';

const totals = await runBatch(t, 1500, 500, 'test/sim/consensus-sim-d.test.ts');

if (process.env.SIM_SEED === undefined) assertSetChanges(t, totals);
