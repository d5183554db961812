/**
 * Mempool admission: decode, expiry and signature checks once, duplicates and replays refused,
 * and a transaction the ledger just refused kept out for a moment, then given another chance.
 */
import '../../../src/common/polyfill.js';
import t from 'tap';
import { verifyFast } from '../../../src/common/crypto-node.js';
import { txHash } from '../../../src/ledger/index.js';
import { Mempool } from '../../../src/node/mempool.js';
import { makeTestChain } from '../../helpers/chain.js';

function setup(limits: { maxTxs?: number; minQueueTxs?: number } = {}) {
  const tc = makeTestChain({ validators: 1 });
  let now = tc.options.time;
  const committed = new Set<string>();
  let verifies = 0;
  const mempool = new Mempool(
    {
      chain: tc.genesis.chain,
      maxTxs: limits.maxTxs ?? 3,
      maxTxTtlMs: tc.genesis.params.maxTxTtlMs,
      ...(limits.minQueueTxs !== undefined ? { minQueueTxs: limits.minQueueTxs } : {}),
    },
    {
      verifier: (sig, msg, key) => {
        verifies++;
        return verifyFast(sig, msg, key);
      },
      isCommitted: async (hash) => committed.has(hash),
      now: () => now,
    },
  );
  let n = 0;
  const tx = () =>
    tc.sign(tc.admin, 'institution.retire', { institution: `inst-${n++}` }, now, { expires: now + 60_000 });
  return {
    mempool,
    tx,
    committed,
    verifies: () => verifies,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

t.test('admits once, refuses duplicates, replays of committed txs and a full pool', async (t) => {
  const { mempool, tx, committed, verifies } = setup();
  const a = tx();
  t.equal(await mempool.add(JSON.parse(JSON.stringify(a))), txHash(a));
  await t.rejects(mempool.add(JSON.parse(JSON.stringify(a))), { code: 'LEDGER_TX_DUPLICATE' });
  t.equal(verifies(), 1, 'the signature is checked once');
  const b = tx();
  committed.add(txHash(b));
  await t.rejects(mempool.add(b), { code: 'LEDGER_TX_REPLAYED' }, 'already committed');
  await mempool.add(tx());
  await mempool.add(tx());
  const before = verifies();
  await t.rejects(mempool.add(tx()), { code: 'LEDGER_MEMPOOL_FULL' });
  t.equal(verifies(), before, 'a full pool refuses before checking the signature');
});

t.test('admission control: the pool holds about two seconds of recent commit throughput', async (t) => {
  const { mempool, tx, advance, verifies } = setup({ maxTxs: 1000, minQueueTxs: 4 });
  t.equal(mempool.admissionLimit(), 4, 'nothing committed yet: the floor');
  const admitted: string[] = [];
  for (let i = 0; i < 4; i++) admitted.push(await mempool.add(tx()));
  const before = verifies();
  await t.rejects(mempool.add(tx()), { code: 'LEDGER_MEMPOOL_FULL' }, 'refused past the floor');
  t.equal(verifies(), before, 'refused before the signature check');
  // The chain commits 10 txs/s for five seconds: the bound becomes 2 s × 10/s = 20.
  for (let s = 0; s < 5; s++) {
    advance(1000);
    mempool.removeCommitted(Array.from({ length: 10 }, (_, i) => `c${s}-${i}`));
  }
  t.equal(mempool.admissionLimit(), 20);
  for (let i = 0; i < 16; i++) await mempool.add(tx());
  await t.rejects(mempool.add(tx()), { code: 'LEDGER_MEMPOOL_FULL' });
  mempool.removeCommitted(admitted);
  t.equal(mempool.size, 16);
  // Commits stop: the measured rate decays and the bound falls back to the floor.
  advance(10_000);
  t.equal(mempool.admissionLimit(), 4);
  const capped = setup({ maxTxs: 3, minQueueTxs: 100 });
  t.equal(capped.mempool.admissionLimit(), 3, 'never above maxTxs');
});

t.test('a tx the ledger refused is not admitted again at once, but later', async (t) => {
  const { mempool, tx, advance } = setup();
  const a = tx();
  const hash = await mempool.add(a);
  mempool.reject(hash, 'LEDGER_UNKNOWN_INSTITUTION', 'no such institution');
  t.equal(mempool.size, 0);
  await t.rejects(
    mempool.add(JSON.parse(JSON.stringify(a))),
    { code: 'LEDGER_TX_DUPLICATE', meta: { refused: 'LEDGER_UNKNOWN_INSTITUTION' } },
    'resubmitted at once: refused',
  );
  t.equal(mempool.rejection(hash)?.code, 'LEDGER_UNKNOWN_INSTITUTION', 'the reason is still reported');
  advance(2_000);
  t.equal(await mempool.add(JSON.parse(JSON.stringify(a))), hash, 'after the window: admitted again');
  t.equal(mempool.rejection(hash), undefined, 'and no longer reported as rejected');
});

t.test('remembers the most recent verified signatures, forgetting the oldest first', async (t) => {
  const tc = makeTestChain({ validators: 1 });
  const mempool = new Mempool(
    { chain: tc.genesis.chain, maxTxs: 100, maxTxTtlMs: tc.genesis.params.maxTxTtlMs, maxVerified: 5 },
    { verifier: verifyFast, isCommitted: async () => false, now: () => tc.options.time },
  );
  const txs = Array.from({ length: 23 }, (_, i) =>
    tc.sign(tc.admin, 'institution.retire', { institution: `inst-${i}` }, tc.options.time),
  );
  for (const [i, tx] of txs.entries()) {
    mempool.markVerified(tx);
    mempool.markVerified(tx);
    const remembered = txs.slice(0, i + 1).map((x) => mempool.isVerified(x));
    const expected = txs.slice(0, i + 1).map((_, j) => j > i - 5);
    t.same(remembered, expected, `after ${i + 1}: the last five are remembered`);
  }
});
