/**
 * Rogue primaries in the consensus simulation (SIMULATED network, clock and crypto): seeds 0-299 of
 * `roguePrimaryScenario`, where every Byzantine validator sends blocks with lagging or future times,
 * unjustified new-views and view-changes for far-future views and heights.
 */
import t from 'tap';
import { assertSetChanges, runBatch } from './fixtures/batch.js';

const totals = await runBatch(t, 0, 300, 'test/sim/consensus-sim-rogue.test.ts', 'rogue');

if (process.env.SIM_SEED === undefined) {
  // The rogue messages must really have reached honest nodes and been refused.
  for (const reason of ['bad-proposal', 'bad-new-view', 'future'] as const) {
    t.ok(totals.dropped[reason] > 0, `the schedules produced ${reason} drops (${totals.dropped[reason]})`);
  }
  assertSetChanges(t, totals);
}
