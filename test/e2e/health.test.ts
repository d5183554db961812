/**
 * `/healthz` and `/readyz` on a running node: live and ready on a working dev chain; not ready,
 * with a code and the failing check named, once its block store refuses writes (the fault suite's
 * failing store); still live while not ready. A 4-validator node alone is live but not ready:
 * it sees no quorum of validators.
 */
import '../../src/common/polyfill.js';
import t from 'tap';
import { FaultyBlockStore } from '../../scripts/faults/fault-injection.js';
import { silentLogger } from '../../src/common/logger.js';
import { loadNodeConfig } from '../../src/node/config.js';
import { initTestnet } from '../../src/node/init.js';
import { DatagrantNode } from '../../src/node/node.js';
import { startDevNode } from '../helpers/dev-node.js';
import { makeTempDir } from '../helpers/tmp.js';

const get = async (base: string, path: string) => {
  const r = await fetch(`${base}${path}`);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

t.test('a working node is live and ready; with a failing store it is live and not ready', async (t) => {
  let faulty: FaultyBlockStore | undefined;
  const dev = await startDevNode(t, {
    chain: 'datagrant-health',
    modules: {
      wrapBlockStore: (store) => {
        faulty = new FaultyBlockStore(store);
        return faulty;
      },
    },
  });
  t.same(await get(dev.api, '/healthz'), { status: 200, body: { ok: true } }, 'live');
  t.same(
    await get(dev.api, '/readyz'),
    { status: 200, body: { ready: true, checks: { synced: true, peers: true, storeWritable: true } } },
    'ready',
  );
  faulty!.failWrites();
  await new Promise((r) => setTimeout(r, 2_100)); // past the store probe's cache
  const down = await get(dev.api, '/readyz');
  t.equal(down.status, 503, 'not ready');
  t.match(down.body, {
    ready: false,
    checks: { storeWritable: false },
    error: { code: 'API_NOT_READY', message: /storeWritable/ },
  });
  t.equal((await get(dev.api, '/healthz')).status, 200, 'and still live');
});

t.test('a validator without a quorum of peers is live but not ready', async (t) => {
  const dir = await makeTempDir(t, 'datagrant-health4-');
  const net = await initTestnet({ dir, validators: 4, chain: 'datagrant-health-four', basePort: 0 });
  const loaded = await loadNodeConfig(net.nodes[0]!.configPath);
  const node = new DatagrantNode(
    { ...loaded, api: { ...loaded.api, port: 0 }, p2p: { ...loaded.p2p, listen: ['/ip4/127.0.0.1/tcp/0'] } },
    silentLogger,
  );
  await node.start();
  t.teardown(() => node.stop());
  t.equal((await get(node.apiUrl, '/healthz')).status, 200, 'live');
  const r = await get(node.apiUrl, '/readyz');
  t.equal(r.status, 503, 'not ready');
  t.match(r.body, { checks: { peers: false, storeWritable: true } }, 'no quorum of validators in reach');
});
