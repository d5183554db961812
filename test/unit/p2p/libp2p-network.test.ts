import '../../../src/common/polyfill.js';
import t from 'tap';
import { bytesToHex } from '../../../src/common/bytes.js';
import { generateSigningKeyPair } from '../../../src/common/crypto.js';
import {
  bootstrapAddress,
  Libp2pNetwork,
  type Libp2pNetworkOptions,
  peerIdFromValidatorKey,
} from '../../../src/p2p/index.js';
import { type Fixture, type NodeSpec, networkCompliance, waitFor } from './network-compliance.js';

async function libp2pFixture(specs: NodeSpec[]): Promise<Fixture> {
  const pairs = specs.map(() => generateSigningKeyPair());
  const keys = pairs.map((p) => bytesToHex(p.publicKey));
  const validatorKeys = keys.filter((_, i) => specs[i]!.validator);
  const nodes: Fixture['nodes'] = [];
  const addrs: string[] = [];
  for (const [i, spec] of specs.entries()) {
    const net = new Libp2pNetwork({
      secretKey: pairs[i]!.secretKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [...addrs],
      allowedKeys: spec.validator ? validatorKeys : [...validatorKeys, keys[i]!],
      maxMessageBytes: spec.maxMessageBytes,
      heartbeatIntervalMs: 100,
      redialMinMs: 100,
      redialMaxMs: 1000,
    });
    await net.start();
    if (spec.validator) addrs.push(...net.listenAddresses());
    nodes.push({ key: keys[i]!, net });
  }
  return {
    nodes,
    close: async () => {
      for (const node of nodes) await node.net.stop();
    },
  };
}

t.test('Libp2pNetwork passes the network compliance suite', async (t) => {
  networkCompliance(t, libp2pFixture);
});

interface Pair {
  key: string;
  secretKey: Uint8Array;
}

function newPairs(count: number): Pair[] {
  return Array.from({ length: count }, () => {
    const p = generateSigningKeyPair();
    return { key: bytesToHex(p.publicKey), secretKey: p.secretKey };
  });
}

async function startNode(
  pair: Pair,
  allowedKeys: string[],
  bootstrap: string[],
  extra: Partial<Libp2pNetworkOptions> = {},
): Promise<Libp2pNetwork> {
  const net = new Libp2pNetwork({
    secretKey: pair.secretKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    allowedKeys,
    heartbeatIntervalMs: 100,
    redialMinMs: 100,
    redialMaxMs: 1000,
    ...extra,
  });
  await net.start();
  return net;
}

t.test('options are checked up front', async (t) => {
  const [a] = newPairs(1);
  const base = { secretKey: a!.secretKey, listen: ['/ip4/127.0.0.1/tcp/0'], allowedKeys: [a!.key] };
  t.throws(() => new Libp2pNetwork({ ...base, secretKey: new Uint8Array(16) }), { code: 'P2P_BAD_CONFIG' });
  t.throws(() => new Libp2pNetwork({ ...base, maxMessageBytes: 0 }), { code: 'P2P_BAD_CONFIG' });
  t.throws(() => new Libp2pNetwork({ ...base, meshDegree: 1 }), { code: 'P2P_BAD_CONFIG' });
  t.throws(() => new Libp2pNetwork({ ...base, protocolPrefix: 'no-slash' }), { code: 'P2P_BAD_CONFIG' });
  t.throws(() => new Libp2pNetwork({ ...base, allowedKeys: ['XYZ'] }), { code: 'CRYPTO_BAD_ENCODING' });
  t.throws(() => new Libp2pNetwork({ ...base, bootstrap: ['/ip4/127.0.0.1/tcp/1'] }), {
    code: 'P2P_BAD_CONFIG',
  });
  t.throws(() => new Libp2pNetwork({ ...base, bootstrap: ['nonsense'] }), { code: 'P2P_BAD_CONFIG' });
  const net = new Libp2pNetwork(base);
  await t.rejects(net.publish('txs', Uint8Array.of(1)), { code: 'P2P_NOT_STARTED' });
  await t.rejects(net.request(a!.key, 'sync', Uint8Array.of(1)), { code: 'P2P_NOT_STARTED' });
  t.same(net.peers(), []);
  t.same(net.listenAddresses(), []);
  await net.stop();
});

t.test('identity, addresses, restart on a taken port', async (t) => {
  const [a, b] = newPairs(2);
  const net = await startNode(a!, [a!.key], [bootstrapAddress('127.0.0.1', 1, a!.key)]);
  t.teardown(() => net.stop());
  t.equal(net.peerId(), peerIdFromValidatorKey(a!.key), 'peer id derived from the node key');
  const addr = net.listenAddresses()[0]!;
  t.match(addr, new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${net.peerId()}$`));
  t.equal(net.topicName('txs'), '/datagrant/txs/1');
  t.equal(net.protocolId('sync'), '/datagrant/sync/1');
  await net.start();
  t.pass('start twice is harmless');
  const port = addr.split('/')[4];
  const clash = new Libp2pNetwork({
    secretKey: b!.secretKey,
    listen: [`/ip4/127.0.0.1/tcp/${port}`],
    allowedKeys: [],
  });
  await t.rejects(clash.start(), { code: 'P2P_START_FAILED' }, 'a taken port fails start cleanly');
});

t.test('governance retires a connected validator', async (t) => {
  const pairs = newPairs(3);
  const keys = pairs.map((p) => p.key);
  const a = await startNode(pairs[0]!, keys, []);
  const b = await startNode(pairs[1]!, keys, a.listenAddresses());
  const c = await startNode(pairs[2]!, keys, a.listenAddresses());
  t.teardown(async () => {
    for (const n of [a, b, c]) await n.stop();
  });
  await waitFor('c connected to a', () => a.peers().includes(keys[2]!));
  const before = a.stats().refusedConnections;
  a.setAllowedKeys(keys.slice(0, 2));
  await waitFor('a drops c', () => !a.peers().includes(keys[2]!));
  await waitFor('c keeps being refused', () => a.stats().refusedConnections > before);
  t.notOk(a.peers().includes(keys[2]!), 'c stays out');
  t.ok(a.peers().includes(keys[1]!), 'b stays in');
  await t.rejects(a.request(keys[2]!, 'sync', Uint8Array.of(1)), { code: 'P2P_NOT_VALIDATOR' });
});

t.test('the flood guard drops and counts messages over the rate', async (t) => {
  const pairs = newPairs(2);
  const keys = pairs.map((p) => p.key);
  const a = await startNode(pairs[0]!, keys, [], { rateLimit: { perSecond: 1, burst: 5 } });
  const b = await startNode(pairs[1]!, keys, a.listenAddresses());
  t.teardown(async () => {
    await b.stop();
    await a.stop();
  });
  let received = 0;
  a.subscribe('txs', () => received++);
  await waitFor('b sees a subscribed', () => b.topicPeers('txs').includes(keys[0]!));
  for (let i = 0; i < 20; i++) await b.publish('txs', Uint8Array.of(i));
  await waitFor('drops counted', () => a.stats().dropped['rate-limited'] >= 10);
  t.ok(received <= 7, `at most the burst got through (${received})`);
});
