/**
 * The core follows the validator set height by height (real Ed25519 keys, hand-driven delivery):
 * quorum and primary rotation switch at the height a change takes effect, votes from keys outside
 * the set of their height are dropped, a joining key is passive until its first height and a
 * retired one stops at its last.
 */
import t from 'tap';
import { signFast } from '../../../src/common/crypto-node.js';
import { type ConsensusMessage, signVote, type VoteMessage } from '../../../src/consensus/index.js';
import type { CertifiedBlock } from '../../../src/ledger/block.js';
import { VALIDATOR_SET_DELAY } from '../../../src/ledger/validator-set.js';
import { Cluster, type TestKey, type TestNode } from './fixtures/cluster.js';

/** The block that carries each change, and the first height its set certifies. */
const CARRIED = 2;
const FROM = CARRIED + VALIDATOR_SET_DELAY;

const validator = (key: TestKey, i: number) => ({
  name: `validator-${i}`,
  key: key.key,
  roles: [],
  types: [],
});

/** Heights a node signed votes or proposals for. */
function signedHeights(node: TestNode): number[] {
  const heights = node.sent
    .filter((m): m is Exclude<ConsensusMessage, { type: 'decided' }> => m.type !== 'decided')
    .map((m) => m.height);
  return [...new Set(heights)].sort((a, b) => a - b);
}

function voters(certified: CertifiedBlock): string[] {
  return certified.cert.votes.map((v) => v.validator);
}

t.test('a 4-set grown to 5 at H uses quorum 4 and the 5-member rotation from H', async (t) => {
  const cluster = new Cluster(
    4,
    {},
    {
      extra: 1,
      changes: (keys) => [{ height: CARRIED, kind: 'add', add: validator(keys[4]!, 4) }],
    },
  );
  cluster.start();
  cluster.deliver(() => true, 40);
  const set5 = cluster.keys.map((k) => k.key);
  for (const node of cluster.nodes)
    t.ok(node.height >= FROM + 4, `node ${node.index} committed ${node.height}`);
  const store = cluster.nodes[0]!.store;
  for (const certified of store) {
    const { header } = certified.block;
    const h = header.height;
    const view = certified.cert.view;
    if (h < FROM) {
      t.equal(header.proposer, set5[(h + view) % 4], `height ${h}: primary of the 4-set`);
      t.equal(certified.cert.votes.length, 3, `height ${h}: quorum 3 of 4`);
      t.notOk(voters(certified).includes(set5[4]!), `height ${h}: the joining key did not sign`);
    } else {
      t.equal(header.proposer, set5[(h + view) % 5], `height ${h}: primary of the 5-set`);
      t.equal(certified.cert.votes.length, 4, `height ${h}: quorum 4 of 5`);
    }
  }
  t.ok(
    store.some((c) => c.block.header.proposer === set5[4]),
    'the joining validator proposed a block',
  );
  const status = cluster.nodes[0]!.core.status();
  t.equal(status.validators, 5, 'the current set has 5 members');
  t.equal(status.primary, set5[(status.height + status.view) % 5], 'status names the 5-set primary');
});

t.test('a key entering at H is passive before H and votes from H', async (t) => {
  const cluster = new Cluster(
    4,
    {},
    {
      extra: 1,
      changes: (keys) => [{ height: CARRIED, kind: 'add', add: validator(keys[4]!, 4) }],
    },
  );
  const joiner = cluster.nodes[4]!;
  t.equal(joiner.core.status().voting, false, 'not voting at height 1');
  cluster.start();
  // Deliver step by step and watch the joiner's status at each height.
  const seen = new Map<number, boolean>();
  for (let round = 0; round < 60 && joiner.height < FROM + 3; round++) {
    const status = joiner.core.status();
    seen.set(status.height, status.voting);
    cluster.deliver(() => true, 1);
  }
  for (let h = 1; h < FROM; h++) t.equal(seen.get(h), false, `passive at height ${h}`);
  for (let h = FROM; h < FROM + 3; h++) t.equal(seen.get(h), true, `voting at height ${h}`);
  const heights = signedHeights(joiner);
  t.ok(heights.length > 0, 'it signed messages');
  t.ok(heights[0]! >= FROM, `it signed nothing before height ${FROM} (first ${heights[0]})`);
  t.ok(
    joiner.sent.some((m) => m.type === 'commit' && m.height === FROM),
    `it commit-voted at height ${FROM}`,
  );
  const signedCerts = cluster.nodes[0]!.store.filter((c) => voters(c).includes(joiner.key.key));
  t.ok(signedCerts.length > 0, 'its signatures are in commit certificates');
  t.ok(
    signedCerts.every((c) => c.block.header.height >= FROM),
    'only in certificates from its first height',
  );
});

t.test('a vote from a key outside the set of its height is dropped as unknown-validator', async (t) => {
  const cluster = new Cluster(
    4,
    {},
    {
      extra: 1,
      changes: (keys) => [{ height: CARRIED, kind: 'add', add: validator(keys[4]!, 4) }],
    },
  );
  cluster.start();
  // Up to height 3 only: the node is deciding height 3, whose set is still genesis's.
  for (let round = 0; round < 40 && cluster.nodes[0]!.core.status().height < FROM - 1; round++)
    cluster.deliver(() => true, 1);
  const node = cluster.nodes[0]!;
  t.equal(node.core.status().height, FROM - 1, `deciding height ${FROM - 1}`);
  const outsider = cluster.keys[4]!;
  const sign = (m: Uint8Array) => signFast(m, outsider.secretKey);
  const hash = 'ab'.repeat(32);
  let before = node.core.dropped;
  node.apply(
    node.core.onMessage(signVote('prepare', cluster.genesis.chain, FROM - 1, 0, hash, outsider.key, sign)),
  );
  t.equal(
    node.core.dropped['unknown-validator'],
    before['unknown-validator'] + 1,
    'a vote for this height: unknown',
  );
  before = node.core.dropped;
  node.apply(
    node.core.onMessage(signVote('prepare', cluster.genesis.chain, FROM, 0, hash, outsider.key, sign)),
  );
  const after = node.core.dropped;
  t.equal(
    after['unknown-validator'],
    before['unknown-validator'],
    'a vote for the next height, in its set: known',
  );
  t.equal(after['bad-signature'], before['bad-signature'], 'and its signature checked against that set');
  t.equal(after.future, before.future, 'kept for the next height');
});

t.test('a retired key stops voting after its last height and its votes are dropped', async (t) => {
  const cluster = new Cluster(
    5,
    {},
    {
      changes: (keys) => [{ height: CARRIED, kind: 'retire', remove: keys[0]!.key }],
    },
  );
  cluster.start();
  cluster.deliver(() => true, 40);
  const retired = cluster.nodes[0]!;
  const keys = cluster.keys.map((k) => k.key);
  const set4 = keys.slice(1);
  for (const node of cluster.nodes)
    t.ok(node.height >= FROM + 4, `node ${node.index} committed ${node.height}`);
  const heights = signedHeights(retired);
  t.ok(
    heights.length > 0 && heights.at(-1)! < FROM,
    `the retired node signed only below ${FROM} (${heights.join(',')})`,
  );
  t.equal(retired.core.status().voting, false, 'the retired node does not vote');
  t.ok(retired.height >= FROM + 4, 'but it follows the chain');
  for (const certified of cluster.nodes[1]!.store) {
    const h = certified.block.header.height;
    if (h < FROM) continue;
    t.notOk(voters(certified).includes(keys[0]!), `height ${h}: no retired signature`);
    t.equal(certified.cert.votes.length, 3, `height ${h}: quorum 3 of 4`);
    t.equal(
      certified.block.header.proposer,
      set4[(h + certified.cert.view) % 4],
      `height ${h}: primary of the 4-set`,
    );
  }
  const node = cluster.nodes[1]!;
  const height = node.core.status().height;
  const sign = (m: Uint8Array) => signFast(m, cluster.keys[0]!.secretKey);
  const before = node.core.dropped['unknown-validator'];
  node.apply(
    node.core.onMessage(
      signVote('commit', cluster.genesis.chain, height, 0, 'cd'.repeat(32), keys[0]!, sign),
    ),
  );
  t.equal(node.core.dropped['unknown-validator'], before + 1, "the retired key's vote is unknown-validator");
});

t.test('a rotated key hands its place in the rotation to the new key', async (t) => {
  const cluster = new Cluster(
    4,
    {},
    {
      extra: 1,
      changes: (keys) => [
        { height: CARRIED, kind: 'rotate', remove: keys[1]!.key, add: validator(keys[4]!, 1) },
      ],
    },
  );
  cluster.start();
  cluster.deliver(() => true, 40);
  const keys = cluster.keys.map((k) => k.key);
  const rotated = [keys[0]!, keys[4]!, keys[2]!, keys[3]!];
  const store = cluster.nodes[0]!.store;
  t.ok(store.length >= FROM + 4, `committed ${store.length}`);
  for (const certified of store) {
    const h = certified.block.header.height;
    const set = h < FROM ? keys.slice(0, 4) : rotated;
    t.equal(certified.block.header.proposer, set[(h + certified.cert.view) % 4], `height ${h}: primary`);
    const who = voters(certified);
    if (h >= FROM) t.notOk(who.includes(keys[1]!), `height ${h}: the old key did not sign`);
    else t.notOk(who.includes(keys[4]!), `height ${h}: the new key did not sign yet`);
  }
  t.ok(
    signedHeights(cluster.nodes[1]!).every((h) => h < FROM),
    'the old key signed only before the rotation',
  );
  t.ok(
    signedHeights(cluster.nodes[4]!).every((h) => h >= FROM),
    'the new key signed only from the rotation',
  );
  t.ok(
    store.some((c) => c.block.header.height >= FROM && voters(c).includes(keys[4]!)),
    'the new key signed commit certificates',
  );
});

t.test('a restarted joiner resumes voting from its WAL without signing twice', async (t) => {
  const cluster = new Cluster(
    4,
    {},
    {
      extra: 1,
      changes: (keys) => [{ height: CARRIED, kind: 'add', add: validator(keys[4]!, 4) }],
    },
  );
  cluster.start();
  const joiner = cluster.nodes[4]!;
  for (let round = 0; round < 60 && !joiner.sent.some((m) => m.type === 'prepare'); round++)
    cluster.deliver(() => true, 1);
  const prepare = joiner.sent.find((m): m is VoteMessage => m.type === 'prepare');
  t.ok(prepare !== undefined && prepare.height === FROM, `it prepared at ${FROM}`);
  t.equal(joiner.wal?.height, FROM, 'its WAL is at that height');
  joiner.boot();
  t.equal(joiner.core.status().voting, true, 'restarted, it votes at that height');
  const out = joiner.apply(joiner.core.start());
  const resent = out.send.map((m) => m.message).filter((m) => m.type === 'prepare');
  t.same(resent, [prepare], 'it re-sends the very prepare it signed');
  cluster.deliver(() => true, 40);
  t.ok(joiner.height >= FROM + 3, `and keeps committing (${joiner.height})`);
});

t.test('a joiner syncs across the change, each certificate checked against its own set', async (t) => {
  const cluster = new Cluster(
    4,
    {},
    {
      extra: 1,
      changes: (keys) => [{ height: CARRIED, kind: 'add', add: validator(keys[4]!, 4) }],
    },
  );
  cluster.start([0, 1, 2, 3]);
  // The joiner hears nothing: the four others commit past the change on their own (4 of 5 is a
  // quorum), changing view where the joiner is the primary.
  const others = [0, 1, 2, 3];
  for (let i = 0; i < 4; i++) {
    cluster.deliver((from, to) => from !== 4 && to !== 4, 40);
    cluster.fire('view', others);
  }
  cluster.deliver((from, to) => from !== 4 && to !== 4, 40);
  const store = cluster.nodes[0]!.store;
  t.ok(store.length >= FROM + 2, `the others committed ${store.length}`);
  const joiner = cluster.nodes[4]!;
  joiner.apply(joiner.core.start());
  for (const certified of store) {
    const h = certified.block.header.height;
    if (h === FROM) {
      // Three votes were a quorum of the 4-set, not of the 5-set in force here.
      const short = { ...certified.cert, votes: certified.cert.votes.slice(0, 3) };
      const before = joiner.core.dropped['bad-certificate'];
      joiner.apply(joiner.core.onCertifiedBlock(certified.block, short));
      t.equal(joiner.core.dropped['bad-certificate'], before + 1, `height ${h}: 3 votes refused`);
    }
    joiner.apply(joiner.core.onCertifiedBlock(certified.block, certified.cert));
    if (joiner.timers.has('start')) joiner.fire('start');
    t.equal(joiner.height, h, `height ${h} accepted`);
  }
  const status = joiner.core.status();
  t.equal(status.height, store.length + 1, 'the joiner is at the tip');
  t.equal(status.voting, true, 'and votes there');
  t.equal(joiner.app.outOfOrderCalls + joiner.app.setCallsAhead, 0, 'the app was asked only what it knew');
});
