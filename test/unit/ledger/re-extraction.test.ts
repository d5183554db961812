/**
 * `record.refresh`: a subject who recovered her keys through her registrar has the records of a
 * request still wrapped to the key she lost set aside and re-extracted, so she can grant them with
 * her new key. Only her current key asks it, only for records wrapped to a key that is no longer
 * hers, only while the request can still take records; the old records stay on record (superseded,
 * erased) and the refresh is on her audit trail.
 */
import t from 'tap';
import {
  applyTx,
  type RecordState,
  requestStatus,
  StateOverlay,
  stateKey,
  txHash,
  txParties,
} from '../../../src/ledger/index.js';
import { makeTestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

function setup(extraction: 'on-request' | 'on-consent' = 'on-request') {
  const chain = makeTestChain({ params: { extraction } });
  const ledger = new TestLedger(chain);
  const alice = chain.subjects[0]!;
  const next = chain.keys('alice-next');
  return { chain, ledger, bank: chain.institutions[0]!, alice, next };
}

/** The code `tx` is refused with in the next block (nothing written), or 'accepted'. */
function outcomeOf(ledger: TestLedger, tx: Parameters<TestLedger['try']>[0], time = ledger.now): string {
  const overlay = new StateOverlay(ledger.state);
  const outcome = applyTx(overlay, tx, ledger.ctx(time), ledger.chain.config);
  if (outcome.ok) return 'accepted';
  return overlay.writes.size === 0 ? outcome.code : `${outcome.code} (with writes)`;
}

t.test('a record wrapped to her lost key is set aside and the type reopened', async (t) => {
  const { chain, ledger, bank, alice, next } = setup();
  const { request, records } = ledger.requestWithRecords(bank, alice, ['social-insurance', 'tax']);
  const oldTax = records.tax!;
  t.equal(
    ledger.record(oldTax)?.subjectKey,
    undefined,
    'a put naming no key records none (it writes what older puts wrote; judged by height)',
  );
  t.equal(
    outcomeOf(ledger, ledger.refreshRecords(alice, request, ['tax'])),
    'LEDGER_RECORD_CURRENT',
    'before she recovers, her records are wrapped to her current key',
  );

  ledger.commit([ledger.recover(alice.id, next)]);
  t.equal(
    outcomeOf(ledger, ledger.refreshRecords(alice, request, ['tax'])),
    'LEDGER_NOT_SUBJECT',
    'the lost key asks nothing',
  );
  t.equal(
    outcomeOf(ledger, ledger.refreshRecords(chain.subjects[1]!, request, ['tax'])),
    'LEDGER_NOT_SUBJECT',
    'nor does another subject',
  );
  t.equal(
    outcomeOf(ledger, ledger.refreshRecords(next, request, ['property'])),
    'LEDGER_TYPE_NOT_REQUESTED',
    'a type the request does not ask for',
  );
  t.equal(
    outcomeOf(ledger, ledger.refreshRecords(next, 'ab'.repeat(32), ['tax'])),
    'LEDGER_UNKNOWN_REQUEST',
    'an unknown request',
  );

  const refresh = ledger.refreshRecords(next, request, ['tax']);
  const outcome = ledger.try(refresh);
  t.match(outcome, { ok: true, subject: alice.id }, 'accepted, and on her audit trail');
  t.same(txParties(ledger.state, refresh), { subject: alice.id, institution: bank.id }, 'parties');
  ledger.commit([refresh]);

  const after = ledger.request(request)!;
  t.equal(after.records.tax, undefined, 'the tax record is detached from the request');
  t.equal(after.records['social-insurance'], records['social-insurance'], 'the other record is left alone');
  t.same(after.superseded, { tax: [oldTax] }, 'the old digest stays on the request, as superseded');
  t.equal(after.reopenedAt, ledger.now - 1000, 'reopened at the block time of the refresh');
  t.equal(after.decision, 'pending', 'still awaiting her consent');
  t.equal(requestStatus(after, undefined, ledger.now), 'waiting-for-data', 'waiting for the new record');
  const old = ledger.record(oldTax)!;
  t.equal(old.erased, true, 'the old record is erased (its ciphertext is swept)');
  t.same(old.superseded, { by: txHash(refresh), height: ledger.height }, 'and marked superseded');

  t.equal(
    outcomeOf(ledger, ledger.grant(next, request, { types: ['tax'], keys: [] })),
    'LEDGER_RECORD_MISSING',
    'no tax record to grant until it is extracted again',
  );
  const extractor = chain.extractorFor('tax');
  t.equal(
    outcomeOf(ledger, ledger.putRecord(extractor, request, 'tax', { subjectKey: alice.encPub })),
    'LEDGER_SUBJECT_KEY_STALE',
    'a record sealed to her lost key is refused',
  );
  const put = ledger.putRecord(extractor, request, 'tax', { subjectKey: next.encPub });
  ledger.commit([put]);
  t.equal(ledger.request(request)?.records.tax, put.body.digest, 'the new record is on the request');
  t.equal(ledger.record(put.body.digest)?.subjectKey, next.encPub, 'wrapped to her new key');
  t.equal(
    outcomeOf(ledger, ledger.refreshRecords(next, request, ['tax'])),
    'LEDGER_RECORD_CURRENT',
    'a record wrapped to her current key is not re-extracted',
  );
  t.equal(
    outcomeOf(ledger, ledger.refreshRecords(next, request, ['social-insurance', 'tax'])),
    'LEDGER_RECORD_CURRENT',
    'one current record refuses the whole refresh',
  );
  // The other one can still be refreshed; then she grants both with her new key.
  ledger.commit([ledger.refreshRecords(next, request, ['social-insurance'])]);
  ledger.commit([ledger.putRecord(chain.extractorFor('social-insurance'), request, 'social-insurance')]);
  const g = ledger.grant(next, request);
  ledger.commit([g]);
  t.same(ledger.grantState(txHash(g))?.types, ['social-insurance', 'tax'], 'she grants with her new key');
  ledger.commit([ledger.usage(bank, txHash(g))]);
  t.equal(ledger.grantState(txHash(g))?.used, 1, 'and the institution uses the grant');

  // Erasing the request erases the new records; the superseded ones were already.
  ledger.commit([ledger.erase(next, request)]);
  t.equal(ledger.record(put.body.digest)?.erased, true, 'erase covers the re-extracted record');
  t.same(ledger.request(request)?.superseded?.tax, [oldTax], 'the superseded digest stays on the ledger');
});

t.test('a refresh only while the request can still take records', async (t) => {
  const { chain, ledger, bank, alice, next } = setup();
  const a = ledger.requestWithRecords(bank, alice, ['tax']);
  const b = ledger.requestWithRecords(bank, alice, ['tax']);
  const c = ledger.requestWithRecords(bank, alice, ['tax']);
  const d = ledger.requestWithRecords(bank, alice, ['tax'], { consentBy: ledger.now + 60_000 });
  const failed = ledger.openRequest(bank, alice, { types: ['tax'] });
  ledger.commit([failed]);
  ledger.commit([ledger.failRecord(chain.extractorFor('tax'), txHash(failed), 'tax')]);
  ledger.commit([
    ledger.deny(alice, a.request),
    ledger.erase(alice, b.request),
    ledger.grant(alice, c.request),
  ]);
  ledger.commit([ledger.recover(alice.id, next)]);
  for (const [request, code, why] of [
    [a.request, 'LEDGER_REQUEST_CLOSED', 'a denied request'],
    [b.request, 'LEDGER_REQUEST_CLOSED', 'an erased request'],
    [c.request, 'LEDGER_REQUEST_CLOSED', 'a request she already granted (the grant carries its keys)'],
    [txHash(failed), 'LEDGER_RECORD_MISSING', 'a type whose extraction failed has no record'],
  ] as const)
    t.equal(outcomeOf(ledger, ledger.refreshRecords(next, request, ['tax'])), code, why);
  t.equal(outcomeOf(ledger, ledger.refreshRecords(next, d.request, ['tax'])), 'accepted', 'before consentBy');
  ledger.advance(60_000);
  t.equal(
    outcomeOf(ledger, ledger.refreshRecords(next, d.request, ['tax'])),
    'LEDGER_REQUEST_EXPIRED',
    'not once its consent deadline has passed',
  );
});

t.test('a record that names no key counts by height against her latest recovery', async (t) => {
  const { ledger, bank, alice, next } = setup();
  const { request, records } = ledger.requestWithRecords(bank, alice, ['tax']);
  // A record put before the ledger kept the key it is wrapped to.
  const { subjectKey: _key, ...legacy } = ledger.record(records.tax!)!;
  ledger.state.load(stateKey.record(records.tax!), legacy as RecordState as never);
  t.equal(
    outcomeOf(ledger, ledger.refreshRecords(alice, request, ['tax'])),
    'LEDGER_RECORD_CURRENT',
    'put while her keys stood',
  );
  ledger.commit([ledger.recover(alice.id, next)]);
  t.equal(
    outcomeOf(ledger, ledger.refreshRecords(next, request, ['tax'])),
    'accepted',
    'put before she recovered',
  );
});

t.test('on-consent: a live grant has the records of its types re-extracted', async (t) => {
  const { chain, ledger, bank, alice, next } = setup('on-consent');
  const open = ledger.openRequest(bank, alice, { types: ['tax', 'social-insurance'] });
  ledger.commit([open]);
  const request = txHash(open);
  ledger.commit([ledger.recover(alice.id, next)]);
  t.equal(
    outcomeOf(ledger, ledger.refreshRecords(next, request, ['tax'])),
    'LEDGER_NOT_GRANTED',
    'nothing is extracted before her consent',
  );
  const g = ledger.grant(next, request, { types: ['tax'] });
  ledger.commit([g]);
  // Sealed to her old key while she recovered (no key named).
  const stale = ledger.putRecord(chain.extractorFor('tax'), request, 'tax');
  ledger.commit([stale]);
  ledger.state.load(stateKey.record(stale.body.digest), {
    ...ledger.record(stale.body.digest)!,
    subjectKey: alice.encPub,
  } as never);
  t.equal(
    outcomeOf(ledger, ledger.refreshRecords(next, request, ['social-insurance'])),
    'LEDGER_TYPE_NOT_GRANTED',
    'a type the grant does not cover',
  );
  ledger.commit([ledger.refreshRecords(next, request, ['tax'])]);
  t.equal(ledger.request(request)?.records.tax, undefined, 'reopened for the extractors');
  ledger.commit([ledger.putRecord(chain.extractorFor('tax'), request, 'tax', { subjectKey: next.encPub })]);
  ledger.commit([ledger.usage(bank, txHash(g))]);
  t.equal(ledger.grantState(txHash(g))?.used, 1, 'the grant releases the new record');
  ledger.commit([ledger.revoke(next, txHash(g))]);
  t.equal(
    outcomeOf(ledger, ledger.refreshRecords(next, request, ['tax'])),
    'LEDGER_GRANT_REVOKED',
    'not under a revoked grant',
  );
  t.throws(
    () => ledger.commit([ledger.refreshRecords(next, request, ['tax'])]),
    { code: 'LEDGER_GRANT_REVOKED' },
    'a block with it is refused',
  );
});
