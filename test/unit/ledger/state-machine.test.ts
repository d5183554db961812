import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { bytesToHex, utf8ToBytes } from '../../../src/common/bytes.js';
import {
  openPayload,
  randomBytes,
  sealPayload,
  sha256Hex,
  sign,
  unwrapKey,
  wrapKey,
} from '../../../src/common/crypto.js';
import { verifyFast } from '../../../src/common/crypto-node.js';
import {
  type AnyTx,
  applyTx,
  bundleDigest,
  decodeTx,
  MAX_RECEIPTS,
  type RecordState,
  requestStatus,
  StateOverlay,
  type StorageReceipt,
  stateKey,
  type TxBody,
  txHash,
  txSigningBytes,
} from '../../../src/ledger/index.js';
import {
  fakeWrappedKey,
  hexOf,
  makeTestChain,
  type TestChainOptions,
  type TestKeys,
} from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

const DAY = 24 * 3600 * 1000;

/** Codes exercised by `expectReject`; checked against the source at the end. */
const covered = new Set<string>();

/**
 * Applies `tx` alone on an overlay of the committed state and checks it is refused with exactly
 * `code` and that nothing was written.
 */
function expectReject(
  t: Test,
  ledger: TestLedger,
  tx: AnyTx,
  code: string,
  name: string,
  time = ledger.now,
): void {
  const overlay = new StateOverlay(ledger.state);
  const outcome = applyTx(overlay, tx, ledger.ctx(time), ledger.chain.config);
  t.match(outcome, { ok: false, code }, `${name}: refused with ${code}`);
  t.equal(overlay.writes.size, 0, `${name}: nothing written`);
  if (!outcome.ok && outcome.code === code) covered.add(code);
}

/** Checks `tx` would apply in the next block (at `time`), without committing it. */
function expectAccept(t: Test, ledger: TestLedger, tx: AnyTx, name: string, time = ledger.now): void {
  const outcome = ledger.try(tx, time);
  t.match(outcome, { ok: true }, `${name}: accepted`);
}

function setup(options: TestChainOptions = {}) {
  const chain = makeTestChain(options);
  const ledger = new TestLedger(chain);
  return {
    chain,
    ledger,
    bank: chain.institutions[0]!,
    otherBank: chain.institutions[1]!,
    alice: chain.subjects[0]!,
    bob: chain.subjects[1]!,
    /** node-0: platform and extractor of every type. */
    allTypes: chain.validator(['platform', 'extractor']),
    /** node-1: extractor of social-insurance and tax only. */
    siTax: chain.validator(['extractor']),
    platformOnly: chain.validator(['platform']),
    noRole: chain.validator([]),
  };
}

t.test('envelope rules: chain, expiry, TTL, replay, signature', async (t) => {
  const { chain, ledger, bank, alice } = setup();
  const open = (opts = {}) => ledger.openRequest(bank, alice, {}, opts);
  expectAccept(t, ledger, open(), 'control');
  expectReject(t, ledger, open({ chain: 'other-chain' }), 'LEDGER_WRONG_CHAIN', 'signed for another chain');
  expectReject(t, ledger, open({ expires: ledger.now }), 'LEDGER_TX_EXPIRED', 'expires at block time');
  expectReject(t, ledger, open({ expires: ledger.now - 1 }), 'LEDGER_TX_EXPIRED', 'expired before block');
  expectAccept(
    t,
    ledger,
    open({ expires: ledger.now + chain.genesis.params.maxTxTtlMs }),
    'expiry at the TTL limit',
  );
  expectReject(
    t,
    ledger,
    open({ expires: ledger.now + chain.genesis.params.maxTxTtlMs + 1 }),
    'LEDGER_TX_TTL_TOO_LONG',
    'expiry beyond the TTL limit',
  );
  const tx = open();
  const forged = { ...tx, sig: bytesToHex(sign(txSigningBytes(tx), chain.outsider.signing.secretKey)) };
  expectReject(t, ledger, forged, 'LEDGER_BAD_SIGNATURE', 'signed by another key');
  const flipped = { ...tx, body: { ...tx.body, purpose: 'something else' } };
  expectReject(t, ledger, flipped, 'LEDGER_BAD_SIGNATURE', 'body altered after signing');
  ledger.commit([tx]);
  expectReject(t, ledger, tx, 'LEDGER_TX_REPLAYED', 'same tx again');
  const resigned = { ...tx, sig: bytesToHex(sign(txSigningBytes(tx), bank.signing.secretKey)) };
  expectReject(t, ledger, resigned, 'LEDGER_TX_REPLAYED', 'same tx, signature recomputed');
  // A block-level check: the same tx twice in one block makes the block invalid.
  const twice = ledger.openRequest(bank, alice);
  t.throws(
    () => ledger.commit([twice, twice]),
    { index: 1, code: 'LEDGER_TX_REPLAYED' },
    'duplicate within a block',
  );
});

t.test('subject.register rules', async (t) => {
  const { chain, ledger } = setup();
  const dave = { ...chain.keys('dave'), id: 'subject-dave' };
  expectAccept(t, ledger, ledger.register(dave), 'control');
  expectReject(
    t,
    ledger,
    ledger.register(dave, { registrar: chain.outsider.pub, attestation: chain.attest(dave, chain.outsider) }),
    'LEDGER_UNKNOWN_REGISTRAR',
    'attested by a key not in genesis',
  );
  const cases: [string, string][] = [
    ['attestation for another subject id', chain.attest({ ...dave, id: 'subject-eve' })],
    ['attestation for another encryption key', chain.attest({ ...dave, encPub: chain.outsider.encPub })],
    ['attestation for another signing key', chain.attest({ ...dave, pub: chain.outsider.pub })],
    ['attestation signed by a non-registrar', chain.attest(dave, chain.outsider)],
    ['garbage attestation', 'ab'.repeat(64)],
  ];
  for (const [name, attestation] of cases) {
    expectReject(t, ledger, ledger.register(dave, { attestation }), 'LEDGER_BAD_ATTESTATION', name);
  }
  expectReject(
    t,
    ledger,
    ledger.register(dave, { encKey: chain.outsider.encPub }),
    'LEDGER_BAD_ATTESTATION',
    'encKey differs from the attested one',
  );
  // subject-0 exists; a different key with a valid attestation for that id.
  const impostor = { ...chain.keys('impostor'), id: 'subject-0' };
  expectReject(t, ledger, ledger.register(impostor), 'LEDGER_SUBJECT_EXISTS', 'id already registered');
  // subject-0's key under a new id, validly attested.
  const again = { ...chain.subjects[0]!, id: 'subject-zero-again' };
  expectReject(t, ledger, ledger.register(again), 'LEDGER_KEY_IN_USE', 'key already bound to a subject');
});

t.test('request.open rules', async (t) => {
  const { chain, ledger, bank, otherBank, alice } = setup();
  expectAccept(t, ledger, ledger.openRequest(bank, alice), 'control');
  expectReject(t, ledger, ledger.openRequest(chain.outsider, alice), 'LEDGER_NOT_INSTITUTION', 'unknown key');
  expectReject(t, ledger, ledger.openRequest(alice, 'subject-1'), 'LEDGER_NOT_INSTITUTION', 'a subject');
  expectReject(t, ledger, ledger.openRequest(chain.admin, alice), 'LEDGER_NOT_INSTITUTION', 'the admin');
  expectReject(
    t,
    ledger,
    ledger.openRequest(bank, 'subject-99'),
    'LEDGER_UNKNOWN_SUBJECT',
    'unregistered subject',
  );
  const max = chain.genesis.params.maxConsentMs;
  expectReject(
    t,
    ledger,
    ledger.openRequest(bank, alice, { consentBy: ledger.now }),
    'LEDGER_BAD_DEADLINE',
    'deadline now',
  );
  expectReject(
    t,
    ledger,
    ledger.openRequest(bank, alice, { consentBy: ledger.now - 1 }),
    'LEDGER_BAD_DEADLINE',
    'deadline past',
  );
  expectAccept(
    t,
    ledger,
    ledger.openRequest(bank, alice, { consentBy: ledger.now + max }),
    'deadline at the limit',
  );
  expectReject(
    t,
    ledger,
    ledger.openRequest(bank, alice, { consentBy: ledger.now + max + 1 }),
    'LEDGER_BAD_DEADLINE',
    'deadline beyond the limit',
  );
  expectReject(
    t,
    ledger,
    ledger.openRequest(bank, alice, { dataFrom: '2021-01-01', dataTo: '2020-12-31' }),
    'LEDGER_BAD_RANGE',
    'dataFrom after dataTo',
  );
  expectAccept(
    t,
    ledger,
    ledger.openRequest(bank, alice, { dataFrom: '2021-01-01', dataTo: '2021-01-01' }),
    'one-day range',
  );
  expectReject(
    t,
    ledger,
    ledger.openRequest(bank, alice, { types: ['tax'], fields: { a: 'tax.paid', b: 'property.address' } }),
    'LEDGER_FIELD_OUT_OF_SCOPE',
    'field reads a type not requested',
  );
  ledger.commit([ledger.retireInstitution(chain.admin, otherBank.id)]);
  expectReject(
    t,
    ledger,
    ledger.openRequest(otherBank, alice),
    'LEDGER_NOT_INSTITUTION',
    'retired institution',
  );
});

t.test('record.put and record.fail rules', async (t) => {
  const { chain, ledger, bank, alice, bob, allTypes, siTax, platformOnly, noRole } = setup();
  const { request } = ledger.requestWithRecords(bank, alice, ['social-insurance']);
  const open = ledger.openRequest(bank, alice, { types: ['social-insurance', 'tax'] });
  ledger.commit([open]);
  const req = txHash(open);

  expectAccept(t, ledger, ledger.putRecord(siTax, req, 'tax'), 'control put');
  expectAccept(t, ledger, ledger.failRecord(siTax, req, 'tax'), 'control fail');
  for (const [kind, build] of [
    ['record.put', ledger.putRecord.bind(ledger)],
    ['record.fail', ledger.failRecord.bind(ledger)],
  ] as const) {
    expectReject(
      t,
      ledger,
      build(platformOnly, req, 'tax'),
      'LEDGER_NOT_EXTRACTOR',
      `${kind}: platform-only validator`,
    );
    expectReject(
      t,
      ledger,
      build(noRole, req, 'tax'),
      'LEDGER_NOT_EXTRACTOR',
      `${kind}: validator with no role`,
    );
    expectReject(t, ledger, build(bank, req, 'tax'), 'LEDGER_NOT_EXTRACTOR', `${kind}: an institution`);
    expectReject(
      t,
      ledger,
      build(chain.outsider, req, 'tax'),
      'LEDGER_NOT_EXTRACTOR',
      `${kind}: unknown key`,
    );
    expectReject(
      t,
      ledger,
      build(siTax, req, 'property'),
      'LEDGER_NOT_EXTRACTOR',
      `${kind}: extractor of other types`,
    );
    expectReject(
      t,
      ledger,
      build(allTypes, hexOf('nope'), 'tax'),
      'LEDGER_UNKNOWN_REQUEST',
      `${kind}: unknown request`,
    );
    expectReject(
      t,
      ledger,
      build(allTypes, req, 'property'),
      'LEDGER_TYPE_NOT_REQUESTED',
      `${kind}: type not requested`,
    );
    expectReject(
      t,
      ledger,
      build(allTypes, request, 'social-insurance'),
      'LEDGER_RECORD_EXISTS',
      `${kind}: type already has a record`,
    );
  }
  // A record.fail then a record.put for the same type: the put replaces the failure.
  ledger.commit([ledger.failRecord(siTax, req, 'tax')]);
  t.ok(ledger.request(req)!.failures.tax, 'failure recorded');
  const put = ledger.putRecord(siTax, req, 'tax');
  ledger.commit([put]);
  t.equal(ledger.request(req)!.failures.tax, undefined, 'failure cleared by the record');
  t.equal(ledger.request(req)!.records.tax, put.body.digest);

  const open2 = ledger.openRequest(bank, bob, { types: ['tax'] });
  ledger.commit([open2]);
  expectReject(
    t,
    ledger,
    ledger.putRecord(siTax, txHash(open2), 'tax', { digest: put.body.digest }),
    'LEDGER_DIGEST_EXISTS',
    'digest already used by another record',
  );

  const late = ledger.openRequest(bank, bob, { types: ['tax'], consentBy: ledger.now + DAY });
  ledger.commit([late]);
  ledger.advance(DAY);
  expectReject(
    t,
    ledger,
    ledger.putRecord(siTax, txHash(late), 'tax'),
    'LEDGER_REQUEST_EXPIRED',
    'put at the deadline',
  );
  expectReject(
    t,
    ledger,
    ledger.failRecord(siTax, txHash(late), 'tax'),
    'LEDGER_REQUEST_EXPIRED',
    'fail after the deadline',
  );
});

t.test('closed requests take no records', async (t) => {
  const { ledger, bank, alice, siTax } = setup();
  const o = ledger.openRequest(bank, alice, { types: ['social-insurance', 'tax'] });
  ledger.commit([o]);
  ledger.commit([ledger.putRecord(siTax, txHash(o), 'social-insurance')]);
  ledger.commit([ledger.grant(alice, txHash(o), { types: ['social-insurance'] })]);
  expectReject(
    t,
    ledger,
    ledger.putRecord(siTax, txHash(o), 'tax'),
    'LEDGER_REQUEST_CLOSED',
    'put after grant',
  );
  expectReject(
    t,
    ledger,
    ledger.failRecord(siTax, txHash(o), 'tax'),
    'LEDGER_REQUEST_CLOSED',
    'fail after grant',
  );

  const d = ledger.openRequest(bank, alice, { types: ['tax'] });
  ledger.commit([d]);
  ledger.commit([ledger.deny(alice, txHash(d), { reason: 'not now' })]);
  t.equal(ledger.request(txHash(d))!.denyReason, 'not now');
  expectReject(
    t,
    ledger,
    ledger.putRecord(siTax, txHash(d), 'tax'),
    'LEDGER_REQUEST_CLOSED',
    'put after deny',
  );

  const e = ledger.openRequest(bank, alice, { types: ['tax'] });
  ledger.commit([e]);
  ledger.commit([ledger.erase(alice, txHash(e))]);
  expectReject(
    t,
    ledger,
    ledger.putRecord(siTax, txHash(e), 'tax'),
    'LEDGER_REQUEST_CLOSED',
    'put after erase',
  );
});

t.test('grant rules', async (t) => {
  const { chain, ledger, bank, alice, bob } = setup();
  const ranged = ledger.requestWithRecords(bank, alice, ['social-insurance', 'tax'], {
    dataFrom: '2020-01-01',
    dataTo: '2020-12-31',
  });
  const req = ranged.request;
  const siKey = { record: ranged.records['social-insurance']!, key: fakeWrappedKey('si') };
  const taxKey = { record: ranged.records.tax!, key: fakeWrappedKey('tax') };
  const g = (body = {}, opts = {}) => ledger.grant(alice, req, body, opts);

  expectAccept(t, ledger, g(), 'control: both types');
  expectAccept(t, ledger, g({ types: ['tax'], keys: [taxKey] }), 'control: narrower types');
  expectAccept(t, ledger, g({ dataFrom: '2020-03-01', dataTo: '2020-06-30' }), 'control: narrower range');

  expectReject(
    t,
    ledger,
    ledger.grant(alice, hexOf('x'), { types: ['tax'], keys: [taxKey] }),
    'LEDGER_UNKNOWN_REQUEST',
    'unknown request',
  );
  expectReject(t, ledger, ledger.grant(bob, req), 'LEDGER_NOT_SUBJECT', 'granted by another subject');
  expectReject(t, ledger, ledger.grant(bank, req), 'LEDGER_NOT_SUBJECT', 'granted by the institution');
  expectReject(
    t,
    ledger,
    ledger.grant(chain.registrar, req),
    'LEDGER_NOT_SUBJECT',
    'granted by the registrar',
  );

  const narrow = ledger.requestWithRecords(bank, alice, ['tax']);
  expectReject(
    t,
    ledger,
    ledger.grant(alice, narrow.request, {
      types: ['tax', 'social-insurance'],
      keys: [{ record: narrow.records.tax!, key: fakeWrappedKey('t') }, siKey],
    }),
    'LEDGER_SCOPE_WIDENED',
    'grant adds a type',
  );
  expectReject(t, ledger, g({ dataFrom: '2019-12-31' }), 'LEDGER_SCOPE_WIDENED', 'grant starts earlier');
  expectReject(t, ledger, g({ dataTo: '2021-01-01' }), 'LEDGER_SCOPE_WIDENED', 'grant ends later');
  expectReject(
    t,
    ledger,
    g({ dataFrom: '2019-01-01', dataTo: '2021-12-31' }),
    'LEDGER_SCOPE_WIDENED',
    'grant wider both ways',
  );
  expectReject(
    t,
    ledger,
    g({ dataFrom: '2020-09-01', dataTo: '2020-03-01' }),
    'LEDGER_BAD_RANGE',
    'range inverted',
  );
  expectReject(t, ledger, g({ purpose: 'marketing' }), 'LEDGER_PURPOSE_MISMATCH', 'other purpose');
  expectReject(t, ledger, g({ expires: ledger.now }), 'LEDGER_BAD_EXPIRY', 'expires at block time');
  expectReject(
    t,
    ledger,
    g({ expires: ledger.now + chain.genesis.params.maxGrantMs + 1 }),
    'LEDGER_BAD_EXPIRY',
    'expires beyond the limit',
  );
  expectAccept(
    t,
    ledger,
    g({ expires: ledger.now + chain.genesis.params.maxGrantMs }),
    'expiry at the limit',
  );

  // Unbounded request: any range is narrower.
  const open = ledger.requestWithRecords(bank, alice, ['tax']);
  expectAccept(
    t,
    ledger,
    ledger.grant(alice, open.request, { dataFrom: '2000-01-01' }),
    'range on an unbounded request',
  );
  expectReject(
    t,
    ledger,
    ledger.grant(alice, open.request, { dataFrom: '2001-01-01', dataTo: '2000-01-01' }),
    'LEDGER_BAD_RANGE',
    'inverted range on an unbounded request',
  );

  // Records must exist for every granted type, and keys match them exactly.
  const partial = ledger.openRequest(bank, alice, { types: ['social-insurance', 'tax'] });
  ledger.commit([partial]);
  const put = ledger.putRecord(chain.extractorFor('tax'), txHash(partial), 'tax');
  ledger.commit([put]);
  const pKey = { record: put.body.digest, key: fakeWrappedKey('p') };
  expectReject(
    t,
    ledger,
    ledger.grant(alice, txHash(partial), { types: ['social-insurance', 'tax'], keys: [pKey, siKey] }),
    'LEDGER_RECORD_MISSING',
    'type without a record',
  );
  expectAccept(
    t,
    ledger,
    ledger.grant(alice, txHash(partial), { types: ['tax'], keys: [pKey] }),
    'granting the extracted type',
  );

  const keyCases: [string, object][] = [
    ['missing a key', { keys: [siKey] }],
    ['extra key', { types: ['tax'], keys: [taxKey, siKey] }],
    ['duplicate key', { types: ['tax'], keys: [taxKey, taxKey] }],
    ['key for a record of another request', { types: ['tax'], keys: [pKey] }],
    [
      'key for an unknown record',
      { types: ['tax'], keys: [{ record: hexOf('unknown'), key: fakeWrappedKey('u') }] },
    ],
    ['keys for both but duplicated', { keys: [siKey, siKey, taxKey] }],
  ];
  for (const [name, body] of keyCases) expectReject(t, ledger, g(body), 'LEDGER_KEYS_MISMATCH', name);

  ledger.commit([g()]);
  expectReject(t, ledger, g(), 'LEDGER_REQUEST_CLOSED', 'second grant');
  expectReject(t, ledger, ledger.deny(alice, req), 'LEDGER_REQUEST_CLOSED', 'deny after grant');

  const expiring = ledger.requestWithRecords(bank, alice, ['tax'], { consentBy: ledger.now + DAY });
  ledger.advance(DAY);
  expectReject(
    t,
    ledger,
    ledger.grant(alice, expiring.request),
    'LEDGER_REQUEST_EXPIRED',
    'grant after the deadline',
  );
  expectReject(
    t,
    ledger,
    ledger.deny(alice, expiring.request),
    'LEDGER_REQUEST_EXPIRED',
    'deny after the deadline',
  );
});

t.test('deny and erase rules', async (t) => {
  const { ledger, bank, alice, bob } = setup();
  const { request } = ledger.requestWithRecords(bank, alice, ['tax']);
  expectAccept(t, ledger, ledger.deny(alice, request), 'control deny');
  expectReject(
    t,
    ledger,
    ledger.deny(alice, hexOf('none')),
    'LEDGER_UNKNOWN_REQUEST',
    'deny unknown request',
  );
  expectReject(t, ledger, ledger.deny(bob, request), 'LEDGER_NOT_SUBJECT', 'deny by another subject');
  expectReject(t, ledger, ledger.deny(bank, request), 'LEDGER_NOT_SUBJECT', 'deny by the institution');
  ledger.commit([ledger.deny(alice, request)]);
  expectReject(t, ledger, ledger.deny(alice, request), 'LEDGER_REQUEST_CLOSED', 'deny twice');
  expectReject(t, ledger, ledger.grant(alice, request), 'LEDGER_REQUEST_CLOSED', 'grant after deny');

  expectAccept(t, ledger, ledger.erase(alice, request), 'control erase (of a denied request)');
  expectReject(
    t,
    ledger,
    ledger.erase(alice, hexOf('none')),
    'LEDGER_UNKNOWN_REQUEST',
    'erase unknown request',
  );
  expectReject(t, ledger, ledger.erase(bob, request), 'LEDGER_NOT_SUBJECT', 'erase by another subject');
  expectReject(t, ledger, ledger.erase(bank, request), 'LEDGER_NOT_SUBJECT', 'erase by the institution');
  ledger.commit([ledger.erase(alice, request)]);
  expectReject(t, ledger, ledger.erase(alice, request), 'LEDGER_ERASED', 'erase twice');
  expectReject(t, ledger, ledger.grant(alice, request), 'LEDGER_REQUEST_CLOSED', 'grant after erase');
});

t.test('revoke, pause, resume rules', async (t) => {
  const { ledger, bank, alice, bob } = setup();
  const { grant } = ledger.granted(bank, alice, ['tax']);
  for (const kind of ['revoke', 'pause'] as const) {
    expectAccept(t, ledger, ledger[kind](alice, grant), `control ${kind}`);
  }
  for (const kind of ['revoke', 'pause', 'resume'] as const) {
    expectReject(
      t,
      ledger,
      ledger[kind](alice, hexOf('none')),
      'LEDGER_UNKNOWN_GRANT',
      `${kind} unknown grant`,
    );
    expectReject(t, ledger, ledger[kind](bob, grant), 'LEDGER_NOT_SUBJECT', `${kind} by another subject`);
    expectReject(t, ledger, ledger[kind](bank, grant), 'LEDGER_NOT_SUBJECT', `${kind} by the grantee`);
  }
  expectReject(t, ledger, ledger.resume(alice, grant), 'LEDGER_GRANT_NOT_PAUSED', 'resume an active grant');
  ledger.commit([ledger.pause(alice, grant)]);
  t.equal(ledger.grantState(grant)!.paused, true);
  expectReject(t, ledger, ledger.pause(alice, grant), 'LEDGER_GRANT_PAUSED', 'pause twice');
  expectReject(t, ledger, ledger.usage(bank, grant), 'LEDGER_GRANT_PAUSED', 'usage while paused');
  ledger.commit([ledger.resume(alice, grant)]);
  t.equal(ledger.grantState(grant)!.paused, false);
  expectAccept(t, ledger, ledger.usage(bank, grant), 'usage after resume');
  ledger.commit([ledger.pause(alice, grant)]);
  ledger.commit([ledger.revoke(alice, grant)]);
  t.equal(ledger.grantState(grant)!.revoked, true, 'a paused grant can be revoked');
  for (const kind of ['revoke', 'pause', 'resume'] as const) {
    expectReject(t, ledger, ledger[kind](alice, grant), 'LEDGER_GRANT_REVOKED', `${kind} after revoke`);
  }
  expectReject(t, ledger, ledger.usage(bank, grant), 'LEDGER_GRANT_REVOKED', 'usage after revoke');
});

t.test('usage rules', async (t) => {
  const { chain, ledger, bank, otherBank, alice, siTax, platformOnly } = setup();
  const { grant } = ledger.granted(bank, alice, ['tax'], { uses: 2 });
  expectAccept(t, ledger, ledger.usage(bank, grant), 'grantee');
  // No node may spend a use for the bank: a platform validator's signature is refused.
  expectReject(t, ledger, ledger.usage(platformOnly, grant), 'LEDGER_NOT_GRANTEE', 'a platform validator');
  expectReject(t, ledger, ledger.usage(bank, hexOf('none')), 'LEDGER_UNKNOWN_GRANT', 'unknown grant');
  expectReject(
    t,
    ledger,
    ledger.usage(bank, grant, { bundle: hexOf('another bundle') }),
    'LEDGER_BUNDLE_MISMATCH',
    'a usage naming another bundle than the grant releases',
  );
  expectReject(t, ledger, ledger.usage(otherBank, grant), 'LEDGER_NOT_GRANTEE', 'another institution');
  expectReject(t, ledger, ledger.usage(alice, grant), 'LEDGER_NOT_GRANTEE', 'the subject');
  expectReject(t, ledger, ledger.usage(siTax, grant), 'LEDGER_NOT_GRANTEE', 'an extractor-only validator');
  expectReject(t, ledger, ledger.usage(chain.outsider, grant), 'LEDGER_NOT_GRANTEE', 'unknown key');

  ledger.commit([ledger.usage(bank, grant)]);
  ledger.commit([ledger.usage(bank, grant)]);
  t.equal(ledger.grantState(grant)!.used, 2);
  expectReject(t, ledger, ledger.usage(bank, grant), 'LEDGER_GRANT_USED_UP', 'third use of a 2-use grant');

  const second = ledger.granted(bank, alice, ['tax']);
  ledger.commit([ledger.retireInstitution(chain.admin, bank.id)]);
  expectReject(t, ledger, ledger.usage(bank, second.grant), 'LEDGER_NOT_INSTITUTION', 'grantee retired');

  const third = ledger.granted(otherBank, alice, ['tax']);
  ledger.commit([ledger.erase(alice, third.request)]);
  const g = ledger.grantState(third.grant)!;
  t.equal(g.revoked, true, 'erase revokes the grant');
  expectReject(t, ledger, ledger.usage(otherBank, third.grant), 'LEDGER_ERASED', 'usage after erase');
});

t.test('grant expiry is judged by block time, never the wall clock', async (t) => {
  // Genesis in 2023: by the wall clock this grant expired long ago; by block time it has not.
  {
    const { ledger, bank, alice } = setup({ time: Date.UTC(2023, 0, 1) });
    const { grant } = ledger.granted(bank, alice, ['tax'], { expires: ledger.now + 60_000 });
    const expires = ledger.grantState(grant)!.expires;
    t.ok(expires < Date.now(), 'expired by the wall clock');
    const use = ledger.usage(bank, grant);
    expectAccept(t, ledger, use, '2023 chain: one ms before expiry', expires - 1);
    expectReject(t, ledger, use, 'LEDGER_GRANT_EXPIRED', '2023 chain: at expiry', expires);
    expectReject(t, ledger, use, 'LEDGER_GRANT_EXPIRED', '2023 chain: after expiry', expires + 1000);
  }
  // Genesis in 2200: by the wall clock the grant is far from expired; by block time it is.
  {
    const { ledger, bank, alice } = setup({ time: Date.UTC(2200, 0, 1) });
    const { grant } = ledger.granted(bank, alice, ['tax'], { expires: ledger.now + 60_000 });
    const expires = ledger.grantState(grant)!.expires;
    t.ok(expires > Date.now(), 'not expired by the wall clock');
    const use = ledger.usage(bank, grant);
    expectAccept(t, ledger, use, '2200 chain: one ms before expiry', expires - 1);
    expectReject(t, ledger, use, 'LEDGER_GRANT_EXPIRED', '2200 chain: at expiry', expires);
  }
});

t.test('governance rules', async (t) => {
  const { chain, ledger, bank, alice } = setup();
  const newKeys = chain.keys('bank-new');
  expectAccept(t, ledger, ledger.addInstitution(chain.admin, 'bank-new', newKeys), 'control add');
  expectReject(
    t,
    ledger,
    ledger.addInstitution(bank, 'bank-new', newKeys),
    'LEDGER_NOT_ADMIN',
    'add by an institution',
  );
  expectReject(
    t,
    ledger,
    ledger.addInstitution(chain.validators[0]!, 'bank-new', newKeys),
    'LEDGER_NOT_ADMIN',
    'add by a validator',
  );
  expectReject(
    t,
    ledger,
    ledger.addInstitution(chain.admin, bank.id, newKeys),
    'LEDGER_INSTITUTION_EXISTS',
    'id taken',
  );
  expectReject(
    t,
    ledger,
    ledger.addInstitution(chain.admin, 'bank-new', bank),
    'LEDGER_KEY_IN_USE',
    'key taken',
  );
  expectReject(t, ledger, ledger.retireInstitution(bank, bank.id), 'LEDGER_NOT_ADMIN', 'retire by itself');
  const councilLedger = new TestLedger(makeTestChain({ governance: 'council' }));
  expectReject(
    t,
    councilLedger,
    councilLedger.addInstitution(councilLedger.chain.council[0]!, 'bank-new', newKeys),
    'LEDGER_GOVERNANCE_REQUIRED',
    'a chain with a council changes members only by proposal (governance.test.ts)',
  );
  expectReject(
    t,
    ledger,
    ledger.retireInstitution(chain.admin, 'bank-99'),
    'LEDGER_UNKNOWN_INSTITUTION',
    'retire unknown',
  );

  ledger.commit([ledger.addInstitution(chain.admin, 'bank-new', newKeys)]);
  t.match(ledger.institution('bank-new'), { active: true, signKey: newKeys.pub, encKey: newKeys.encPub });
  expectAccept(t, ledger, ledger.openRequest(newKeys, alice), 'a new institution can open requests');
  ledger.commit([ledger.retireInstitution(chain.admin, 'bank-new')]);
  t.equal(ledger.institution('bank-new')!.active, false);
  expectReject(
    t,
    ledger,
    ledger.retireInstitution(chain.admin, 'bank-new'),
    'LEDGER_INSTITUTION_RETIRED',
    'retire twice',
  );
  expectReject(
    t,
    ledger,
    ledger.addInstitution(chain.admin, 'bank-new', chain.keys('bank-newer')),
    'LEDGER_INSTITUTION_EXISTS',
    'a retired id is not reusable',
  );
  expectReject(
    t,
    ledger,
    ledger.addInstitution(chain.admin, 'bank-newest', newKeys),
    'LEDGER_KEY_IN_USE',
    'a retired key is not reusable',
  );
});

t.test('happy path: register, request, records, grant, usage, revoke, erase', async (t) => {
  const chain = makeTestChain();
  const ledger = new TestLedger(chain, { verifier: verifyFast });
  const bank = chain.institutions[0]!;
  const alice = chain.subjects[0]!;

  t.match(ledger.subject(alice.id), {
    signKey: alice.pub,
    encKey: alice.encPub,
    registrar: chain.registrar.pub,
  });
  t.equal(ledger.state.get(stateKey.subjectByKey(alice.pub)), alice.id);

  // 1. The bank opens a request.
  const open = ledger.openRequest(bank, alice, {
    types: ['social-insurance', 'tax'],
    dataFrom: '2020-01-01',
  });
  const b1 = ledger.commit([open]);
  const requestId = txHash(open);
  t.same(b1.effects.outcomes, [{ ok: true, hash: requestId, subject: alice.id }], 'audit subject recorded');
  t.equal(requestStatus(ledger.request(requestId)!, undefined, ledger.now), 'waiting-for-data');

  // 2. Extractors encrypt each record and wrap its data key to the subject.
  const plain: Record<string, string> = { 'social-insurance': '{"monthly":812}', tax: '{"paid":4521}' };
  const dataKeys: Record<string, Uint8Array> = {};
  const puts = (['social-insurance', 'tax'] as const).map((type) => {
    const dataKey = randomBytes(32);
    const sealed = sealPayload(dataKey, utf8ToBytes(plain[type]!));
    const digest = sha256Hex(sealed);
    dataKeys[digest] = sealed;
    const ctx = utf8ToBytes(`datagrant/record/${digest}`);
    return ledger.putRecord(chain.extractorFor(type), requestId, type, {
      digest,
      size: sealed.length,
      key: wrapKey(dataKey, alice.encryption.publicKey, ctx),
    });
  });
  ledger.commit(puts);
  const req = ledger.request(requestId)!;
  t.same(Object.keys(req.records).sort(), ['social-insurance', 'tax']);
  t.equal(requestStatus(req, undefined, ledger.now), 'waiting-for-consent');

  // 3. The subject re-wraps each data key to the bank and grants, narrowing to tax only.
  const taxDigest = req.records.tax!;
  const taxRecord = ledger.record(taxDigest)!;
  t.match(taxRecord, {
    request: requestId,
    subject: alice.id,
    type: 'tax',
    extractor: puts[1]!.signer,
    erased: false,
  });
  const ctx = utf8ToBytes(`datagrant/record/${taxDigest}`);
  const dataKey = unwrapKey(taxRecord.key, alice.encryption.secretKey, ctx);
  const grantTx = ledger.grant(alice, requestId, {
    types: ['tax'],
    uses: 2,
    keys: [{ record: taxDigest, key: wrapKey(dataKey, bank.encryption.publicKey, ctx) }],
  });
  ledger.commit([grantTx]);
  const grantId = txHash(grantTx);
  const g = ledger.grantState(grantId)!;
  t.match(g, {
    request: requestId,
    institution: bank.id,
    types: ['tax'],
    uses: 2,
    used: 0,
    dataFrom: '2020-01-01',
  });
  t.equal(ledger.request(requestId)!.grant, grantId);
  t.equal(requestStatus(ledger.request(requestId)!, g, ledger.now), 'granted');

  // 4. The bank opens the record with its own key and records the use.
  const bankKey = unwrapKey(g.keys[0]!.key, bank.encryption.secretKey, ctx);
  t.equal(
    new TextDecoder().decode(openPayload(bankKey, dataKeys[taxDigest]!)),
    plain.tax,
    'bank reads the granted record',
  );
  t.throws(() => unwrapKey(g.keys[0]!.key, chain.institutions[1]!.encryption.secretKey, ctx), {
    code: 'CRYPTO_UNWRAP_FAILED',
  });
  ledger.commit([ledger.usage(bank, grantId)]);
  t.equal(requestStatus(ledger.request(requestId)!, ledger.grantState(grantId), ledger.now), 'delivered');
  ledger.commit([ledger.usage(bank, grantId, { format: 'csv' })]);
  t.equal(ledger.grantState(grantId)!.used, 2);
  t.equal(requestStatus(ledger.request(requestId)!, ledger.grantState(grantId), ledger.now), 'used-up');

  // 5. Revoke, then erase.
  ledger.commit([ledger.revoke(alice, grantId)]);
  t.equal(requestStatus(ledger.request(requestId)!, ledger.grantState(grantId), ledger.now), 'revoked');
  const erase = ledger.erase(alice, requestId);
  const last = ledger.commit([erase]);
  t.equal(last.commitEffects.subjects[0], alice.id);
  for (const digest of Object.values(ledger.request(requestId)!.records)) {
    t.equal(ledger.record(digest)!.erased, true, `record ${digest.slice(0, 8)} marked erased`);
  }
  t.equal(ledger.request(requestId)!.erased, true);
  t.equal(requestStatus(ledger.request(requestId)!, ledger.grantState(grantId), ledger.now), 'erased');
  t.equal(ledger.height, 8, 'one block per step');
});

t.test('rejected transactions inside a block: executeBlock refuses, buildBlockTxs drops', async (t) => {
  const { ledger, bank, alice, siTax } = setup();
  const good1 = ledger.openRequest(bank, alice);
  const bad = ledger.putRecord(siTax, hexOf('missing'), 'tax');
  const good2 = ledger.openRequest(bank, alice, { purpose: 'second' });
  t.throws(() => ledger.commit([good1, bad, good2]), { index: 1, code: 'LEDGER_UNKNOWN_REQUEST' });
  t.equal(ledger.height, 1, 'refused block not applied');
  const built = ledger.commitBuilt([good1, bad, good2, good1]);
  t.same(
    built.certified.block.txs.map((x) => txHash(x)),
    [txHash(good1), txHash(good2)],
    'kept in order',
  );
  t.same(
    built.dropped.map((d) => d.rejection.code),
    ['LEDGER_UNKNOWN_REQUEST', 'LEDGER_TX_REPLAYED'],
    'dropped with reasons',
  );
  const capped = ledger.commitBuilt(
    [ledger.openRequest(bank, alice), ledger.openRequest(bank, alice), ledger.openRequest(bank, alice)],
    { maxTxs: 2 },
  );
  t.equal(capped.certified.block.txs.length, 2, 'maxTxs respected');
});

t.test('replay protection entries are pruned after expiry, and expired txs stay refused', async (t) => {
  const { ledger, bank, alice } = setup({ params: { replayGuard: 'per-tx' } });
  const tx = ledger.openRequest(bank, alice, {}, { expires: ledger.now + 5_000 });
  ledger.commit([tx]);
  const seen = stateKey.seen(txHash(tx));
  t.equal(ledger.state.get(seen), tx.expires, 'seen entry holds the expiry');
  ledger.advance(3 * 60_000);
  const block = ledger.commit([]);
  t.equal(block.effects.writes.get(seen), null, 'pruned (deleted) once its bucket has passed');
  t.equal(ledger.state.get(seen), undefined);
  expectReject(t, ledger, tx, 'LEDGER_TX_EXPIRED', 'replay after pruning');
});

t.test('the per-block replay guard: one entry per block, replays refused, pruned after expiry', async (t) => {
  const { ledger, bank, alice, bob } = setup({ params: { replayGuard: 'per-block' } });
  const a = ledger.openRequest(bank, alice, {}, { expires: ledger.now + 5_000 });
  const b = ledger.openRequest(bank, bob, {}, { expires: ledger.now + 70_000 });
  const block = ledger.commit([a, b]);
  const at = stateKey.seenAt(block.certified.block.header.height);
  const keys = [...block.effects.writes.keys()];
  t.notOk(
    keys.some((k) => k.startsWith('seen/')),
    'no per-transaction entry is written',
  );
  t.same(
    block.effects.writes.get(at),
    { expires: b.expires, txs: [txHash(a), txHash(b)].sort() },
    'one entry: the hashes, sorted, and the latest expiry',
  );
  t.equal(
    ledger.state.get(stateKey.seen(txHash(a))),
    b.expires,
    "each transaction is seen, until its block's latest expiry",
  );
  expectReject(t, ledger, a, 'LEDGER_TX_REPLAYED', 'a replay in a later block');
  const c = ledger.openRequest(bank, alice);
  const built = ledger.commitBuilt([c, c]);
  t.equal(built.certified.block.txs.length, 1, 'a replay within one block is dropped');
  ledger.advance(30_000);
  const later = ledger.commit([]);
  t.notOk(later.effects.writes.has(at), 'kept while any of its transactions is unexpired');
  t.equal(ledger.state.get(stateKey.seen(txHash(a))), b.expires, 'even an expired one');
  ledger.advance(3 * 60_000);
  const pruned = ledger.commit([]);
  t.equal(pruned.effects.writes.get(at), null, 'deleted once its latest expiry has passed');
  t.equal(ledger.state.get(stateKey.seen(txHash(b))), undefined, 'its transactions leave the guard');
  expectReject(t, ledger, b, 'LEDGER_TX_EXPIRED', 'replay after pruning');
});

t.test('a grant binds its grantee: the request institution and its registered key', async (t) => {
  const { chain, ledger, bank, otherBank, alice } = setup();
  const { request } = ledger.requestWithRecords(bank, alice, ['tax']);
  expectAccept(t, ledger, ledger.grant(alice, request), 'control: the bank and its key');
  expectReject(
    t,
    ledger,
    ledger.grant(alice, request, { institution: otherBank.id, granteeKey: otherBank.encPub }),
    'LEDGER_GRANTEE_MISMATCH',
    'a grant naming another institution (with that institution key)',
  );
  expectReject(
    t,
    ledger,
    ledger.grant(alice, request, { granteeKey: otherBank.encPub }),
    'LEDGER_GRANTEE_KEY_MISMATCH',
    "a grant to the bank wrapped to another institution's key",
  );
  expectReject(
    t,
    ledger,
    ledger.grant(alice, request, { granteeKey: chain.validators[0]!.encPub }),
    'LEDGER_GRANTEE_KEY_MISMATCH',
    "a grant wrapped to a validator's key",
  );
  ledger.commit([ledger.retireInstitution(chain.admin, bank.id)]);
  expectReject(
    t,
    ledger,
    ledger.grant(alice, request),
    'LEDGER_NOT_INSTITUTION',
    'a grant to a retired bank',
  );
});

t.test('a usage names exactly the bundle the grant releases, and only the grantee signs it', async (t) => {
  const { chain, ledger, bank, alice, platformOnly, allTypes } = setup();
  const { grant, records } = ledger.granted(bank, alice, ['tax', 'social-insurance']);
  const digests = [records.tax!, records['social-insurance']!];
  const right = bundleDigest(chain.genesis.chain, grant, digests);
  t.equal(right, bundleDigest(chain.genesis.chain, grant, [...digests].reverse()), 'order does not matter');
  expectAccept(t, ledger, ledger.usage(bank, grant, { bundle: right }), 'both granted records');
  for (const [name, bundle] of [
    ['one record left out', bundleDigest(chain.genesis.chain, grant, [records.tax!])],
    ['another grant id', bundleDigest(chain.genesis.chain, hexOf('other grant'), digests)],
    ['another chain', bundleDigest('other-chain', grant, digests)],
  ] as const) {
    expectReject(t, ledger, ledger.usage(bank, grant, { bundle }), 'LEDGER_BUNDLE_MISMATCH', name);
  }
  for (const [name, who] of [
    ['a platform validator', platformOnly],
    ['a platform and extractor validator', allTypes],
    ['the subject', alice],
  ] as const) {
    expectReject(t, ledger, ledger.usage(who, grant, { bundle: right }), 'LEDGER_NOT_GRANTEE', name);
  }
});

t.test('on-consent extraction: records follow the grant, for granted types only', async (t) => {
  const { chain, ledger, bank, alice, allTypes } = setup({ params: { extraction: 'on-consent' } });
  t.equal(chain.config.policy, 'on-consent');
  const open = ledger.openRequest(bank, alice, { types: ['tax', 'social-insurance'] });
  ledger.commit([open]);
  const request = txHash(open);
  t.equal(
    requestStatus(ledger.request(request)!, undefined, ledger.now, 'on-consent'),
    'waiting-for-consent',
  );
  expectReject(
    t,
    ledger,
    ledger.putRecord(allTypes, request, 'tax'),
    'LEDGER_NOT_GRANTED',
    'no record before the grant',
  );
  expectReject(
    t,
    ledger,
    ledger.grant(alice, request, {
      types: ['tax'],
      keys: [{ record: hexOf('r'), key: fakeWrappedKey('k') }],
    }),
    'LEDGER_KEYS_MISMATCH',
    'a grant carrying keys',
  );
  expectReject(
    t,
    ledger,
    ledger.usage(bank, hexOf('no grant yet')),
    'LEDGER_UNKNOWN_GRANT',
    'usage before any grant',
  );
  const g = ledger.grant(alice, request, { types: ['tax'] });
  ledger.commit([g]);
  const grant = txHash(g);
  t.equal(
    requestStatus(ledger.request(request)!, ledger.grantState(grant), ledger.now, 'on-consent'),
    'waiting-for-data',
  );
  expectReject(t, ledger, ledger.usage(bank, grant), 'LEDGER_RECORD_MISSING', 'usage before any record');
  expectReject(
    t,
    ledger,
    ledger.putRecord(allTypes, request, 'social-insurance'),
    'LEDGER_TYPE_NOT_GRANTED',
    'a record of a requested but ungranted type',
  );
  const { granteeKey: _g, ...withoutGrantee } = ledger.putRecord(allTypes, request, 'tax').body;
  expectReject(
    t,
    ledger,
    ledger.sign(allTypes, 'record.put', withoutGrantee),
    'LEDGER_GRANTEE_KEY_MISSING',
    'a record without the grantee key',
  );
  const put = ledger.putRecord(allTypes, request, 'tax');
  ledger.commit([put]);
  t.same(ledger.record(put.body.digest)!.granteeKey, put.body.granteeKey, 'the grantee key is on the record');
  t.equal(
    requestStatus(ledger.request(request)!, ledger.grantState(grant), ledger.now, 'on-consent'),
    'granted',
  );
  expectAccept(t, ledger, ledger.usage(bank, grant), 'usage once the granted record is there');
  ledger.commit([ledger.revoke(alice, grant)]);
  expectReject(
    t,
    ledger,
    ledger.failRecord(allTypes, request, 'tax'),
    'LEDGER_GRANT_REVOKED',
    'no extraction after revocation',
  );
  expectReject(
    t,
    ledger,
    ledger.putRecord(allTypes, request, 'tax'),
    'LEDGER_GRANT_REVOKED',
    'record after revoke',
  );

  const second = setup({ params: { extraction: 'on-consent' } });
  const open2 = second.ledger.openRequest(second.bank, second.alice, { types: ['tax'] });
  second.ledger.commit([open2]);
  const g2 = second.ledger.grant(second.alice, txHash(open2), { expires: second.ledger.now + 5_000 });
  second.ledger.commit([g2]);
  second.ledger.advance(10_000);
  expectReject(
    t,
    second.ledger,
    second.ledger.putRecord(second.allTypes, txHash(open2), 'tax'),
    'LEDGER_GRANT_EXPIRED',
    'no record after the grant expired',
  );
});

t.test('on-request chains refuse a record wrapped to a grantee', async (t) => {
  const { ledger, bank, alice, allTypes } = setup();
  const open = ledger.openRequest(bank, alice, { types: ['tax'] });
  ledger.commit([open]);
  expectReject(
    t,
    ledger,
    ledger.putRecord(allTypes, txHash(open), 'tax', { granteeKey: fakeWrappedKey('g') }),
    'LEDGER_GRANTEE_KEY_UNEXPECTED',
    'granteeKey under on-request',
  );
});

t.test('record.put storage receipts: f + 1 distinct genesis validators, for this very record', async (t) => {
  const { chain, ledger, bank, alice, allTypes } = setup();
  t.equal(chain.validators.length, 4, 'n = 4, so f = 1 and a record needs 2 holders');
  const open = ledger.openRequest(bank, alice, { types: ['tax'] });
  ledger.commit([open]);
  const req = txHash(open);
  const [v0, v1, v2, v3] = chain.validators.map((v): TestKeys => v) as [
    TestKeys,
    TestKeys,
    TestKeys,
    TestKeys,
  ];
  const digest = hexOf('receipts/digest');
  const size = 2048;
  const put = (receipts: StorageReceipt[], body: Partial<TxBody<'record.put'>> = {}) =>
    ledger.putRecord(allTypes, req, 'tax', { digest, size, receipts, ...body });
  const of = (signers: TestKeys[], fields: Partial<Omit<StorageReceipt, 'sig'>> = {}) =>
    ledger.receipts(digest, size, signers, fields);

  const exact = ledger.try(put(of([v2, v0])));
  t.match(exact, { ok: true }, 'exactly f + 1 receipts: accepted');
  const written = exact.ok ? (exact.writes?.get(stateKey.record(digest)) as RecordState) : undefined;
  t.same(written?.holders, [v0.pub, v2.pub].sort(), 'the record names its holders, sorted');
  expectAccept(t, ledger, put(of([v0, v1, v2, v3])), 'every validator');
  expectAccept(t, ledger, put(of([v0, v0, v1])), 'a repeated validator beside enough others');

  expectReject(t, ledger, put(of([v1])), 'LEDGER_RECEIPTS_INSUFFICIENT', 'f receipts');
  expectReject(t, ledger, put([]), 'LEDGER_RECEIPTS_INSUFFICIENT', 'no receipt at all');
  expectReject(
    t,
    ledger,
    put(of([v1, v1, v1])),
    'LEDGER_RECEIPTS_INSUFFICIENT',
    'one validator three times counts once',
  );
  expectReject(
    t,
    ledger,
    put([...of([v0]), ...ledger.receipts(digest, size, [chain.outsider])]),
    'LEDGER_RECEIPT_INVALID',
    'a signer outside the validator set',
  );
  expectReject(
    t,
    ledger,
    put([...of([v0]), ...ledger.receipts(digest, size, [bank])]),
    'LEDGER_RECEIPT_INVALID',
    'an institution as signer',
  );
  expectReject(
    t,
    ledger,
    put(of([v0, v1], { digest: hexOf('another') })),
    'LEDGER_RECEIPT_INVALID',
    'receipts for another digest',
  );
  expectReject(
    t,
    ledger,
    put([...of([v0]), ...of([v1], { size: size + 1 })]),
    'LEDGER_RECEIPT_INVALID',
    'one receipt for another size',
  );
  expectReject(
    t,
    ledger,
    put([...of([v0]), ...of([v1], { chain: 'other-chain' })]),
    'LEDGER_RECEIPT_INVALID',
    'one receipt for another chain',
  );
  const next = ledger.ctx().height;
  expectAccept(t, ledger, put([...of([v0]), ...of([v1], { height: next })]), 'a receipt at the block height');
  expectReject(
    t,
    ledger,
    put([...of([v0]), ...of([v1], { height: next + 1 })]),
    'LEDGER_RECEIPT_INVALID',
    'a receipt from a height after the block',
  );
  const [good, other] = of([v0, v1]) as [StorageReceipt, StorageReceipt];
  const flipped = { ...other, sig: flipHex(other.sig) };
  expectReject(t, ledger, put([good, flipped]), 'LEDGER_RECEIPT_INVALID', 'a flipped signature bit');
  expectReject(
    t,
    ledger,
    put([good, { ...other, validator: v2.pub }]),
    'LEDGER_RECEIPT_INVALID',
    "one validator's signature under another's name",
  );
  expectReject(
    t,
    ledger,
    put(of([v0, v1]), { size: size + 1 }),
    'LEDGER_RECEIPT_INVALID',
    'receipts that do not name the size the record.put gives',
  );

  const ok = put(of([v0, v1]));
  t.doesNotThrow(
    () => decodeTx(JSON.parse(JSON.stringify(ok))),
    'the schema takes a record.put with receipts',
  );
  const bare = structuredClone(ok) as unknown as { body: Record<string, unknown> };
  delete bare.body.receipts;
  t.throws(() => decodeTx(bare), { code: 'LEDGER_TX_MALFORMED' }, 'and refuses one without');
  t.throws(
    () => decodeTx({ ...ok, body: { ...ok.body, receipts: [] } }),
    { code: 'LEDGER_TX_MALFORMED' },
    'or with an empty list',
  );
  t.throws(
    () => decodeTx({ ...ok, body: { ...ok.body, receipts: Array(MAX_RECEIPTS + 1).fill(good) } }),
    { code: 'LEDGER_TX_MALFORMED' },
    `or with more than ${MAX_RECEIPTS}`,
  );
  t.throws(
    () => decodeTx({ ...ok, body: { ...ok.body, receipts: [{ ...good, extra: 1 }, other] } }),
    { code: 'LEDGER_TX_MALFORMED' },
    'or with a receipt carrying unknown fields',
  );
});

t.test('record.put storage receipts scale with the validator set: f + 1 of 7, 1 of 1', async (t) => {
  const seven = setup({ validators: 7 });
  const open = seven.ledger.openRequest(seven.bank, seven.alice, { types: ['tax'] });
  seven.ledger.commit([open]);
  const digest = hexOf('seven');
  const put = (signers: TestKeys[]) =>
    seven.ledger.putRecord(seven.allTypes, txHash(open), 'tax', {
      digest,
      receipts: seven.ledger.receipts(digest, 1024, signers),
    });
  const vs = seven.chain.validators;
  expectReject(t, seven.ledger, put(vs.slice(0, 2)), 'LEDGER_RECEIPTS_INSUFFICIENT', 'n = 7: 2 receipts');
  expectAccept(t, seven.ledger, put(vs.slice(4, 7)), 'n = 7: 3 receipts (f = 2)');

  const oneChain = makeTestChain({ validators: 1 });
  const one = {
    chain: oneChain,
    ledger: new TestLedger(oneChain),
    bank: oneChain.institutions[0]!,
    alice: oneChain.subjects[0]!,
  };
  const only = one.chain.validators[0]!;
  const open1 = one.ledger.openRequest(one.bank, one.alice, { types: ['tax'] });
  one.ledger.commit([open1]);
  const d1 = hexOf('one');
  expectAccept(
    t,
    one.ledger,
    one.ledger.putRecord(only, txHash(open1), 'tax', {
      digest: d1,
      receipts: one.ledger.receipts(d1, 1024, [only]),
    }),
    'n = 1: its own receipt is the f + 1',
  );
  expectReject(
    t,
    one.ledger,
    one.ledger.putRecord(only, txHash(open1), 'tax', {
      digest: d1,
      receipts: one.ledger.receipts(d1, 1024, [one.chain.outsider]),
    }),
    'LEDGER_RECEIPT_INVALID',
    "n = 1: anyone else's receipt",
  );
});

t.test('receipt checks use the injected verifier, once per receipt', async (t) => {
  const { ledger, bank, alice, allTypes, chain } = setup();
  const open = ledger.openRequest(bank, alice, { types: ['tax'] });
  ledger.commit([open]);
  const tx = ledger.putRecord(allTypes, txHash(open), 'tax', {
    receipts: undefined,
  });
  let calls = 0;
  const counting = (sig: Uint8Array, msg: Uint8Array, key: Uint8Array) => {
    calls++;
    return verifyFast(sig, msg, key);
  };
  const outcome = applyTx(new StateOverlay(ledger.state), tx, ledger.ctx(), chain.config, {
    verifier: counting,
    signatureChecked: true,
  });
  t.match(outcome, { ok: true });
  t.equal(
    calls,
    tx.body.receipts.length,
    'one verification per receipt (the tx signature was checked before)',
  );
  const refusing = applyTx(new StateOverlay(ledger.state), tx, ledger.ctx(), chain.config, {
    verifier: () => false,
    signatureChecked: true,
  });
  t.match(
    refusing,
    { ok: false, code: 'LEDGER_RECEIPT_INVALID' },
    'a verifier that refuses refuses the record',
  );
});

/** The hex string with the lowest bit of its last byte flipped. */
function flipHex(hex: string): string {
  const last = Number.parseInt(hex.slice(-2), 16) ^ 1;
  return hex.slice(0, -2) + last.toString(16).padStart(2, '0');
}

t.test('institution.rotate: live grants keep working, new grants name the new key', async (t) => {
  const { chain, ledger } = setup();
  const bank = chain.institutions[0]!;
  const alice = chain.subjects[0]!;
  const next = chain.keys('bank-0-next');
  const before = ledger.granted(bank, alice, ['tax']);
  const pending = ledger.openRequest(bank, alice, { types: ['tax'] });
  ledger.commit([pending]);
  ledger.commit([ledger.putRecord(chain.extractorFor('tax'), txHash(pending), 'tax')]);

  expectReject(
    t,
    ledger,
    ledger.rotateInstitution(chain.outsider, bank.id, next),
    'LEDGER_NOT_INSTITUTION',
    'by another key',
  );
  const badProof = ledger.rotateInstitution(bank, bank.id, next);
  expectReject(
    t,
    ledger,
    ledger.sign(bank, 'institution.rotate', { ...badProof.body, proof: hexOf('not the new key').repeat(2) }),
    'LEDGER_BAD_KEY_PROOF',
    'a new signing key that did not sign',
  );
  expectReject(
    t,
    ledger,
    ledger.sign(bank, 'institution.rotate', { institution: bank.id, encKey: bank.encPub }),
    'LEDGER_ROTATE_NOTHING',
    'the same keys',
  );
  expectReject(
    t,
    ledger,
    ledger.rotateInstitution(bank, bank.id, chain.institutions[1]!, 'signKey'),
    'LEDGER_KEY_IN_USE',
    "another institution's key",
  );
  ledger.commit([ledger.rotateInstitution(bank, bank.id, next)]);
  const rotated = ledger.institution(bank.id)!;
  t.equal(rotated.signKey, next.pub, 'the new signing key is registered');
  t.equal(rotated.encKey, next.encPub, 'the new encryption key too');
  t.same(
    rotated.previousKeys,
    [{ signKey: bank.pub, encKey: bank.encPub, until: ledger.height }],
    'the old ones kept',
  );

  // The grant made to the old key stays usable, by the institution's new signing key only.
  expectReject(
    t,
    ledger,
    ledger.usage(bank, before.grant),
    'LEDGER_NOT_GRANTEE',
    'the old signing key no longer acts',
  );
  ledger.commit([ledger.usage(next, before.grant)]);
  t.equal(ledger.grantState(before.grant)?.used, 1, 'the live grant was used after the rotation');
  t.equal(
    ledger.grantState(before.grant)?.granteeKey,
    bank.encPub,
    'its data keys stay wrapped to the old key',
  );

  // The request opened with the old key is live; its grant must name the new key.
  expectReject(
    t,
    ledger,
    ledger.grant(alice, txHash(pending), { types: ['tax'], granteeKey: bank.encPub }),
    'LEDGER_GRANTEE_KEY_MISMATCH',
    'a new grant to the old key',
  );
  ledger.commit([ledger.grant(alice, txHash(pending), { types: ['tax'] })]);
  const fresh = ledger.request(txHash(pending))!;
  t.equal(ledger.grantState(fresh.grant!)?.granteeKey, next.encPub, 'a new grant is wrapped to the new key');
  expectReject(
    t,
    ledger,
    ledger.sign(next, 'institution.rotate', { institution: bank.id, encKey: bank.encPub }),
    'LEDGER_KEY_REUSED',
    'an old encryption key taken back',
  );
  expectReject(
    t,
    ledger,
    ledger.openRequest(bank, alice),
    'LEDGER_NOT_INSTITUTION',
    'the old key opens no request',
  );
});

t.test(
  'subject.recover: a subject recovered through her registrar keeps her grants and can grant again',
  async (t) => {
    const { chain, ledger } = setup();
    const bank = chain.institutions[0]!;
    const alice = chain.subjects[0]!;
    const next = chain.keys('alice-next');
    const { grant } = ledger.granted(bank, alice, ['tax']);

    expectReject(t, ledger, ledger.recover('nobody', next), 'LEDGER_UNKNOWN_SUBJECT', 'an unknown subject');
    expectReject(
      t,
      ledger,
      ledger.recover(alice.id, next, {}, chain.outsider),
      'LEDGER_UNKNOWN_REGISTRAR',
      'not a registrar',
    );
    expectReject(
      t,
      ledger,
      ledger.recover(alice.id, next, { issued: ledger.now - 2 * 86_400_000 }),
      'LEDGER_STALE_ATTESTATION',
      'an old attestation',
    );
    const forged = ledger.recover(alice.id, next);
    expectReject(
      t,
      ledger,
      ledger.sign(next, 'subject.recover', { ...forged.body, encKey: chain.keys('other').encPub }),
      'LEDGER_BAD_ATTESTATION',
      'keys the registrar did not attest',
    );
    expectReject(
      t,
      ledger,
      ledger.recover(alice.id, chain.subjects[1]!),
      'LEDGER_KEY_IN_USE',
      "another subject's key",
    );
    const first = ledger.recover(alice.id, next);
    ledger.commit([first]);
    const recovered = ledger.subject(alice.id)!;
    t.equal(recovered.signKey, next.pub, 'her new signing key is bound to her id');
    t.equal(recovered.previousKeys?.[0]?.signKey, alice.pub, 'the old one is kept on record');

    // Her grant made before stands; her old key can do nothing; her new key acts for her.
    expectReject(
      t,
      ledger,
      ledger.revoke(alice, grant),
      'LEDGER_NOT_SUBJECT',
      'the lost key revokes nothing',
    );
    const fresh = ledger.openRequest(bank, alice.id, { types: ['tax'] });
    ledger.commit([fresh]);
    ledger.commit([ledger.putRecord(chain.extractorFor('tax'), txHash(fresh), 'tax')]);
    ledger.commit([ledger.grant(next, txHash(fresh), { types: ['tax'] })]);
    t.ok(ledger.request(txHash(fresh))?.grant, 'a subject recovered through her registrar can grant again');
    ledger.commit([ledger.usage(bank, grant)]);
    t.equal(ledger.grantState(grant)?.used, 1, 'and the grant from before her recovery is still used');

    // An attestation issued before her latest recovery is never good again.
    ledger.advance(5000);
    const again = chain.keys('alice-third');
    const old = ledger.recover(alice.id, again, { issued: ledger.now - 10_000 });
    expectReject(t, ledger, old, 'LEDGER_STALE_ATTESTATION', 'an attestation older than her current keys');
  },
);

t.test('record.refresh: only records wrapped to a key she recovered away from', async (t) => {
  // The full behaviour is in re-extraction.test.ts; here its codes count for the coverage below.
  const { chain, ledger, bank, alice } = setup();
  const { request } = ledger.requestWithRecords(bank, alice, ['tax']);
  expectReject(
    t,
    ledger,
    ledger.refreshRecords(alice, request, ['tax']),
    'LEDGER_RECORD_CURRENT',
    'a record wrapped to her current key',
  );
  const next = chain.keys('alice-next');
  ledger.commit([ledger.recover(alice.id, next)]);
  expectAccept(t, ledger, ledger.refreshRecords(next, request, ['tax']), 'once she recovered');
  const fresh = ledger.openRequest(bank, alice.id, { types: ['tax'] });
  ledger.commit([fresh]);
  expectReject(
    t,
    ledger,
    ledger.putRecord(chain.extractorFor('tax'), txHash(fresh), 'tax', { subjectKey: alice.encPub }),
    'LEDGER_SUBJECT_KEY_STALE',
    'a record sealed to the key she lost',
  );
});

t.test('every rejection code of the state machine is exercised', async (t) => {
  const source = readFileSync(new URL('../../../src/ledger/state-machine.ts', import.meta.url), 'utf8');
  const codes = new Set([...source.matchAll(/reject\(\s*'([A-Z_]+)'/g)].map((m) => m[1]!));
  t.ok(codes.size >= 30, `found ${codes.size} codes in the source`);
  const missing = [...codes].filter((c) => !covered.has(c)).sort();
  t.same(missing, [], 'codes without a test that triggers them');
});
