/** Inputs the core refuses are dropped and counted by reason, never thrown. */
import t from 'tap';
import { bytesToHex, utf8ToBytes } from '../../../src/common/bytes.js';
import { generateSigningKeyPair, sha256 } from '../../../src/common/crypto.js';
import { signFast, verifyFast } from '../../../src/common/crypto-node.js';
import {
  type ConsensusApp,
  ConsensusCore,
  type DropReason,
  encodeMessage,
  genesisTip,
  signProposal,
  signVote,
  type VoteMessage,
} from '../../../src/consensus/index.js';
import type { Block, CommitCertificate } from '../../../src/ledger/block.js';
import { Cluster } from './fixtures/cluster.js';

t.test('each kind of bad input lands in its counter', async (t) => {
  const cluster = new Cluster(4);
  cluster.start();
  cluster.deliver(() => true, 3);
  const node = cluster.nodes[0]!;
  const height = node.core.status().height;
  t.ok(height >= 2, 'committed at least one block');
  const chain = cluster.genesis.chain;
  const peer = cluster.keys[1]!;
  const sign = (m: Uint8Array) => signFast(m, peer.secretKey);
  const hash = 'ab'.repeat(32);
  const outsider = generateSigningKeyPair(sha256(utf8ToBytes('outsider')));
  const vote = (h: number, v: number, c = chain): VoteMessage =>
    signVote('prepare', c, h, v, hash, peer.key, sign);

  const cases: [DropReason, unknown][] = [
    ['malformed', 'not json'],
    ['malformed', new Uint8Array([0xff, 0xfe])],
    ['malformed', { ...vote(height, 0), extra: 1 }],
    ['malformed', { ...vote(height, 0), height: -1 }],
    ['wrong-chain', vote(height, 0, 'other-chain')],
    [
      'unknown-validator',
      signVote('prepare', chain, height, 0, hash, bytesToHex(outsider.publicKey), (m) =>
        signFast(m, outsider.secretKey),
      ),
    ],
    ['bad-signature', { ...vote(height, 0), sig: '00'.repeat(64) }],
    ['bad-signature', { ...vote(height, 0), sender: cluster.keys[2]!.key }],
    ['stale-height', vote(height - 1, 0)],
    ['future', vote(height + 3, 0)],
    ['future', vote(height, 10_000)],
  ];
  for (const [reason, input] of cases) {
    const before = node.core.dropped[reason];
    const out = node.core.onMessage(input);
    t.equal(node.core.dropped[reason], before + 1, `${reason}: ${JSON.stringify(input).slice(0, 60)}`);
    t.notOk(out.persist, `${reason}: nothing persisted`);
  }

  // One real vote, then its duplicate (also as wire bytes), then an equivocating one.
  const real = vote(height, 0);
  node.core.onMessage(real);
  const dup = node.core.dropped.duplicate;
  node.core.onMessage(encodeMessage(real));
  t.equal(node.core.dropped.duplicate, dup + 1, 'a duplicate vote');
  const eq = node.core.dropped.equivocation;
  node.core.onMessage(signVote('prepare', chain, height, 0, 'cd'.repeat(32), peer.key, sign));
  t.equal(node.core.dropped.equivocation, eq + 1, 'a second vote for another block in the same view');

  // After a view change, prepares for the old view are stale.
  node.fire('view');
  const stale = node.core.dropped['stale-view'];
  node.core.onMessage(
    signVote('prepare', chain, height, 0, 'ef'.repeat(32), cluster.keys[3]!.key, (m) =>
      signFast(m, cluster.keys[3]!.secretKey),
    ),
  );
  t.equal(node.core.dropped['stale-view'], stale + 1, 'a prepare for a view already left');
});

t.test('a proposal from a non-primary or with a bad time is refused', async (t) => {
  const cluster = new Cluster(4);
  const primary = cluster.primary(1, 0);
  cluster.start([primary]);
  const proposal = cluster.nodes[primary]!.sent.find((m) => m.type === 'proposal');
  if (proposal?.type !== 'proposal') throw new Error('no proposal');
  const node = cluster.nodes[(primary + 1) % 4]!;
  node.apply(node.core.start());

  const wrongSender = { ...proposal, sender: cluster.keys[(primary + 2) % 4]!.key };
  node.core.onMessage(wrongSender);
  t.equal(node.core.dropped['not-primary'], 1, 'not the primary');

  for (const [label, time] of [
    ['time not after the previous block', cluster.genesis.time],
    ['time too far ahead of the local clock', cluster.clock.time + 60_000],
  ] as const) {
    const block = node.app.build({
      ...proposal.block.header,
      time,
      proposer: proposal.sender,
      prev: proposal.block.header.prev,
    });
    const key = cluster.keys[primary]!;
    const bad = signProposal(cluster.genesis.chain, 1, 0, block, key.key, (m) => signFast(m, key.secretKey));
    const before = node.core.dropped['bad-proposal'];
    node.core.onMessage(bad);
    t.equal(node.core.dropped['bad-proposal'], before + 1, label);
  }
  t.equal(node.wal, undefined, 'never voted for any of them');
  node.core.onMessage(proposal);
  t.equal(node.wal?.prepareVote !== null, true, 'the genuine proposal is prepared');
});

t.test('untrusted synced blocks and a failing app never make the core throw', async (t) => {
  const cluster = new Cluster(4);
  const node = cluster.nodes[0]!;
  node.apply(node.core.start());
  const junk = [{}, { header: { height: 1 } }, null, 'block'] as unknown as Block[];
  for (const block of junk) {
    t.doesNotThrow(() => node.apply(node.core.onCertifiedBlock(block, {} as unknown as CommitCertificate)));
  }
  t.equal(node.core.dropped.malformed, junk.length, 'malformed synced blocks are counted');

  // An app that throws is treated as refusing the block, or as having nothing to propose.
  const failing: ConsensusApp = {
    propose: () => {
      throw new Error('mempool unavailable');
    },
    validate: () => {
      throw new Error('state unavailable');
    },
  };
  const primary = cluster.primary(1, 0);
  const key = cluster.keys[primary]!;
  const core = new ConsensusCore(
    { genesis: cluster.genesis, self: key.key, timing: { blockIntervalMs: 0 } },
    { app: failing, clock: cluster.clock, verifier: verifyFast, signer: (m) => signFast(m, key.secretKey) },
    { tip: genesisTip(cluster.genesis) },
  );
  let out: ReturnType<typeof core.start> | undefined;
  t.doesNotThrow(() => {
    out = core.start();
  }, 'a primary whose app cannot build a block does not throw');
  t.notOk(
    out?.send.some((m) => m.message.type === 'proposal'),
    'and proposes nothing',
  );
  cluster.start([primary]);
  const proposal = cluster.nodes[primary]!.sent.find((m) => m.type === 'proposal');
  const other = cluster.keys[(primary + 1) % 4]!;
  const replica = new ConsensusCore(
    { genesis: cluster.genesis, self: other.key },
    { app: failing, clock: cluster.clock, verifier: verifyFast, signer: (m) => signFast(m, other.secretKey) },
    { tip: genesisTip(cluster.genesis) },
  );
  replica.start();
  t.doesNotThrow(() => replica.onMessage(proposal));
  t.equal(replica.dropped['invalid-block'], 1, 'a block the app fails on is refused');
});
