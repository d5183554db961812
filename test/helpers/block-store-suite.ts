/**
 * The compliance suite every `BlockStore` implementation must pass. Blocks are real: executed by
 * a `TestLedger` and certified by the test validators.
 *
 * ```ts
 * blockStoreSuite(t, 'memory', async () => ({ store: new MemoryBlockStore(init) }));
 * ```
 */
import type { Test } from 'tap';
import { canonicalBytes } from '../../src/common/canonical.js';
import {
  type BlockStore,
  CommittedState,
  type GenesisInit,
  type SnapshotTarget,
  type StateValue,
  stateKey,
  txHash,
} from '../../src/ledger/index.js';
import { makeTestChain, type TestChain } from './chain.js';
import { TestLedger } from './ledger.js';

/** A store under test; `reopen` (persistent stores only) closes it and opens a new instance on the same data. */
export interface StoreUnderTest {
  store: BlockStore & SnapshotTarget;
  reopen?: (genesis?: GenesisInit) => Promise<BlockStore>;
}

/** Makes a fresh, empty store for `genesis`; cleanup is the factory's business (e.g. `t.teardown`). */
export type StoreFactory = (t: Test, genesis: GenesisInit) => Promise<StoreUnderTest>;

/** A state value in canonical JSON (key order is not part of a value), or `undefined`. */
function canonicalOf(value: StateValue | undefined): string | undefined {
  return value === undefined ? undefined : new TextDecoder().decode(canonicalBytes(value));
}

/**
 * Checks that `store` holds exactly `ledger`'s committed state: same root and height, the same
 * number of keys, and an equal value under every key the ledger ever wrote.
 */
export async function expectSameState(
  t: Test,
  store: BlockStore,
  ledger: TestLedger,
  name: string,
): Promise<void> {
  const loaded = new CommittedState();
  await store.loadState(loaded);
  t.equal(loaded.root, ledger.state.root, `${name}: state root`);
  t.equal(loaded.height, ledger.state.height, `${name}: height`);
  t.equal(loaded.size, ledger.state.size, `${name}: number of keys`);
  const keys = new Set<string>(ledger.chain.genesisInit().writes.keys());
  for (const b of ledger.blocks) for (const k of b.effects.writes.keys()) keys.add(k);
  let differing = 0;
  for (const key of keys) {
    if (canonicalOf(loaded.get(key)) !== canonicalOf(ledger.state.get(key))) {
      differing++;
      t.fail(`${name}: value of ${key} differs`);
    }
  }
  t.equal(differing, 0, `${name}: every key equal (${keys.size} checked)`);
}

/** Every entry of `ledger`'s committed state (the keys genesis or any of its blocks wrote, still set). */
export function ledgerStateEntries(ledger: TestLedger): [string, StateValue][] {
  const keys = new Set<string>(ledger.chain.genesisInit().writes.keys());
  for (const b of ledger.blocks) for (const k of b.effects.writes.keys()) keys.add(k);
  const out: [string, StateValue][] = [];
  for (const key of [...keys].sort()) {
    const value = ledger.state.get(key);
    if (value !== undefined) out.push([key, value]);
  }
  return out;
}

/** Commits every block of `ledger` not yet in `store`. */
export async function syncStore(store: BlockStore, ledger: TestLedger): Promise<void> {
  for (const b of ledger.blocks) {
    if (b.certified.block.header.height > store.tip().height)
      await store.commit(b.certified, b.commitEffects);
  }
}

/** Runs the shared suite as subtests of `t`. */
export async function blockStoreSuite(t: Test, name: string, factory: StoreFactory): Promise<void> {
  /** A chain with 11 subjects, so `subject-1` and `subject-10` both exist (a prefix trap). */
  const fresh = async (tt: Test): Promise<{ chain: TestChain; ledger: TestLedger; sut: StoreUnderTest }> => {
    const chain = makeTestChain({ subjects: 11 });
    const ledger = new TestLedger(chain, { registerSubjects: false });
    const sut = await factory(tt, chain.genesisInit());
    await sut.store.open();
    tt.teardown(() => sut.store.close());
    return { chain, ledger, sut };
  };

  await t.test(`${name}: empty store starts at genesis`, async (t) => {
    const { chain, ledger, sut } = await fresh(t);
    t.match(sut.store.tip(), { height: 0, hash: chain.genesisHash, time: chain.genesis.time });
    t.equal(sut.store.tip().stateRoot, chain.genesisInit().stateRoot);
    await expectSameState(t, sut.store, ledger, 'genesis');
    const loaded = new CommittedState();
    await sut.store.loadState(loaded);
    t.ok(loaded.get(stateKey.institution('bank-0')), 'genesis institutions are in state');
    t.equal(await sut.store.getBlock(0), undefined);
    t.equal(await sut.store.getBlock(1), undefined);
    t.equal(await sut.store.getBlockByHash(chain.genesisHash), undefined);
    t.same(await sut.store.txsBySubject('subject-0'), []);
  });

  await t.test(`${name}: commit and read back by height, hash and tx`, async (t) => {
    const { chain, ledger, sut } = await fresh(t);
    const { store } = sut;
    const subjects = chain.subjects;
    ledger.commit(subjects.map((s) => ledger.register(s)));
    const bank = chain.institutions[0]!;
    ledger.commit([ledger.openRequest(bank, subjects[1]!), ledger.openRequest(bank, subjects[10]!)]);
    ledger.commit([]);
    ledger.requestWithRecords(bank, subjects[1]!, ['tax']);
    await syncStore(store, ledger);
    t.equal(store.tip().height, ledger.height, 'tip height');
    t.equal(store.tip().hash, ledger.tipHash, 'tip hash');
    t.equal(store.tip().stateRoot, ledger.state.root, 'tip state root');
    for (const b of ledger.blocks) {
      const h = b.certified.block.header.height;
      t.same(await store.getBlock(h), b.certified, `block ${h} by height`);
      t.same(await store.getBlockByHash(b.certified.cert.block), b.certified, `block ${h} by hash`);
      for (const [i, tx] of b.certified.block.txs.entries()) {
        t.same(await store.getTxLocation(txHash(tx)), { height: h, index: i }, `block ${h} tx ${i} location`);
      }
    }
    for (const bad of [0, -1, 1.5, ledger.height + 1, Number.NaN]) {
      t.equal(await store.getBlock(bad), undefined, `no block at ${bad}`);
    }
    t.equal(await store.getBlockByHash('00'.repeat(32)), undefined, 'unknown hash');
    t.equal(await store.getTxLocation('00'.repeat(32)), undefined, 'unknown tx');
    await expectSameState(t, store, ledger, 'after 6 blocks');
  });

  await t.test(`${name}: subject index with afterHeight and limit`, async (t) => {
    const { chain, ledger, sut } = await fresh(t);
    const { store } = sut;
    const [s1, s10] = [chain.subjects[1]!, chain.subjects[10]!];
    const bank = chain.institutions[0]!;
    ledger.commit([ledger.register(s1), ledger.register(s10)]); // h1
    ledger.commit([ledger.openRequest(bank, s10), ledger.openRequest(bank, s1)]); // h2
    ledger.commit([ledger.addInstitution(chain.admin, 'bank-x', chain.keys('bank-x'))]); // h3: no subject
    ledger.commit([ledger.openRequest(bank, s1)]); // h4
    await syncStore(store, ledger);
    const hashesAt = (h: number, i: number): string => txHash(ledger.blocks[h - 1]!.certified.block.txs[i]!);
    const all = [
      { height: 1, index: 0, hash: hashesAt(1, 0) },
      { height: 2, index: 1, hash: hashesAt(2, 1) },
      { height: 4, index: 0, hash: hashesAt(4, 0) },
    ];
    t.same(await store.txsBySubject('subject-1'), all, 'oldest first, not subject-10');
    t.same(
      await store.txsBySubject('subject-10'),
      [
        { height: 1, index: 1, hash: hashesAt(1, 1) },
        { height: 2, index: 0, hash: hashesAt(2, 0) },
      ],
      'subject-10',
    );
    t.same(await store.txsBySubject('subject-1', { afterHeight: 1 }), all.slice(1), 'afterHeight 1');
    t.same(await store.txsBySubject('subject-1', { afterHeight: 2 }), all.slice(2), 'afterHeight 2');
    t.same(await store.txsBySubject('subject-1', { afterHeight: 3 }), all.slice(2), 'afterHeight 3');
    t.same(await store.txsBySubject('subject-1', { afterHeight: 4 }), [], 'afterHeight at tip');
    t.same(await store.txsBySubject('subject-1', { limit: 2 }), all.slice(0, 2), 'limit 2');
    t.same(
      await store.txsBySubject('subject-1', { limit: 1, afterHeight: 1 }),
      all.slice(1, 2),
      'limit with afterHeight',
    );
    t.same(await store.txsBySubject('subject-1', { limit: 0 }), [], 'limit 0');
    t.same(await store.txsBySubject('subject-2'), [], 'subject without transactions');
    t.same(await store.txsBySubject('subject'), [], 'prefix of ids is not a subject');
  });

  await t.test(`${name}: refuses blocks out of order`, async (t) => {
    const { chain, ledger, sut } = await fresh(t);
    const { store } = sut;
    ledger.commit([ledger.register(chain.subjects[0]!)]);
    ledger.commit([ledger.register(chain.subjects[1]!)]);
    ledger.commit([]);
    const [b1, b2, b3] = ledger.blocks as [
      (typeof ledger.blocks)[number],
      (typeof ledger.blocks)[number],
      (typeof ledger.blocks)[number],
    ];
    const OUT = { code: 'LEDGER_BLOCK_OUT_OF_ORDER' };
    await t.rejects(store.commit(b2.certified, b2.commitEffects), OUT, 'height 2 before 1');
    await store.commit(b1.certified, b1.commitEffects);
    await t.rejects(store.commit(b1.certified, b1.commitEffects), OUT, 'height 1 twice');
    await t.rejects(store.commit(b3.certified, b3.commitEffects), OUT, 'height 3 after 1');
    const forked = chain.certify({
      ...b2.certified.block,
      header: { ...b2.certified.block.header, prev: 'ab'.repeat(32) },
    });
    await t.rejects(store.commit(forked, b2.commitEffects), OUT, 'height 2 not linked to block 1');
    t.equal(store.tip().height, 1, 'tip unchanged by refusals');
    t.equal(await store.getBlock(2), undefined);
    await store.commit(b2.certified, b2.commitEffects);
    await store.commit(b3.certified, b3.commitEffects);
    t.equal(store.tip().hash, ledger.tipHash);
  });

  await t.test(`${name}: loadState equals the executed state, deletions included`, async (t) => {
    const { chain, ledger, sut } = await fresh(t);
    const { store } = sut;
    const bank = chain.institutions[0]!;
    ledger.commit(chain.subjects.slice(0, 3).map((s) => ledger.register(s)));
    const { grant, request } = ledger.granted(bank, chain.subjects[0]!, ['tax', 'social-insurance']);
    ledger.commit([ledger.usage(bank, grant), ledger.pause(chain.subjects[0]!, grant)]);
    ledger.commit([ledger.erase(chain.subjects[0]!, request)]);
    ledger.commit([ledger.retireInstitution(chain.admin, 'bank-1')]);
    // Past the replay window: the next block deletes the replay-protection entries.
    ledger.advance(10 * 60_000);
    const pruning = ledger.commit([]);
    const deleted = [...pruning.effects.writes.entries()].filter(([, v]) => v === null).length;
    t.ok(deleted > 5, `the pruning block deletes keys (${deleted})`);
    await syncStore(store, ledger);
    await expectSameState(t, store, ledger, 'after pruning');
    const loaded = new CommittedState();
    await store.loadState(loaded);
    t.same(
      loaded.expiredSeenKeys(ledger.now + 3600_000),
      ledger.state.expiredSeenKeys(ledger.now + 3600_000),
      'replay index rebuilt',
    );
  });

  await t.test(`${name}: metadata`, async (t) => {
    const { sut } = await fresh(t);
    t.equal(await sut.store.getMeta('vote'), undefined);
    await sut.store.putMeta('vote', '{"view":3}');
    await sut.store.putMeta('other', 'x');
    t.equal(await sut.store.getMeta('vote'), '{"view":3}');
    await sut.store.putMeta('vote', '{"view":4}');
    t.equal(await sut.store.getMeta('vote'), '{"view":4}');
  });

  await t.test(`${name}: metadata written with a commit, in the same batch`, async (t) => {
    const { chain, ledger, sut } = await fresh(t);
    ledger.commit([ledger.register(chain.subjects[0]!)]);
    const b = ledger.blocks[0]!;
    await sut.store.commit(b.certified, { ...b.commitEffects, meta: { key: 'vote', value: 'with-block-1' } });
    t.equal(sut.store.tip().height, 1, 'block committed');
    t.equal(await sut.store.getMeta('vote'), 'with-block-1', 'metadata stored with it');
    if (!sut.reopen) return;
    const reopened = await sut.reopen();
    t.teardown(() => reopened.close());
    t.equal(reopened.tip().height, 1, 'block survives reopening');
    t.equal(await reopened.getMeta('vote'), 'with-block-1', 'metadata survives reopening');
  });

  await t.test(`${name}: reopen keeps everything (persistent stores)`, async (t) => {
    const { chain, ledger, sut } = await fresh(t);
    if (!sut.reopen) {
      t.pass('not a persistent store');
      return;
    }
    ledger.commit(chain.subjects.slice(0, 2).map((s) => ledger.register(s)));
    ledger.granted(chain.institutions[0]!, chain.subjects[0]!, ['tax']);
    await syncStore(sut.store, ledger);
    await sut.store.putMeta('vote', 'v1');
    const reopened = await sut.reopen();
    t.teardown(() => reopened.close());
    t.same(reopened.tip(), sut.store.tip(), 'tip');
    for (const b of ledger.blocks) {
      const h = b.certified.block.header.height;
      t.same(await reopened.getBlock(h), b.certified, `block ${h}`);
    }
    t.equal(await reopened.getMeta('vote'), 'v1', 'metadata');
    await expectSameState(t, reopened, ledger, 'reopened');
    // Continue from the loaded state, as a restarted node does.
    const loaded = new CommittedState();
    await reopened.loadState(loaded);
    const resumed = TestLedger.resume(chain, loaded, reopened.tip());
    const next = resumed.commit([resumed.openRequest(chain.institutions[1]!, chain.subjects[1]!)]);
    await reopened.commit(next.certified, next.commitEffects);
    t.equal(reopened.tip().height, ledger.height + 1, 'extends after reopening');
  });

  await t.test(`${name}: starts from a state snapshot at a height`, async (t) => {
    const { chain, ledger, sut } = await fresh(t);
    const { store } = sut;
    const bank = chain.institutions[0]!;
    ledger.commit(chain.subjects.slice(0, 3).map((s) => ledger.register(s)));
    ledger.commit([ledger.openRequest(bank, chain.subjects[0]!)]);
    ledger.commit([
      ledger.openRequest(bank, chain.subjects[1]!),
      ledger.openRequest(bank, chain.subjects[2]!),
    ]);
    const at = ledger.blocks.at(-1)!;
    const h = at.certified.block.header.height;
    // Genesis state in the store that the snapshot's does not have is dropped with the install.
    await store.installSnapshot({ certified: at.certified, entries: ledgerStateEntries(ledger) });
    t.match(
      store.tip(),
      { height: h, hash: ledger.tipHash, stateRoot: ledger.state.root, base: h },
      'tip at h, base h',
    );
    t.same(await store.getBlock(h), at.certified, 'block h is held');
    t.same(await store.getBlockByHash(at.certified.cert.block), at.certified, 'and found by hash');
    for (let below = 1; below < h; below++)
      t.equal(await store.getBlock(below), undefined, `no block ${below} (below the snapshot)`);
    for (const [i, tx] of at.certified.block.txs.entries())
      t.same(await store.getTxLocation(txHash(tx)), { height: h, index: i }, `block h's tx ${i} is indexed`);
    t.equal(
      await store.getTxLocation(txHash(ledger.blocks[0]!.certified.block.txs[0]!)),
      undefined,
      'earlier txs are not',
    );
    await expectSameState(t, store, ledger, 'from the snapshot');
    await t.rejects(
      store.installSnapshot({ certified: at.certified, entries: [] }),
      { code: 'SNAPSHOT_STORE_NOT_EMPTY' },
      'a store that holds blocks takes no snapshot',
    );
    const next = ledger.commit([ledger.openRequest(bank, chain.subjects[0]!)]);
    await store.commit(next.certified, next.commitEffects);
    t.match(store.tip(), { height: h + 1, base: h }, 'the next block extends it; the base stays');
    t.same(await store.getBlock(h + 1), next.certified, 'block h+1');
    await expectSameState(t, store, ledger, 'after the next block');
    if (sut.reopen) {
      const reopened = await sut.reopen();
      t.teardown(() => reopened.close());
      t.same(reopened.tip(), store.tip(), 'reopened: the same tip and base');
      t.equal(await reopened.getBlock(h - 1), undefined, 'reopened: still nothing below the snapshot');
      await expectSameState(t, reopened, ledger, 'reopened');
    }
  });
}
