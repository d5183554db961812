/** The strict decoder: valid messages round-trip, anything else is refused without throwing. */
import fc from 'fast-check';
import t from 'tap';
import { utf8ToBytes } from '../../../src/common/bytes.js';
import {
  type ConsensusMessage,
  decodeMessage,
  encodeMessage,
  MESSAGE_TYPES,
  voteSigningBytes,
} from '../../../src/consensus/index.js';
import { commitSigningBytes } from '../../../src/ledger/block.js';
import { Cluster } from './fixtures/cluster.js';

/** One of each message type: from a view change over a prepared block, then a laggard served a decided block. */
function sampleMessages(): ConsensusMessage[] {
  const cluster = new Cluster(4);
  cluster.start();
  cluster.deliver((_from, _to, m) => m.type !== 'commit');
  cluster.fire('view');
  // Height 1 commits in view 1; height 2 is cut, and node 3 misses the commit votes of height 1.
  const heightOf = (m: ConsensusMessage) => (m.type === 'decided' ? m.block.header.height : m.height);
  cluster.deliver((_from, to, m) => heightOf(m) === 1 && !(to === 3 && m.type === 'commit'));
  cluster.fire('retransmit', [0, 1, 2]);
  cluster.fire('retransmit', [3]);
  cluster.deliver((from, to, m) => from === 3 || (to === 3 && m.type === 'decided'), 2);
  const all = cluster.nodes.flatMap((n) => n.sent);
  const samples: ConsensusMessage[] = [];
  for (const type of MESSAGE_TYPES) {
    const found = all.find((m) => m.type === type && (m.type !== 'view-change' || m.prepared !== null));
    if (found) samples.push(found);
  }
  return samples;
}

const samples = sampleMessages();

t.test('every message type round-trips through the wire encoding', async (t) => {
  t.same(
    samples.map((m) => m.type),
    [...MESSAGE_TYPES],
    'samples of every type',
  );
  for (const message of samples) {
    const decoded = decodeMessage(encodeMessage(message));
    t.ok(decoded.ok, `${message.type} decodes`);
    if (decoded.ok)
      t.same(decoded.message, JSON.parse(JSON.stringify(message)), `${message.type} is unchanged`);
  }
});

t.test('commit votes sign exactly the bytes a light client checks', async (t) => {
  t.same(
    voteSigningBytes('commit', 'c-chain', 3, 2, 'ab'.repeat(32)),
    commitSigningBytes('c-chain', 3, 2, 'ab'.repeat(32)),
  );
  t.not(
    Buffer.from(voteSigningBytes('prepare', 'c-chain', 3, 2, 'ab'.repeat(32))).toString(),
    Buffer.from(commitSigningBytes('c-chain', 3, 2, 'ab'.repeat(32))).toString(),
    'prepare votes are domain-separated from commit votes',
  );
});

t.test('malformed input is refused', async (t) => {
  const vote = samples.find((m) => m.type === 'prepare')!;
  const proposal = samples.find((m) => m.type === 'proposal')!;
  const cases: [string, unknown][] = [
    ['null', null],
    ['a number', 7],
    ['a string', 'prepare'],
    ['an array', [vote]],
    ['an empty object', {}],
    ['an unknown type', { ...vote, type: 'vote' }],
    ['a missing field', { ...vote, sig: undefined }],
    ['an extra field', { ...vote, extra: true }],
    ['a string height', { ...vote, height: '1' }],
    ['a fractional view', { ...vote, view: 0.5 }],
    ['a negative view', { ...vote, view: -1 }],
    ['an unsafe height', { ...vote, height: 2 ** 60 }],
    ['upper-case hex', { ...vote, block: vote.type === 'prepare' ? vote.block.toUpperCase() : '' }],
    ['a short signature', { ...vote, sig: 'ab' }],
    ['a bad chain id', { ...vote, chain: 'Bad Chain' }],
    ['a prototype key', JSON.parse(`{"__proto__": {"x": 1}, "type": "prepare"}`)],
    ['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0x7d])],
    ['bytes that are not JSON', utf8ToBytes('{"type":')],
    ['bytes of a JSON string', utf8ToBytes('"prepare"')],
  ];
  if (proposal.type === 'proposal') {
    cases.push(
      ['a block without header', { ...proposal, block: { txs: [] } }],
      [
        'a block with a malformed transaction',
        { ...proposal, block: { ...proposal.block, txs: [{ kind: 'grant' }] } },
      ],
      [
        'a header with an extra field',
        { ...proposal, block: { ...proposal.block, header: { ...proposal.block.header, x: 1 } } },
      ],
    );
  }
  for (const [label, input] of cases) {
    let result: ReturnType<typeof decodeMessage> | undefined;
    t.doesNotThrow(() => {
      result = decodeMessage(input);
    }, label);
    t.equal(result?.ok, false, label);
  }
  const big = encodeMessage(vote);
  t.equal(decodeMessage(big, big.length - 1).ok, false, 'over the byte limit');
  t.equal(decodeMessage(big, big.length).ok, true, 'at the byte limit');
});

t.test('arbitrary values and mutated messages never make the decoder throw', async (t) => {
  fc.assert(
    fc.property(fc.anything(), (value) => {
      const result = decodeMessage(value);
      return typeof result.ok === 'boolean';
    }),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => decodeMessage(bytes).ok === false),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(fc.constantFrom(...samples), fc.nat(), fc.jsonValue(), (message, pick, replacement) => {
      const copy = JSON.parse(JSON.stringify(message)) as Record<string, unknown>;
      const keys = Object.keys(copy);
      copy[keys[pick % keys.length]!] = replacement;
      const result = decodeMessage(copy);
      return typeof result.ok === 'boolean';
    }),
    { numRuns: 500 },
  );
  t.pass('no throw');
});
