/** The simulator itself: replays are exact, and the schedules mix the faults they are meant to. */
import t from 'tap';
import { faultTolerance } from '../../src/ledger/genesis.js';
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
  const changes = configs.flatMap((c) => c.changes ?? []);
  for (const kind of ['add', 'retire', 'rotate'] as const) {
    t.ok(
      changes.some((c) => c.kind === kind && c.expect === 'enacted'),
      `validator-set changes: ${kind}`,
    );
  }
  t.ok(
    changes.some((c) => c.expect === 'pending'),
    'a change while another is pending',
  );
  t.ok(
    changes.some((c) => c.expect === 'too-few'),
    'a change that would leave fewer than 4 validators',
  );
  t.ok(
    configs.some((c) =>
      (c.changes ?? []).some((x) => x.kind !== 'add' && c.byzantine[x.node!] !== undefined),
    ),
    'a misbehaving validator retired or rotated',
  );
});

t.test('set-change schedules never let a set hold more than f misbehaving validators', async (t) => {
  for (let seed = 0; seed < 2000; seed++) {
    const config = randomScenario(seed);
    let set = [...Array(config.n).keys()];
    for (const change of config.changes ?? []) {
      if (change.expect !== 'enacted') continue;
      if (change.kind === 'add') set = [...set, change.joins!];
      else if (change.kind === 'retire') set = set.filter((i) => i !== change.node);
      else set = set.map((i) => (i === change.node ? change.joins! : i));
      const bad = set.filter((i) => config.byzantine[i] !== undefined).length;
      if (bad > faultTolerance(set.length) || set.length < 4)
        t.fail(`seed ${seed}: set ${set.join(',')} after the change at ${change.height}`);
    }
  }
  t.pass('every scheduled set keeps at least 4 validators and at most f misbehaving ones');
});
