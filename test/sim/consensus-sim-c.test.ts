/** Seeds 1000-1499 of the consensus simulation (SIMULATED network, clock and crypto). */
import t from 'tap';
import { runBatch } from './fixtures/batch.js';

await runBatch(t, 1000, 500, 'test/sim/consensus-sim-c.test.ts');
