/**
 * What the extractor role's rescan stands on: the chain's index of open requests (rebuilt when the
 * state is loaded from the store, kept as blocks commit, dropping erased and denied requests and
 * those a reader settles) and the mempool's lookup of a pending record.put / record.fail by
 * (request, type), which forgets a transaction once it commits, is refused or expires.
 */
import '../../../src/common/polyfill.js';
import t from 'tap';
import { verifyFast } from '../../../src/common/crypto-node.js';
import { MemoryBlockStore, txHash } from '../../../src/ledger/index.js';
import { Mempool } from '../../../src/node/mempool.js';
import { IndexedCommittedState } from '../../../src/node/request-index.js';
import { makeTestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

t.test('the open-request index follows commits and is rebuilt from the store', async (t) => {
  const tc = makeTestChain();
  const ledger = new TestLedger(tc);
  const store = new MemoryBlockStore(tc.genesisInit());
  await store.open();
  const live = new IndexedCommittedState();
  await store.loadState(live);
  // Mirror every block of the ledger (block 1 registers the subjects) into the store and the index.
  const mirror = (block: (typeof ledger.blocks)[number]) => {
    live.apply(block.effects.writes, block.effects.stateRoot, block.certified.block.header.height);
    return store.commit(block.certified, block.commitEffects);
  };
  const commit = (txs: Parameters<TestLedger['commit']>[0]) => mirror(ledger.commit(txs));
  await mirror(ledger.blocks[0]!);
  const [alice, bob, carol] = tc.subjects;
  const opens = [alice!, bob!, carol!].map((s) => ledger.openRequest(tc.institutions[0]!, s));
  await commit(opens);
  const [a, b, c] = opens.map((o) => txHash(o));
  t.same(live.openRequestIds(), [a, b, c], 'opened requests enter the index');

  await commit([ledger.deny(bob!, b!)]);
  await commit([ledger.erase(carol!, c!)]);
  t.same(live.openRequestIds(), [a], 'denied and erased requests leave it');

  const reloaded = new IndexedCommittedState();
  await store.loadState(reloaded);
  t.same(reloaded.openRequestIds(), [a], 'loading the state from the store rebuilds it');
  reloaded.settleRequest(a!);
  t.equal(reloaded.openRequestCount, 0, 'a reader settles a request for good');
  const put = ledger.putRecord(tc.extractorFor('tax'), a!, 'tax');
  const block = ledger.commit([put]);
  reloaded.apply(block.effects.writes, block.effects.stateRoot, block.certified.block.header.height);
  t.same(reloaded.openRequestIds(), [a], 'it comes back when it is written again');
});

t.test('the mempool finds a pending record.put or record.fail by (request, type)', async (t) => {
  const tc = makeTestChain();
  const ledger = new TestLedger(tc);
  let now = ledger.now;
  const mempool = new Mempool(
    { chain: tc.genesis.chain, maxTxs: 100, maxTxTtlMs: tc.genesis.params.maxTxTtlMs },
    { verifier: verifyFast, isCommitted: async () => false, now: () => now },
  );
  const request = txHash(ledger.openRequest(tc.institutions[0]!, tc.subjects[0]!));
  const extractor = tc.extractorFor('tax');
  const put = ledger.putRecord(extractor, request, 'tax', {}, { expires: now + 10_000 });
  const fail = ledger.failRecord(extractor, request, 'social-insurance', {}, { expires: now + 10_000 });
  t.equal(mempool.pendingRecordTx(request, 'tax'), undefined, 'nothing pending at first');
  await mempool.add(put);
  await mempool.add(fail);
  await mempool.add(ledger.register(tc.subjects[1]!));
  t.equal(mempool.pendingRecordTx(request, 'tax'), put, 'the record.put, by (request, type)');
  t.equal(mempool.pendingRecordTx(request, 'social-insurance'), fail, 'the record.fail');
  t.equal(mempool.pendingRecordTx(request, 'property'), undefined, 'not another type');

  mempool.removeCommitted([txHash(put)]);
  t.equal(mempool.pendingRecordTx(request, 'tax'), undefined, 'forgotten once committed');
  mempool.reject(txHash(fail), 'LEDGER_REQUEST_CLOSED', 'closed');
  t.equal(mempool.pendingRecordTx(request, 'social-insurance'), undefined, 'forgotten once refused');

  const late = ledger.putRecord(extractor, request, 'tax', {}, { expires: now + 10_000 });
  await mempool.add(late);
  t.equal(mempool.pendingRecordTx(request, 'tax'), late, 'a new one is found');
  now += 10_000;
  t.equal(mempool.pendingRecordTx(request, 'tax'), undefined, 'not once it has expired');
});
