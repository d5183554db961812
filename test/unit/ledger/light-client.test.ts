/**
 * The light client from genesis: certified headers verify against the validator set in force at
 * their height (genesis's, until a change is adopted from a height on), two certified blocks at
 * one height are a fork, state proofs verify for the expected key and presence, tx proofs for the
 * expected hash, `provenEntry` throws the caller's code naming the node, and `requestViewFaults`
 * finds what a node's view changes of a proven request and grant.
 */
import t from 'tap';
import { verifyFast } from '../../../src/common/crypto-node.js';
import { isDatagrantError } from '../../../src/common/errors.js';
import {
  buildTxProof,
  type GrantState,
  LightClient,
  type RequestFacts,
  type RequestState,
  requestViewFaults,
  type StateValue,
  type StateValueProof,
  stateKey,
} from '../../../src/ledger/index.js';
import { makeTestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

const chain = makeTestChain({ subjects: 2 });
const ledger = new TestLedger(chain, { verifier: verifyFast });
const opened = ledger.commit([ledger.openRequest(chain.institutions[0]!, chain.subjects[0]!)]);
const last = ledger.commit([ledger.openRequest(chain.institutions[1]!, chain.subjects[1]!)]).certified;
const requestId = opened.effects.outcomes[0]!.hash;

/** A proof of `key` at the latest header (a copy: tests forge it). */
function proofOf(key: string): StateValueProof {
  return structuredClone({
    key,
    value: (ledger.state.get(key) ?? null) as StateValue | null,
    proof: ledger.state.prove(key)!.proof,
    header: last.block.header,
    cert: last.cert,
  });
}

const light = () => new LightClient(chain.genesis, { verifier: verifyFast });

t.test('headers: the set in force at their height, forks refused', async (t) => {
  const lc = light();
  t.match(lc.verifyHeader(last.block.header, last.cert), { ok: true, height: last.block.header.height });
  t.equal(lc.head?.height, last.block.header.height, 'the head follows');
  const forked = { ...last.block, header: { ...last.block.header, time: last.block.header.time + 1 } };
  const other = chain.certify(forked);
  t.match(lc.verifyHeader(other.block.header, other.cert), { ok: false, code: 'LIGHT_FORK' });
  t.match(light().verifyHeader(other.block.header, other.cert), { ok: true }, 'alone it is a valid header');

  // Following validator-set changes: test/unit/ledger/validator-set.test.ts.
});

t.test('state and tx proofs for what the caller expects', async (t) => {
  const lc = light();
  const inst = stateKey.institution(chain.institutions[0]!.id);
  const none = stateKey.institution('nobody-bank');
  t.match(lc.verifyState(proofOf(inst), inst, 'present'), { ok: true });
  t.match(lc.verifyState(proofOf(none), none, 'absent'), { ok: true, value: null });
  t.match(lc.verifyState(proofOf(none), none, 'present'), { ok: false, code: 'PROOF_ENTRY_ABSENT' });
  t.match(lc.verifyState(proofOf(inst), inst, 'absent'), { ok: false, code: 'PROOF_ENTRY_PRESENT' });
  t.match(lc.verifyState(proofOf(inst), none), { ok: false, code: 'PROOF_WRONG_KEY' });
  const forged = proofOf(inst);
  (forged.value as { encKey: string }).encKey = 'ab'.repeat(32);
  t.match(lc.verifyState(forged, inst), { ok: false, code: 'PROOF_STATE_INVALID' });
  const tx = buildTxProof(opened.certified, 0);
  t.match(lc.verifyTx(tx, requestId), { ok: true, hash: requestId });
  t.match(lc.verifyTx(tx, '0'.repeat(64)), { ok: false, code: 'PROOF_HASH_MISMATCH' });
});

t.test('provenEntry: the value, or the caller’s code naming the node', async (t) => {
  const lc = light();
  const inst = stateKey.institution(chain.institutions[0]!.id);
  const blame = { code: 'TEST_NODE_LIED', node: 'http://liar.example' };
  const honest = await lc.provenEntry(async () => proofOf(inst), '/v1/state/institutions/x', inst, blame);
  t.same(honest?.value, ledger.state.get(inst));
  const forged = proofOf(inst);
  (forged.value as { name: string }).name = 'Not A Bank';
  const err = await lc
    .provenEntry(async () => forged, '/v1/state/institutions/x', inst, blame)
    .catch((e) => e);
  t.ok(isDatagrantError(err, 'TEST_NODE_LIED'), 'the caller’s code');
  t.match((err as Error).message, /the node at http:\/\/liar\.example answered \/v1\/state\/institutions\/x/);
  t.match((err as { meta: object }).meta, { node: 'http://liar.example', proof: 'PROOF_STATE_INVALID' });
  const named = await lc
    .provenEntry(async () => forged, '/p', inst, { ...blame, name: 'validator node0' })
    .catch((e: Error) => e.message);
  t.match(named, /^validator node0 \(http:\/\/liar\.example\) answered/);
  const plain = new LightClient(
    { ...chain.genesis, params: { ...chain.genesis.params, stateRoot: 'running-hash' } },
    { verifier: verifyFast },
  );
  t.equal(plain.provable, false);
  t.equal(await plain.provenEntry(async () => forged, '/p', inst, blame), undefined, 'nothing to prove');
});

t.test('requestViewFaults: what a view changes of the proven request and grant', async (t) => {
  const request = ledger.state.get(stateKey.request(requestId)) as unknown as RequestState;
  const now = last.block.header.time;
  const view: RequestFacts = {
    id: request.id,
    status: 'waiting-for-data',
    institution: request.institution,
    subject: request.subject,
    types: request.types,
    purpose: request.purpose,
    format: request.format,
    fields: request.fields,
    consentBy: request.consentBy,
    records: [],
  };
  const at = { time: now, now };
  t.same(requestViewFaults(view, request, undefined, at), [], 'the honest view');
  t.same(requestViewFaults({ ...view, purpose: 'a small loan' }, request, undefined, at), [
    { fact: 'request', what: 'its purpose' },
  ]);
  t.same(
    requestViewFaults({ ...view, status: 'granted' }, request, undefined, at).map((f) => f.fact),
    ['request'],
  );
  t.same(requestViewFaults(view, null, undefined, at).length, 1, 'a request the chain does not hold');
  // A grant, revoked on the chain, shown live.
  const grant = {
    id: 'g'.repeat(64),
    request: request.id,
    subject: request.subject,
    institution: request.institution,
    granteeKey: 'ab'.repeat(32),
    types: request.types,
    purpose: request.purpose,
    expires: now + 3_600_000,
    uses: 2,
    used: 0,
    retainDays: 1,
    keys: [],
    paused: false,
    revoked: true,
    grantedAt: now,
    height: 3,
  } satisfies GrantState;
  const granted = { ...request, decision: 'granted' as const, grant: grant.id };
  const { keys: _keys, ...summary } = grant;
  const shownRevoked = { ...view, status: 'revoked', grant: summary };
  t.same(requestViewFaults(shownRevoked, granted, grant, at), [], 'revoked, shown revoked');
  const faults = requestViewFaults(
    { ...view, status: 'granted', grant: { ...summary, revoked: false } },
    granted,
    grant,
    at,
  );
  t.same(
    faults.map((f) => f.fact),
    ['grant', 'grant'],
    `revoked, shown live: ${faults.map((f) => f.what).join('; ')}`,
  );
  t.match(faults[0]!.what, /revoked/);
});
