/**
 * Pipelined commits (`Chain.commit(…, { pipeline: true })`, as PBFT validators commit): the call
 * returns once the block is applied in memory, with its LevelDB batch still in flight. Held writes
 * show what that must keep true: the next block is executed meanwhile, with caches of one entry
 * and one tree node so that its reads go below them, and gets the same state root as the chain that
 * made it (reads answer the unwritten height from memory); `committed` is emitted only once the
 * batch is written, in height order; every read of the store waits for the batch; the next commit
 * waits for it too; and a batch that fails leaves the store at the height before, emits
 * 'write-failed' and refuses every later commit with LEDGER_STORE_WRITE_FAILED, where a commit that
 * is not pipelined leaves the chain at the height before, able to commit the block again. A
 * `committed` listener that throws is reported by the next commit. And a PBFT validator (over a
 * simulated network) whose only block write fails leaves consensus on `write-failed` at once,
 * with no later commit needed to find out.
 */
import '../../../src/common/polyfill.js';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { FaultyBlockStore } from '../../../scripts/faults/fault-injection.js';
import { type CertifiedBlock, LevelBlockStore, MemoryBlockStore } from '../../../src/ledger/index.js';
import type { Chain } from '../../../src/node/chain.js';
import { MemorySigningState } from '../../../src/node/signing-state.js';
import { syncStore } from '../../helpers/block-store-suite.js';
import { makeTestChain, type TestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';
import { SimHub } from '../../helpers/sim-network.js';
import { chainOn, simValidator } from '../../helpers/sim-validator.js';
import { makeTempDir } from '../../helpers/tmp.js';
import { until } from '../../helpers/until.js';

/** A gate on the store's LevelDB batches: each waits until released, or fails when told. */
class HeldWrites {
  private waiting: { release: () => void; fail: (err: Error) => void }[] = [];
  held = true;

  wrap(store: LevelBlockStore): void {
    const db = (store as unknown as { db: { _batch: (ops: unknown[], o: unknown) => Promise<void> } }).db;
    const direct = db._batch.bind(db);
    db._batch = (ops, o) => {
      if (!this.held) return direct(ops, o);
      return new Promise<void>((resolve, reject) => {
        this.waiting.push({
          release: () => direct(ops, o).then(resolve, reject),
          fail: reject,
        });
      });
    };
  }

  get pending(): number {
    return this.waiting.length;
  }

  release(): void {
    for (const w of this.waiting.splice(0)) w.release();
  }

  fail(): void {
    for (const w of this.waiting.splice(0)) w.fail(new Error('injected write failure'));
  }
}

/** A source ledger of several blocks that read and rewrite state, and a chain on LevelDB to replay them. */
async function setup(t: Test) {
  const tc = makeTestChain({ subjects: 6 });
  const ledger = new TestLedger(tc);
  const bank = tc.institutions[0]!;
  for (let i = 0; i < 6; i++) ledger.commit([ledger.openRequest(bank, tc.subjects[i]!)]);
  // Records and grants rewrite the requests opened above (reads of earlier heights' state).
  for (let i = 0; i < 2; i++) ledger.granted(bank, tc.subjects[i]!);
  const dir = await makeTempDir(t, 'datagrant-pipelined-');
  const store = new LevelBlockStore({ path: join(dir, 'chain'), genesis: tc.genesisInit() });
  await store.open();
  const chain = await openChain(tc, store);
  // After loading (which writes the genesis state's tree).
  const held = new HeldWrites();
  held.wrap(store);
  t.teardown(async () => {
    held.held = false;
    held.release();
    await store.close().catch(() => undefined);
  });
  const committed: number[] = [];
  chain.on('committed', (e) => committed.push(e.certified.block.header.height));
  return { tc, ledger, store, held, chain, committed, blocks: ledger.blocks.map((b) => b.certified) };
}

async function openChain(tc: TestChain, store: LevelBlockStore): Promise<Chain> {
  // Caches of one entry and one tree-node bucket: nearly every read goes below them.
  return (await chainOn(tc, store, { values: 1, nodes: 1 })).chain;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

t.test('the next block executes while the last one is written, and agrees with its maker', async (t) => {
  const { store, held, chain, committed, blocks } = await setup(t);
  t.ok(blocks.length >= 7, `${blocks.length} blocks to replay`);
  for (const [i, certified] of blocks.entries()) {
    await chain.commit(certified, { pipeline: true });
    const height = certified.block.header.height;
    t.equal(chain.height, height, `block ${height}: the tip moved at once`);
    t.equal(chain.state.root, certified.block.header.stateRoot, `block ${height}: applied in memory`);
    await settle();
    t.equal(held.pending, 1, `block ${height}: its batch is still held`);
    t.notOk(committed.includes(height), `block ${height}: no 'committed' before the write`);
    const next = blocks[i + 1];
    if (next) {
      // Executed against the unwritten height: a read that reached LevelDB would see the one before.
      t.equal(chain.validateBlock(next.block), null, `block ${height + 1} validates while ${height} is held`);
    }
    let read = false;
    const block = store.getBlock(height).then((b) => {
      read = true;
      return b;
    });
    await settle();
    t.notOk(read, `block ${height}: a read of the store waits for the write`);
    held.release();
    t.equal((await block)?.block.header.height, height, `block ${height}: read once written`);
    await chain.written();
    t.same(committed.slice(-1), [height], `block ${height}: 'committed' once written`);
  }
  t.same(
    committed,
    blocks.map((b) => b.block.header.height),
    "'committed' once per block, in height order",
  );
  t.equal(chain.state.root, blocks.at(-1)!.block.header.stateRoot, 'the same state root as the source');
});

t.test('the next commit waits for the batch in flight', async (t) => {
  const { held, chain, blocks } = await setup(t);
  await chain.commit(blocks[0]!, { pipeline: true });
  let second = false;
  const next = chain.commit(blocks[1]! as CertifiedBlock, { pipeline: true }).then(() => {
    second = true;
  });
  await settle();
  t.notOk(second, 'the second commit has not gone ahead');
  t.equal(held.pending, 1, 'one batch in flight');
  held.release();
  await settle();
  await next;
  t.ok(second, 'it goes ahead once the first is written');
  t.equal(held.pending, 1, 'and its own batch is in flight');
  held.release();
  await chain.written();
  t.equal(chain.height, 2);
});

t.test('a failed pipelined write stops the chain: every later commit is refused', async (t) => {
  const { store, held, chain, committed, blocks } = await setup(t);
  await chain.commit(blocks[0]!, { pipeline: true });
  held.release();
  await chain.written();
  const failed: string[] = [];
  chain.on('write-failed', (err) => failed.push(err.code));
  await chain.commit(blocks[1]!, { pipeline: true });
  await settle();
  held.fail();
  await t.rejects(chain.written(), { code: 'LEDGER_STORE_WRITE_FAILED' }, 'the failure is reported');
  t.same(failed, ['LEDGER_STORE_WRITE_FAILED'], "and emitted as 'write-failed' (a validator leaves on it)");
  t.equal(store.tip().height, 1, 'the store is back at the height it holds');
  t.notOk(committed.includes(2), "no 'committed' for the block not written");
  t.equal(await store.getBlock(2), undefined, 'block 2 is not in the store');
  await t.rejects(
    chain.commit(blocks[2]!, { pipeline: true }),
    { code: 'LEDGER_STORE_WRITE_FAILED' },
    'a later commit is refused',
  );
  await t.rejects(
    chain.commit(blocks[1]!),
    { code: 'LEDGER_STORE_WRITE_FAILED' },
    'so is the same block again',
  );
});

t.test('a failed write that is not pipelined leaves the chain where it was', async (t) => {
  const { store, held, chain, blocks } = await setup(t);
  const first = chain.commit(blocks[0]!);
  await settle();
  held.fail();
  await t.rejects(first, { message: 'injected write failure' }, 'the commit fails');
  t.equal(store.tip().height, 0, 'the store is at genesis');
  t.equal(chain.height, 0, 'so is the chain');
  held.held = false;
  await chain.commit(blocks[0]!);
  t.equal(chain.height, 1, 'the block commits when tried again');
  t.equal(chain.state.root, blocks[0]!.block.header.stateRoot);
});

t.test("a 'committed' listener that throws is reported by the next commit, once", async (t) => {
  const { held, chain, blocks } = await setup(t);
  held.held = false;
  const boom = () => {
    throw new Error('listener failed');
  };
  chain.on('committed', boom);
  await chain.commit(blocks[0]!, { pipeline: true });
  await t.rejects(chain.written(), { message: 'listener failed' }, 'the next wait reports it');
  chain.off('committed', boom);
  await chain.commit(blocks[1]!, { pipeline: true });
  await chain.written();
  t.equal(chain.height, 2, 'and the chain goes on');
});

t.test('a validator whose pipelined block write fails leaves consensus at once', async (t) => {
  const tc = makeTestChain({ subjects: 4 });
  // One block (the subjects' registrations): no later commit could report the failure instead.
  const ledger = new TestLedger(tc);
  t.equal(ledger.height, 1);
  const hub = new SimHub();
  const full = new MemoryBlockStore(tc.genesisInit());
  await syncStore(full, ledger);
  const fatal: unknown[] = [];
  await simValidator(t, tc, hub, 0, full, new MemorySigningState({ absent: true }));
  // Validator 1 syncs from validator 0 onto a store that refuses every write.
  const faulty = new FaultyBlockStore(new MemoryBlockStore(tc.genesisInit()));
  faulty.failWrites();
  const behind = await simValidator(
    t,
    tc,
    hub,
    1,
    faulty,
    new MemorySigningState({ absent: true }),
    (err: unknown) => fatal.push(err),
  );
  await until('its first failed write ends it', async () => (fatal.length > 0 ? true : undefined), 10_000);
  t.match(fatal[0], { code: 'LEDGER_STORE_WRITE_FAILED' }, 'onFatal with LEDGER_STORE_WRITE_FAILED');
  t.equal(behind.chain.height, 0, 'its store holds nothing it could not write');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(fatal.length, 1, 'and it is told once');
});
