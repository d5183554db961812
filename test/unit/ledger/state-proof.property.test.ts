/**
 * State proofs against genesis alone: on a test chain with random institutions, subjects and
 * requests, every entry (and a random absent one) proves present with its value, or absent, at the
 * latest certified header; and the proof fails for a flipped bit in the value, the proof or the
 * header, a header of another height, a header of another chain, a certificate below quorum, the
 * wrong key, or a chain whose headers commit to the running hash.
 */
import fc from 'fast-check';
import t from 'tap';
import { verifyFast } from '../../../src/common/crypto-node.js';
import {
  type StateValue,
  type StateValueProof,
  stateKey,
  verifyStateValueProof,
} from '../../../src/ledger/index.js';
import { makeTestChain } from '../../helpers/chain.js';
import { type CommittedTestBlock, TestLedger } from '../../helpers/ledger.js';

const chain = makeTestChain({ subjects: 4 });
const ledger = new TestLedger(chain, { verifier: verifyFast });
const blocks: CommittedTestBlock[] = [];
for (let i = 0; i < 6; i++) {
  const inst = chain.institutions[i % 2]!;
  const subject = chain.subjects[i % 4]!;
  blocks.push(ledger.commit([ledger.openRequest(inst, subject, { purpose: `loan ${i}` })]));
}
const last = blocks.at(-1)!.certified;
const requestIds = blocks.map((b) => b.effects.outcomes[0]!.hash);
const keys = [
  ...chain.institutions.map((i) => stateKey.institution(i.id)),
  ...chain.subjects.map((s) => stateKey.subject(s.id)),
  ...requestIds.map((id) => stateKey.request(id)),
  stateKey.institution('nobody-bank'),
  stateKey.request('0'.repeat(64)),
];

function proofOf(key: string): StateValueProof {
  const proven = ledger.state.prove(key)!;
  return {
    key,
    value: (ledger.state.get(key) ?? null) as StateValue | null,
    proof: proven.proof,
    header: last.block.header,
    cert: last.cert,
  };
}

t.test('every entry proves present with its value, and absent keys prove absent', async (t) => {
  for (const key of keys) {
    const r = verifyStateValueProof(chain.genesis, proofOf(key), key, verifyFast);
    t.ok(r.ok, `${key}: ${JSON.stringify(r).slice(0, 200)}`);
    if (r.ok) t.equal(r.value === null, ledger.state.get(key) === undefined, `${key}: present iff in state`);
  }
});

/** Flips one hex digit (or the last character) of the string at `path` inside a copy of `proof`. */
function flip(proof: StateValueProof, pick: number): { proof: StateValueProof; where: string } | undefined {
  const copy = structuredClone(proof) as unknown as Record<string, unknown>;
  const spots: { parent: Record<string, unknown> | unknown[]; key: string | number; where: string }[] = [];
  const walk = (node: unknown, where: string) => {
    if (Array.isArray(node)) for (const [i, v] of node.entries()) visit(node, i, v, `${where}[${i}]`);
    else if (node && typeof node === 'object')
      for (const [k, v] of Object.entries(node))
        visit(node as Record<string, unknown>, k, v, `${where}.${k}`);
  };
  const visit = (
    parent: Record<string, unknown> | unknown[],
    key: string | number,
    v: unknown,
    where: string,
  ) => {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
      spots.push({ parent, key, where });
    else walk(v, where);
  };
  walk(copy, 'proof');
  // Fields that no check covers by design: the certificate's own echo of the view (checked only as
  // not below the header's), and the key, which is checked against the caller's.
  const covered = spots.filter((s) => !/^proof\.cert\.view$|^proof\.key$/.test(s.where));
  if (covered.length === 0) return undefined;
  const spot = covered[pick % covered.length]!;
  const holder = spot.parent as Record<string | number, unknown>;
  const v = holder[spot.key];
  if (typeof v === 'number') holder[spot.key] = v + 1;
  else if (typeof v === 'boolean') holder[spot.key] = !v;
  else {
    const text = v as string;
    const at = pick % Math.max(1, text.length);
    const c = text[at] ?? 'a';
    const swapped = /[0-9a-f]/.test(c)
      ? ((Number.parseInt(c, 16) ^ 1).toString(16) as string)
      : c === 'x'
        ? 'y'
        : 'x';
    holder[spot.key] = text.length === 0 ? 'x' : text.slice(0, at) + swapped + text.slice(at + 1);
  }
  return { proof: copy as unknown as StateValueProof, where: spot.where };
}

t.test('a flipped bit anywhere fails', async (t) => {
  let tried = 0;
  fc.assert(
    fc.property(fc.constantFrom(...keys), fc.nat(), (key, pick) => {
      const bad = flip(proofOf(key), pick);
      if (!bad) return true;
      tried++;
      const r = verifyStateValueProof(chain.genesis, bad.proof, key, verifyFast);
      if (r.ok) throw new Error(`${key}: a change at ${bad.where} still verifies`);
      return true;
    }),
    { numRuns: 400 },
  );
  t.ok(tried > 300, `${tried} tampered proofs refused`);
});

t.test('a header of another height fails', async (t) => {
  for (const [i, b] of blocks.slice(0, -1).entries()) {
    const p = { ...proofOf(keys[0]!), header: b.certified.block.header, cert: b.certified.cert };
    t.not(b.certified.block.header.stateRoot, last.block.header.stateRoot, `block ${i + 1} has another root`);
    const r = verifyStateValueProof(chain.genesis, p, keys[0], verifyFast);
    t.equal(r.ok, false, `the latest proof against block ${i + 1}'s header: ${r.ok ? 'verified' : r.code}`);
  }
});

t.test("another chain's header, a certificate below quorum, another key, a running-hash chain", async (t) => {
  const other = makeTestChain({ chain: 'other-chain', subjects: 4 });
  const otherLedger = new TestLedger(other, { verifier: verifyFast });
  const otherBlock = otherLedger.commit([
    otherLedger.openRequest(other.institutions[0]!, other.subjects[0]!),
  ]);
  const key = keys[0]!;
  const foreign = {
    ...proofOf(key),
    header: otherBlock.certified.block.header,
    cert: otherBlock.certified.cert,
  };
  t.match(verifyStateValueProof(chain.genesis, foreign, key, verifyFast), {
    ok: false,
    code: 'PROOF_WRONG_CHAIN',
  });

  const few = chain.certify(last.block, { voters: chain.validators.slice(0, 2) });
  t.match(verifyStateValueProof(chain.genesis, { ...proofOf(key), cert: few.cert }, key, verifyFast), {
    ok: false,
    code: 'PROOF_CERT_NO_QUORUM',
  });
  const quorum = chain.certify(last.block, { voters: chain.validators.slice(0, 3) });
  t.ok(
    verifyStateValueProof(chain.genesis, { ...proofOf(key), cert: quorum.cert }, key, verifyFast).ok,
    '2f+1 suffice',
  );

  t.match(verifyStateValueProof(chain.genesis, proofOf(keys[1]!), key, verifyFast), {
    ok: false,
    code: 'PROOF_WRONG_KEY',
  });
  // Another entry's value under this key's name.
  const swapped = { ...proofOf(key), value: ledger.state.get(keys[1]!) as StateValue };
  t.equal(verifyStateValueProof(chain.genesis, swapped, key, verifyFast).ok, false, "another entry's value");
  // A value claimed for an absent key, and absence claimed for a present one.
  const absent = stateKey.institution('nobody-bank');
  t.equal(
    verifyStateValueProof(
      chain.genesis,
      { ...proofOf(absent), value: ledger.state.get(key) as StateValue },
      absent,
      verifyFast,
    ).ok,
    false,
    'a value for an absent key',
  );
  t.equal(
    verifyStateValueProof(chain.genesis, { ...proofOf(key), value: null }, key, verifyFast).ok,
    false,
    'absence of a present key',
  );

  const legacy = makeTestChain({ params: { stateRoot: 'running-hash' } });
  t.match(verifyStateValueProof(legacy.genesis, proofOf(key), key, verifyFast), {
    ok: false,
    code: 'PROOF_STATE_UNSUPPORTED',
  });
  t.match(verifyStateValueProof(chain.genesis, { key } as unknown as StateValueProof, key, verifyFast), {
    ok: false,
    code: 'PROOF_MALFORMED',
  });
});
