/**
 * The council's gateways and data sources through the routes (`app.inject`): a test chain's
 * blocks, in which a council added a gateway and a source and retired genesis' source, are
 * committed to a node's Chain; `/v1/gov/gateways` and `/v1/gov/sources` list what is in force,
 * and the proof routes answer what the bank client proves (`provenSources`).
 */
import '../../../src/common/polyfill.js';
import t from 'tap';
import { chainRoutes } from '../../../src/api/chain-routes.js';
import { createApi } from '../../../src/api/server.js';
import { provenSources } from '../../../src/client/bundle.js';
import { verifyFast } from '../../../src/common/crypto-node.js';
import { silentLogger } from '../../../src/common/logger.js';
import {
  type GovChange,
  govKey,
  LightClient,
  MemoryBlockStore,
  parseGenesis,
  txHash,
  verifyStateValueProof,
} from '../../../src/ledger/index.js';
import { Chain } from '../../../src/node/chain.js';
import { Mempool } from '../../../src/node/mempool.js';
import { makeTestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

async function setup() {
  const genesisSource = makeTestChain({ governance: 'council' }).keys('source-genesis');
  const tc = makeTestChain({
    governance: 'council',
    sources: [{ id: 'source-genesis', key: genesisSource.pub, types: ['tax'] }],
  });
  const ledger = new TestLedger(tc, { verifier: verifyFast });
  const [c1, c2] = tc.council as [typeof tc.admin, typeof tc.admin];
  const gateway = tc.keys('gw-new');
  const source = tc.keys('source-new');
  const changes: GovChange[] = [
    { type: 'gateway.add', gateway: { name: 'gw-new', key: gateway.pub, roles: ['platform'] } },
    { type: 'source.add', source: { id: 'source-new', key: source.pub, types: ['tax', 'property'] } },
    { type: 'source.retire', id: 'source-genesis' },
  ];
  for (const change of changes) {
    const p = ledger.propose(c1, change);
    ledger.commit([p]);
    ledger.commit([ledger.approve(c2, txHash(p))]);
  }
  const store = new MemoryBlockStore(tc.genesisInit());
  const mempool = new Mempool(
    { chain: tc.genesis.chain, maxTxs: 1000, maxTxTtlMs: tc.genesis.params.maxTxTtlMs },
    { verifier: verifyFast, isCommitted: async () => false, now: () => ledger.now },
  );
  const chain = new Chain(tc.genesis, store, { mempool, verifier: verifyFast });
  await chain.load();
  for (const b of ledger.blocks) await chain.commit(b.certified);
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
  const get = async (url: string) => {
    const r = await app.inject({ method: 'GET', url });
    return { status: r.statusCode, body: r.json() as Record<string, unknown> };
  };
  return { tc, app, get, gateway, source, genesisSource };
}

t.test('GET /v1/gov/gateways and /v1/gov/sources: what is in force, and every entry', async (t) => {
  const { app, get, gateway, source, tc } = await setup();
  t.teardown(() => app.close());
  const gateways = await get('/v1/gov/gateways');
  t.equal(gateways.status, 200);
  t.same(gateways.body.inForce, [{ name: 'gw-new', key: gateway.pub, roles: ['platform'] }]);
  t.match(gateways.body.governed, [{ key: gateway.pub, active: true }]);
  const sources = await get('/v1/gov/sources');
  t.same(sources.body.genesis, tc.genesis.sources);
  t.same(sources.body.inForce, [{ id: 'source-new', key: source.pub, types: ['tax', 'property'] }]);
  t.match(sources.body.governed, [
    { id: 'source-new', active: true },
    { id: 'source-genesis', active: false },
  ]);
});

t.test('the proof routes verify against genesis, present or absent', async (t) => {
  const { app, get, gateway, tc } = await setup();
  t.teardown(() => app.close());
  const check = async (url: string, key: string) => {
    const r = await get(url);
    t.equal(r.status, 200, url);
    const v = verifyStateValueProof(tc.genesis, r.body as never, key, verifyFast);
    t.ok(v.ok, `${url} verifies`);
    return r.body.value;
  };
  t.match(await check(`/v1/state/gateways/${gateway.pub}`, govKey.gateway(gateway.pub)), { active: true });
  t.same(await check('/v1/state/gateways', govKey.gatewayKeys), [gateway.pub]);
  t.equal(
    await check(`/v1/state/gateways/${tc.outsider.pub}`, govKey.gateway(tc.outsider.pub)),
    null,
    'absent',
  );
  t.same(await check('/v1/state/sources', govKey.sourceIds), ['source-new', 'source-genesis']);
  t.match(await check('/v1/state/sources/source-genesis', govKey.source('source-genesis')), {
    active: false,
  });
  t.equal(await check('/v1/state/sources/none', govKey.source('none')), null, 'absent');
  t.equal((await get('/v1/state/sources/Not_An_Id!')).status, 400, 'a malformed id: 400');
  t.equal((await get('/v1/state/gateways/xyz')).status, 400, 'a malformed key: 400');

  const light = new LightClient(parseGenesis(tc.genesis), { verifier: verifyFast });
  const inForce = await provenSources(light, async (path) => (await get(path)).body, {
    code: 'CLIENT_NODE_LIED',
    node: 'inject',
  });
  t.same(
    inForce.map((s) => s.id),
    ['source-new'],
    'the bank client proves the sources in force through the routes',
  );
});
