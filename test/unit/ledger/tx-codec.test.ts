import t from 'tap';
import { bytesToHex, fromHex } from '../../../src/common/bytes.js';
import { canonicalize } from '../../../src/common/canonical.js';
import { sign } from '../../../src/common/crypto.js';
import { verifyFast } from '../../../src/common/crypto-node.js';
import {
  type AnyTx,
  BODY_SCHEMAS,
  decodeTx,
  MAX_TX_BYTES,
  signTx,
  TX_KINDS,
  type TxKind,
  txBytes,
  txHash,
  txSigningBytes,
  verifyTxSignature,
} from '../../../src/ledger/index.js';
import { deriveKeys, fakeWrappedKey, hexOf, makeTestChain } from '../../helpers/chain.js';
import { oneOfEachKind, TestLedger } from '../../helpers/ledger.js';

const MALFORMED = { code: 'LEDGER_TX_MALFORMED' };

const chain = makeTestChain();
const ledger = new TestLedger(chain, { registerSubjects: false });
const samples = oneOfEachKind(ledger);

type Json = Record<string, unknown>;
type JsonTx = Json & { body: Json };
const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
/** A deep copy of `tx` as plain JSON, free to be mangled. */
const mangle = (tx: AnyTx): JsonTx => JSON.parse(JSON.stringify(tx)) as JsonTx;

/** A JSON value of a different type than `v`. */
function wrongTypeOf(v: unknown): unknown {
  if (typeof v === 'string') return 12345;
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return 'not-an-array';
  if (v !== null && typeof v === 'object') return 'not-an-object';
  return { x: 1 };
}

t.test('every kind has a sample, and each decodes to itself', async (t) => {
  t.same(Object.keys(samples).sort(), [...TX_KINDS].sort());
  for (const kind of TX_KINDS) {
    const tx = samples[kind];
    t.same(decodeTx(copy(tx)), tx, `${kind} decodes`);
    t.ok(verifyTxSignature(tx), `${kind} signature verifies`);
  }
});

t.test('decodeTx: body off-schema for every kind', async (t) => {
  for (const kind of TX_KINDS) {
    const tx = samples[kind] as AnyTx;
    const body = tx.body as Json;
    const required = new Set<string>(BODY_SCHEMAS[kind].required ?? []);

    const extra = mangle(tx);
    extra.body.extra = 'field';
    t.throws(() => decodeTx(extra), MALFORMED, `${kind}: extra body field`);

    for (const field of Object.keys(body)) {
      const wrong = mangle(tx);
      wrong.body[field] = wrongTypeOf(body[field]);
      t.throws(() => decodeTx(wrong), MALFORMED, `${kind}: wrong type for ${field}`);

      const oversize = mangle(tx);
      oversize.body[field] = typeof body[field] === 'number' ? 2 ** 60 : 'a'.repeat(20_000);
      t.throws(
        () => decodeTx(oversize),
        { code: /^LEDGER_TX_(MALFORMED|TOO_LARGE)$/ },
        `${kind}: oversize ${field}`,
      );

      const missing = mangle(tx);
      delete missing.body[field];
      if (required.has(field)) t.throws(() => decodeTx(missing), MALFORMED, `${kind}: missing ${field}`);
      else t.doesNotThrow(() => decodeTx(missing), `${kind}: ${field} is optional`);
    }
    for (const field of required) t.ok(field in body, `${kind}: sample has required ${field}`);

    const bodyArray = { ...copy(tx), body: [] };
    t.throws(() => decodeTx(bodyArray), MALFORMED, `${kind}: body is an array`);
    const otherKind = { ...copy(tx), kind: kind === 'institution.retire' ? 'revoke' : 'institution.retire' };
    t.throws(() => decodeTx(otherKind), MALFORMED, `${kind}: body checked against the stated kind`);
  }
});

t.test('decodeTx: field-level rules', async (t) => {
  const open = samples['request.open'];
  const grant = samples.grant;
  const put = samples['record.put'];
  const cases: [string, unknown][] = [
    [
      'request.open: field column not matching its pattern',
      { ...open, body: { ...open.body, fields: { 'bad column!': 'tax.x' } } },
    ],
    [
      'request.open: field column with a non-string source',
      { ...open, body: { ...open.body, fields: { 'a b': 5 } } },
    ],
    [
      'request.open: field source without a type prefix',
      { ...open, body: { ...open.body, fields: { col: 'nodot' } } },
    ],
    ['request.open: unknown data type', { ...open, body: { ...open.body, types: ['medical'] } }],
    ['request.open: duplicate types', { ...open, body: { ...open.body, types: ['tax', 'tax'] } }],
    ['request.open: no types', { ...open, body: { ...open.body, types: [] } }],
    ['request.open: empty purpose', { ...open, body: { ...open.body, purpose: '' } }],
    ['request.open: bad date', { ...open, body: { ...open.body, dataFrom: '2020/01/01' } }],
    ['request.open: unknown format', { ...open, body: { ...open.body, format: 'pdf' } }],
    [
      'request.open: too many fields',
      {
        ...open,
        body: {
          ...open.body,
          fields: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`c${i}`, 'tax.x'])),
        },
      },
    ],
    ['request.open: subject id with upper case', { ...open, body: { ...open.body, subject: 'Subject-0' } }],
    ['record.put: size 0', { ...put, body: { ...put.body, size: 0 } }],
    ['record.put: fractional size', { ...put, body: { ...put.body, size: 1.5 } }],
    [
      'record.put: digest upper case',
      { ...put, body: { ...put.body, digest: put.body.digest.toUpperCase() } },
    ],
    [
      'record.put: wrapped key with extra field',
      { ...put, body: { ...put.body, key: { ...put.body.key, x: 'y' } } },
    ],
    [
      'record.put: wrapped key not base64url',
      { ...put, body: { ...put.body, key: { ...put.body.key, ct: 'a+b/' } } },
    ],
    ['grant: zero uses', { ...grant, body: { ...grant.body, uses: 0 } }],
    // A subject id shaped like a national ID number (18 or 15 characters) could carry one.
    ...['110101199003074578', '11010119900307457x', '110101900307457'].flatMap((id): [string, unknown][] => [
      [`request.open: subject id ${id}`, { ...open, body: { ...open.body, subject: id } }],
      [
        `subject.register: subject id ${id}`,
        { ...samples['subject.register'], body: { ...samples['subject.register'].body, subject: id } },
      ],
    ]),
    [
      'grant: more keys than data types',
      { ...grant, body: { ...grant.body, keys: Array.from({ length: 5 }, () => grant.body.keys[0]!) } },
    ],
    ['grant: no grantee key', { ...grant, body: { ...grant.body, granteeKey: undefined } }],
    ['grant: grantee key not hex', { ...grant, body: { ...grant.body, granteeKey: 'x'.repeat(64) } }],
    ['grant: no institution', { ...grant, body: { ...grant.body, institution: undefined } }],
    ['usage: no bundle', { ...samples.usage, body: { ...samples.usage.body, bundle: undefined } }],
    ['grant: negative expiry', { ...grant, body: { ...grant.body, expires: -1 } }],
    ['grant: lone surrogate in purpose', { ...grant, body: { ...grant.body, purpose: 'x\ud800' } }],
  ];
  for (const [name, input] of cases) t.throws(() => decodeTx(input), MALFORMED, name);
});

t.test('decodeTx: envelope off-schema', async (t) => {
  const tx = samples.revoke;
  const cases: [string, unknown][] = [
    ['null', null],
    ['a string', 'tx'],
    ['an array', [tx]],
    ['extra envelope field', { ...tx, extra: 1 }],
    ['version 2', { ...tx, v: 2 }],
    ['unknown kind', { ...tx, kind: 'mint' }],
    ['chain id with upper case', { ...tx, chain: 'Test-chain' }],
    ['signer upper case', { ...tx, signer: tx.signer.toUpperCase() }],
    ['signer too short', { ...tx, signer: tx.signer.slice(2) }],
    ['nonce too short', { ...tx, nonce: 'abcd' }],
    ['nonce too long', { ...tx, nonce: 'a'.repeat(66) }],
    ['expires as string', { ...tx, expires: String(tx.expires) }],
    ['expires fractional', { ...tx, expires: tx.expires + 0.5 }],
    ['expires negative', { ...tx, expires: -1 }],
    ['sig wrong length', { ...tx, sig: tx.sig.slice(2) }],
    ['missing sig', { ...tx, sig: undefined }],
    ['missing body', { ...tx, body: undefined }],
  ];
  for (const [name, input] of cases) t.throws(() => decodeTx(input), MALFORMED, name);
});

t.test('decodeTx: the largest schema-valid transactions stay under MAX_TX_BYTES', async (t) => {
  const keys = Array.from({ length: 4 }, (_, i) => ({
    record: hexOf(`big/${i}`),
    key: fakeWrappedKey(`${i}`),
  }));
  const big = ledger.grant(chain.subjects[0]!, hexOf('r'), {
    types: ['tax', 'property', 'social-insurance', 'housing-fund'],
    purpose: 'p'.repeat(200),
    keys,
  });
  t.ok(canonicalize(big).length < MAX_TX_BYTES, 'largest grant is under the limit');
  const fields = Object.fromEntries(
    Array.from({ length: 64 }, (_, i) => [`c${i}`.padEnd(64, 'x'), `tax.${'v'.repeat(90)}${i}`]),
  );
  const open = ledger.openRequest(chain.institutions[0]!, 'subject-0', {
    types: ['tax'],
    fields,
    purpose: 'p'.repeat(200),
  });
  // The largest request.open the schema allows still fits: its limits are the binding ones.
  t.ok(canonicalize(open).length < MAX_TX_BYTES, 'largest request.open is under the limit');
  t.doesNotThrow(() => decodeTx(copy(open)), 'and decodes');
});

t.test('signatures: sign/verify round trip and tampering', async (t) => {
  const alice = deriveKeys('codec', 'alice');
  const mallory = deriveKeys('codec', 'mallory');
  const tx = signTx(
    {
      chain: chain.genesis.chain,
      kind: 'revoke',
      body: { grant: hexOf('g') },
      expires: 2e12,
      nonce: 'ab'.repeat(8),
    },
    alice.signing.publicKey,
    alice.signing.secretKey,
  );
  t.ok(verifyTxSignature(tx), 'portable verifier');
  t.ok(verifyTxSignature(tx, verifyFast), 'OpenSSL verifier');
  const cases: [string, typeof tx][] = [
    ['body changed', { ...tx, body: { grant: hexOf('h') } }],
    ['expiry changed', { ...tx, expires: tx.expires + 1 }],
    ['nonce changed', { ...tx, nonce: 'cd'.repeat(8) }],
    ['chain changed', { ...tx, chain: 'other-chain' }],
    ['signer changed', { ...tx, signer: mallory.pub }],
    [
      'signed by someone else',
      { ...tx, sig: bytesToHex(sign(txSigningBytes(tx), mallory.signing.secretKey)) },
    ],
  ];
  for (const [name, bad] of cases) {
    t.notOk(verifyTxSignature(bad), `portable: ${name}`);
    t.notOk(verifyTxSignature(bad, verifyFast), `OpenSSL: ${name}`);
  }
  t.equal(tx.expires, 2e12, 'explicit expiry kept');
  const defaulted = signTx(
    { chain: 'abc', kind: 'revoke', body: { grant: hexOf('g') } },
    alice.signing.publicKey,
    alice.signing.secretKey,
    1000,
  );
  t.equal(defaulted.expires, 1000 + 10 * 60 * 1000, 'default expiry is now + 10 minutes');
  t.match(defaulted.nonce, /^[0-9a-f]{32}$/, 'default nonce is 16 random bytes');
});

t.test('txHash: stable, independent of the signature and of key order', async (t) => {
  for (const kind of TX_KINDS) {
    const tx = samples[kind as TxKind];
    const h = txHash(tx);
    t.match(h, /^[0-9a-f]{64}$/, `${kind}: hex`);
    t.equal(txHash(copy(tx)), h, `${kind}: survives JSON`);
    t.equal(txHash({ ...tx, sig: '00'.repeat(64) } as AnyTx), h, `${kind}: independent of sig`);
    const reordered = Object.fromEntries(Object.entries(copy(tx)).reverse()) as AnyTx;
    t.equal(txHash(reordered), h, `${kind}: independent of key order`);
    t.not(txHash({ ...tx, nonce: 'ff'.repeat(8) } as AnyTx), h, `${kind}: nonce changes it`);
  }
  t.not(txBytes(samples.revoke), txSigningBytes(samples.revoke), 'tx bytes include the signature');
});

// A fixed transaction whose signing bytes, hash and signature a browser implementation must
// reproduce exactly (signer: RFC 8032 TEST 1 key). Hash and signature were cross-checked with
// Python's hashlib and pyca/cryptography over the expected text below.
const KAT_HASH = '4372bb9077ba043b8cfa9c11e6233497fdc2d9af386c59d76b4f5deee11d94e2';
const KAT_SIG =
  '86776fabb7dfe300ce49212004217e3d61c0c406f2faca0135cdf7cfbe94e7d036cf986be7c2e4f3e05195dd56497854bc894da53208b181963354a4ed8fc007';

t.test('known answer: txSigningBytes, txHash and signature of a fixed tx', async (t) => {
  const secret = fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
  const pub = fromHex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
  const tx = signTx(
    {
      chain: 'kat-chain',
      kind: 'request.open',
      nonce: '00112233445566778899aabbccddeeff',
      expires: 1_700_000_060_000,
      body: {
        subject: 'subject-0',
        types: ['tax', 'social-insurance'],
        purpose: '住房贷款 — mortgage ✓',
        format: 'csv',
        fields: { taxPaid: 'tax.totalPaid', Monthly: 'social-insurance.monthly' },
        dataFrom: '2020-01-01',
        consentBy: 1_700_604_800_000,
      },
    },
    pub,
    secret,
  );
  const expectedText =
    'datagrant/tx/v1\n' +
    '{"body":{"consentBy":1700604800000,"dataFrom":"2020-01-01",' +
    '"fields":{"Monthly":"social-insurance.monthly","taxPaid":"tax.totalPaid"},"format":"csv",' +
    '"purpose":"住房贷款 — mortgage ✓","subject":"subject-0","types":["tax","social-insurance"]},' +
    '"chain":"kat-chain","expires":1700000060000,"kind":"request.open",' +
    '"nonce":"00112233445566778899aabbccddeeff",' +
    '"signer":"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a","v":1}';
  t.equal(new TextDecoder().decode(txSigningBytes(tx)), expectedText, 'signing bytes');
  t.equal(txHash(tx), KAT_HASH, 'tx hash');
  t.equal(tx.sig, KAT_SIG, 'signature');
  t.ok(verifyTxSignature(decodeTx(copy(tx))), 'verifies after decoding');
});

t.test('wrapped-key fixture used by helpers passes the schema', async (t) => {
  const put = ledger.putRecord(chain.validators[0]!, hexOf('x'), 'tax', { key: fakeWrappedKey('k') });
  t.doesNotThrow(() => decodeTx(copy(put)));
});

t.test('encodings are assembled once per object and equal the canonical encoding', async (t) => {
  const { canonicalBytes } = await import('../../../src/common/canonical.js');
  const { concatBytes, utf8ToBytes } = await import('../../../src/common/bytes.js');
  const fc = (await import('fast-check')).default;
  const { canonicalValue, unicodeString } = await import('../../helpers/arbitraries.js');
  const domain = utf8ToBytes('datagrant/tx/v1\n');
  const signingOf = (tx: AnyTx) => {
    const { v, chain: c, kind, signer, nonce, expires, body } = tx;
    return concatBytes(domain, canonicalBytes({ v, chain: c, kind, signer, nonce, expires, body }));
  };
  for (const kind of TX_KINDS) {
    const tx = copy(samples[kind]) as AnyTx;
    t.same(txBytes(tx), canonicalBytes(tx), `${kind}: txBytes is the canonical encoding`);
    t.same(txSigningBytes(tx), signingOf(tx), `${kind}: signing bytes are the canonical unsigned envelope`);
    t.equal(txBytes(tx), txBytes(tx), `${kind}: computed once per object`);
  }
  // Bodies with any canonical values and keys that sort around the envelope's ("sig", "signer").
  fc.assert(
    fc.property(
      fc.dictionary(
        fc.oneof(fc.constantFrom('sig', 'signer', 'a', 'z', '"'), unicodeString()),
        canonicalValue,
      ),
      unicodeString(),
      (body, nonce) => {
        const tx = { ...copy(samples['institution.add']), body, nonce } as unknown as AnyTx;
        const fresh = copy(tx);
        return (
          Buffer.from(txBytes(tx)).equals(Buffer.from(canonicalBytes(fresh))) &&
          Buffer.from(txSigningBytes(tx)).equals(Buffer.from(signingOf(fresh)))
        );
      },
    ),
  );
  const extra = { ...copy(samples.deny), extra: 1 } as unknown as AnyTx;
  t.same(txBytes(extra), canonicalBytes(extra), 'a non-envelope object is encoded as it is');
  const { sig: _sig, ...unsigned } = copy(samples.deny);
  t.same(
    txBytes({ ...unsigned, other: 'x' } as unknown as AnyTx),
    canonicalBytes({ ...unsigned, other: 'x' }),
  );
});
