/**
 * The simulation must be able to fail: run against a core whose quorum is f+1 instead of 2f+1
 * (a TEST ONLY option), it has to find two honest nodes committing different blocks at one height,
 * while the same schedules with the real quorum stay safe.
 */
import t from 'tap';
import { faultTolerance } from '../../src/ledger/genesis.js';
import { equivocationScenario } from './fixtures/scenario.js';
import { runSimulation } from './fixtures/simulation.js';

const MAX_SEEDS = 60;

t.test('an f+1 commit quorum is caught committing conflicting blocks', async (t) => {
  let found: number | undefined;
  for (let seed = 0; seed < MAX_SEEDS && found === undefined; seed++) {
    const config = equivocationScenario(seed);
    config.unsafeQuorum = faultTolerance(config.n) + 1;
    const result = runSimulation(config);
    if (result.conflicts > 0) {
      found = seed;
      t.comment(`seed ${seed}: ${result.violations.find((v) => v.startsWith('safety'))}`);
    }
  }
  t.not(found, undefined, `a safety violation is found within ${MAX_SEEDS} seeds`);
});

t.test('the same schedules with the 2f+1 quorum are safe and live', async (t) => {
  for (let seed = 0; seed < 20; seed++) {
    const result = runSimulation(equivocationScenario(seed));
    t.same(result.violations, [], `seed ${seed}`);
  }
});
