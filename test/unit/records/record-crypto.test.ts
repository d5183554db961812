import { createDecipheriv } from 'node:crypto';
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305';
import { CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import t from 'tap';
import { fromBase64url, utf8ToBytes } from '../../../src/common/bytes.js';
import {
  generateEncryptionKeyPair,
  openPayload,
  sealPayload,
  sha256Hex,
  unwrapKey,
} from '../../../src/common/crypto.js';
import {
  openRecord,
  openRecordAs,
  RECORD_PAD_BYTES,
  type RecordPlaintext,
  recordContext,
  recordDigest,
  rewrapForGrantee,
  sealRecord,
  sourceCommitment,
  unwrapRecordKey,
} from '../../../src/records/record-crypto.js';

const REQUEST = 'ab'.repeat(32);
const record: RecordPlaintext = {
  type: 'tax',
  subject: 'alice-001',
  fields: { name: '周涵远', annualIncome: 349040, settled: true, note: null },
  source: 'http://127.0.0.1:1/v1/tax/alice-001',
  fetchedAt: 1_750_000_000_000,
  sourceDigest: 'cd'.repeat(32),
};

t.test('recordContext is the documented string and guards its parts', async (t) => {
  t.same(recordContext('dg-test', REQUEST, 'tax'), utf8ToBytes(`datagrant/record/v1|dg-test|${REQUEST}|tax`));
  t.throws(() => recordContext('Bad|Chain', REQUEST, 'tax'), {
    code: 'RECORD_BAD_CONTEXT',
    message: /chain/,
  });
  t.throws(() => recordContext('dg-test', 'xyz', 'tax'), {
    code: 'RECORD_BAD_CONTEXT',
    message: /requestId/,
  });
  t.throws(() => recordContext('dg-test', REQUEST, 'salary' as 'tax'), {
    code: 'RECORD_BAD_CONTEXT',
    message: /type/,
  });
});

t.test('seal, then open with the subject key', async (t) => {
  const subject = generateEncryptionKeyPair();
  const context = recordContext('dg-test', REQUEST, 'tax');
  const sealed = sealRecord(record, subject.publicKey, context);
  t.equal(sealed.digest, sha256Hex(sealed.ciphertext));
  t.equal(sealed.digest, recordDigest(sealed.ciphertext));
  t.equal(sealed.size, sealed.ciphertext.length);
  t.equal((sealed.size - 12 - 16) % RECORD_PAD_BYTES, 0, 'plaintext padded to the bucket size');
  t.same(openRecordAs(sealed.ciphertext, sealed.key, subject.secretKey, context), record);
  const dataKey = unwrapRecordKey(sealed.key, subject.secretKey, context);
  t.same(openRecord(sealed.ciphertext, dataKey, context), record);
  const plain = new TextDecoder().decode(openPayload(dataKey, sealed.ciphertext, context));
  t.match(plain, /^\{"fetchedAt":1750000000000,"fields":\{"annualIncome":349040,/, 'canonical JSON first');
  t.match(plain, / +$/, 'then padding');
  t.notOk(new TextDecoder().decode(sealed.ciphertext).includes('周涵远'), 'ciphertext hides the fields');
});

t.test('two seals of the same record differ (fresh key and nonce)', async (t) => {
  const subject = generateEncryptionKeyPair();
  const context = recordContext('dg-test', REQUEST, 'tax');
  const a = sealRecord(record, subject.publicKey, context);
  const b = sealRecord(record, subject.publicKey, context);
  t.not(a.digest, b.digest);
  t.not(a.key.ct, b.key.ct);
});

t.test('re-wrap to a grantee opens with the grantee key, not with a third key', async (t) => {
  const subject = generateEncryptionKeyPair();
  const grantee = generateEncryptionKeyPair();
  const third = generateEncryptionKeyPair();
  const context = recordContext('dg-test', REQUEST, 'tax');
  const sealed = sealRecord(record, subject.publicKey, context);
  const toGrantee = rewrapForGrantee(sealed.key, subject.secretKey, grantee.publicKey, context);
  t.same(openRecordAs(sealed.ciphertext, toGrantee, grantee.secretKey, context), record);
  t.throws(() => openRecordAs(sealed.ciphertext, toGrantee, third.secretKey, context), {
    code: 'CRYPTO_UNWRAP_FAILED',
  });
  t.throws(() => openRecordAs(sealed.ciphertext, sealed.key, grantee.secretKey, context), {
    code: 'CRYPTO_UNWRAP_FAILED',
  });
  t.throws(() => rewrapForGrantee(sealed.key, third.secretKey, grantee.publicKey, context), {
    code: 'CRYPTO_UNWRAP_FAILED',
  });
  const otherRequest = recordContext('dg-test', 'cd'.repeat(32), 'tax');
  t.throws(() => openRecordAs(sealed.ciphertext, toGrantee, grantee.secretKey, otherRequest), {
    code: 'CRYPTO_UNWRAP_FAILED',
  });
  const otherType = recordContext('dg-test', REQUEST, 'property');
  t.throws(() => rewrapForGrantee(sealed.key, subject.secretKey, grantee.publicKey, otherType), {
    code: 'CRYPTO_UNWRAP_FAILED',
  });
  const fixed = (n: number) => new Uint8Array(n).fill(7);
  t.same(
    rewrapForGrantee(sealed.key, subject.secretKey, grantee.publicKey, context, fixed),
    rewrapForGrantee(sealed.key, subject.secretKey, grantee.publicKey, context, fixed),
    'an injected random source gives reproducible output',
  );
});

t.test('a tampered ciphertext or a moved record fails to open', async (t) => {
  const subject = generateEncryptionKeyPair();
  const context = recordContext('dg-test', REQUEST, 'tax');
  const sealed = sealRecord(record, subject.publicKey, context);
  const dataKey = unwrapKey(sealed.key, subject.secretKey, context);
  for (const index of [0, 30, sealed.size - 1]) {
    const tampered = sealed.ciphertext.slice();
    tampered[index]! ^= 1;
    t.throws(
      () => openRecord(tampered, dataKey, context),
      { code: 'CRYPTO_DECRYPT_FAILED' },
      `flip byte ${index}`,
    );
  }
  t.throws(
    () => openRecord(sealed.ciphertext.subarray(0, 30), dataKey, context),
    { code: 'CRYPTO_DECRYPT_FAILED' },
    'truncated',
  );
  t.throws(() => openRecord(sealed.ciphertext, dataKey, recordContext('dg-test', REQUEST, 'property')), {
    code: 'CRYPTO_DECRYPT_FAILED',
  });
  t.throws(() => openRecord(sealed.ciphertext, dataKey, recordContext('dg-other', REQUEST, 'tax')), {
    code: 'CRYPTO_DECRYPT_FAILED',
  });
});

t.test('refuses what canonical JSON cannot sign, and malformed plaintexts', async (t) => {
  const subject = generateEncryptionKeyPair();
  const context = recordContext('dg-test', REQUEST, 'tax');
  t.throws(() => sealRecord({ ...record, fields: { area: 89.5 } }, subject.publicKey, context), {
    code: 'CANONICAL_UNSUPPORTED',
  });
  const key = new Uint8Array(32).fill(1);
  const cases: [string, unknown][] = [
    ['not JSON', null],
    ['array', []],
    ['bad type', { ...record, type: 'salary' }],
    ['bad fields', { ...record, fields: [1] }],
    ['nested field', { ...record, fields: { a: { b: 1 } } }],
    ['bad fetchedAt', { ...record, fetchedAt: 'now' }],
  ];
  for (const [label, value] of cases) {
    const bytes = value === null ? utf8ToBytes('{oops') : utf8ToBytes(JSON.stringify(value));
    t.throws(
      () => openRecord(sealPayload(key, bytes, context), key, context),
      { code: 'RECORD_MALFORMED' },
      label,
    );
  }
});

t.test(
  'a sealed record opens with independent implementations: @hpke/core and OpenSSL ChaCha20-Poly1305',
  async (t) => {
    // What a bank's Java or Go system does (docs/formats.md): HPKE-open the wrapped data key with
    // info = "datagrant/wrap/v2" || 0x00 || recipient key || context and aad = context, then open the
    // payload (12-byte nonce || ciphertext || tag) with ChaCha20-Poly1305, aad = context.
    const subject = generateEncryptionKeyPair();
    const bank = generateEncryptionKeyPair();
    const context = recordContext('dg-test', REQUEST, 'tax');
    const sealed = sealRecord(record, subject.publicKey, context, bank.publicKey);
    const suite = new CipherSuite({
      kem: new DhkemX25519HkdfSha256(),
      kdf: new HkdfSha256(),
      aead: new Chacha20Poly1305(),
    });
    for (const [who, keys, wrapped] of [
      ['the subject', subject, sealed.key],
      ['the grantee (on-consent wrap)', bank, sealed.granteeKey!],
    ] as const) {
      const info = new Uint8Array([...utf8ToBytes('datagrant/wrap/v2'), 0, ...keys.publicKey, ...context]);
      const recipientKey = await suite.kem.importKey('raw', keys.secretKey.slice().buffer, false);
      const dataKey = new Uint8Array(
        await suite.open(
          { recipientKey, enc: fromBase64url(wrapped.enc).slice().buffer, info: info.slice().buffer },
          fromBase64url(wrapped.ct).slice().buffer,
          context.slice().buffer,
        ),
      );
      const nonce = sealed.ciphertext.subarray(0, 12);
      const body = sealed.ciphertext.subarray(12, sealed.ciphertext.length - 16);
      const tag = sealed.ciphertext.subarray(sealed.ciphertext.length - 16);
      const decipher = createDecipheriv('chacha20-poly1305', dataKey, nonce, { authTagLength: 16 });
      decipher.setAAD(context, { plaintextLength: body.length });
      decipher.setAuthTag(tag);
      const plain = Buffer.concat([decipher.update(body), decipher.final()])
        .toString('utf8')
        .trimEnd();
      t.same(JSON.parse(plain), record, `${who}: @hpke/core unwraps, OpenSSL decrypts, the record is intact`);
    }
    const stranger = generateEncryptionKeyPair();
    const info = new Uint8Array([...utf8ToBytes('datagrant/wrap/v2'), 0, ...stranger.publicKey, ...context]);
    await t.rejects(
      suite.open(
        {
          recipientKey: await suite.kem.importKey('raw', stranger.secretKey.slice().buffer, false),
          enc: fromBase64url(sealed.key.enc).slice().buffer,
          info: info.slice().buffer,
        },
        fromBase64url(sealed.key.ct).slice().buffer,
        context.slice().buffer,
      ),
      'and not with anyone else key',
    );
  },
);

t.test('the source commitment: checked by whoever opens the record, opaque to anyone else', async (t) => {
  const subject = generateEncryptionKeyPair();
  const context = recordContext('dg-test', REQUEST, 'tax');
  const sealed = sealRecord(record, subject.publicKey, context);
  t.not(sealed.sourceCommitment, record.sourceDigest, 'the commitment is not the digest');
  const dataKey = unwrapRecordKey(sealed.key, subject.secretKey, context);
  t.equal(
    sourceCommitment(dataKey, record.sourceDigest),
    sealed.sourceCommitment,
    'recomputed with the data key',
  );
  t.not(sourceCommitment(dataKey, 'ce'.repeat(32)), sealed.sourceCommitment, 'another digest: another value');
  const other = sealRecord(record, subject.publicKey, context);
  t.not(other.sourceCommitment, sealed.sourceCommitment, 'the same answer sealed again commits differently');
  t.same(
    openRecordAs(sealed.ciphertext, sealed.key, subject.secretKey, context, {
      sourceCommitment: sealed.sourceCommitment,
    }),
    record,
    'opens when the commitment matches',
  );
  t.throws(
    () =>
      openRecordAs(sealed.ciphertext, sealed.key, subject.secretKey, context, {
        sourceCommitment: other.sourceCommitment,
      }),
    { code: 'RECORD_COMMITMENT_MISMATCH' },
    'refused against another commitment',
  );
});
