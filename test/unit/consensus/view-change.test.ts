/** View changes: a silent primary is replaced, a prepared block survives, timeouts back off. */
import t from 'tap';
import { verify } from '../../../src/common/crypto.js';
import { signFast } from '../../../src/common/crypto-node.js';
import { blockHashOf, signNewView, signProposal } from '../../../src/consensus/index.js';
import { checkCertificate } from '../../../src/ledger/block.js';
import { Cluster } from './fixtures/cluster.js';

t.test('a silent primary is replaced after its view times out', async (t) => {
  const cluster = new Cluster(4);
  const silent = cluster.primary(1, 0);
  const others = cluster.nodes.map((n) => n.index).filter((i) => i !== silent);
  cluster.start(others);
  cluster.deliver((from, to) => from !== silent && to !== silent);
  for (const i of others) t.equal(cluster.nodes[i]!.height, 0, `node ${i} has nothing to commit yet`);
  cluster.fire('view', others);
  cluster.deliver((from, to) => from !== silent && to !== silent, 4);
  const next = cluster.primary(1, 1);
  for (const i of others) {
    const node = cluster.nodes[i]!;
    t.ok(node.height >= 1, `node ${i} committed height 1 after the view change`);
    const { block, cert } = node.store[0]!;
    t.equal(cert.view, 1, 'decided in view 1');
    t.equal(block.header.proposer, cluster.keys[next]!.key, 'proposed by the primary of view 1');
    t.equal(checkCertificate(cluster.genesis, block.header, cert, verify), null, 'certificate verifies');
  }
  t.ok(
    cluster.nodes[next]!.sent.some((m) => m.type === 'new-view'),
    'the new primary sent a new-view',
  );
});

t.test('a prepared block is re-proposed, even by a primary that never saw it', async (t) => {
  const cluster = new Cluster(4);
  const next = cluster.primary(1, 1);
  // View 0: the next primary misses the proposal, and every commit vote is lost.
  const view0 = (_from: number, to: number, m: { type: string }) =>
    m.type !== 'commit' && !(m.type === 'proposal' && to === next);
  cluster.start();
  cluster.deliver(view0);
  for (const node of cluster.nodes) t.equal(node.height, 0, `node ${node.index} did not commit in view 0`);
  const prepared = cluster.nodes.filter((n) => n.core.status().preparedView === 0);
  t.ok(prepared.length >= 3, `a quorum is prepared in view 0 (${prepared.length})`);
  const proposal = cluster.nodes[cluster.primary(1, 0)]!.sent.find((m) => m.type === 'proposal');
  t.ok(proposal, 'the view-0 primary proposed');
  const original = proposal?.type === 'proposal' ? blockHashOf(proposal.block) : '';

  cluster.fire('view');
  cluster.deliver(() => true, 6);
  for (const node of cluster.nodes) {
    t.ok(node.height >= 1, `node ${node.index} committed`);
    const { block, cert } = node.store[0]!;
    t.equal(blockHashOf(block), original, `node ${node.index} committed the block prepared in view 0`);
    t.equal(block.header.view, 0, 'the header keeps its original view');
    t.equal(cert.view, 1, 'the certificate is from view 1');
    t.equal(checkCertificate(cluster.genesis, block.header, cert, verify), null, 'certificate verifies');
  }
  const newView = cluster.nodes[next]!.sent.find((m) => m.type === 'new-view');
  t.ok(newView?.type === 'new-view' && newView.viewChanges.some((vc) => vc.prepared?.block === original));
});

t.test('view-changes name the prepared block by hash; a new primary fetches the body', async (t) => {
  const cluster = new Cluster(4);
  cluster.serveBlocks = false;
  const next = cluster.primary(1, 1);
  cluster.start();
  cluster.deliver((_from, to, m) => m.type !== 'commit' && !(m.type === 'proposal' && to === next));
  const proposal = cluster.nodes[cluster.primary(1, 0)]!.sent.find((m) => m.type === 'proposal');
  const original = proposal?.type === 'proposal' ? blockHashOf(proposal.block) : '';
  cluster.fire('view');
  cluster.deliver(() => true, 6);
  const viewChanges = cluster.nodes.flatMap((n) => n.sent.filter((m) => m.type === 'view-change'));
  t.ok(viewChanges.length >= 3, 'view-changes were sent');
  for (const vc of viewChanges) {
    t.same(
      Object.keys(vc).sort(),
      ['chain', 'height', 'prepared', 'sender', 'sig', 'type', 'view'],
      'no body',
    );
  }
  const primary = cluster.nodes[next]!;
  t.notOk(
    primary.sent.some((m) => m.type === 'new-view'),
    'without the body the new primary cannot re-propose yet',
  );
  const fetch = primary.fetches.at(-1);
  t.equal(fetch?.hash, original, 'it asks for the prepared block by hash');
  t.ok(
    fetch && fetch.from.length >= 2 && !fetch.from.includes(primary.key.key),
    "from the certificate's voters",
  );
  t.equal(primary.core.wantedBlock(), original, 'and waits for it');

  // A body that is not the one asked for is refused and counted; the wait goes on.
  const other = primary.app.build(
    {
      height: 1,
      view: 1,
      prev: primary.core.status().tip.hash,
      time: cluster.clock.time,
      proposer: primary.key.key,
    },
    'other',
  );
  primary.apply(primary.core.onBlockBody(other));
  primary.apply(primary.core.onBlockBody({ header: 'junk' }));
  t.equal(primary.core.dropped['unwanted-block'], 1, 'another block is unwanted');
  t.equal(primary.core.dropped.malformed, 1, 'junk is malformed');
  t.equal(primary.core.wantedBlock(), original, 'still waiting');
  // The retransmit timer asks again.
  primary.fetches = [];
  primary.fire('retransmit');
  t.equal(primary.fetches.at(-1)?.hash, original, 'the fetch is repeated on retransmit');

  cluster.serveBlocks = true;
  cluster.deliver(() => true, 10);
  t.ok(
    primary.sent.some((m) => m.type === 'new-view' && blockHashOf(m.proposal.block) === original),
    'with the body fetched, the new-view re-proposes it',
  );
  for (const node of cluster.nodes) {
    t.ok(node.height >= 1, `node ${node.index} committed`);
    t.equal(blockHashOf(node.store[0]!.block), original, 'the prepared block');
  }
});

t.test('view timeouts double with each view, up to the cap', async (t) => {
  const cluster = new Cluster(4, {
    timing: { blockIntervalMs: 0, viewTimeoutMs: 100, maxViewTimeoutMs: 700 },
  });
  const node = cluster.nodes[0]!;
  node.apply(node.core.start());
  const delays: number[] = [];
  for (let v = 0; v < 5; v++) {
    const timer = node.timers.get('view')!;
    t.equal(timer.view, v, `timer for view ${v}`);
    delays.push(timer.delayMs);
    node.fire('view');
  }
  t.same(delays, [100, 200, 400, 700, 700]);
  t.equal(node.core.status().view, 5);
  t.equal(node.core.status().active, false, 'waiting for a new-view');
});

t.test('f+1 view-changes for later views pull a validator along', async (t) => {
  const cluster = new Cluster(4);
  const silent = cluster.primary(1, 0);
  cluster.start();
  cluster.deliver((from, to) => from !== silent && to !== silent);
  const lagging = (silent + 1) % 4;
  const timedOut = [0, 1, 2, 3].filter((i) => i !== silent && i !== lagging);
  cluster.fire('view', timedOut);
  cluster.deliver((from, to) => from !== silent && to !== silent, 6);
  t.ok(
    cluster.nodes[lagging]!.sent.some((m) => m.type === 'view-change'),
    'the validator whose timer did not fire joined',
  );
  for (const i of [lagging, ...timedOut]) t.ok(cluster.nodes[i]!.height >= 1, `node ${i} committed`);
});

t.test('a new-view that forces a prepared block cannot carry another one', async (t) => {
  const cluster = new Cluster(4);
  cluster.start();
  cluster.deliver((_from, _to, m) => m.type !== 'commit');
  cluster.fire('view');
  const next = cluster.primary(1, 1);
  const viewChanges = cluster.nodes
    .filter((n) => n.index !== next)
    .map((n) => n.sent.findLast((m) => m.type === 'view-change'))
    .flatMap((m) => (m?.type === 'view-change' ? [m] : []));
  t.equal(viewChanges.length, 3, 'a quorum of view-changes');
  t.ok(
    viewChanges.every((vc) => vc.prepared !== null),
    'all carry the prepared certificate of view 0',
  );
  // A Byzantine new primary proposes a fresh block instead of the prepared one.
  const key = cluster.keys[next]!;
  const victim = cluster.nodes[(next + 1) % 4]!;
  const prev = victim.core.status().tip.hash;
  const fresh = victim.app.build(
    { height: 1, view: 1, prev, time: cluster.clock.time, proposer: key.key },
    'fresh',
  );
  const proposal = signProposal(cluster.genesis.chain, 1, 1, fresh, key.key, (m) =>
    signFast(m, key.secretKey),
  );
  const newView = signNewView(viewChanges, proposal, (m) => signFast(m, key.secretKey));
  const before = victim.core.dropped['bad-proposal'];
  victim.apply(victim.core.onMessage(JSON.parse(JSON.stringify(newView))));
  t.equal(victim.core.dropped['bad-proposal'], before + 1, 'refused as a bad proposal');
  t.equal(victim.core.status().view, 1, 'the view-changes still moved it to view 1');
  const blockOfFresh = blockHashOf(fresh);
  t.notOk(
    victim.sent.some((m) => m.type === 'prepare' && m.block === blockOfFresh),
    'never prepared the fresh block',
  );
  // Without enough view-changes the new-view is not even justified.
  const other = cluster.nodes[(next + 2) % 4]!;
  const short = signNewView(viewChanges.slice(0, 2), proposal, (m) => signFast(m, key.secretKey));
  other.apply(other.core.onMessage(JSON.parse(JSON.stringify(short))));
  t.equal(other.core.dropped['bad-new-view'], 1, 'two view-changes do not justify a new view');
  // And no one but the primary can wrap its proposal in a new-view.
  const thief = cluster.keys[(next + 3) % 4]!;
  const rewrapped = { ...signNewView(viewChanges, proposal, (m) => signFast(m, thief.secretKey)) };
  other.apply(other.core.onMessage(JSON.parse(JSON.stringify(rewrapped))));
  t.equal(other.core.dropped['bad-signature'], 1, 'a new-view signed by another validator is refused');
});
