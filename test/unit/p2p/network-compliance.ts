/**
 * The shared suite every `Network` implementation must pass (libp2p and simulated). It builds one
 * fixture of three validators and one outsider whose key is in nobody's validator set:
 * validator 0 accepts messages up to 64 KiB, validators 1 and 2 only up to 16 KiB, so an
 * oversize message can be put on the wire. Assertions about what did *not* arrive wait for a
 * later marker message first, so they hold however slow the machine is.
 */
import type { Test } from 'tap';
import { DatagrantError, isDatagrantError } from '../../../src/common/errors.js';
import type { Network, Topic } from '../../../src/p2p/index.js';

/** What the factory must build for one node. */
export interface NodeSpec {
  /** False for the outsider: its key is not in the validators' allowed keys (it allows them). */
  validator: boolean;
  /** Its gossip size limit. */
  maxMessageBytes: number;
}

/** One node of a fixture. */
export interface FixtureNode {
  /** Its validator key (hex). */
  key: string;
  net: Network;
}

/** The started networks, in spec order, and how to tear them down. */
export interface Fixture {
  nodes: FixtureNode[];
  close(): Promise<void>;
}

/**
 * Builds and starts one network per spec. Validators must be able to find each other (for
 * libp2p: each bootstraps to the ones started before it); the outsider tries to reach every
 * validator.
 */
export type NetworkFactory = (specs: NodeSpec[]) => Promise<Fixture>;

/** One received gossip message. */
interface Received {
  topic: Topic;
  text: string;
  from: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Polls `cond` until it holds, failing with `what` after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function codeOf(promise: Promise<unknown>): Promise<{ code: string; remoteCode?: unknown }> {
  try {
    await promise;
  } catch (err) {
    if (isDatagrantError(err)) return { code: err.code, remoteCode: err.meta.remoteCode };
    return { code: `not a DatagrantError: ${String(err)}` };
  }
  return { code: 'resolved' };
}

/** Runs the compliance suite as subtests of `t` against networks made by `factory`. */
export function networkCompliance(t: Test, factory: NetworkFactory): void {
  let fx: Fixture;
  const inbox = new Map<string, Received[]>();
  const short = (key: string): string => key.slice(0, 8);
  const got = (key: string, text: string): Received[] =>
    (inbox.get(key) ?? []).filter((m) => m.text === text);

  t.before(async () => {
    fx = await factory([
      { validator: true, maxMessageBytes: 64 * 1024 },
      { validator: true, maxMessageBytes: 16 * 1024 },
      { validator: true, maxMessageBytes: 16 * 1024 },
      { validator: false, maxMessageBytes: 64 * 1024 },
    ]);
    for (const { key, net } of fx.nodes) {
      const list: Received[] = [];
      inbox.set(key, list);
      for (const topic of ['txs', 'requests'] as const) {
        net.subscribe(topic, (data, from) => list.push({ topic, text: dec.decode(data), from }));
      }
    }
    const [v0, v1, v2] = fx.nodes;
    v0!.net.handle('sync', async (req, from) => enc.encode(`echo:${from}:${dec.decode(req)}`));
    v0!.net.handle('payload', async (req) => {
      if (req[0] === 0) throw new DatagrantError('LEDGER_PAYLOAD_NOT_FOUND', 'no such payload');
      if (req[0] === 1) throw new Error('internal details that must not leak');
      if (req[0] === 2) await sleep(1500);
      return req;
    });
    v1!.net.handle('sync', async () => new Uint8Array(2 * 1024 * 1024));
    void v2;
  });
  t.teardown(async () => {
    await fx?.close();
  });

  const validators = (): FixtureNode[] => fx.nodes.slice(0, 3);
  const outsider = (): FixtureNode => fx.nodes[3]!;

  t.test('validators connect to each other and see their subscriptions', async (t) => {
    for (const node of validators()) {
      const others = validators()
        .filter((o) => o !== node)
        .map((o) => o.key);
      await waitFor(`${short(node.key)} connected to all validators`, () =>
        others.every((k) => node.net.peers().includes(k)),
      );
      await waitFor(`${short(node.key)} sees txs subscribers`, () =>
        others.every((k) => node.net.topicPeers('txs').includes(k)),
      );
      await waitFor(`${short(node.key)} sees requests subscribers`, () =>
        others.every((k) => node.net.topicPeers('requests').includes(k)),
      );
      t.ok(node.net.listenAddresses().length > 0, `${short(node.key)} has a listen address`);
    }
  });

  t.test('gossip reaches every other validator and not the sender', async (t) => {
    for (const [i, node] of validators().entries()) {
      await node.net.publish('txs', enc.encode(`hello-${i}`));
    }
    for (const [i, sender] of validators().entries()) {
      for (const node of validators()) {
        if (node === sender) continue;
        await waitFor(`hello-${i} at ${short(node.key)}`, () => got(node.key, `hello-${i}`).length > 0);
        const from = got(node.key, `hello-${i}`)[0]!.from;
        t.ok(
          validators().some((v) => v.key === from && v !== node),
          `hello-${i} at ${short(node.key)} names a validator neighbour`,
        );
      }
    }
    await validators()[0]!.net.publish('txs', enc.encode('marker-gossip'));
    await waitFor('marker at validator 1', () => got(validators()[1]!.key, 'marker-gossip').length > 0);
    for (const [i, sender] of validators().entries()) {
      t.equal(got(sender.key, `hello-${i}`).length, 0, `validator ${i} does not receive its own message`);
    }
  });

  t.test('publishing on a topic with no subscribers returns quietly', async (t) => {
    await validators()[0]!.net.publish('consensus', enc.encode('nobody listens'));
    t.pass('no throw');
  });

  t.test('identical bytes are delivered once', async (t) => {
    const [v0, v1] = validators();
    await v0!.net.publish('requests', enc.encode('dup'));
    await v0!.net.publish('requests', enc.encode('dup'));
    await v0!.net.publish('requests', enc.encode('after-dup'));
    await waitFor('after-dup at validator 1', () => got(v1!.key, 'after-dup').length > 0);
    await sleep(100);
    t.equal(got(v1!.key, 'dup').length, 1);
  });

  t.test('request and response', async (t) => {
    const [v0, v1] = validators();
    const big = 'x'.repeat(200 * 1024);
    const res = await v1!.net.request(v0!.key, 'sync', enc.encode(big));
    t.equal(dec.decode(res), `echo:${v1!.key}:${big}`, 'echoes the request and names the requester');
    const empty = await v1!.net.request(v0!.key, 'payload', new Uint8Array(0));
    t.equal(empty.length, 0, 'an empty response is a response');
  });

  t.test('handler errors become rejected requests, never crashes', async (t) => {
    const [v0, v1] = validators();
    const coded = await codeOf(v1!.net.request(v0!.key, 'payload', Uint8Array.of(0)));
    t.same(
      coded,
      { code: 'P2P_REMOTE_ERROR', remoteCode: 'LEDGER_PAYLOAD_NOT_FOUND' },
      'coded error passed on',
    );
    const plain = await codeOf(v1!.net.request(v0!.key, 'payload', Uint8Array.of(1)));
    t.same(plain, { code: 'P2P_REMOTE_ERROR', remoteCode: 'P2P_HANDLER_FAILED' }, 'plain error hidden');
    try {
      await v1!.net.request(v0!.key, 'payload', Uint8Array.of(1));
    } catch (err) {
      t.notMatch(String((err as Error).message), /internal details/, 'error text does not leak');
    }
    const none = await codeOf(v1!.net.request(validators()[2]!.key, 'payload', Uint8Array.of(9)));
    t.same(none, { code: 'P2P_REMOTE_ERROR', remoteCode: 'P2P_NO_HANDLER' }, 'no handler');
    const ok = await v1!.net.request(v0!.key, 'payload', Uint8Array.of(7));
    t.same([...ok], [7], 'still serving afterwards');
    t.ok(v0!.net.stats().requestsRejected >= 3, 'rejections counted');
  });

  t.test('timeouts, aborts and size limits on requests', async (t) => {
    const [v0, v1] = validators();
    const slow = await codeOf(v1!.net.request(v0!.key, 'payload', Uint8Array.of(2), { timeoutMs: 200 }));
    t.equal(slow.code, 'P2P_TIMEOUT');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const aborted = await codeOf(
      v1!.net.request(v0!.key, 'payload', Uint8Array.of(2), { signal: ac.signal }),
    );
    t.equal(aborted.code, 'P2P_ABORTED');
    const preAborted = await codeOf(
      v1!.net.request(v0!.key, 'sync', Uint8Array.of(1), { signal: AbortSignal.abort() }),
    );
    t.equal(preAborted.code, 'P2P_ABORTED');
    const tooBig = await codeOf(v1!.net.request(v0!.key, 'sync', new Uint8Array(1024 * 1024 + 1)));
    t.equal(tooBig.code, 'P2P_REQUEST_TOO_LARGE');
    const bigResponse = await v0!.net.request(v1!.key, 'sync', Uint8Array.of(1));
    t.equal(bigResponse.length, 2 * 1024 * 1024, 'a 2 MiB response fits the default limit');
    const stranger = await codeOf(v1!.net.request('ab'.repeat(32), 'sync', Uint8Array.of(1)));
    t.equal(stranger.code, 'P2P_NOT_VALIDATOR');
    const stats = v1!.net.stats();
    t.ok(stats.requestsFailed >= 5 && stats.requestsSent > stats.requestsFailed, 'request counters move');
  });

  t.test('oversize gossip is refused by the sender and dropped by receivers', async (t) => {
    const [v0, v1, v2] = validators();
    const tooBig = await codeOf(v1!.net.publish('txs', new Uint8Array(16 * 1024 + 1)));
    t.equal(tooBig.code, 'P2P_MESSAGE_TOO_LARGE', 'publish over the own limit throws');
    const big = `big-${'y'.repeat(32 * 1024)}`;
    await v0!.net.publish('txs', enc.encode(big));
    await v0!.net.publish('txs', enc.encode('after-big'));
    for (const node of [v1!, v2!]) {
      await waitFor(`after-big at ${short(node.key)}`, () => got(node.key, 'after-big').length > 0);
      await waitFor(`oversize counted at ${short(node.key)}`, () => node.net.stats().dropped.oversize >= 1);
      t.equal(got(node.key, big).length, 0, `${short(node.key)} did not deliver the big message`);
    }
  });

  t.test('a throwing subscriber does not stop the others', async (t) => {
    const [v0, v1] = validators();
    v1!.net.subscribe('requests', (data) => {
      if (dec.decode(data) === 'poison') throw new Error('subscriber bug');
    });
    await v0!.net.publish('requests', enc.encode('poison'));
    await waitFor('poison delivered to the collector', () => got(v1!.key, 'poison').length > 0);
    t.ok(v1!.net.stats().dropped['handler-error'] >= 1, 'handler error counted');
  });

  // The outsider may see a connection for an instant before the validator's gater closes it, so
  // what is checked is the validators' view and that nothing crosses in either direction.
  t.test('a peer outside the validator set is refused', async (t) => {
    const out = outsider();
    await waitFor('a refused connection is counted', () =>
      validators().some((v) => v.net.stats().refusedConnections > 0),
    );
    for (const v of validators()) {
      t.notOk(v.net.peers().includes(out.key), `${short(v.key)} is not connected to the outsider`);
    }
    await out.net.publish('txs', enc.encode('from-outsider'));
    const [v0, v1] = validators();
    await v0!.net.publish('txs', enc.encode('to-all-but-outsider'));
    await waitFor('marker at validator 1', () => got(v1!.key, 'to-all-but-outsider').length > 0);
    await sleep(200);
    for (const v of validators()) {
      t.equal(got(v.key, 'from-outsider').length, 0, `${short(v.key)} got nothing from the outsider`);
    }
    t.equal(got(out.key, 'to-all-but-outsider').length, 0, 'outsider got nothing from validators');
    const res = await codeOf(out.net.request(v0!.key, 'sync', Uint8Array.of(1), { timeoutMs: 3000 }));
    t.ok(
      ['P2P_PEER_UNREACHABLE', 'P2P_STREAM_ERROR'].includes(res.code),
      `outsider request fails (${res.code})`,
    );
  });

  t.test('a stopped validator drops out, and rejoins when started again', async (t) => {
    const [v0, v1, v2] = validators();
    await v2!.net.stop();
    for (const v of [v0!, v1!]) {
      await waitFor(`${short(v.key)} drops the stopped node`, () => !v.net.peers().includes(v2!.key));
    }
    t.same(v2!.net.peers(), [], 'stopped node has no peers');
    t.equal((await codeOf(v2!.net.publish('txs', Uint8Array.of(1)))).code, 'P2P_NOT_STARTED');
    t.equal((await codeOf(v2!.net.request(v0!.key, 'sync', Uint8Array.of(1)))).code, 'P2P_NOT_STARTED');
    const gone = await codeOf(v1!.net.request(v2!.key, 'sync', Uint8Array.of(1), { timeoutMs: 3000 }));
    t.ok(
      ['P2P_PEER_UNREACHABLE', 'P2P_STREAM_ERROR', 'P2P_TIMEOUT'].includes(gone.code),
      `request to it fails (${gone.code})`,
    );

    await v2!.net.start();
    for (const v of [v0!, v1!]) {
      await waitFor(`${short(v.key)} sees the restarted node subscribed`, () =>
        v.net.topicPeers('txs').includes(v2!.key),
      );
    }
    await waitFor('restarted node sees txs subscribers', () => v2!.net.topicPeers('txs').length >= 2);
    await v0!.net.publish('txs', enc.encode('after-restart'));
    await waitFor('restarted node receives again', () => got(v2!.key, 'after-restart').length > 0);
    t.pass('rejoined');
  });
}
