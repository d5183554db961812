/** Catching up: evidence of being behind asks for sync, certified blocks are checked and committed. */
import t from 'tap';
import type { ConsensusMessage } from '../../../src/consensus/index.js';
import { Cluster } from './fixtures/cluster.js';

const heightOf = (m: ConsensusMessage) => (m.type === 'decided' ? m.block.header.height : m.height);

t.test('a node cut off for several heights asks to sync and catches up from certified blocks', async (t) => {
  const cluster = new Cluster(4);
  cluster.start();
  // Node 3 is cut off; when it is the primary the others need a view change to move on.
  const cut = (from: number, to: number) => from !== 3 && to !== 3;
  for (let round = 0; round < 10 && cluster.nodes[0]!.height < 5; round++) {
    const before = cluster.nodes[0]!.height;
    cluster.deliver(cut, 8);
    if (cluster.nodes[0]!.height === before) cluster.fire('view', [0, 1, 2]);
  }
  const ahead = cluster.nodes[0]!;
  const lagging = cluster.nodes[3]!;
  t.ok(ahead.height >= 4, `the others moved on (${ahead.height})`);
  t.equal(lagging.height, 0, 'the cut-off node is still at genesis');

  // It hears the others' current votes: f+1 validators several heights ahead.
  for (const peer of [0, 1, 2]) {
    const latest = cluster.nodes[peer]!.sent.findLast((m) => m.type === 'prepare');
    if (latest) lagging.apply(lagging.core.onMessage(latest));
  }
  t.ok(lagging.syncTo !== undefined && lagging.syncTo >= 3, `sync requested up to ${lagging.syncTo}`);
  t.ok(lagging.core.dropped.future > 0, 'the far-ahead messages were not buffered');

  // A certificate that does not verify is refused.
  const first = ahead.store[0]!;
  const tampered = {
    ...first.cert,
    votes: first.cert.votes.map((v, i) => (i === 0 ? { ...v, sig: '11'.repeat(64) } : v)),
  };
  lagging.apply(lagging.core.onCertifiedBlock(first.block, tampered));
  t.equal(lagging.height, 0, 'tampered certificate not committed');
  t.equal(lagging.core.dropped['bad-certificate'], 1, 'and counted');
  // A block for a later height is refused until the ones before it arrive.
  lagging.apply(lagging.core.onCertifiedBlock(ahead.store[1]!.block, ahead.store[1]!.cert));
  t.equal(lagging.height, 0, 'a gap is not skipped');

  for (const { block, cert } of ahead.store.slice(0, lagging.syncTo)) {
    lagging.apply(lagging.core.onCertifiedBlock(block, cert));
  }
  t.equal(lagging.height, lagging.syncTo, 'caught up to the sync target');
  for (let h = 0; h < lagging.height; h++) {
    t.equal(lagging.store[h]!.cert.block, ahead.store[h]!.cert.block, `same block at height ${h + 1}`);
  }
  t.equal(lagging.app.outOfOrderCalls, 0, 'the app was never called off the applied tip');

  // Back on the network, it takes part again.
  const target = ahead.height + 2;
  cluster.fire('retransmit');
  cluster.deliver(() => true, 30);
  for (const { block, cert } of ahead.store.slice(lagging.height)) {
    if (block.header.height === lagging.height + 1) lagging.apply(lagging.core.onCertifiedBlock(block, cert));
  }
  cluster.deliver(() => true, 30);
  t.ok(lagging.height >= target, `it commits new heights with the others (${lagging.height} >= ${target})`);
});

t.test('a validator that missed the commit votes gets the decided block from a peer', async (t) => {
  const cluster = new Cluster(4);
  cluster.start();
  // Height 1 commits everywhere but at node 3, which gets no commit votes; height 2 stalls.
  cluster.deliver((_from, to, m) => heightOf(m) === 1 && !(to === 3 && m.type === 'commit'));
  const lagging = cluster.nodes[3]!;
  t.equal(lagging.height, 0);
  t.ok(cluster.nodes[0]!.height === 1, 'the others committed height 1');
  // Right after a commit, late votes for it are not answered (their senders are deciding too)...
  cluster.nodes[3]!.fire('retransmit');
  cluster.deliver((from, to, m) => from === 3 || (to === 3 && m.type === 'decided'), 2);
  t.equal(lagging.height, 0, 'not answered before the peers retransmit once');
  // ...but a retransmitting laggard is.
  cluster.fire('retransmit', [0, 1, 2]);
  cluster.nodes[3]!.fire('retransmit');
  cluster.deliver((from, to, m) => from === 3 || (to === 3 && m.type === 'decided'), 2);
  t.equal(lagging.height, 1, 'committed from the decided message');
  t.equal(lagging.store[0]!.cert.block, cluster.nodes[0]!.store[0]!.cert.block, 'the same block');
});

t.test('a non-voting observer follows the chain', async (t) => {
  const cluster = new Cluster(4);
  const { ConsensusCore, genesisTip } = await import('../../../src/consensus/index.js');
  const { SimulatedApp } = await import('../../sim/fixtures/sim-app.js');
  const { verifyFast } = await import('../../../src/common/crypto-node.js');
  const app = new SimulatedApp(cluster.genesis);
  const observer = new ConsensusCore(
    { genesis: cluster.genesis },
    { app, clock: cluster.clock, verifier: verifyFast },
    { tip: genesisTip(cluster.genesis) },
  );
  const start = observer.start();
  t.same(start.send, [], 'an observer sends nothing');
  t.notOk(
    start.timers.some((x) => x.kind === 'view'),
    'and runs no view timer',
  );
  cluster.start();
  cluster.deliver(() => true, 3);
  let committed = 0;
  for (const m of cluster.nodes.flatMap((n) => n.sent)) {
    if (m.type === 'decided' || m.height !== 1) continue;
    for (const block of observer.onMessage(m).commits ?? []) {
      app.apply(block.block);
      committed++;
    }
  }
  t.equal(committed, 1, 'the observer commits height 1 from the votes it hears');
  t.equal(observer.status().height, 2);
});
