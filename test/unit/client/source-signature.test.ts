/**
 * The bank client's source check on a real test chain whose genesis registers signing sources.
 * A hostile extractor holds a genuine extractor key: it seals records, has them committed with
 * valid proofs and wraps their keys to the bank — everything checks out on chain — but the source
 * statement inside is forged, from a source not registered for the type, missing, or not the one
 * committed. The bank client refuses each with its code; a genuinely signed record, and an
 * unsigned record of a type no source is registered for, open.
 */
import t from 'tap';
import { documentOf, openBundle, verifyBundle } from '../../../src/client/bundle.js';
import { toBase64url, utf8ToBytes } from '../../../src/common/bytes.js';
import { sha256Hex, unwrapKey, wrapKey } from '../../../src/common/crypto.js';
import { type AnyTx, buildTxProof, type DataType, decodeTx, txHash } from '../../../src/ledger/index.js';
import type { SealedBundle } from '../../../src/records/bundle.js';
import { type RecordPlaintext, recordContext, sealRecord } from '../../../src/records/record-crypto.js';
import {
  type SignedSourceStatement,
  signSourceStatement,
  sourceStatementCommitment,
} from '../../../src/records/source-statement.js';
import { deriveKeys, makeTestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

const taxOffice = deriveKeys('source-test', 'tax-office');
const landRegistry = deriveKeys('source-test', 'land-registry');
const SOURCES = [
  { id: 'tax-office', key: taxOffice.pub, types: ['tax' as DataType] },
  { id: 'land-registry', key: landRegistry.pub, types: ['property' as DataType] },
];
const PERIOD = { from: '2024-01-01', to: '2024-12-31' };

/** How the (hostile) extractor makes the tax record's statement from the answer's digest. */
type StatementMaker = (args: {
  subject: string;
  digest: string;
  extractorSecret: Uint8Array;
}) => SignedSourceStatement | undefined;

/** Commitment override for the record.put (default: the statement's own). */
type CommitmentMaker = (statement: SignedSourceStatement | undefined) => string | undefined;

function bundleWith(makeStatement: StatementMaker, commit?: CommitmentMaker) {
  const chain = makeTestChain({ sources: SOURCES });
  const ledger = new TestLedger(chain);
  const bank = chain.institutions[0]!;
  const alice = chain.subjects[0]!;
  const open = ledger.openRequest(bank, alice, {
    types: ['tax', 'social-insurance'],
    format: 'json',
    fields: {},
    dataFrom: PERIOD.from,
    dataTo: PERIOD.to,
  });
  ledger.commit([open]);
  const request = txHash(open);
  const sealed = (['tax', 'social-insurance'] as const).map((type) => {
    const extractor = chain.extractorFor(type);
    const context = recordContext(chain.genesis.chain, request, type);
    const answer = utf8ToBytes(JSON.stringify({ subject: alice.id, type, amount: 4521 }));
    const digest = sha256Hex(answer);
    const statement =
      type === 'tax'
        ? makeStatement({ subject: alice.id, digest, extractorSecret: extractor.signing.secretKey })
        : undefined;
    const record: RecordPlaintext = {
      type,
      subject: alice.id,
      fields: { amount: 4521 },
      source: 'https://source.example/v1',
      fetchedAt: 1,
      sourceDigest: digest,
      ...(statement ? { statement, content: toBase64url(answer) } : {}),
    };
    const s = sealRecord(record, alice.encryption.publicKey, context);
    const commitment = commit ? commit(statement) : s.sourceStatement;
    const put = ledger.putRecord(extractor, request, type, {
      digest: s.digest,
      size: s.size,
      key: s.key,
      sourceCommitment: s.sourceCommitment,
      ...(commitment === undefined ? {} : { sourceStatement: commitment }),
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
  const grant = ledger.grant(alice, request, { keys });
  ledger.commit([grant]);
  const usage = ledger.usage(bank, txHash(grant));
  ledger.commit([usage]);
  const proofOf = (tx: AnyTx) => {
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
    grant: txHash(grant),
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
  // The bundle itself is sound: every proof, digest and key checks out against genesis.
  const verified = verifyBundle(bundle, chain.genesis, grantee);
  return { verified, open: () => openBundle(verified, bank.encryption.secretKey) };
}

const statementOf = (subject: string, digest: string, source = 'tax-office') => ({
  v: 1 as const,
  source,
  subject,
  type: 'tax' as const,
  ...PERIOD,
  digest,
  time: 1_700_000_000_000,
});

t.test('a record signed by its registered source opens; an unregistered type opens unsigned', async (t) => {
  const { open, verified } = bundleWith(({ subject, digest }) =>
    signSourceStatement(statementOf(subject, digest), taxOffice.signing.secretKey),
  );
  const records = open();
  t.equal(records.length, 2);
  const provenance = (
    JSON.parse(documentOf(verified, records).body) as { provenance: { signedBy?: string }[] }
  ).provenance;
  t.same(
    provenance.map((p) => p.signedBy),
    ['tax-office', undefined],
    'the document names the source that signed',
  );
  t.equal(records[0]!.statement?.statement.source, 'tax-office');
  t.equal(records[1]!.statement, undefined, 'social-insurance: no source registered, taken unsigned');
});

t.test('a forged source signature is refused', async (t) => {
  const { open } = bundleWith(({ subject, digest, extractorSecret }) =>
    // The extractor names the registered source but can only sign with its own key.
    signSourceStatement(statementOf(subject, digest), extractorSecret),
  );
  t.throws(open, { code: 'CLIENT_SOURCE_FORGED' });

  const { open: tampered } = bundleWith(({ subject, digest }) => {
    const genuine = signSourceStatement(statementOf(subject, 'ab'.repeat(32)), taxOffice.signing.secretKey);
    // A genuine signature over other content, its digest rewritten to the sealed answer's.
    return { ...genuine, statement: { ...genuine.statement, digest } };
  });
  t.throws(tampered, { code: 'CLIENT_SOURCE_FORGED' }, 'a genuine signature moved to other content');
});

t.test('a record from a source not registered for its type is refused', async (t) => {
  const { open } = bundleWith(({ subject, digest }) =>
    // Genuinely signed by the land registry, which genesis registers for property only.
    signSourceStatement(statementOf(subject, digest, 'land-registry'), landRegistry.signing.secretKey),
  );
  t.throws(open, { code: 'CLIENT_SOURCE_NOT_REGISTERED' });

  const { open: rogue } = bundleWith(({ subject, digest, extractorSecret }) =>
    signSourceStatement(statementOf(subject, digest, 'rogue-source'), extractorSecret),
  );
  t.throws(rogue, { code: 'CLIENT_SOURCE_NOT_REGISTERED' }, 'a source genesis does not know');
});

t.test('an unsigned record of a type with a registered source is refused', async (t) => {
  const { open } = bundleWith(() => undefined);
  t.throws(open, { code: 'CLIENT_SOURCE_UNSIGNED' });
});

t.test('a statement must be the committed one and about this record', async (t) => {
  const genuine: StatementMaker = ({ subject, digest }) =>
    signSourceStatement(statementOf(subject, digest), taxOffice.signing.secretKey);
  t.throws(
    bundleWith(genuine, () => undefined).open,
    { code: 'CLIENT_RECORD_MISMATCH' },
    'record.put carries no commitment',
  );
  t.throws(
    bundleWith(genuine, () => 'ee'.repeat(32)).open,
    { code: 'CLIENT_RECORD_MISMATCH' },
    'record.put commits to another statement',
  );
  t.throws(
    bundleWith(
      () => undefined,
      () =>
        sourceStatementCommitment(
          genuine({ subject: 'x', digest: 'ab'.repeat(32), extractorSecret: new Uint8Array(32) })!,
        ),
    ).open,
    { code: 'CLIENT_RECORD_MISMATCH' },
    'record.put commits to a statement the record lacks',
  );
  t.throws(
    bundleWith(({ digest }) =>
      signSourceStatement(statementOf('subject-1', digest), taxOffice.signing.secretKey),
    ).open,
    { code: 'CLIENT_RECORD_MISMATCH' },
    'a genuine statement about another subject',
  );
  t.throws(
    bundleWith(({ subject }) =>
      signSourceStatement(statementOf(subject, 'ab'.repeat(32)), taxOffice.signing.secretKey),
    ).open,
    { code: 'CLIENT_RECORD_MISMATCH' },
    'a genuine statement about other content than the sealed answer',
  );
});

t.test('the ledger takes only a well-formed statement commitment', async (t) => {
  const chain = makeTestChain({ sources: SOURCES });
  const ledger = new TestLedger(chain);
  const open = ledger.openRequest(chain.institutions[0]!, chain.subjects[0]!, { types: ['tax'] });
  ledger.commit([open]);
  const put = (sourceStatement: string) =>
    JSON.parse(
      JSON.stringify(ledger.putRecord(chain.extractorFor('tax'), txHash(open), 'tax', { sourceStatement })),
    );
  t.equal(decodeTx(put('ab'.repeat(32))).kind, 'record.put', 'a 32-byte hex commitment');
  for (const bad of ['AB'.repeat(32), 'ab'.repeat(31), 'not hex'])
    t.throws(() => decodeTx(put(bad)), { code: 'LEDGER_TX_MALFORMED' }, `refused: ${bad.slice(0, 8)}…`);
});
