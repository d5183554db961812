/** The block byte budget: a proposer never builds a block over it, and a validator refuses one. */
import t from 'tap';
import { verifyFast } from '../../../src/common/crypto-node.js';
import {
  blockTxBytes,
  buildBlockTxs,
  executeBlock,
  MemoryBlockStore,
  txBytes,
  txHash,
  txRootOf,
} from '../../../src/ledger/index.js';
import { Chain } from '../../../src/node/chain.js';
import { Mempool } from '../../../src/node/mempool.js';
import { makeTestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

t.test('a block is built within its byte budget; what does not fit waits', async (t) => {
  const chain = makeTestChain();
  const ledger = new TestLedger(chain);
  const bank = chain.institutions[0]!;
  const txs = chain.subjects.flatMap((s) =>
    Array.from({ length: 10 }, (_, i) =>
      ledger.openRequest(bank, s, { purpose: `purpose ${i} ${'x'.repeat(150)}` }),
    ),
  );
  const one = txBytes(txs[0]!).length;
  const budget = one * 7 + Math.floor(one / 2);
  const built = buildBlockTxs(ledger.state, txs, ledger.ctx(), chain.config, 1000, {}, undefined, budget);
  t.equal(built.txs.length, 7, 'as many as fit');
  t.ok(blockTxBytes(built.txs) <= budget, `within the budget (${blockTxBytes(built.txs)} ≤ ${budget} bytes)`);
  t.same(built.dropped, [], 'nothing is dropped for size: the rest waits in the mempool');
  const unbounded = buildBlockTxs(ledger.state, txs, ledger.ctx(), chain.config, 1000);
  t.equal(unbounded.txs.length, txs.length, 'without a budget every transaction fits');
  t.ok(blockTxBytes(unbounded.txs) > budget, 'and that block would be over it');
  t.ok(
    executeBlock(ledger.state, unbounded.txs, ledger.ctx(), chain.config).ok,
    'the ledger itself accepts its txs',
  );
});

t.test('a validator refuses a block over the byte budget before executing it', async (t) => {
  const tc = makeTestChain({ params: { maxBlockBytes: 16 * 1024 } });
  const ledger = new TestLedger(tc);
  const bank = tc.institutions[0]!;
  const txs = tc.subjects.flatMap((s) =>
    Array.from({ length: 20 }, (_, i) =>
      ledger.openRequest(bank, s, { purpose: `p${i} ${'x'.repeat(300)}` }),
    ),
  );
  t.ok(blockTxBytes(txs) > 16 * 1024, `the transactions take ${blockTxBytes(txs)} bytes`);
  const store = new MemoryBlockStore(tc.genesisInit());
  await store.open();
  const mempool = new Mempool(
    { chain: tc.genesis.chain, maxTxs: 1000, maxTxTtlMs: tc.genesis.params.maxTxTtlMs, minQueueTxs: 10 },
    { verifier: verifyFast, isCommitted: async () => false, now: Date.now },
  );
  const chain = new Chain(tc.genesis, store, { mempool, verifier: verifyFast });
  const tip = store.tip();
  const header = {
    chain: tc.genesis.chain,
    height: tip.height + 1,
    prev: tip.hash,
    txRoot: txRootOf(txs),
    txCount: txs.length,
    stateRoot: '0'.repeat(64),
    proposer: tc.validators[0]!.pub,
    view: 0,
    time: tip.time + 1,
  };
  const fault = chain.validateBlock({ header, txs }, tip.time + 1);
  t.equal(fault?.code, 'CONSENSUS_BLOCK_TOO_LARGE', 'refused for its size');
  const fits = txs.slice(0, 5);
  const small = chain.validateBlock(
    { header: { ...header, txRoot: txRootOf(fits), txCount: fits.length }, txs: fits },
    tip.time + 1,
  );
  t.not(
    small?.code,
    'CONSENSUS_BLOCK_TOO_LARGE',
    `a block within the budget is judged on its content (${small?.code})`,
  );
});

t.test('the mempool refuses a transaction larger than a block may be', async (t) => {
  const tc = makeTestChain();
  const ledger = new TestLedger(tc);
  const tx = ledger.openRequest(tc.institutions[0]!, tc.subjects[0]!, { purpose: 'y'.repeat(190) });
  const size = txBytes(tx).length;
  const mempool = (maxTxBytes: number) =>
    new Mempool(
      { chain: tc.genesis.chain, maxTxs: 10, maxTxTtlMs: tc.genesis.params.maxTxTtlMs, maxTxBytes },
      { verifier: verifyFast, isCommitted: async () => false, now: () => tx.expires - 1000 },
    );
  await t.rejects(mempool(size - 1).add(tx), { code: 'LEDGER_TX_TOO_LARGE' }, 'one byte over: refused');
  t.equal(await mempool(size).add(tx), txHash(tx), 'exactly at the budget: admitted');
});
