import '../../../src/common/polyfill.js';
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305';
import { CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { bytesToHex, concatBytes, fromHex, utf8ToBytes } from '../../../src/common/bytes.js';
import { activeX25519, randomBytes, useX25519, type X25519Impl } from '../../../src/common/crypto.js';
import { opensslX25519 } from '../../../src/common/crypto-node.js';
import {
  HPKE_KEM_SUITE_ID,
  HPKE_SUITE,
  HPKE_SUITE_ID,
  hpkeDeriveKeyPair,
  hpkeOpen,
  hpkeSeal,
  hpkeSetupBaseS,
} from '../../../src/common/hpke.js';
import { bytes, seed32 } from '../../helpers/arbitraries.js';

// RFC 9180 Appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, mode 0 (base),
// sequence number 0. Transcribed from the RFC's source (cfrg/draft-irtf-cfrg-hpke,
// draft-irtf-cfrg-hpke.md) and checked identical to hpkewg/hpke's draft-ietf-hpke-hpke.md.
const A21 = {
  info: '4f6465206f6e2061204772656369616e2055726e',
  ikmE: '909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b',
  pkEm: '1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a',
  skEm: 'f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600',
  ikmR: '1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df',
  pkRm: '4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a',
  skRm: '8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb',
  enc: '1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a',
  sharedSecret: '0bbe78490412b4bbea4812666f7916932b828bba79942424abb65244930d69a7',
  key: 'ad2744de8e17f4ebba575b3f5f5a8fa1f69c2a07f6e7500bc60ca6e3e3ec1c91',
  baseNonce: '5c4d98150661b848853b547f',
  exporterSecret: 'a3b010d4994890e2c6968a36f64470d3c824c8f5029942feb11e7a74b2921922',
  pt: '4265617574792069732074727574682c20747275746820626561757479',
  aad: '436f756e742d30',
  nonce: '5c4d98150661b848853b547f',
  ct: '1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28',
};

// Points whose X25519 output is all zero for every secret: the five small-order u-coordinates
// (0, 1, p-1 and the two of order 8), the non-canonical encodings p and p+1, and 0 with the
// ignored top bit set.
const LOW_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000080',
];

const OPEN_FAILED = { code: 'CRYPTO_HPKE_OPEN_FAILED' };
const SEAL_FAILED = { code: 'CRYPTO_HPKE_SEAL_FAILED' };

// Importing crypto-node switched this process to OpenSSL's X25519; keep both at hand.
const OPENSSL = activeX25519();
useX25519();
const PORTABLE = activeX25519();
useX25519(OPENSSL);
const IMPLS: [string, X25519Impl][] = [
  ['portable', PORTABLE],
  ['OpenSSL', OPENSSL],
];

/** Installs `impl` for the rest of test `t` and puts the previous one back at its teardown. */
function install(t: Test, impl: X25519Impl): void {
  const previous = activeX25519();
  useX25519(impl);
  t.teardown(() => useX25519(previous));
}

const hex = bytesToHex;

function flipBit(data: Uint8Array, bit: number): Uint8Array {
  const out = data.slice();
  out[bit >> 3] = out[bit >> 3]! ^ (1 << (bit & 7));
  return out;
}

const suite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Chacha20Poly1305(),
});

const importPublic = (key: Uint8Array): Promise<CryptoKey> =>
  suite.kem.importKey('raw', key.slice().buffer, true);
const importSecret = (key: Uint8Array): Promise<CryptoKey> =>
  suite.kem.importKey('raw', key.slice().buffer, false);

t.test('suite identifiers are the RFC 9180 ones', async (t) => {
  t.same(HPKE_SUITE, { kem: 0x0020, kdf: 0x0001, aead: 0x0003 });
  t.equal(hex(HPKE_SUITE_ID), '48504b45002000010003', '"HPKE" || kem || kdf || aead');
  t.equal(hex(HPKE_KEM_SUITE_ID), '4b454d0020', '"KEM" || kem');
  t.ok(OPENSSL === opensslX25519 && PORTABLE !== OPENSSL, 'both X25519 implementations are at hand');
});

for (const [name, impl] of IMPLS) {
  t.test(`RFC 9180 A.2.1 known answers (${name} X25519)`, async (t) => {
    install(t, impl);
    const e = hpkeDeriveKeyPair(fromHex(A21.ikmE));
    t.equal(hex(e.secretKey), A21.skEm, 'DeriveKeyPair(ikmE).sk');
    t.equal(hex(e.publicKey), A21.pkEm, 'DeriveKeyPair(ikmE).pk');
    const r = hpkeDeriveKeyPair(fromHex(A21.ikmR));
    t.equal(hex(r.secretKey), A21.skRm, 'DeriveKeyPair(ikmR).sk');
    t.equal(hex(r.publicKey), A21.pkRm, 'DeriveKeyPair(ikmR).pk');

    const info = fromHex(A21.info);
    const ctx = hpkeSetupBaseS(fromHex(A21.pkRm), info, fromHex(A21.skEm));
    t.equal(hex(ctx.enc), A21.enc, 'enc');
    t.equal(hex(ctx.sharedSecret), A21.sharedSecret, 'shared_secret');
    t.equal(hex(ctx.key), A21.key, 'key');
    t.equal(hex(ctx.baseNonce), A21.baseNonce, 'base_nonce');
    t.equal(hex(ctx.baseNonce), A21.nonce, 'the nonce of sequence number 0 is base_nonce');
    t.equal(hex(ctx.exporterSecret), A21.exporterSecret, 'exporter_secret');

    const sealed = hpkeSeal(fromHex(A21.pkRm), info, fromHex(A21.aad), fromHex(A21.pt), fromHex(A21.skEm));
    t.equal(hex(sealed.enc), A21.enc, 'seal: enc');
    t.equal(hex(sealed.ct), A21.ct, 'seal: ct');
    const opened = hpkeOpen(fromHex(A21.skRm), fromHex(A21.enc), info, fromHex(A21.aad), fromHex(A21.ct));
    t.equal(hex(opened), A21.pt, 'open: pt');
  });
}

t.test('@hpke/core reproduces the A.2.1 vector from ikmE (the vector is not ours alone)', async (t) => {
  const r = await suite.kem.deriveKeyPair(fromHex(A21.ikmR));
  t.equal(hex(new Uint8Array(await suite.kem.serializePublicKey(r.publicKey))), A21.pkRm);
  const { enc, ct } = await suite.seal(
    { recipientPublicKey: r.publicKey, info: fromHex(A21.info), ekm: fromHex(A21.ikmE) },
    fromHex(A21.pt),
    fromHex(A21.aad),
  );
  t.equal(hex(new Uint8Array(enc)), A21.enc);
  t.equal(hex(new Uint8Array(ct)), A21.ct);
});

for (const [name, impl] of IMPLS) {
  t.test(`property: byte-identical to @hpke/core, and each opens the other (${name} X25519)`, async (t) => {
    install(t, impl);
    await fc.assert(
      fc.asyncProperty(
        seed32,
        seed32,
        bytes(1, 64),
        bytes(1, 64),
        bytes(0, 96),
        async (ikmR, ikmE, info, aad, pt) => {
          const r = hpkeDeriveKeyPair(ikmR);
          const pkR = await importPublic(r.publicKey);
          const skR = await importSecret(r.secretKey);

          // Same ephemeral key on both sides: the same bytes.
          const ours = hpkeSeal(r.publicKey, info, aad, pt, hpkeDeriveKeyPair(ikmE).secretKey);
          const theirs = await suite.seal({ recipientPublicKey: pkR, info, ekm: ikmE }, pt, aad);
          if (hex(ours.enc) !== hex(new Uint8Array(theirs.enc))) return false;
          if (hex(ours.ct) !== hex(new Uint8Array(theirs.ct))) return false;

          // Fresh ephemeral keys: ours opens with @hpke/core, @hpke/core's opens with ours.
          const fresh = hpkeSeal(r.publicKey, info, aad, pt);
          const openedByThem = await suite.open({ recipientKey: skR, enc: fresh.enc, info }, fresh.ct, aad);
          if (hex(new Uint8Array(openedByThem)) !== hex(pt)) return false;
          const theirsFresh = await suite.seal({ recipientPublicKey: pkR, info }, pt, aad);
          const openedByUs = hpkeOpen(
            r.secretKey,
            new Uint8Array(theirsFresh.enc),
            info,
            aad,
            new Uint8Array(theirsFresh.ct),
          );
          return hex(openedByUs) === hex(pt);
        },
      ),
      { numRuns: 25 },
    );
    t.pass('25 cases');
  });
}

t.test('property: portable and OpenSSL X25519 seal and open across each other', async (t) => {
  install(t, PORTABLE);
  fc.assert(
    fc.property(seed32, seed32, bytes(1, 64), bytes(1, 64), bytes(0, 96), (ikmR, ikmE, info, aad, pt) => {
      const skE = hpkeDeriveKeyPair(ikmE).secretKey;
      useX25519(PORTABLE);
      const r = hpkeDeriveKeyPair(ikmR);
      const byPortable = hpkeSeal(r.publicKey, info, aad, pt);
      const fixedPortable = hpkeSeal(r.publicKey, info, aad, pt, skE);
      useX25519(OPENSSL);
      const rOpenssl = hpkeDeriveKeyPair(ikmR);
      const byOpenssl = hpkeSeal(r.publicKey, info, aad, pt);
      const fixedOpenssl = hpkeSeal(r.publicKey, info, aad, pt, skE);
      const openedByOpenssl = hpkeOpen(r.secretKey, byPortable.enc, info, aad, byPortable.ct);
      useX25519(PORTABLE);
      const openedByPortable = hpkeOpen(r.secretKey, byOpenssl.enc, info, aad, byOpenssl.ct);
      return (
        hex(rOpenssl.publicKey) === hex(r.publicKey) &&
        hex(fixedOpenssl.enc) === hex(fixedPortable.enc) &&
        hex(fixedOpenssl.ct) === hex(fixedPortable.ct) &&
        hex(openedByOpenssl) === hex(pt) &&
        hex(openedByPortable) === hex(pt)
      );
    }),
    { numRuns: 25 },
  );
  t.pass('25 cases');
});

for (const [name, impl] of IMPLS) {
  t.test(`open refuses every altered input (${name} X25519)`, async (t) => {
    install(t, impl);
    const alice = hpkeDeriveKeyPair(randomBytes(32));
    const bob = hpkeDeriveKeyPair(randomBytes(32));
    // The shape the project uses (docs/hpke.md): aad is the record context, info binds the recipient.
    const aad = utf8ToBytes('datagrant/record/v1|chain|req-1|type');
    const info = concatBytes(utf8ToBytes('datagrant/wrap/v2'), Uint8Array.of(0), alice.publicKey, aad);
    const dataKey = randomBytes(32);
    const { enc, ct } = hpkeSeal(alice.publicKey, info, aad, dataKey);
    t.equal(enc.length, 32, 'enc is 32 bytes');
    t.equal(ct.length, 48, 'a 32-byte data key seals to 48 bytes');
    t.same(hpkeOpen(alice.secretKey, enc, info, aad, ct), dataKey, 'round trip');
    t.not(
      hex(hpkeSeal(alice.publicKey, info, aad, dataKey).enc),
      hex(enc),
      'a fresh ephemeral key each time',
    );

    const cases: [string, () => unknown][] = [
      ["another recipient's key", () => hpkeOpen(bob.secretKey, enc, info, aad, ct)],
      ['another info', () => hpkeOpen(alice.secretKey, enc, flipBit(info, 0), aad, ct)],
      ['empty info', () => hpkeOpen(alice.secretKey, enc, new Uint8Array(0), aad, ct)],
      ['another aad', () => hpkeOpen(alice.secretKey, enc, info, flipBit(aad, 9), ct)],
      ['empty aad', () => hpkeOpen(alice.secretKey, enc, info, new Uint8Array(0), ct)],
      ['a flipped bit in enc', () => hpkeOpen(alice.secretKey, flipBit(enc, 3), info, aad, ct)],
      // X25519 ignores the top bit of a u-coordinate, but enc itself is bound into the KEM context.
      [
        'the ignored top bit of enc flipped',
        () => hpkeOpen(alice.secretKey, flipBit(enc, 255), info, aad, ct),
      ],
      ['a flipped bit in the ciphertext', () => hpkeOpen(alice.secretKey, enc, info, aad, flipBit(ct, 5))],
      ['a flipped bit in the tag', () => hpkeOpen(alice.secretKey, enc, info, aad, flipBit(ct, 8 * 40))],
      ['a truncated ct', () => hpkeOpen(alice.secretKey, enc, info, aad, ct.subarray(0, 47))],
      ['an empty ct', () => hpkeOpen(alice.secretKey, enc, info, aad, new Uint8Array(0))],
      ['a 31-byte enc', () => hpkeOpen(alice.secretKey, enc.subarray(0, 31), info, aad, ct)],
      ['a 33-byte enc', () => hpkeOpen(alice.secretKey, concatBytes(enc, Uint8Array.of(0)), info, aad, ct)],
      ['a 31-byte secret key', () => hpkeOpen(alice.secretKey.subarray(0, 31), enc, info, aad, ct)],
    ];
    for (const [label, run] of cases) t.throws(run, OPEN_FAILED, label);
    for (const point of LOW_ORDER) {
      t.throws(
        () => hpkeOpen(alice.secretKey, fromHex(point), info, aad, ct),
        OPEN_FAILED,
        `low-order enc ${point}`,
      );
    }
  });

  t.test(`X25519 refuses low-order points; seal refuses such recipients (${name} X25519)`, async (t) => {
    install(t, impl);
    const secret = randomBytes(32);
    for (const point of LOW_ORDER) {
      t.throws(() => impl.sharedSecret(secret, fromHex(point)), `${name} sharedSecret refuses ${point}`);
      t.throws(
        () => hpkeSeal(fromHex(point), utf8ToBytes('i'), utf8ToBytes('a'), secret),
        SEAL_FAILED,
        point,
      );
      t.throws(
        () => hpkeSeal(fromHex(point), utf8ToBytes('i'), utf8ToBytes('a'), secret, randomBytes(32)),
        SEAL_FAILED,
        `${point}, injected ephemeral key`,
      );
    }
  });
}

t.test('a lax X25519 that returns an all-zero secret instead of throwing is still refused', async (t) => {
  // The broken variant: the all-zero check in hpke.ts is the only thing left standing.
  const lax: X25519Impl = {
    publicKey: (secretKey) => PORTABLE.publicKey(secretKey),
    sharedSecret: () => new Uint8Array(32),
    ephemeral: () => ({ publicKey: PORTABLE.publicKey(randomBytes(32)), shared: new Uint8Array(32) }),
  };
  const r = hpkeDeriveKeyPair(randomBytes(32));
  const info = utf8ToBytes('info');
  const aad = utf8ToBytes('aad');
  install(t, PORTABLE);
  const { enc, ct } = hpkeSeal(r.publicKey, info, aad, randomBytes(32));
  useX25519(lax);
  t.throws(() => hpkeOpen(r.secretKey, enc, info, aad, ct), OPEN_FAILED, 'open');
  t.throws(() => hpkeSeal(r.publicKey, info, aad, randomBytes(32)), SEAL_FAILED, 'seal');
  t.throws(
    () => hpkeSeal(r.publicKey, info, aad, randomBytes(32), randomBytes(32)),
    SEAL_FAILED,
    'seal, fixed key',
  );
});

t.test('argument guards', async (t) => {
  const r = hpkeDeriveKeyPair(randomBytes(32));
  const none = new Uint8Array(0);
  t.throws(() => hpkeDeriveKeyPair(randomBytes(31)), { code: 'CRYPTO_HPKE_BAD_IKM' }, 'ikm under 32 bytes');
  t.throws(() => hpkeSeal(r.publicKey.subarray(0, 31), none, none, none), SEAL_FAILED, '31-byte recipient');
  t.throws(() => hpkeSeal(r.publicKey, none, none, none, randomBytes(31)), SEAL_FAILED, '31-byte ephemeral');
  t.equal(hpkeDeriveKeyPair(randomBytes(64)).secretKey.length, 32, 'longer ikm is fine');
});
