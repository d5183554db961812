/**
 * Chain routes through `app.inject`: batch submission admits and refuses each transaction on its
 * own, in order, and validates its shape; the block event stream can carry tx hashes.
 */
import '../../../src/common/polyfill.js';
import t from 'tap';
import { chainRoutes, MAX_BATCH_TXS } from '../../../src/api/chain-routes.js';
import { createApi } from '../../../src/api/server.js';
import { bytesToHex } from '../../../src/common/bytes.js';
import { randomBytes } from '../../../src/common/crypto.js';
import { signFast, verifyFast } from '../../../src/common/crypto-node.js';
import { silentLogger } from '../../../src/common/logger.js';
import { MemoryBlockStore, txHash } from '../../../src/ledger/index.js';
import { Chain } from '../../../src/node/chain.js';
import { Mempool } from '../../../src/node/mempool.js';
import { makeTestChain } from '../../helpers/chain.js';

async function setup() {
  const tc = makeTestChain({ validators: 1 });
  const now = tc.options.time + 1000;
  const store = new MemoryBlockStore(tc.genesisInit());
  const mempool = new Mempool(
    { chain: tc.genesis.chain, maxTxs: 1000, maxTxTtlMs: tc.genesis.params.maxTxTtlMs },
    { verifier: verifyFast, isCommitted: async () => false, now: () => now },
  );
  const chain = new Chain(tc.genesis, store, { mempool, verifier: verifyFast });
  await chain.load();
  const app = await createApi({ bodyLimit: 64 * 1024, logger: silentLogger });
  await chainRoutes(app, {
    chain,
    mempool,
    node: {
      status: () => ({
        mode: 'dev',
        kind: 'validator',
        voting: true,
        view: 0,
        primary: '',
        peers: [],
        lastCommitAt: null,
        self: '',
      }),
    },
    submit: (tx) => mempool.add(tx),
  });
  let n = 0;
  const institutionAdd = () => {
    const id = `batch-inst-${n++}`;
    return tc.sign(
      tc.admin,
      'institution.add',
      {
        institution: id,
        name: id,
        signKey: bytesToHex(randomBytes(32)),
        encKey: bytesToHex(randomBytes(32)),
      },
      now,
    );
  };
  return { tc, app, mempool, chain, institutionAdd, now };
}

t.test('POST /v1/txs/batch admits each transaction on its own, in order', async (t) => {
  const { app, mempool, institutionAdd } = await setup();
  t.teardown(() => app.close());
  const good = [institutionAdd(), institutionAdd()];
  const forged = { ...institutionAdd(), sig: bytesToHex(signFast(randomBytes(8), randomBytes(32))) };
  const malformed = { ...institutionAdd(), kind: 'no-such-kind' };
  const r = await app.inject({
    method: 'POST',
    url: '/v1/txs/batch',
    payload: [good[0], forged, good[1], malformed, good[0]],
  });
  t.equal(r.statusCode, 200);
  const { results } = r.json() as { results: { hash?: string; status: string; error?: { code: string } }[] };
  t.equal(results.length, 5, 'one result per transaction');
  t.same(results[0], { hash: txHash(good[0]!), status: 'pending' }, 'first admitted');
  t.equal(results[1]!.error?.code, 'LEDGER_BAD_SIGNATURE', 'forged refused');
  t.same(results[2], { hash: txHash(good[1]!), status: 'pending' }, 'third admitted after a refusal');
  t.equal(results[3]!.error?.code, 'LEDGER_TX_MALFORMED', 'malformed refused');
  t.equal(results[4]!.error?.code, 'LEDGER_TX_DUPLICATE', 'duplicate refused');
  t.equal(mempool.size, 2, 'only the valid ones are pending');
});

t.test('POST /v1/txs/batch validates the shape of the batch', async (t) => {
  const { app, institutionAdd } = await setup();
  t.teardown(() => app.close());
  for (const [name, payload] of [
    ['empty array', []],
    ['not an array', institutionAdd()],
    ['an item is not an object', [institutionAdd(), 'tx']],
  ] as const) {
    const r = await app.inject({ method: 'POST', url: '/v1/txs/batch', payload: payload as never });
    t.equal(r.statusCode, 400, `${name}: 400`);
    t.equal((r.json() as { error: { code: string } }).error.code, 'API_BAD_REQUEST', `${name}: coded`);
  }
  const tooMany = Array.from({ length: MAX_BATCH_TXS + 1 }, () => ({}));
  const r = await app.inject({ method: 'POST', url: '/v1/txs/batch', payload: tooMany });
  t.equal(r.statusCode, 400, `more than ${MAX_BATCH_TXS} is refused`);
});

t.test('GET /v1/events?txs=true carries the hashes of each committed block', async (t) => {
  const { app, chain, institutionAdd, now, tc } = await setup();
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(() => app.close());
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const controller = new AbortController();
  t.teardown(() => controller.abort());
  const response = await fetch(`http://127.0.0.1:${port}/v1/events?txs=true`, { signal: controller.signal });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('event: tip')) text += decoder.decode((await reader.read()).value);

  const tx = institutionAdd();
  await app.inject({ method: 'POST', url: '/v1/txs', payload: tx });
  const block = chain.buildBlock(tc.validators[0]!.pub, 0, now);
  await chain.commit(tc.certify(block));
  while (!text.includes('event: block')) text += decoder.decode((await reader.read()).value);
  const data = text
    .slice(text.indexOf('event: block'))
    .split('\n')[1]!
    .replace(/^data: /, '');
  const event = JSON.parse(data) as { height: number; txCount: number; txHashes: string[] };
  t.equal(event.height, 1);
  t.same(event.txHashes, [txHash(tx)], 'the block event lists its tx hashes');
});
