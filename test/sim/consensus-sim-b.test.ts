/** Seeds 500-999 of the consensus simulation (SIMULATED network, clock and crypto). */
import t from 'tap';
import { runBatch } from './fixtures/batch.js';

await runBatch(t, 500, 500, 'test/sim/consensus-sim-b.test.ts');
