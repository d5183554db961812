/**
 * The bank client's bundle check on a real test chain (real signatures, certificates and sealed
 * records): a genuine bundle verifies, opens and assembles; each way a node could lie — another
 * grantee, a grant to another key, a swapped ciphertext or key, a record left out or added, a
 * forged or uncertified proof, another chain — is refused with its own code.
 */
import t from 'tap';
import { documentOf, openBundle, verifyBundle as verify } from '../../../src/client/bundle.js';
import { toBase64url } from '../../../src/common/bytes.js';
import { unwrapKey, wrapKey } from '../../../src/common/crypto.js';
import { type AnyTx, buildTxProof, bundleDigest, type TxProof, txHash } from '../../../src/ledger/index.js';
import type { SealedBundle } from '../../../src/records/bundle.js';
import { recordContext, sealRecord } from '../../../src/records/record-crypto.js';
import { makeTestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

function setup() {
  const chain = makeTestChain();
  const ledger = new TestLedger(chain);
  const bank = chain.institutions[0]!;
  const alice = chain.subjects[0]!;
  const open = ledger.openRequest(bank, alice, {
    types: ['tax', 'social-insurance'],
    format: 'csv',
    fields: {},
  });
  ledger.commit([open]);
  const request = txHash(open);
  const sealed = (['tax', 'social-insurance'] as const).map((type) => {
    const context = recordContext(chain.genesis.chain, request, type);
    const s = sealRecord(
      {
        type,
        subject: alice.id,
        fields: { amount: type === 'tax' ? 4521 : 812 },
        source: 'src',
        fetchedAt: 1,
        sourceDigest: 'ab'.repeat(32),
      },
      alice.encryption.publicKey,
      context,
    );
    const put = ledger.putRecord(chain.extractorFor(type), request, type, {
      digest: s.digest,
      size: s.size,
      key: s.key,
      sourceCommitment: s.sourceCommitment,
    });
    return { type, context, sealed: s, put };
  });
  ledger.commit(sealed.map((s) => s.put));
  const keys = sealed.map((s) => ({
    record: s.sealed.digest,
    key: wrapKey(
      unwrapKey(s.sealed.key, alice.encryption.secretKey, s.context),
      bank.encryption.publicKey,
      s.context,
    ),
  }));
  const grant = ledger.grant(alice, request, { keys, uses: 2 });
  ledger.commit([grant]);
  const grantId = txHash(grant);
  const usage = ledger.usage(bank, grantId);
  ledger.commit([usage]);
  const proofOf = (tx: AnyTx): TxProof => {
    const hash = txHash(tx);
    for (const b of ledger.blocks) {
      const i = b.certified.block.txs.findIndex((x) => txHash(x) === hash);
      if (i >= 0) return buildTxProof(b.certified, i);
    }
    throw new Error('not committed');
  };
  const bundle: SealedBundle = {
    v: 1,
    chain: chain.genesis.chain,
    request,
    grant: grantId,
    usage: txHash(usage),
    digest: usage.body.bundle,
    proofs: { request: proofOf(open), grant: proofOf(grant), usage: proofOf(usage) },
    records: sealed.map((s, i) => ({
      type: s.type,
      digest: s.sealed.digest,
      ciphertext: toBase64url(s.sealed.ciphertext),
      key: keys[i]!.key,
      proof: proofOf(s.put),
    })),
  };
  const grantee = { institution: bank.id, signKey: bank.pub, encKey: bank.encPub };
  return { chain, ledger, bank, alice, bundle, grantee, proofOf };
}

t.test('a genuine bundle verifies, opens with the bank key and assembles', async (t) => {
  const { chain, bank, bundle, grantee } = setup();
  const verified = verify(structuredClone(bundle), chain.genesis, grantee);
  t.equal(verified.records.length, 2);
  t.equal(verified.digest, bundle.digest);
  const records = openBundle(verified, bank.encryption.secretKey);
  t.same(
    records.map((r) => r.fields.amount),
    [4521, 812],
  );
  const doc = documentOf(verified, records, { now: 5 });
  t.match(doc.body, /tax\.amount,social-insurance\.amount/, 'CSV as the request asked');
  const lying = structuredClone(verified);
  lying.records[0]!.tx = {
    ...lying.records[0]!.tx,
    body: { ...lying.records[0]!.tx.body, sourceCommitment: 'ee'.repeat(32) },
  };
  t.throws(
    () => openBundle(lying, bank.encryption.secretKey),
    { code: 'CLIENT_RECORD_MISMATCH' },
    'a record whose sealed source digest is not the one its record.put commits to',
  );
  t.throws(
    () => openBundle(verified, chain.institutions[1]!.encryption.secretKey),
    { code: 'CLIENT_DECRYPT_FAILED' },
    "another bank's key does not open it",
  );
});

t.test('every lie a node could tell is refused with a code', async (t) => {
  const { chain, ledger, bank, alice, bundle, grantee } = setup();
  const otherBank = chain.institutions[1]!;
  const cases: [string, (b: SealedBundle) => unknown, string, object?][] = [
    ['not a bundle', () => ({ v: 2 }), 'CLIENT_BUNDLE_MALFORMED'],
    ['another chain', (b) => ({ ...b, chain: 'other-chain' }), 'CLIENT_WRONG_CHAIN'],
    [
      'a ciphertext swapped for the other record',
      (b) => {
        b.records[0]!.ciphertext = b.records[1]!.ciphertext;
        return b;
      },
      'CLIENT_DIGEST_MISMATCH',
    ],
    [
      'a ciphertext with one byte changed',
      (b) => {
        const c = b.records[0]!.ciphertext;
        b.records[0]!.ciphertext = c.slice(0, 20) + (c[20] === 'A' ? 'B' : 'A') + c.slice(21);
        return b;
      },
      'CLIENT_DIGEST_MISMATCH',
    ],
    [
      'a wrapped key that is not the one in the grant',
      (b) => {
        b.records[0]!.key = b.records[1]!.key;
        return b;
      },
      'CLIENT_BUNDLE_MISMATCH',
    ],
    [
      'a record left out',
      (b) => {
        b.records.pop();
        return b;
      },
      'CLIENT_BUNDLE_INCOMPLETE',
    ],
    [
      'a record twice',
      (b) => {
        b.records[1] = structuredClone(b.records[0]!);
        return b;
      },
      'CLIENT_BUNDLE_MISMATCH',
    ],
    [
      'a proof with a flipped tx signature',
      (b) => {
        const tx = b.proofs.grant.tx as { sig: string };
        tx.sig = (tx.sig[0] === '0' ? '1' : '0') + tx.sig.slice(1);
        return b;
      },
      'CLIENT_PROOF_INVALID',
    ],
    [
      'a certificate without a quorum',
      (b) => {
        b.proofs.usage.cert.votes = b.proofs.usage.cert.votes.slice(0, 2);
        return b;
      },
      'CLIENT_PROOF_INVALID',
    ],
    [
      'the request proof swapped for another transaction',
      (b) => {
        b.proofs.request = b.proofs.grant;
        return b;
      },
      'CLIENT_BUNDLE_MISMATCH',
    ],
    [
      'a grant id that is not the proven grant',
      (b) => ({ ...b, grant: 'ab'.repeat(32) }),
      'CLIENT_BUNDLE_MISMATCH',
    ],
  ];
  for (const [name, mutate, code] of cases) {
    t.throws(() => verify(mutate(structuredClone(bundle)), chain.genesis, grantee), { code }, name);
  }
  t.throws(
    () => verify(structuredClone(bundle), chain.genesis, { ...grantee, institution: otherBank.id }),
    { code: 'CLIENT_BUNDLE_MISMATCH' },
    'checked as another institution: not its grant',
  );
  t.throws(
    () => verify(structuredClone(bundle), chain.genesis, { ...grantee, signKey: otherBank.pub }),
    { code: 'CLIENT_BUNDLE_MISMATCH' },
    'a request or usage not signed by this institution',
  );
  t.throws(
    () => verify(structuredClone(bundle), chain.genesis, grantee, { usage: 'cd'.repeat(32) }),
    { code: 'CLIENT_BUNDLE_MISMATCH' },
    'released against another usage than the one recorded',
  );
  const otherGenesis = makeTestChain({ seed: 'another chain entirely' }).genesis;
  t.throws(
    () => verify(structuredClone(bundle), { ...otherGenesis, chain: chain.genesis.chain }, grantee),
    { code: 'CLIENT_PROOF_INVALID' },
    'certified by validators that are not this genesis',
  );
  // A grant to the right institution but another key cannot commit; a node inventing one fails the proof.
  const second = ledger.openRequest(bank, alice, { types: ['tax'] });
  ledger.commit([second]);
  t.equal(
    ledger.try(ledger.grant(alice, txHash(second), { granteeKey: otherBank.encPub })).ok,
    false,
    'the ledger never commits a grant wrapped to another key',
  );
  t.equal(
    bundleDigest(
      chain.genesis.chain,
      bundle.grant,
      bundle.records.map((r) => r.digest),
    ),
    bundle.digest,
  );
});
