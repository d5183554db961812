/** Seeds 0-499 of the consensus simulation (SIMULATED network, clock and crypto). */
import t from 'tap';
import { assertSetChanges, runBatch } from './fixtures/batch.js';

const totals = await runBatch(t, 0, 500, 'test/sim/consensus-sim-a.test.ts');

if (process.env.SIM_SEED === undefined) {
  // The batch must really have met the faults it claims to survive.
  for (const reason of [
    'malformed',
    'wrong-chain',
    'bad-signature',
    'equivocation',
    'duplicate',
    'stale-height',
    'future',
    'bad-view-change',
    'bad-certificate',
  ] as const) {
    t.ok(totals.dropped[reason] > 0, `the schedules produced ${reason} drops (${totals.dropped[reason]})`);
  }
  // Validator sets changed under those faults, and votes from outside the set were refused.
  assertSetChanges(t, totals);
  t.ok(
    totals.dropped['unknown-validator'] > 0,
    `the schedules produced unknown-validator drops (${totals.dropped['unknown-validator']})`,
  );
}
