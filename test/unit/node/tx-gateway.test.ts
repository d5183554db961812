/**
 * Transaction gateway: admitted transactions wait a moment and travel to the other validators
 * together, in admission order; a proposer flushes what is waiting before it builds a block.
 */
import '../../../src/common/polyfill.js';
import { EventEmitter } from 'node:events';
import t from 'tap';
import { verifyFast } from '../../../src/common/crypto-node.js';
import { type AnyTx, txHash } from '../../../src/ledger/index.js';
import type { Chain } from '../../../src/node/chain.js';
import { Mempool } from '../../../src/node/mempool.js';
import { TxGateway } from '../../../src/node/tx-gateway.js';
import { makeTestChain } from '../../helpers/chain.js';

function setup(gossipLingerMs: number) {
  const tc = makeTestChain({ validators: 1 });
  const now = Date.now();
  const mempool = new Mempool(
    { chain: tc.genesis.chain, maxTxs: 1000, maxTxTtlMs: tc.genesis.params.maxTxTtlMs },
    { verifier: verifyFast, isCommitted: async () => false, now: Date.now },
  );
  // The gateway only listens to the chain's commit events here.
  const chain = new EventEmitter() as unknown as Chain;
  const sent: AnyTx[][] = [];
  const gateway = new TxGateway({ chain, mempool, gossip: (txs) => sent.push(txs), gossipLingerMs });
  let n = 0;
  const tx = () =>
    tc.sign(tc.admin, 'institution.retire', { institution: `inst-${n++}` }, now, { expires: now + 60_000 });
  return { gateway, sent, tx };
}

t.test('txs admitted within the linger are gossiped once, together, in order', async (t) => {
  const { gateway, sent, tx } = setup(30);
  const txs = [tx(), tx(), tx()];
  await gateway.submit(txs[0]);
  await new Promise((r) => setTimeout(r, 5));
  await gateway.submit(txs[1]);
  await gateway.submit(txs[2]);
  t.equal(sent.length, 0, 'nothing sent before the linger ends');
  await new Promise((r) => setTimeout(r, 60));
  t.equal(sent.length, 1, 'one gossip hand-over');
  t.same(
    sent[0]!.map((x) => txHash(x)),
    txs.map((x) => txHash(x)),
    'all three, in admission order',
  );
  await gateway.submit(tx(), { gossip: false });
  await new Promise((r) => setTimeout(r, 60));
  t.equal(sent.length, 1, 'a tx that arrived by gossip is not gossiped again');
});

t.test('flushGossip sends what waits at once, and nothing when nothing waits', async (t) => {
  const { gateway, sent, tx } = setup(10_000);
  await gateway.submit(tx());
  t.equal(sent.length, 0);
  gateway.flushGossip();
  t.equal(sent.length, 1, 'sent without waiting for the linger');
  gateway.flushGossip();
  t.equal(sent.length, 1, 'an empty outbox sends nothing');
});
