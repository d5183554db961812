/**
 * The simulation must catch a core that does not follow validator-set changes: with cores that
 * keep genesis's set (a TEST ONLY option), schedules that change the set must show certificates
 * the new set refuses or honest nodes signing where their key is not a validator, while the same
 * schedules with cores that follow the set stay safe and live.
 */
import t from 'tap';
import { randomScenario } from './fixtures/scenario.js';
import { runSimulation } from './fixtures/simulation.js';

const SEEDS = Array.from({ length: 400 }, (_, seed) => seed)
  .filter((seed) => (randomScenario(seed).changes ?? []).some((c) => c.expect === 'enacted'))
  .slice(0, 12);

t.test('cores that keep the genesis set are caught', async (t) => {
  t.ok(SEEDS.length >= 12, `schedules with enacted changes (${SEEDS.length})`);
  let caught = 0;
  for (const seed of SEEDS) {
    const result = runSimulation({ ...randomScenario(seed), ignoreSetChanges: true });
    const found = result.violations.find((v) =>
      /certificate refused|not a validator|signed no commit/.test(v),
    );
    if (found !== undefined) {
      caught++;
      if (caught === 1) t.comment(`seed ${seed}: ${found}`);
    }
  }
  t.ok(caught >= SEEDS.length / 2, `most schedules catch it (${caught} of ${SEEDS.length})`);
});

t.test('the same schedules with cores that follow the set are safe and live', async (t) => {
  for (const seed of SEEDS) {
    const result = runSimulation(randomScenario(seed));
    t.same(result.violations, [], `seed ${seed}`);
  }
});
