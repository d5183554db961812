/** The consensus core driven by hand with real Ed25519 keys: the normal case and what it outputs. */
import t from 'tap';
import { verify } from '../../../src/common/crypto.js';
import { blockHashOf, type StepOutput } from '../../../src/consensus/index.js';
import { checkCertificate } from '../../../src/ledger/block.js';
import { Cluster } from './fixtures/cluster.js';

t.test('four validators commit a block with a certificate a light client accepts', async (t) => {
  const cluster = new Cluster(4);
  cluster.start();
  cluster.deliver(() => true, 6);
  for (const node of cluster.nodes) t.ok(node.height >= 1, `node ${node.index} committed height 1`);
  const first = cluster.nodes[0]!.store[0]!;
  t.equal(
    first.block.header.proposer,
    cluster.keys[cluster.primary(1, 0)]!.key,
    'proposed by the primary of (1, 0)',
  );
  t.equal(first.cert.view, 0, 'decided in view 0');
  for (const node of cluster.nodes) {
    const { block, cert } = node.store[0]!;
    t.equal(blockHashOf(block), blockHashOf(first.block), `node ${node.index} has the same block`);
    t.equal(
      checkCertificate(cluster.genesis, block.header, cert, verify),
      null,
      `node ${node.index} certificate verifies`,
    );
    t.equal(cert.votes.length, 3, 'a certificate holds 2f+1 votes');
  }
});

t.test('heights follow one another and every proposer is the round-robin primary', async (t) => {
  const cluster = new Cluster(4);
  cluster.start();
  cluster.deliver(() => true, 40);
  const store = cluster.nodes[0]!.store;
  t.ok(store.length >= 8, `several heights committed (${store.length})`);
  for (let i = 0; i < store.length; i++) {
    const { header } = store[i]!.block;
    t.equal(header.height, i + 1, `height ${i + 1} in sequence`);
    if (i > 0) t.equal(header.prev, store[i - 1]!.cert.block, `height ${i + 1} links to its parent`);
    if (i > 0) t.ok(header.time > store[i - 1]!.block.header.time, `height ${i + 1} time advances`);
    t.equal(
      header.proposer,
      cluster.keys[cluster.primary(header.height, 0)]!.key,
      `height ${i + 1} proposer`,
    );
  }
  for (const node of cluster.nodes) {
    for (let i = 0; i < Math.min(node.store.length, store.length); i++) {
      t.equal(
        node.store[i]!.cert.block,
        store[i]!.cert.block,
        `node ${node.index} agrees at height ${i + 1}`,
      );
    }
  }
});

t.test('every vote leaves only after the WAL that records it', async (t) => {
  const cluster = new Cluster(4);
  const outputs: { node: number; out: StepOutput }[] = [];
  for (const node of cluster.nodes) {
    const apply = node.apply.bind(node);
    node.apply = (out) => {
      outputs.push({ node: node.index, out });
      return apply(out);
    };
  }
  cluster.start();
  cluster.deliver(() => true, 10);
  let votes = 0;
  for (const { node, out } of outputs) {
    const self = cluster.keys[node]!.key;
    for (const { message } of out.send) {
      if ((message.type !== 'prepare' && message.type !== 'commit') || message.sender !== self) continue;
      // Retransmissions re-send what an earlier WAL already holds; first sends come with theirs.
      const wal = out.persist ?? cluster.nodes[node]!.wal;
      t.ok(wal !== undefined, `node ${node} has a WAL before sending a ${message.type}`);
      if (out.persist !== undefined && out.persist.height === message.height) {
        const field = message.type === 'prepare' ? out.persist.prepareVote : out.persist.commitVote;
        t.equal(field, message.block, `node ${node} persists its ${message.type} in the same step`);
        votes++;
      }
    }
  }
  t.ok(votes > 0, 'votes were checked');
});

t.test('the status reports height, view and primary', async (t) => {
  const cluster = new Cluster(4);
  const status = cluster.nodes[0]!.core.status();
  t.equal(status.height, 1);
  t.equal(status.view, 0);
  t.equal(status.primary, cluster.keys[1]!.key, 'primary of (1, 0) is validators[(1 + 0) % 4]');
  t.equal(status.tip.height, 0);
});

t.test(
  'block time is bounded on both sides: a fresh proposal stamped too far in the past is refused',
  async (t) => {
    const cluster = new Cluster(4, { timing: { blockIntervalMs: 0, maxClockSkewMs: 5_000 } });
    const start = cluster.clock.time;
    cluster.start();
    // The primary proposed at `start`; by the time the others see it, their clocks are 6 s later.
    cluster.clock.time = start + 6_000;
    cluster.deliver(() => true, 6);
    for (const node of cluster.nodes) t.equal(node.height, 0, `node ${node.index} committed nothing stale`);
    const refused = cluster.nodes.filter((n) => n.core.dropped['bad-proposal'] > 0).length;
    t.ok(refused >= 3, `the other validators refused it as a bad proposal (${refused})`);

    const fresh = new Cluster(4, { timing: { blockIntervalMs: 0, maxClockSkewMs: 5_000 } });
    fresh.start();
    fresh.clock.time += 4_000;
    fresh.deliver(() => true, 6);
    t.ok(
      fresh.nodes.every((n) => n.height >= 1),
      'a proposal within the skew is committed',
    );
  },
);
