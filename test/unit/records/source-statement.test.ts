/**
 * Source statements: the exact signed bytes, signing and verification (a flipped bit anywhere, or
 * another key, fails), the commitment `record.put` carries, parsing of untrusted statements, and
 * the registry check the bank client applies.
 */
import t from 'tap';
import { bytesToHex, fromHex, utf8ToBytes } from '../../../src/common/bytes.js';
import { sha256Hex } from '../../../src/common/crypto.js';
import {
  parseSignedSourceStatement,
  type SourceStatement,
  signSourceStatement,
  sourceStatementBytes,
  sourceStatementCommitment,
  sourceStatementProblem,
  verifySourceStatement,
} from '../../../src/records/source-statement.js';
import { deriveKeys } from '../../helpers/chain.js';

const source = deriveKeys('statement-test', 'tax-office');
const other = deriveKeys('statement-test', 'other-office');
const content = utf8ToBytes('{"data":{"annualIncome":123456}}');
const statement: SourceStatement = {
  v: 1,
  source: 'tax-office',
  subject: 'subject-0',
  type: 'tax',
  from: '2024-01-01',
  to: '2024-12-31',
  digest: sha256Hex(content),
  time: 1_700_000_000_123,
};

t.test('the signed bytes are the domain tag line and canonical JSON', async (t) => {
  const text = new TextDecoder().decode(sourceStatementBytes(statement));
  t.equal(
    text,
    `datagrant/source-statement/v1\n{"digest":"${statement.digest}","from":"2024-01-01","source":"tax-office","subject":"subject-0","time":1700000000123,"to":"2024-12-31","type":"tax","v":1}`,
  );
  const { from: _f, to: _t, ...noPeriod } = statement;
  t.notMatch(new TextDecoder().decode(sourceStatementBytes(noPeriod)), /from|"to"/, 'no period: no fields');
});

t.test('a signature verifies under its key only, and not after any bit is flipped', async (t) => {
  const signed = signSourceStatement(statement, source.signing.secretKey);
  t.ok(verifySourceStatement(signed, source.pub), 'the source key verifies');
  t.notOk(verifySourceStatement(signed, other.pub), 'another key does not');
  t.notOk(verifySourceStatement(signed, 'zz'.repeat(32)), 'a key that is not hex does not (no throw)');

  const sig = fromHex(signed.sig, 'sig', 64);
  for (const bit of [0, 7, 100, 255, 300, 511]) {
    const flipped = sig.slice();
    flipped[bit >> 3]! ^= 1 << (bit & 7);
    t.notOk(verifySourceStatement({ ...signed, sig: bytesToHex(flipped) }, source.pub), `sig bit ${bit}`);
  }
  const changes: Partial<SourceStatement>[] = [
    { subject: 'subject-1' },
    { type: 'housing-fund' },
    { from: '2024-01-02' },
    { to: undefined },
    { digest: sha256Hex(utf8ToBytes('{"data":{"annualIncome":123457}}')) },
    { time: statement.time + 1 },
    { source: 'other-office' },
  ];
  for (const change of changes) {
    const changed = { ...signed, statement: { ...signed.statement, ...change } };
    if (change.to === undefined && 'to' in change) delete changed.statement.to;
    t.notOk(verifySourceStatement(changed, source.pub), `statement changed: ${Object.keys(change)[0]}`);
  }
});

t.test('the commitment covers statement and signature', async (t) => {
  const signed = signSourceStatement(statement, source.signing.secretKey);
  const c = sourceStatementCommitment(signed);
  t.match(c, /^[0-9a-f]{64}$/);
  t.not(c, sha256Hex(sourceStatementBytes(statement)), 'not the hash of the statement alone');
  const bySomeoneElse = signSourceStatement(statement, other.signing.secretKey);
  t.not(sourceStatementCommitment(bySomeoneElse), c, 'another signature, another commitment');
  t.equal(sourceStatementCommitment(structuredClone(signed)), c, 'deterministic');
});

t.test('untrusted statements are parsed strictly', async (t) => {
  const signed = signSourceStatement(statement, source.signing.secretKey);
  t.same(parseSignedSourceStatement(JSON.parse(JSON.stringify(signed))), signed);
  const bad: unknown[] = [
    null,
    { statement: signed.statement },
    { ...signed, sig: 'ab' },
    { ...signed, extra: 1 },
    { ...signed, statement: { ...signed.statement, v: 2 } },
    { ...signed, statement: { ...signed.statement, type: 'salary' } },
    { ...signed, statement: { ...signed.statement, from: '1 Jan 2024' } },
    { ...signed, statement: { ...signed.statement, digest: 'AB'.repeat(32) } },
    { ...signed, statement: { ...signed.statement, time: 1.5 } },
    { ...signed, statement: { ...signed.statement, fields: {} } },
  ];
  for (const input of bad) t.throws(() => parseSignedSourceStatement(input), { code: 'RECORD_MALFORMED' });
});

t.test('the registry check: registered for the type, signed by its key, about this record', async (t) => {
  const signed = signSourceStatement(statement, source.signing.secretKey);
  const sources = [{ id: 'tax-office', key: source.pub, types: ['tax' as const] }];
  const expect = {
    subject: 'subject-0',
    type: 'tax' as const,
    from: '2024-01-01',
    to: '2024-12-31',
    digest: sha256Hex(content),
  };
  t.equal(sourceStatementProblem(signed, sources, expect), undefined, 'a genuine statement stands');
  t.equal(
    sourceStatementProblem(signed, [{ ...sources[0]!, types: ['property'] }], expect)?.code,
    'not-registered',
    'registered for another type only',
  );
  t.equal(sourceStatementProblem(signed, [], expect)?.code, 'not-registered', 'not registered at all');
  const forged = signSourceStatement(statement, other.signing.secretKey);
  t.equal(sourceStatementProblem(forged, sources, expect)?.code, 'forged', 'signed with another key');
  t.equal(
    sourceStatementProblem(signed, sources, { ...expect, subject: 'subject-1' })?.code,
    'mismatch',
    'about another subject',
  );
  t.equal(
    sourceStatementProblem(signed, sources, { ...expect, from: undefined })?.code,
    'mismatch',
    'about another period',
  );
  t.equal(
    sourceStatementProblem(signed, sources, { ...expect, digest: 'ab'.repeat(32) })?.code,
    'mismatch',
    'about other content',
  );
});
