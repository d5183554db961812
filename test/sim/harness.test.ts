/** The simulator itself: replays are exact, and the schedules mix the faults they are meant to. */
import t from 'tap';
import { randomScenario } from './fixtures/scenario.js';
import { runSimulation } from './fixtures/simulation.js';

t.test('a seed replays to the identical run', async (t) => {
  for (const seed of [3, 17, 1234]) {
    const a = runSimulation({ ...randomScenario(seed), trace: true });
    const b = runSimulation({ ...randomScenario(seed), trace: true });
    t.same(b.heights, a.heights, `seed ${seed}: heights`);
    t.equal(b.events, a.events, `seed ${seed}: event count`);
    t.same(b.trace, a.trace, `seed ${seed}: trace`);
  }
});

t.test('the scenarios cover the fault space', async (t) => {
  const configs = Array.from({ length: 500 }, (_, seed) => randomScenario(seed));
  const kinds = new Set(configs.flatMap((c) => Object.values(c.byzantine)));
  t.same([...kinds].sort(), ['double-vote', 'equivocate', 'garbage', 'silent'], 'every Byzantine behaviour');
  t.ok(
    configs.some((c) => c.partitions.length > 0),
    'partitions',
  );
  t.ok(
    configs.some((c) => c.crashes.some((x) => x.midStep)),
    'crashes between persist and send',
  );
  t.ok(
    configs.some((c) => c.crashes.some((x) => !x.midStep)),
    'plain crashes',
  );
  t.ok(
    configs.some((c) => c.network.dropRate >= 0.3),
    'heavy loss',
  );
  t.ok(
    configs.some((c) => c.network.dupRate > 0),
    'duplication',
  );
  t.ok(
    configs.some((c) => c.network.spikeRate > 0),
    'reordering',
  );
  t.same(
    [...new Set(configs.map((c) => c.n))].sort((a, b) => a - b),
    [1, 4, 5, 7],
    'validator counts',
  );
});
