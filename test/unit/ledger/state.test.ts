import fc from 'fast-check';
import t from 'tap';
import {
  CommittedState,
  EMPTY_STATE_ROOT,
  nextStateRoot,
  SEEN_BUCKET_MS,
  StateOverlay,
  type StateValue,
  type StateWrites,
} from '../../../src/ledger/index.js';
import { canonicalValue } from '../../helpers/arbitraries.js';

t.test('nextStateRoot: depends on writes as a set, on values and on the previous root', async (t) => {
  fc.assert(
    fc.property(
      fc.uniqueArray(
        fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.option(canonicalValue, { nil: null })),
        {
          selector: ([k]) => k,
          minLength: 1,
          maxLength: 10,
        },
      ),
      (entries) => {
        const a: StateWrites = new Map(entries);
        const b: StateWrites = new Map([...entries].reverse());
        const root = nextStateRoot(EMPTY_STATE_ROOT, a);
        const changed: StateWrites = new Map(entries);
        const [k, v] = entries[0]!;
        changed.set(k, v === null ? 0 : null);
        return (
          root === nextStateRoot(EMPTY_STATE_ROOT, b) &&
          root !== nextStateRoot(EMPTY_STATE_ROOT, changed) &&
          root !== nextStateRoot(root, a)
        );
      },
    ),
    { numRuns: 200 },
  );
  t.not(
    nextStateRoot(EMPTY_STATE_ROOT, new Map()),
    EMPTY_STATE_ROOT,
    'an empty block still advances the root',
  );
  t.throws(() => nextStateRoot('xyz', new Map()), { code: 'CRYPTO_BAD_ENCODING' }, 'bad previous root');
});

t.test('StateOverlay: layered reads, deletes, child absorb and drop', async (t) => {
  const base = new CommittedState();
  base.apply(
    new Map([
      ['a', 1],
      ['b', 2],
    ]),
    'r',
    1,
  );
  const o = new StateOverlay(base);
  o.set('a', 10);
  o.delete('b');
  t.equal(o.get('a'), 10);
  t.equal(o.get('b'), undefined, 'deleted in overlay');
  t.equal(base.get('b'), 2, 'base untouched');
  const child = o.child();
  child.set('c', 3);
  child.set('a', 11);
  t.equal(child.get('a'), 11);
  t.equal(o.get('c'), undefined, 'child writes invisible until absorbed');
  o.absorb(child);
  t.equal(o.get('c'), 3);
  t.equal(o.get('a'), 11);
  const dropped = o.child();
  dropped.set('d', 4);
  t.equal(o.get('d'), undefined, 'a dropped child leaves no trace');
  t.same(
    [...o.writes.entries()],
    [
      ['a', 11],
      ['b', null],
      ['c', 3],
    ],
  );
});

/** Transaction hashes, as the replay guard holds them. */
const [A, B, C] = ['a', 'b', 'c'].map((d) => d.repeat(64)) as [string, string, string];

t.test('CommittedState: apply, deletions and the replay-expiry index', async (t) => {
  const s = new CommittedState();
  const t0 = 1_700_000_000_000;
  s.apply(
    new Map<string, StateValue | null>([
      [`seen/${A}`, t0 + 1000],
      [`seen/${B}`, t0 + 5 * SEEN_BUCKET_MS],
      ['x', 'y'],
    ]),
    'r1',
    1,
  );
  t.equal(s.size, 3);
  t.same(s.expiredSeenKeys(t0 + 1000), [], 'not before its bucket has ended');
  t.same(s.expiredSeenKeys(t0 + 2 * SEEN_BUCKET_MS), [`seen/${A}`]);
  t.same(s.expiredSeenKeys(t0 + 10 * SEEN_BUCKET_MS), [`seen/${A}`, `seen/${B}`], 'oldest first');
  s.apply(
    new Map([
      [`seen/${A}`, null],
      ['x', null],
    ]),
    'r2',
    2,
  );
  t.equal(s.size, 1);
  t.equal(s.get('x'), undefined);
  t.same(s.expiredSeenKeys(t0 + 10 * SEEN_BUCKET_MS), [`seen/${B}`], 'deleted entries leave the index');
  t.equal(s.root, 'r2');
  t.equal(s.height, 2);
  const loaded = new CommittedState();
  loaded.load(`seen/${B}`, t0 + 5 * SEEN_BUCKET_MS);
  t.same(loaded.expiredSeenKeys(t0 + 10 * SEEN_BUCKET_MS), [`seen/${B}`], 'load indexes too');
});

t.test(
  'CommittedState: the per-block replay guard (seen-at entries) indexes every transaction',
  async (t) => {
    const s = new CommittedState();
    const t0 = 1_700_000_000_000;
    const entry = (expires: number, txs: string[]) => ({ expires, txs }) as unknown as StateValue;
    s.apply(
      new Map<string, StateValue | null>([
        ['seen-at/1', entry(t0 + 1000, [A, B])],
        ['seen-at/2', entry(t0 + 5 * SEEN_BUCKET_MS, [C])],
      ]),
      'r1',
      1,
    );
    t.equal(s.get(`seen/${A}`), t0 + 1000, "a transaction is seen, with its block's expiry");
    t.equal(s.get(`seen/${C}`), t0 + 5 * SEEN_BUCKET_MS);
    t.equal(s.get('seen/z'), undefined, 'another is not');
    t.same(s.expiredSeenKeys(t0 + 1000), [], 'not before its bucket has ended');
    t.same(s.expiredSeenKeys(t0 + 2 * SEEN_BUCKET_MS), ['seen-at/1'], 'the block entry expires as one');
    s.apply(new Map([['seen-at/1', null]]), 'r2', 2);
    t.equal(s.get(`seen/${A}`), undefined, "a deleted entry's transactions leave the guard");
    t.equal(s.get(`seen/${B}`), undefined);
    t.equal(s.get(`seen/${C}`), t0 + 5 * SEEN_BUCKET_MS, "the other block's stay");
    t.same(s.expiredSeenKeys(t0 + 10 * SEEN_BUCKET_MS), ['seen-at/2']);
    const loaded = new CommittedState();
    loaded.load('seen-at/2', entry(t0 + 5 * SEEN_BUCKET_MS, [C]));
    t.equal(loaded.get(`seen/${C}`), t0 + 5 * SEEN_BUCKET_MS, 'load indexes too');
  },
);

t.test('a state for running-hash headers keeps no tree', async (t) => {
  const writes = new Map([['inst/demo', { name: 'Demo' }]]);
  const legacy = new CommittedState(EMPTY_STATE_ROOT, 0, 'running-hash');
  legacy.apply(writes, legacy.rootAfter(writes, 'running-hash'), 1);
  t.equal(legacy.prove('inst/demo'), undefined, 'nothing to prove against');
  t.throws(() => legacy.rootAfter(writes, 'sparse-merkle'), { code: 'LEDGER_STATE_RULE' });
  const tree = new CommittedState();
  tree.apply(writes, tree.rootAfter(writes, 'sparse-merkle'), 1);
  t.ok(tree.prove('inst/demo'), 'a tree state proves its entries');
});
