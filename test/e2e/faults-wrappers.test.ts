/**
 * The fault-injection pieces on their own, in process: the admin route exists only with
 * DATAGRANT_FAULT_INJECTION=1 and only for loopback clients; partitions drive the network's
 * validator gate; after a disk failure a validator sends nothing more and leaves (no vote that is
 * not on disk ever leaves it); the Byzantine wrapper really sends conflicting, properly signed
 * proposals and votes, corrupted signatures, replays and floods.
 */
import '../../src/common/polyfill.js';
import t from 'tap';
import { ByzantineNetwork, parseByzantine } from '../../scripts/faults/byzantine.js';
import {
  FAULT_INJECTION_ENV,
  FaultyBlockStore,
  FaultyPayloadStore,
  RecordPutDropper,
} from '../../scripts/faults/fault-injection.js';
import { faultSuiteModules } from '../../scripts/faults/faulty-node.js';
import { bytesToHex, utf8ToBytes } from '../../src/common/bytes.js';
import { sha256Hex } from '../../src/common/crypto.js';
import { signFast, verifyFast } from '../../src/common/crypto-node.js';
import { DatagrantError } from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/logger.js';
import {
  type ConsensusMessage,
  decodeMessage,
  type ProposalMessage,
  signingBytesOf,
  signProposal,
  signVote,
  type VoteMessage,
} from '../../src/consensus/index.js';
import { MemoryBlockStore } from '../../src/ledger/index.js';
import { loadNodeConfig } from '../../src/node/config.js';
import { initTestnet } from '../../src/node/init.js';
import { DatagrantNode } from '../../src/node/node.js';
import {
  emptyStats,
  type MessageHandler,
  type Network,
  type NetworkStats,
  type ProtocolName,
  type RequestHandler,
  type Topic,
} from '../../src/p2p/index.js';
import { MemoryPayloadStore } from '../../src/records/payload-store.js';
import { makeTestChain } from '../helpers/chain.js';
import { makeTempDir } from '../helpers/tmp.js';

/** A network that records what is published and which validators are allowed. */
class RecordingNetwork implements Network {
  readonly published: { topic: Topic; data: Uint8Array }[] = [];
  readonly requests: { protocol: ProtocolName; req: Uint8Array }[] = [];
  allowed: readonly string[] = [];
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async publish(topic: Topic, data: Uint8Array): Promise<void> {
    this.published.push({ topic, data });
  }
  subscribe(_topic: Topic, _handler: MessageHandler): void {}
  handle(_protocol: ProtocolName, _handler: RequestHandler): void {}
  async request(_peer: string, protocol: ProtocolName, req: Uint8Array): Promise<Uint8Array> {
    this.requests.push({ protocol, req });
    throw new DatagrantError('P2P_PEER_UNREACHABLE', 'none');
  }
  peers(): string[] {
    return ['a'.repeat(64)];
  }
  topicPeers(): string[] {
    return [];
  }
  listenAddresses(): string[] {
    return [];
  }
  setAllowedKeys(keys: readonly string[]): void {
    this.allowed = [...keys];
  }
  stats(): NetworkStats {
    return emptyStats();
  }
  /** Consensus messages published (envelopes unwrapped; undefined for garbage). */
  consensus(): (ConsensusMessage | undefined)[] {
    return this.published
      .filter((p) => p.topic === 'consensus')
      .map((p) => {
        try {
          const parsed = JSON.parse(new TextDecoder().decode(p.data)) as { m?: unknown };
          const r = decodeMessage(parsed.m);
          return r.ok ? r.message : undefined;
        } catch {
          return undefined;
        }
      });
  }
}

t.test('failing store: passes through, then refuses every write', async (t) => {
  const tc = makeTestChain({ validators: 1 });
  const store = new FaultyBlockStore(new MemoryBlockStore(tc.genesisInit()));
  await store.open();
  await store.putMeta('k', 'v');
  t.equal(await store.getMeta('k'), 'v', 'writes pass through before the fault');
  store.failWrites();
  t.ok(store.writesFailing);
  await t.rejects(store.putMeta('k', 'w'), { code: 'STORE_WRITE_FAILED' }, 'meta writes fail');
  await t.rejects(
    store.commit({} as never, {} as never),
    { code: 'STORE_WRITE_FAILED' },
    'block commits fail',
  );
  t.equal(await store.getMeta('k'), 'v', 'reads still work and nothing changed');
});

t.test('the admin route: only with fault injection on, only from loopback', async (t) => {
  const dir = await makeTempDir(t, 'datagrant-faultroute-');
  const net = await initTestnet({ dir, validators: 4, chain: 'datagrant-faultroute', basePort: 0 });
  const start = async (i: number, env: NodeJS.ProcessEnv) => {
    const config = await loadNodeConfig(net.nodes[i]!.configPath);
    const network = new RecordingNetwork();
    const node = new DatagrantNode({ ...config, api: { ...config.api, port: 0 } }, silentLogger, {
      createNetwork: () => network,
      ...faultSuiteModules(env),
    });
    await node.start();
    t.teardown(() => node.stop());
    return { node, network };
  };
  const plain = await start(0, {});
  const off = await plain.node.api.inject({
    method: 'POST',
    url: '/v1/admin/faults',
    payload: { heal: true },
  });
  t.equal(off.statusCode, 404, 'without DATAGRANT_FAULT_INJECTION the route does not exist');
  const shipped = new DatagrantNode(
    {
      ...(await loadNodeConfig(net.nodes[2]!.configPath)),
      api: { ...(await loadNodeConfig(net.nodes[2]!.configPath)).api, port: 0 },
    },
    silentLogger,
    { createNetwork: () => new RecordingNetwork() },
  );
  const savedEnv = process.env[FAULT_INJECTION_ENV];
  process.env[FAULT_INJECTION_ENV] = '1';
  t.teardown(() => {
    if (savedEnv === undefined) delete process.env[FAULT_INJECTION_ENV];
    else process.env[FAULT_INJECTION_ENV] = savedEnv;
  });
  await shipped.start();
  t.teardown(() => shipped.stop());
  const ignored = await shipped.api.inject({
    method: 'POST',
    url: '/v1/admin/faults',
    payload: { heal: true },
  });
  t.equal(
    ignored.statusCode,
    404,
    'the product node ignores the switch even when it is set: no test tool in it',
  );
  t.equal(off.json().error.code, 'API_NOT_FOUND');

  const { node, network } = await start(1, { [FAULT_INJECTION_ENV]: '1' });
  const post = (payload: unknown, remoteAddress = '127.0.0.1') =>
    node.api.inject({ method: 'POST', url: '/v1/admin/faults', payload: payload as object, remoteAddress });
  const keys = net.nodes.map((n) => n.key);
  const cut = await post({ partition: [keys[2], keys[3]] });
  t.equal(cut.statusCode, 200, 'partition accepted');
  t.same([...network.allowed].sort(), [keys[0], keys[1]].sort(), 'the gate now allows only the other side');
  const healed = await post({ heal: true });
  t.same(
    healed.json(),
    { partitioned: [], diskFailing: false, payloadWritesInjected: 0, recordPutsDropped: 0 },
    'healed',
  );
  const armed = await post({ payloadWrites: { fault: 'lose', count: 2 }, dropRecordPuts: 1 });
  t.equal(armed.statusCode, 200, 'payload and record.put faults armed');
  t.match(
    (await post({ status: true })).json(),
    { payloadWritesInjected: 0, recordPutsDropped: 0 },
    'status',
  );
  t.same([...network.allowed].sort(), [...keys].sort(), 'every validator allowed again');
  const remote = await post({ heal: true }, '10.0.0.7');
  t.same(
    [remote.statusCode, remote.json().error.code],
    [403, 'API_FORBIDDEN'],
    'a non-loopback client is refused',
  );
  for (const bad of [
    {},
    { partition: ['nope'] },
    { heal: 'yes' },
    { other: 1 },
    { payloadWrites: { fault: 'melt', count: 1 } },
    { dropRecordPuts: -1 },
  ]) {
    const r = await post(bad);
    t.equal(r.statusCode, 400, `bad command ${JSON.stringify(bad)}: 400`);
  }
});

t.test('after a disk failure a validator sends nothing more and leaves consensus', async (t) => {
  const dir = await makeTempDir(t, 'datagrant-diskfail-');
  const net = await initTestnet({
    dir,
    validators: 4,
    chain: 'datagrant-diskfail',
    basePort: 0,
    blockIntervalMs: 300,
    viewTimeoutMs: 400,
  });
  const exitCode = process.exitCode;
  t.teardown(() => {
    process.exitCode = exitCode;
  });
  const config = await loadNodeConfig(net.nodes[0]!.configPath);
  const network = new RecordingNetwork();
  const node = new DatagrantNode({ ...config, api: { ...config.api, port: 0 } }, silentLogger, {
    createNetwork: () => network,
    ...faultSuiteModules({ [FAULT_INJECTION_ENV]: '1' }),
  });
  await node.start();
  // Alone among four, it keeps timing out views: each view change is a signed message it must persist first.
  for (let i = 0; i < 200 && network.consensus().length < 2; i++) await new Promise((r) => setTimeout(r, 25));
  t.ok(
    network.consensus().length >= 2,
    `it sends while its disk works (${network.consensus().length} messages)`,
  );
  const r = await node.api.inject({ method: 'POST', url: '/v1/admin/faults', payload: { diskFail: true } });
  t.equal(r.json().diskFailing, true, 'disk failure injected');
  const sentBefore = network.consensus().length;
  for (let i = 0; i < 200 && process.exitCode !== 70; i++) await new Promise((r) => setTimeout(r, 25));
  t.equal(process.exitCode, 70, 'the node gave up (exit code 70) at its first failed write');
  process.exitCode = exitCode;
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(network.consensus().length, sentBefore, 'not one consensus message left after the write failed');
  await node.stop();
});

t.test(
  'the Byzantine wrapper sends conflicting, signed messages, bad signatures, replays and floods',
  async (t) => {
    t.same([...parseByzantine('equivocate, flood')], ['equivocate', 'flood'], 'behaviours parse');
    t.equal(parseByzantine('all').size, 5, '`all` is every behaviour');
    t.equal(parseByzantine(undefined).size, 0, 'unset: honest');
    t.throws(() => parseByzantine('lie'), { code: 'CONFIG_INVALID' }, 'unknown behaviour refused');

    const tc = makeTestChain({ validators: 4 });
    const me = tc.validators[0]!;
    const signer = (bytes: Uint8Array) => signFast(bytes, me.signing.secretKey);
    const inner = new RecordingNetwork();
    let seed = 1;
    const byz = new ByzantineNetwork(
      {
        behaviours: parseByzantine('all'),
        self: me.pub,
        secretKey: me.signing.secretKey,
        floodIntervalMs: 20,
        random: () => {
          seed = (seed * 16807) % 2147483647;
          return seed / 2147483647;
        },
      },
      { inner, logger: silentLogger },
    );
    const header = {
      chain: tc.genesis.chain,
      height: 1,
      prev: tc.genesisHash,
      txRoot: '0'.repeat(64),
      txCount: 0,
      stateRoot: '1'.repeat(64),
      proposer: me.pub,
      view: 0,
      time: tc.genesis.time + 1000,
    };
    const proposal = signProposal(tc.genesis.chain, 1, 0, { header, txs: [] }, me.pub, signer);
    const envelope = (seq: number, m: unknown) => utf8ToBytes(`{"r":${seq},"m":${JSON.stringify(m)}}`);
    await byz.publish('consensus', envelope(1, proposal));
    const validSig = (m: ProposalMessage | VoteMessage) =>
      verifyFast(Buffer.from(m.sig, 'hex'), signingBytesOf(m), me.signing.publicKey);
    const proposals = inner.consensus().filter((m): m is ProposalMessage => m?.type === 'proposal');
    const hashes = new Set(proposals.filter(validSig).map((p) => JSON.stringify(p.block.header)));
    t.equal(hashes.size, 2, 'two different, validly signed blocks for the same height and view');
    t.ok(
      proposals.some((p) => !validSig(p)),
      'and a copy with a corrupted signature',
    );
    t.ok(
      inner.published.some((p) => Buffer.from(p.data).equals(Buffer.from(envelope(1, proposal)))),
      'the honest bytes go out unchanged',
    );

    // A compact proposal (transactions named by hash and signature): the conflicting copy names the same.
    inner.published.length = 0;
    const refs = [['3'.repeat(64), '4'.repeat(128)]];
    const compact = signProposal(
      tc.genesis.chain,
      2,
      0,
      { header: { ...header, height: 2 }, txs: [] },
      me.pub,
      signer,
    );
    await byz.publish(
      'consensus',
      utf8ToBytes(`{"r":3,"m":${JSON.stringify(compact)},"t":${JSON.stringify(refs)}}`),
    );
    const sent = inner.published
      .map((p) => JSON.parse(new TextDecoder().decode(p.data)) as { m: ProposalMessage; t?: unknown })
      .filter((e) => e.m.type === 'proposal');
    t.ok(sent.length >= 2, 'the compact proposal and its conflicting copy');
    t.ok(
      sent.every((e) => JSON.stringify(e.t) === JSON.stringify(refs)),
      'every copy carries the same transaction refs',
    );

    const vote = signVote('prepare', tc.genesis.chain, 1, 0, '2'.repeat(64), me.pub, signer);
    inner.published.length = 0;
    await byz.publish('consensus', envelope(2, vote));
    const votes = inner.consensus().filter((m): m is VoteMessage => m?.type === 'prepare');
    const signedFor = new Set(votes.filter(validSig).map((v) => v.block));
    t.ok(signedFor.size >= 2, `double vote: validly signed prepares for ${signedFor.size} different blocks`);
    t.ok(
      votes.some((v) => !validSig(v)),
      'and votes whose signature does not match',
    );

    for (let i = 0; i < 40; i++)
      await byz.publish(
        'consensus',
        envelope(
          10 + i,
          signVote('commit', tc.genesis.chain, 1, 0, bytesToHex(new Uint8Array(32).fill(i)), me.pub, signer),
        ),
      );
    const replays = Object.entries(byz.actions).find(([k]) => k === 'replay')?.[1] ?? 0;
    t.ok(replays > 0, `old messages replayed (${replays})`);

    inner.published.length = 0;
    const undecodable = () =>
      inner.published.filter((p) => {
        try {
          return !decodeMessage((JSON.parse(new TextDecoder().decode(p.data)) as { m?: unknown }).m).ok;
        } catch {
          return true;
        }
      });
    await byz.start();
    // Poll for what the flood must send rather than sleep a fixed time: a slow machine only waits longer.
    const flooded = () =>
      undecodable().length > 10 &&
      new Set(inner.published.map((p) => p.topic)).size >= 2 &&
      inner.requests.length > 0;
    const deadline = Date.now() + 10_000;
    while (!flooded() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await byz.stop();
    const garbage = undecodable();
    t.ok(garbage.length > 10, `the flood sent ${garbage.length} undecodable messages`);
    t.ok(new Set(inner.published.map((p) => p.topic)).size >= 2, 'on several topics');
    t.ok(inner.requests.length > 0, 'and garbage requests to the request-response protocols');
    t.ok(
      (byz.actions['equivocating-proposal'] ?? 0) >= 1 && (byz.actions['double-vote'] ?? 0) >= 1,
      'actions are counted',
    );
  },
);

t.test('payload write faults and record.put drops: pass through until armed, then exactly n', async (t) => {
  const inner = new MemoryPayloadStore();
  const store = new FaultyPayloadStore(inner);
  const bytes = (n: number) => new Uint8Array([n, n, n]);
  const digest = (n: number) => sha256Hex(bytes(n));
  await store.put(digest(1), bytes(1));
  t.ok(await inner.has(digest(1)), 'a write passes through');
  store.arm('lose', 1);
  await store.put(digest(2), bytes(2));
  t.notOk(await inner.has(digest(2)), 'a lost write is acknowledged and not stored');
  store.arm('tear', 1);
  await t.rejects(store.put(digest(3), bytes(3)), { code: 'STORE_WRITE_FAILED' }, 'a torn write fails');
  t.notOk(await inner.has(digest(3)), 'and stores nothing');
  await store.put(digest(4), bytes(4));
  t.ok(await inner.has(digest(4)), 'then writes pass through again');
  t.equal(store.injected, 2);

  const dropper = new RecordPutDropper();
  const sent: string[] = [];
  const submit = dropper.wrap(async (tx) => {
    sent.push(tx.kind);
  });
  const tx = (kind: string) => ({ kind }) as unknown as Parameters<typeof submit>[0];
  dropper.arm(1);
  await submit(tx('record.fail'));
  await submit(tx('record.put'));
  await submit(tx('record.put'));
  t.same(sent, ['record.fail', 'record.put'], 'only the next record.put is dropped');
  t.equal(dropper.dropped, 1);
});
