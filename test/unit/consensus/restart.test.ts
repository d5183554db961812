/** Restarting from the persisted WAL: no second vote, no second proposal, prepared state kept. */
import t from 'tap';
import { signFast } from '../../../src/common/crypto-node.js';
import {
  blockHashOf,
  ConsensusCore,
  type ConsensusMessage,
  decodeWal,
  genesisTip,
  signProposal,
} from '../../../src/consensus/index.js';
import { Cluster } from './fixtures/cluster.js';

function votesOf(messages: ConsensusMessage[], type: 'prepare' | 'commit'): string[] {
  return messages.flatMap((m) => (m.type === type ? [m.block] : []));
}

t.test('a restarted validator does not prepare a second block in the same view', async (t) => {
  const cluster = new Cluster(4);
  const primary = cluster.primary(1, 0);
  const victim = (primary + 1) % 4;
  cluster.start();
  // Only the proposal reaches the victim; nothing else moves.
  cluster.deliver((from, to, m) => from === primary && to === victim && m.type === 'proposal', 1);
  const node = cluster.nodes[victim]!;
  const [first] = votesOf(node.sent, 'prepare');
  t.ok(first, 'the victim prepared the first proposal');
  t.equal(node.wal?.prepareVote, first, 'and its WAL says so');

  node.boot();
  const restart = node.apply(node.core.start());
  t.same(
    votesOf(
      restart.send.map((s) => s.message),
      'prepare',
    ),
    [first],
    'on restart it re-sends the same prepare',
  );

  // The primary equivocates: a different block for the same (height, view).
  const proposal = cluster.nodes[primary]!.sent.find((m) => m.type === 'proposal');
  if (proposal?.type !== 'proposal') throw new Error('no proposal');
  const other = node.app.build(
    {
      height: 1,
      view: 0,
      prev: proposal.block.header.prev,
      time: proposal.block.header.time + 5,
      proposer: proposal.sender,
    },
    'second',
  );
  t.not(blockHashOf(other), first, 'a different block');
  const key = cluster.keys[primary]!;
  const forged = signProposal(cluster.genesis.chain, 1, 0, other, key.key, (m) => signFast(m, key.secretKey));
  const before = node.core.dropped.equivocation;
  node.apply(node.core.onMessage(JSON.parse(JSON.stringify(forged))));
  t.equal(node.core.dropped.equivocation, before + 1, 'counted as equivocation');
  t.same([...new Set(votesOf(node.sent, 'prepare'))], [first], 'never prepared the second block');
});

t.test('a restarted primary re-sends its proposal instead of building another', async (t) => {
  const cluster = new Cluster(4);
  const primary = cluster.primary(1, 0);
  cluster.start([primary]);
  const node = cluster.nodes[primary]!;
  const sent = node.sent.find((m) => m.type === 'proposal');
  t.ok(sent, 'proposed');
  cluster.clock.time += 5000;
  node.boot();
  const restart = node.apply(node.core.start());
  const again = restart.send.find((s) => s.message.type === 'proposal')?.message;
  t.ok(
    again?.type === 'proposal' &&
      sent?.type === 'proposal' &&
      blockHashOf(again.block) === blockHashOf(sent.block),
  );
  t.equal(node.sent.filter((m) => m.type === 'proposal').length, 2, 'only the re-send, no new proposal');
  t.notOk(node.timers.has('propose'), 'no propose timer after restart');
});

t.test('a restarted validator keeps its view, view-change and prepared certificate', async (t) => {
  const cluster = new Cluster(4);
  cluster.start();
  cluster.deliver((_f, _t, m) => m.type !== 'commit');
  const node = cluster.nodes[0]!;
  t.equal(node.core.status().preparedView, 0, 'prepared in view 0');
  node.fire('view');
  t.equal(node.wal?.view, 1);
  t.equal(node.wal?.active, false);
  const vc = node.sent.findLast((m) => m.type === 'view-change');
  node.boot();
  t.equal(node.core.status().view, 1, 'view restored');
  t.equal(node.core.status().preparedView, 0, 'prepared certificate restored');
  const restart = node.apply(node.core.start());
  const again = restart.send.find((s) => s.message.type === 'view-change')?.message;
  t.same(again, vc, 'the identical view-change is re-sent');
  cluster.fire('view', [1, 2, 3]);
  cluster.deliver(() => true, 6);
  for (const n of cluster.nodes) t.ok(n.height >= 1, `node ${n.index} committed after the view change`);
});

t.test('a WAL newer than the block store is refused, an older one ignored', async (t) => {
  const cluster = new Cluster(4);
  cluster.start();
  cluster.deliver(() => true, 4);
  const node = cluster.nodes[0]!;
  t.ok(node.height >= 1);
  const wal = decodeWal(JSON.parse(JSON.stringify(node.wal)));
  const modules = {
    app: node.app,
    clock: cluster.clock,
    verifier: () => true,
    signer: () => new Uint8Array(64),
  };
  const options = { genesis: cluster.genesis, self: node.key.key };
  t.throws(() => new ConsensusCore(options, modules, { tip: genesisTip(cluster.genesis), wal }), {
    code: 'CONSENSUS_WAL_AHEAD',
  });
  const tip = { height: wal.height + 5, hash: 'ab'.repeat(32), time: 1 };
  const core = new ConsensusCore(options, modules, { tip, wal });
  t.equal(core.status().height, wal.height + 6, 'a stale WAL is ignored');
  t.throws(() => decodeWal({ ...wal, view: -1 }), { code: 'CONSENSUS_WAL_INVALID' });
  t.throws(() => decodeWal({ ...wal, proposal: { type: 'prepare' } }), { code: 'CONSENSUS_WAL_INVALID' });
  t.throws(() => new ConsensusCore(options, modules, { tip, wal: { ...wal, chain: 'other-chain' } }), {
    code: 'CONSENSUS_WAL_INVALID',
  });
});
