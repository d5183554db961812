/**
 * Compact proposals (`PbftDriver`): a proposal of a non-empty block travels as
 * `{"r":seq,"m":<proposal without txs>,"t":[[hash,sig],…]}`; receivers fill the transactions in
 * from their mempool (pending, or refused only because the pool was full) and fetch the rest over
 * the `txs` protocol, taking a transaction only when its signature matches the reference. Four
 * real drivers over a `SimHub` reach agreement; single drivers get hand-crafted messages.
 */
import '../../../src/common/polyfill.js';
import t, { type Test } from 'tap';
import { utf8ToBytes } from '../../../src/common/bytes.js';
import { signFast, verifyFast } from '../../../src/common/crypto-node.js';
import { DatagrantError } from '../../../src/common/errors.js';
import { silentLogger } from '../../../src/common/logger.js';
import { signProposal, signVote } from '../../../src/consensus/index.js';
import {
  type AnyTx,
  blockHash,
  type CertifiedBlock,
  MemoryBlockStore,
  txHash,
} from '../../../src/ledger/index.js';
import { Chain } from '../../../src/node/chain.js';
import { Mempool } from '../../../src/node/mempool.js';
import { PbftDriver } from '../../../src/node/pbft-driver.js';
import { MemorySigningState } from '../../../src/node/signing-state.js';
import type { ProtocolName, RequestOptions, Topic } from '../../../src/p2p/network.js';
import { makeTestChain, type TestChain } from '../../helpers/chain.js';
import { SimHub, SimNetwork } from '../../helpers/sim-network.js';

const decoder = new TextDecoder();
const json = (bytes: Uint8Array): unknown => JSON.parse(decoder.decode(bytes));

/** A consensus envelope as published: `r` sequence, `m` message, `t` refs of a compact proposal. */
interface Envelope {
  r: number;
  m: {
    type: string;
    height: number;
    view: number;
    sender: string;
    block: unknown;
  };
  t?: unknown;
}

interface ProposalEnvelope extends Envelope {
  m: Envelope['m'] & { block: { header: { txCount: number; height: number }; txs: unknown[] } };
}

interface RecordedRequest {
  peer: string;
  protocol: ProtocolName;
  body: unknown;
  answer?: unknown;
  error?: unknown;
}

/** A SimNetwork that records the consensus messages it publishes and the requests it sends. */
class RecordingNetwork extends SimNetwork {
  readonly sent: Envelope[] = [];
  readonly requests: RecordedRequest[] = [];
  /** Consensus messages this node does not receive (lost on the way in). */
  dropIncoming: ((e: Envelope, from: string) => boolean) | undefined;

  override receive(topic: Topic, data: Uint8Array, from: string): void {
    if (topic === 'consensus' && this.dropIncoming?.(json(data) as Envelope, from)) return;
    super.receive(topic, data, from);
  }

  override async publish(topic: Topic, data: Uint8Array): Promise<void> {
    if (topic === 'consensus') this.sent.push(json(data) as Envelope);
    return super.publish(topic, data);
  }

  override async request(
    peer: string,
    protocol: ProtocolName,
    req: Uint8Array,
    opts?: RequestOptions,
  ): Promise<Uint8Array> {
    const entry: RecordedRequest = { peer, protocol, body: json(req) };
    this.requests.push(entry);
    try {
      const res = await super.request(peer, protocol, req, opts);
      entry.answer = json(res);
      return res;
    } catch (err) {
      entry.error = err;
      throw err;
    }
  }

  txsRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.protocol === 'txs');
  }

  proposals(): ProposalEnvelope[] {
    return this.sent.filter((e) => e.m.type === 'proposal') as ProposalEnvelope[];
  }

  /** Hashes of the blocks this node voted `prepare` for at `height`. */
  prepares(height: number): string[] {
    return this.sent
      .filter((e) => e.m.type === 'prepare' && e.m.height === height)
      .map((e) => e.m.block as string);
  }
}

/** `n` signed `institution.add` transactions, valid for a minute from now. */
function makeTxs(tc: TestChain, n: number, label: string): AnyTx[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => {
    const keys = tc.keys(`${label}-${i}`);
    return tc.sign(
      tc.admin,
      'institution.add',
      {
        institution: `${label}-${i}`,
        name: `Institution ${label} ${i}`,
        signKey: keys.pub,
        encKey: keys.encPub,
      },
      now,
    ) as AnyTx;
  });
}

const refsOf = (txs: readonly AnyTx[]): [string, string][] => txs.map((tx) => [txHash(tx), tx.sig]);

/** The same transaction (same hash) with another, wrong signature. */
const forged = (tx: AnyTx, sigOf: AnyTx): AnyTx => ({ ...tx, sig: sigOf.sig });

interface Validator {
  index: number;
  key: string;
  store: MemoryBlockStore;
  mempool: Mempool;
  chain: Chain;
  net: RecordingNetwork;
  driver: PbftDriver;
  fatal: unknown[];
}

/** One validator: memory store, mempool, chain, recording sim network and (unstarted) driver. */
async function makeNode(
  t: Test,
  tc: TestChain,
  hub: SimHub,
  index: number,
  options: { maxTxs?: number; viewTimeoutMs?: number } = {},
): Promise<Validator> {
  const v = tc.validators[index]!;
  const store = new MemoryBlockStore(tc.genesisInit());
  await store.open();
  let chain: Chain | undefined;
  const mempool = new Mempool(
    {
      chain: tc.genesis.chain,
      maxTxs: options.maxTxs ?? 10_000,
      maxTxTtlMs: tc.genesis.params.maxTxTtlMs,
      minQueueTxs: tc.genesis.params.maxBlockTxs,
    },
    {
      verifier: verifyFast,
      isCommitted: async (hash) => chain?.committedRecently(hash) ?? false,
      now: Date.now,
    },
  );
  chain = new Chain(tc.genesis, store, { mempool, verifier: verifyFast });
  await chain.load();
  const net = new RecordingNetwork(
    { secretKey: v.signing.secretKey, allowedKeys: tc.validators.map((x) => x.pub) },
    { hub },
  );
  const fatal: unknown[] = [];
  const driver = new PbftDriver(
    {
      self: v.pub,
      secretKey: v.signing.secretKey,
      // No view change within a test: agreement must come from the proposal of view 0.
      timing: { blockIntervalMs: 300, viewTimeoutMs: options.viewTimeoutMs ?? 30_000, retransmitMs: 1_000 },
      minBlockIntervalMs: 20,
    },
    {
      chain,
      mempool,
      network: net,
      logger: silentLogger,
      onFatal: (err) => fatal.push(err),
      signing: new MemorySigningState(),
    },
  );
  t.teardown(async () => {
    await driver.stop();
    await net.stop();
  });
  return { index, key: v.pub, store, mempool, chain, net, driver, fatal };
}

/** Admits each transaction; returns the error codes (`ok` when admitted). */
async function admit(mempool: Mempool, txs: readonly AnyTx[]): Promise<string[]> {
  const codes: string[] = [];
  for (const tx of txs) {
    try {
      await mempool.add(tx);
      codes.push('ok');
    } catch (err) {
      codes.push((err as DatagrantError).code);
    }
  }
  return codes;
}

/** True once `cond` holds, false if it still does not after `timeoutMs`. */
async function eventually(cond: () => boolean, timeoutMs = 8_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 8_000): Promise<void> {
  if (!(await eventually(cond, timeoutMs))) throw new Error(`timed out waiting for ${what}`);
}

async function block(node: Validator, height: number): Promise<CertifiedBlock> {
  const b = await node.store.getBlock(height);
  if (!b) throw new Error(`node ${node.index} has no block ${height}`);
  return b;
}

/** Block `height` of every validator, asserting they are one block; with its hash. */
async function sameBlockEverywhere(t: Test, nodes: Validator[], height: number) {
  const blocks = await Promise.all(nodes.map((n) => block(n, height)));
  const hash = blockHash(blocks[0]!.block.header);
  t.same(
    blocks.map((b) => blockHash(b.block.header)),
    nodes.map(() => hash),
    `the same block ${height} everywhere`,
  );
  return { blocks, hash };
}

/** Four validators on one hub; `maxTxs(i)` sizes validator i's mempool (default: roomy). */
async function makeCluster(t: Test, maxTxs: (i: number) => number | undefined = () => undefined) {
  const tc = makeTestChain();
  const hub = new SimHub();
  const nodes: Validator[] = [];
  for (let i = 0; i < 4; i++) {
    const m = maxTxs(i);
    nodes.push(await makeNode(t, tc, hub, i, m === undefined ? {} : { maxTxs: m }));
  }
  for (const n of nodes) await n.net.start();
  return { tc, hub, nodes };
}

// The primary of height h, view 0 is validator (h + 0) % 4: validator 1 proposes block 1.
const PRIMARY = 1;

t.test('four validators agree on a block whose proposal travelled compact', async (t) => {
  const { tc, nodes } = await makeCluster(t);
  const txs = makeTxs(tc, 4, 'all');
  for (const n of nodes)
    t.same(await admit(n.mempool, txs), ['ok', 'ok', 'ok', 'ok'], `admitted at ${n.index}`);
  for (const n of nodes) await n.driver.start();
  // Block 1 carries the transactions; block 2 (idle primary, empty) shows empty blocks travel whole.
  await waitFor('two blocks everywhere', () => nodes.every((n) => n.chain.height >= 2));

  const { blocks: b1, hash: hash1 } = await sameBlockEverywhere(t, nodes, 1);
  t.same(
    b1[0]!.block.txs.map((tx) => txHash(tx)),
    txs.map((tx) => txHash(tx)),
    'block 1 carries every transaction, in arrival order',
  );
  const b2 = await Promise.all(nodes.map((n) => block(n, 2)));
  t.equal(new Set(b2.map((b) => blockHash(b.block.header))).size, 1, 'the same block 2 everywhere');
  t.equal(b2[0]!.block.txs.length, 0, 'block 2 is empty');

  const primary = nodes[PRIMARY]!;
  const compact = primary.net.proposals().filter((e) => e.m.height === 1);
  t.ok(compact.length >= 1, 'the primary published its proposal of block 1');
  for (const e of compact) {
    t.same(e.t, refsOf(txs), 'the proposal names each transaction by [hash, sig], in block order');
    t.same(e.m.block.txs, [], 'and carries none of them');
    t.equal(e.m.block.header.txCount, 4, 'while its header still counts them');
  }
  // Every message any validator sent: refs only on proposals of non-empty blocks, no transactions anywhere.
  const misfits: string[] = [];
  let sent = 0;
  for (const n of nodes) {
    for (const e of n.net.sent) {
      sent++;
      const isProposal = e.m.type === 'proposal';
      const txCount = isProposal ? (e as ProposalEnvelope).m.block.header.txCount : 0;
      if ('t' in e !== (isProposal && txCount > 0)) misfits.push(`${n.index}: ${e.m.type} ${e.m.height}`);
      if (isProposal && (e as ProposalEnvelope).m.block.txs.length > 0) misfits.push(`${n.index}: with txs`);
      if (typeof e.r !== 'number') misfits.push(`${n.index}: no sequence`);
    }
  }
  t.ok(sent > 10, 'votes, proposals and more were sent');
  t.same(misfits, [], 'compact exactly when a proposal has transactions; every other message whole');
  t.ok(
    nodes[2]!.net.proposals().some((e) => e.m.height === 2 && !('t' in e)),
    'the empty block 2 was proposed whole',
  );
  for (const n of nodes) {
    if (n.index !== PRIMARY)
      t.same(n.net.prepares(1), [hash1], `validator ${n.index} accepted the filled-in block`);
    t.same(n.net.txsRequests(), [], `validator ${n.index} fetched nothing`);
    t.match(n.driver.dropped(), { 'proposal-refs-malformed': 0, 'proposal-txs-unavailable': 0 });
    t.same(n.fatal, []);
  }

  // The committed transactions left every mempool; the primary still serves them from its proposal.
  const ask = utf8ToBytes(JSON.stringify({ hashes: txs.map((tx) => txHash(tx)) }));
  t.same(
    json(await nodes[0]!.net.request(primary.key, 'txs', ask)),
    txs,
    'the proposer serves its last proposal',
  );
  t.same(
    json(await primary.net.request(nodes[3]!.key, 'txs', ask)),
    [],
    'a validator that did not propose has none',
  );
});

t.test('validators that lack transactions, or hold a forged copy, fetch them and agree', async (t) => {
  // Validators 2 and 3 have a pool with no room: what they get is refused as full but kept for proposals.
  const { tc, nodes } = await makeCluster(t, (i) => (i >= 2 ? 0 : undefined));
  const txs = makeTxs(tc, 4, 'fetch');
  const hashes = txs.map((tx) => txHash(tx));
  const [v0, v1, v2, v3] = nodes as [Validator, Validator, Validator, Validator];
  t.same(await admit(v1.mempool, txs), ['ok', 'ok', 'ok', 'ok'], 'the primary holds everything');
  t.same(await admit(v0.mempool, [txs[0]!, txs[2]!]), ['ok', 'ok'], 'validator 0 lacks transactions 1 and 3');
  t.same(await admit(v2.mempool, txs), Array(4).fill('LEDGER_MEMPOOL_FULL'), 'validator 2 only as pool-full');
  const forgedTx = forged(txs[2]!, txs[0]!);
  t.same(
    await admit(v3.mempool, [txs[0]!, txs[1]!, forgedTx, txs[3]!]),
    Array(4).fill('LEDGER_MEMPOOL_FULL'),
    'validator 3 holds transaction 2 with a wrong signature',
  );
  t.equal(v3.mempool.lookup(hashes[2]!)?.sig, forgedTx.sig, 'the forged copy is what its pool would offer');
  t.equal(v2.mempool.size, 0);

  for (const n of nodes) await n.driver.start();
  await waitFor('block 1 everywhere', () => nodes.every((n) => n.chain.height >= 1));
  const { blocks: b1, hash: hash1 } = await sameBlockEverywhere(t, nodes, 1);
  t.same(
    b1.map((b) => b.block.txs.map((tx) => txHash(tx))),
    [hashes, hashes, hashes, hashes],
    'with every transaction',
  );
  t.same(b1[3]!.block.txs[2]!.sig, txs[2]!.sig, 'validator 3 committed the genuine transaction 2');
  // Every validator voted for the block itself (not only caught up on the decision).
  await waitFor('prepares', () => [v0, v2, v3].every((n) => n.net.prepares(1).length > 0));
  for (const n of [v0, v2, v3]) t.same(n.net.prepares(1), [hash1], `validator ${n.index} accepted the block`);

  const r0 = v0.net.txsRequests();
  t.equal(r0.length, 1, 'validator 0 asked once');
  t.equal(r0[0]!.peer, v1.key, 'the proposer first');
  t.same(r0[0]!.body, { hashes: [hashes[1], hashes[3]] }, 'for just what it lacked');
  t.same(r0[0]!.answer, [txs[1], txs[3]], 'and got them');
  t.same(v2.net.txsRequests(), [], 'validator 2 filled everything from the pool-full refusals');
  const r3 = v3.net.txsRequests();
  t.equal(r3.length, 1, 'validator 3 asked once');
  t.same(r3[0]!.body, { hashes: [hashes[2]] }, 'for the transaction whose signature did not match');
  // (Counted by who asked: every node also asks its peers for their tip when it starts.)
  t.same([r0[0]!.peer, r3[0]!.peer], [v1.key, v1.key], 'the proposer served both');
  for (const n of nodes) {
    t.match(n.driver.dropped(), {
      'proposal-refs-malformed': 0,
      'proposal-txs-unavailable': 0,
      'invalid-block': 0,
      'bad-proposal': 0,
    });
    t.same(n.fatal, []);
  }
  t.equal(v2.mempool.lookup(hashes[0]!), undefined, 'committed transactions leave the overflow too');
});

/**
 * One validator under test (validator 2) and a hand-driven network of the primary of block 1
 * (validator 1) that publishes crafted consensus messages and answers `txs` requests as told.
 */
async function makeSolo(t: Test, options: { maxTxs?: number } = {}) {
  const tc = makeTestChain();
  const hub = new SimHub();
  const node = await makeNode(t, tc, hub, 2, options);
  const pv = tc.validators[PRIMARY]!;
  const primary = new SimNetwork(
    { secretKey: pv.signing.secretKey, allowedKeys: tc.validators.map((v) => v.pub) },
    { hub },
  );
  const received: Envelope[] = [];
  primary.subscribe('consensus', (data) => received.push(json(data) as Envelope));
  const served: unknown[] = [];
  let answer: (hashes: string[]) => Uint8Array | Promise<Uint8Array> = () => utf8ToBytes('[]');
  primary.handle('txs', async (req) => {
    const body = json(req) as { hashes: string[] };
    served.push(body);
    return await answer(body.hashes);
  });
  await primary.start();
  await node.net.start();
  t.teardown(() => primary.stop());

  // The primary's block 1, built by a chain of its own over these transactions.
  const txs = makeTxs(tc, 3, 'solo');
  const builder = await makeNode(t, tc, new SimHub(), PRIMARY);
  await admit(builder.mempool, txs);
  const b = builder.chain.buildBlock(pv.pub, 0, Date.now());
  t.equal(b.txs.length, 3);
  const proposal = signProposal(tc.genesis.chain, 1, 0, b, pv.pub, (bytes) =>
    signFast(bytes, pv.signing.secretKey),
  );
  const bareProposal = { ...proposal, block: { ...proposal.block, txs: [] } };
  let seq = 0;
  const publish = (envelope: Record<string, unknown>) =>
    primary.publish('consensus', utf8ToBytes(JSON.stringify({ r: ++seq, ...envelope })));
  return {
    tc,
    node,
    primary,
    txs,
    proposal,
    bareProposal,
    hash: blockHash(b.header),
    received,
    served,
    publish,
    setAnswer: (fn: (hashes: string[]) => Uint8Array | Promise<Uint8Array>) => {
      answer = fn;
    },
  };
}

const preparesOf = (received: Envelope[]) =>
  received.filter((e) => e.m.type === 'prepare' && e.m.height === 1).map((e) => e.m.block);

t.test('compact proposals with malformed refs are counted and dropped', async (t) => {
  const s = await makeSolo(t);
  t.same(await admit(s.node.mempool, s.txs), ['ok', 'ok', 'ok'], 'the validator holds every transaction');
  await s.node.driver.start();
  const [h0] = s.txs.map((tx) => txHash(tx));
  const sig0 = s.txs[0]!.sig;
  const good = refsOf(s.txs);
  const pv = s.tc.validators[PRIMARY]!;
  const vote = signVote('prepare', s.tc.genesis.chain, 1, 0, s.hash, pv.pub, (bytes) =>
    signFast(bytes, pv.signing.secretKey),
  );
  const cases: [string, Record<string, unknown>][] = [
    ['refs not an array', { m: s.bareProposal, t: 'refs' }],
    ['refs an object', { m: s.bareProposal, t: { 0: good[0] } }],
    ['a ref not a pair', { m: s.bareProposal, t: [[h0], ...good.slice(1)] }],
    ['a ref of three', { m: s.bareProposal, t: [[h0, sig0, 'x'], ...good.slice(1)] }],
    ['a ref a string', { m: s.bareProposal, t: [h0, ...good.slice(1)] }],
    ['a hash not hex', { m: s.bareProposal, t: [['z'.repeat(64), sig0], ...good.slice(1)] }],
    ['a hash in upper case', { m: s.bareProposal, t: [[h0!.toUpperCase(), sig0], ...good.slice(1)] }],
    ['a short hash', { m: s.bareProposal, t: [[h0!.slice(2), sig0], ...good.slice(1)] }],
    ['a signature not a string', { m: s.bareProposal, t: [[h0, 7], ...good.slice(1)] }],
    ['a signature over 256 chars', { m: s.bareProposal, t: [[h0, 'a'.repeat(257)], ...good.slice(1)] }],
    [
      'more refs than a block may hold',
      { m: s.bareProposal, t: Array(s.tc.genesis.params.maxBlockTxs + 1).fill(good[0]) },
    ],
    ['a full proposal with refs', { m: s.proposal, t: good }],
    ['a vote with refs', { m: vote, t: good }],
    ['a malformed message with refs', { m: { ...s.bareProposal, sig: 'nope' }, t: good }],
    ['no message with refs', { m: null, t: good }],
  ];
  const malformed = () => s.node.driver.dropped()['proposal-refs-malformed'];
  for (const [i, [name, envelope]] of cases.entries()) {
    await s.publish(envelope);
    t.ok(await eventually(() => malformed() === i + 1, 2_000), `${name}: counted as malformed`);
  }
  t.equal(malformed(), cases.length, 'each counted once');
  t.equal(s.node.driver.dropped()['proposal-txs-unavailable'], 0);
  t.equal(s.node.driver.dropped().malformed, 0, 'none reached the core');
  t.same(s.served, [], 'nothing fetched for them');
  t.same(preparesOf(s.received), [], 'no vote for any of them');

  // The validator still works: the well-formed compact proposal is filled in and voted for.
  await s.publish({ m: s.bareProposal, t: good });
  await waitFor('a prepare', () => preparesOf(s.received).length > 0);
  t.same(preparesOf(s.received), [s.hash], 'the well-formed proposal is accepted');
  t.same(s.served, [], 'from the mempool alone');
  t.equal(s.node.driver.dropped()['proposal-refs-malformed'], cases.length);
  t.same(s.node.fatal, []);
});

t.test('transactions nobody can provide: counted, nothing reaches the core', async (t) => {
  const s = await makeSolo(t);
  const hashes = s.txs.map((tx) => txHash(tx));
  t.same(await admit(s.node.mempool, [s.txs[0]!]), ['ok'], 'the validator holds only transaction 0');
  await s.node.driver.start();
  const good = refsOf(s.txs);
  const unavailable = () => s.node.driver.dropped()['proposal-txs-unavailable'];
  // The validator holds transaction 0, but the ref names it with transaction 1's signature.
  const wrongSig = [[hashes[0]!, s.txs[1]!.sig], good[1]!, good[2]!];

  const cases: [string, (hashes: string[]) => Uint8Array, Record<string, unknown>, string[]][] = [
    ['the proposer has none of them', () => utf8ToBytes('[]'), { t: good }, [hashes[1]!, hashes[2]!]],
    [
      'the proposer answers with forged signatures',
      () => utf8ToBytes(JSON.stringify([forged(s.txs[1]!, s.txs[0]!), forged(s.txs[2]!, s.txs[0]!)])),
      { t: good },
      [hashes[1]!, hashes[2]!],
    ],
    [
      'the proposer answers with only one of them',
      () => utf8ToBytes(JSON.stringify([s.txs[1]])),
      { t: good },
      [hashes[1]!, hashes[2]!],
    ],
    [
      'the proposer answers with garbage items',
      () => utf8ToBytes(JSON.stringify([1, 'x', { kind: 'institution.add' }, null])),
      { t: good },
      [hashes[1]!, hashes[2]!],
    ],
    [
      'the proposer answers with no list',
      () => utf8ToBytes('{"txs":[]}'),
      { t: good },
      [hashes[1]!, hashes[2]!],
    ],
    ['the proposer answers with no JSON', () => utf8ToBytes('{'), { t: good }, [hashes[1]!, hashes[2]!]],
    [
      'the proposer fails',
      () => {
        throw new DatagrantError('TXS_NOPE', 'no');
      },
      { t: good },
      [hashes[1]!, hashes[2]!],
    ],
    [
      // The genuine transaction exists everywhere, but the proposal names another signature.
      'a ref whose signature matches no copy',
      () => utf8ToBytes(JSON.stringify(s.txs)),
      { t: wrongSig },
      hashes,
    ],
  ];
  for (const [name, answer, envelope, asked] of cases) {
    s.setAnswer(answer);
    const before = unavailable();
    const servedBefore = s.served.length;
    await s.publish({ m: s.bareProposal, ...envelope });
    await waitFor(name, () => unavailable() === before + 1);
    t.same(s.served.slice(servedBefore), [{ hashes: asked }], `${name}: asked once for what is missing`);
  }
  t.equal(unavailable(), cases.length, 'each counted once');
  t.equal(s.node.driver.dropped()['proposal-refs-malformed'], 0);
  // Give a wrongly accepted block time to show up as a vote.
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.same(preparesOf(s.received), [], 'no incomplete or mismatched block reached the core');
  t.equal(s.node.driver.dropped()['bad-proposal'], 0, 'nor was refused by it');

  // When the proposer does answer, the validator fills the block in and votes for it.
  s.setAnswer((asked) => utf8ToBytes(JSON.stringify(s.txs.filter((tx) => asked.includes(txHash(tx))))));
  await s.publish({ m: s.bareProposal, t: good });
  await waitFor('a prepare', () => preparesOf(s.received).length > 0);
  t.same(preparesOf(s.received), [s.hash], 'the completed proposal is accepted');
  t.equal(unavailable(), cases.length);
  t.same(s.node.fatal, []);
});

t.test('a compact proposal is screened before anything is fetched; fetches are deduplicated', async (t) => {
  const s = await makeSolo(t);
  await s.node.driver.start();
  const good = refsOf(s.txs);
  const pv = s.tc.validators[PRIMARY]!;
  const other = s.tc.validators[3]!;
  const signedBy = (who: typeof pv, height: number, view: number) => {
    const p = signProposal(s.tc.genesis.chain, height, view, s.proposal.block, who.pub, (bytes) =>
      signFast(bytes, who.signing.secretKey),
    );
    return { ...p, block: { ...p.block, txs: [] } };
  };
  const screened = () => s.node.driver.dropped()['proposal-screened-out'];
  const cases: [string, Record<string, unknown>][] = [
    ['from a validator that is not the primary', { m: signedBy(other, 1, 0), t: good }],
    [
      'with a signature that does not verify',
      {
        m: { ...s.bareProposal, sig: s.bareProposal.sig.replace(/^./, (c) => (c === '0' ? '1' : '0')) },
        t: good,
      },
    ],
    [
      'claimed by the primary, signed by another',
      { m: { ...signedBy(other, 1, 0), sender: pv.pub }, t: good },
    ],
    ['for a height two ahead', { m: signedBy(s.tc.validators[(3 + 0) % 4]!, 3, 0), t: good }],
  ];
  for (const [i, [name, envelope]] of cases.entries()) {
    await s.publish(envelope);
    t.ok(await eventually(() => screened() === i + 1, 2_000), `${name}: screened out`);
  }
  t.same(s.served, [], 'not one transaction was fetched for them');

  // The genuine one, twice while the proposer is slow to answer: one fetch, one prepare.
  let release = () => {};
  const slow = new Promise<void>((r) => {
    release = r;
  });
  s.setAnswer(async (asked) => {
    await slow;
    return utf8ToBytes(JSON.stringify(s.txs.filter((tx) => asked.includes(txHash(tx)))));
  });
  await s.publish({ m: s.bareProposal, t: good });
  await waitFor('the first fetch', () => s.served.length === 1);
  await s.publish({ m: s.bareProposal, t: good });
  await new Promise((r) => setTimeout(r, 50));
  release();
  await waitFor('a prepare', () => preparesOf(s.received).length > 0);
  t.equal(s.served.length, 1, 'the same block was fetched once');
  t.same(preparesOf(s.received), [s.hash]);
  t.same(s.node.fatal, []);
});

t.test('serveTxs: refuses bad requests with TXS_BAD_REQUEST, serves pending transactions', async (t) => {
  // Room for one: transaction 0 is pending, transaction 1 only a pool-full refusal.
  const s = await makeSolo(t, { maxTxs: 1 });
  t.same(await admit(s.node.mempool, s.txs.slice(0, 2)), ['ok', 'LEDGER_MEMPOOL_FULL']);
  await s.node.driver.start();
  const ask = (body: string) => s.primary.request(s.node.key, 'txs', utf8ToBytes(body));
  const hashes = s.txs.map((tx) => txHash(tx));
  const max = s.tc.genesis.params.maxBlockTxs;
  const bad: [string, string][] = [
    ['not JSON', '{"hashes":'],
    ['JSON null', 'null'],
    ['no hashes', '{}'],
    ['hashes not an array', JSON.stringify({ hashes: hashes[0] })],
    ['a hash not hex', JSON.stringify({ hashes: ['g'.repeat(64)] })],
    ['a hash in upper case', JSON.stringify({ hashes: [hashes[0]!.toUpperCase()] })],
    ['a short hash', JSON.stringify({ hashes: [hashes[0]!.slice(1)] })],
    ['a hash not a string', JSON.stringify({ hashes: [1] })],
    ['too many hashes', JSON.stringify({ hashes: Array(max + 1).fill(hashes[0]) })],
  ];
  for (const [name, body] of bad) {
    await t.rejects(
      ask(body),
      { code: 'P2P_REMOTE_ERROR', meta: { remoteCode: 'TXS_BAD_REQUEST' } },
      `${name}: TXS_BAD_REQUEST`,
    );
  }
  const unknown = 'ab'.repeat(32);
  t.same(json(await ask(JSON.stringify({ hashes: [] }))), [], 'no hashes, no transactions');
  t.same(
    json(await ask(JSON.stringify({ hashes: [unknown, hashes[0], hashes[1], hashes[2]] }))),
    [s.txs[0]],
    'pending transactions only: not unknown ones nor unverified pool-full refusals',
  );
  const full = json(await ask(JSON.stringify({ hashes: Array(max).fill(hashes[0]) }))) as unknown[];
  t.equal(full.length, max, 'up to the limit');
  t.same(s.node.fatal, []);
});

t.test(
  'a new primary that never saw the prepared block fetches it by hash and re-proposes it compact',
  async (t) => {
    const tc = makeTestChain();
    const hub = new SimHub();
    const nodes: Validator[] = [];
    for (let i = 0; i < 4; i++) nodes.push(await makeNode(t, tc, hub, i, { viewTimeoutMs: 600 }));
    for (const n of nodes) await n.net.start();
    const next = nodes[(1 + 1) % 4]!; // primary of height 1, view 1
    // View 0: the next primary never gets the proposal, and every commit vote of view 0 is lost.
    for (const n of nodes) {
      n.net.dropIncoming = (e) =>
        (e.m.type === 'commit' && e.m.view === 0) ||
        (n === next && e.m.type === 'proposal' && e.m.view === 0);
    }
    const txs = makeTxs(tc, 3, 'vc');
    for (const n of nodes) t.same(await admit(n.mempool, txs), ['ok', 'ok', 'ok']);
    for (const n of nodes) await n.driver.start();
    await waitFor('height 1 everywhere', () => nodes.every((n) => n.chain.height >= 1), 20_000);
    const { blocks, hash } = await sameBlockEverywhere(t, nodes, 1);
    t.equal(blocks[0]!.block.header.view, 0, 'the block proposed in view 0');
    t.ok(
      blocks.every((b) => b.cert.view >= 1),
      'committed in a later view',
    );
    t.equal(blocks[0]!.block.txs.length, 3, 'with its transactions');

    const fetches = next.net.requests.filter((r) => r.protocol === 'block');
    t.ok(fetches.length >= 1, 'the new primary asked for the block body');
    t.same(fetches[0]!.body, { hash }, 'by hash');
    t.ok(
      fetches.some(
        (r) => r.answer !== undefined && blockHash((r.answer as { header: never }).header) === hash,
      ),
      'a voter served it',
    );
    const newViews = next.net.sent.filter((e) => e.m.type === 'new-view');
    t.ok(newViews.length >= 1, 'it sent a new-view');
    for (const e of newViews) {
      const m = e.m as unknown as { viewChanges: object[]; proposal: { block: { txs: unknown[] } } };
      t.same(m.proposal.block.txs, [], 'whose proposal carries no transactions');
      t.same(e.t, refsOf(txs), 'only their references');
      for (const vc of m.viewChanges) t.notOk('preparedBlock' in vc, 'and whose view-changes carry no block');
    }
    for (const n of nodes) {
      for (const e of n.net.sent.filter((x) => x.m.type === 'view-change'))
        t.ok(JSON.stringify(e).length < 2_000, `validator ${n.index}'s view-change is small`);
      t.same(n.fatal, []);
    }
  },
);

t.test('serveBlock: refuses bad requests and unknown blocks with codes', async (t) => {
  const { nodes } = await makeCluster(t);
  for (const n of nodes) await n.driver.start();
  const ask = (body: unknown) =>
    nodes[0]!.net.request(
      nodes[1]!.key,
      'block',
      utf8ToBytes(typeof body === 'string' ? body : JSON.stringify(body)),
    );
  await t.rejects(ask('null'), { code: 'P2P_REMOTE_ERROR', meta: { remoteCode: 'BLOCK_BAD_REQUEST' } });
  await t.rejects(ask({ hash: 'zz' }), {
    code: 'P2P_REMOTE_ERROR',
    meta: { remoteCode: 'BLOCK_BAD_REQUEST' },
  });
  await t.rejects(ask({ hash: '0'.repeat(64) }), {
    code: 'P2P_REMOTE_ERROR',
    meta: { remoteCode: 'BLOCK_NOT_FOUND' },
  });
});
