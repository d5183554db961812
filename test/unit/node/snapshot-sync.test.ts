/**
 * Consensus over a tip that came from a state snapshot, not from replaying blocks (`PbftDriver`
 * over a `SimHub`): a validator whose store was started from a snapshot at h, with no signing
 * state, runs its double-sign check (learning the tip from a peer's sync answer), syncs blocks
 * h+1.. from the peer — every certificate verified — and ends with the peer's block hashes and
 * state root, never voting meanwhile; its open-request index and the replay protection of earlier
 * transactions come from the snapshot's state. Its sync server refuses heights below h with
 * SYNC_BLOCK_NOT_HELD (the asker tries another peer) and serves h on. And a voting validator
 * restarted behind a chain that makes no blocks asks its peers for their tip at start and syncs.
 */
import '../../../src/common/polyfill.js';
import t, { type Test } from 'tap';
import { utf8ToBytes } from '../../../src/common/bytes.js';
import { type CertifiedBlock, MemoryBlockStore, txHash } from '../../../src/ledger/index.js';
import { MemorySigningState } from '../../../src/node/signing-state.js';
import { ledgerStateEntries, syncStore } from '../../helpers/block-store-suite.js';
import { makeTestChain, type TestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';
import { SimHub } from '../../helpers/sim-network.js';
import { simValidator } from '../../helpers/sim-validator.js';
import { until } from '../../helpers/until.js';

/** A validator's driver over `store` (started), with a signing state present or absent. */
const validator = (
  t: Test,
  tc: TestChain,
  hub: SimHub,
  index: number,
  store: MemoryBlockStore,
  signing: MemorySigningState,
) => simValidator(t, tc, hub, index, store, signing);

t.test('a validator started from a snapshot syncs after it and runs its double-sign check', async (t) => {
  const tc = makeTestChain({ subjects: 4 });
  const ledger = new TestLedger(tc);
  const bank = tc.institutions[0]!;
  ledger.commit([ledger.openRequest(bank, tc.subjects[0]!)]);
  ledger.commit([ledger.openRequest(bank, tc.subjects[1]!)]);
  const h = ledger.height;
  const snapshot = { certified: ledger.blocks.at(-1)!.certified, entries: ledgerStateEntries(ledger) };
  for (let i = 2; i < 4; i++) ledger.commit([ledger.openRequest(bank, tc.subjects[i]!)]);
  ledger.commit([]);
  const tip = ledger.height;

  const hub = new SimHub();
  const fullStore = new MemoryBlockStore(tc.genesisInit());
  await syncStore(fullStore, ledger);
  const full = await validator(t, tc, hub, 0, fullStore, new MemorySigningState());
  const fromSnapshot = new MemoryBlockStore(tc.genesisInit());
  await fromSnapshot.installSnapshot(snapshot);
  const signing = new MemorySigningState({ absent: true });
  const restored = await validator(t, tc, hub, 1, fromSnapshot, signing);
  t.equal(restored.chain.height, h, `it starts at the snapshot's height ${h}`);
  t.equal(restored.driver.isVoting, false, 'without a signing state it does not vote');

  await until('synced to the peer’s tip', async () => (restored.chain.height >= tip ? true : undefined));
  t.equal(fromSnapshot.tip().hash, ledger.tipHash, 'the same tip hash');
  t.equal(restored.chain.state.root, ledger.state.root, 'the same state root');
  for (let height = h + 1; height <= tip; height++)
    t.same(
      await fromSnapshot.getBlock(height),
      await fullStore.getBlock(height),
      `block ${height} as the peer's`,
    );
  t.equal(fromSnapshot.tip().base, h, 'its base stays h');
  // What is derived from state at load came along: the open-request index and replay protection.
  t.same(
    [...restored.chain.state.openRequestIds()].sort(),
    [...full.chain.state.openRequestIds()].sort(),
    'the same open requests for the extractors',
  );
  t.ok(restored.chain.state.openRequestCount > 0, `(${restored.chain.state.openRequestCount} of them)`);
  const before = ledger.blocks[1]!.certified.block.txs[0]!;
  t.ok(
    restored.chain.committedRecently(txHash(before)),
    'a transaction committed before h is known as committed',
  );
  t.equal(restored.driver.doubleSignCheckUntil, tip + 1, 'its double-sign check waits past the network tip');
  t.equal(restored.driver.isVoting, false, 'and it has not voted yet');
  t.equal(signing.wal, undefined, 'nor saved a signing state');

  // Its sync server: nothing below h, h on served.
  const ask = async (from: number) => {
    const raw = await full.net.request(restored.key, 'sync', utf8ToBytes(JSON.stringify({ from })));
    return JSON.parse(new TextDecoder().decode(raw)) as { tip: number; blocks: CertifiedBlock[] };
  };
  const notHeld = { code: 'P2P_REMOTE_ERROR', meta: { remoteCode: 'SYNC_BLOCK_NOT_HELD' } };
  await t.rejects(ask(1), notHeld, 'from 1: SYNC_BLOCK_NOT_HELD');
  await t.rejects(ask(h - 1), notHeld, `from ${h - 1}: SYNC_BLOCK_NOT_HELD`);
  const served = await ask(h);
  t.equal(served.tip, tip, 'it reports its tip');
  t.same(
    served.blocks.map((b) => b.block.header.height),
    Array.from({ length: tip - h + 1 }, (_, i) => h + i),
    `from ${h}: blocks ${h}..${tip}`,
  );
});

t.test('a voting validator restarted behind an idle chain syncs to the tip at once', async (t) => {
  // Three of four validators run, the restarted one the primary of the next height (no proposal
  // comes to it) and no view changes for 30 s: nothing but its own start-up can tell it that the
  // chain moved on.
  const tc = makeTestChain({ subjects: 4 });
  const ledger = new TestLedger(tc);
  const bank = tc.institutions[0]!;
  ledger.commit([ledger.openRequest(bank, tc.subjects[0]!)]);
  const h = ledger.height;
  const behindStore = new MemoryBlockStore(tc.genesisInit());
  await syncStore(behindStore, ledger);
  for (let i = 1; i < 4; i++) ledger.commit([ledger.openRequest(bank, tc.subjects[i]!)]);
  const tip = ledger.height;

  const hub = new SimHub();
  const order = tc.genesis.validators.map((v) => v.key);
  const primary = tc.validators.findIndex((v) => v.pub === order[(tip + 1) % order.length]);
  const others = [0, 1, 2, 3].filter((i) => i !== primary).slice(0, 2);
  for (const i of others) {
    const store = new MemoryBlockStore(tc.genesisInit());
    await syncStore(store, ledger);
    await validator(t, tc, hub, i, store, new MemorySigningState());
  }
  const restarted = await validator(t, tc, hub, primary, behindStore, new MemorySigningState());
  t.equal(restarted.chain.height, h, `it starts at height ${h}`);
  t.equal(restarted.driver.isVoting, true, 'with its signing state it votes');
  await until(
    `height ${tip} well within the view timeout`,
    async () => (restarted.chain.height >= tip ? true : undefined),
    10_000,
  );
  t.equal(behindStore.tip().hash, ledger.tipHash, 'the same tip hash');
  t.equal(restarted.chain.state.root, ledger.state.root, 'the same state root');
});
