import { ED25519_TORSION_SUBGROUP, ed25519, x25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { sha256 as nobleSha256, sha512 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import t from 'tap';
import { bytesToHex, concatBytes, fromBase64url, fromHex, toBase64url } from '../../../src/common/bytes.js';
import {
  encryptionPublicKey,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  isStrictPublicKey,
  openPayload,
  publicKeyFromHex,
  randomBytes,
  sealPayload,
  sha256,
  sha256Hex,
  sign,
  signingPublicKey,
  unwrapKey,
  useSha256,
  useX25519,
  verify,
  type WrappedKey,
  wrapKey,
} from '../../../src/common/crypto.js';
import { opensslSha256, opensslX25519, signFast, verifyFast } from '../../../src/common/crypto-node.js';
import { hpkeOpen } from '../../../src/common/hpke.js';
import { bytes, seed32 } from '../../helpers/arbitraries.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function flipBit(data: Uint8Array, bit: number): Uint8Array {
  const out = data.slice();
  const i = Math.floor(bit / 8) % out.length;
  out[i] = out[i]! ^ (1 << (bit % 8));
  return out;
}

t.test('SHA-256 known answers', async (t) => {
  t.equal(sha256Hex(utf8('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  t.equal(sha256Hex(new Uint8Array(0)), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

// RFC 8032 §7.1, TEST 1..3.
const RFC8032 = [
  {
    name: 'TEST 1',
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2',
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3',
    secret: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    public: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

t.test('property: OpenSSL and portable SHA-256 give the same digests', async (t) => {
  fc.assert(
    fc.property(bytes(0, 4096), (data) => {
      const want = bytesToHex(nobleSha256(data));
      return bytesToHex(opensslSha256.bytes(data)) === want && opensslSha256.hex(data) === want;
    }),
    { numRuns: 300 },
  );
  // Importing crypto-node switched this process to OpenSSL; the switch is reversible.
  const data = utf8('abc');
  t.equal(bytesToHex(sha256(data)), bytesToHex(nobleSha256(data)));
  t.ok(sha256(data) instanceof Uint8Array && !Buffer.isBuffer(sha256(data)), 'a plain Uint8Array');
  useSha256();
  t.equal(sha256Hex(data), bytesToHex(nobleSha256(data)));
  useSha256(opensslSha256);
});

t.test('Ed25519 RFC 8032 known answers, portable and OpenSSL', async (t) => {
  for (const v of RFC8032) {
    const secret = fromHex(v.secret);
    const pub = fromHex(v.public);
    const msg = fromHex(v.message);
    t.equal(bytesToHex(signingPublicKey(secret)), v.public, `${v.name} public key`);
    t.equal(bytesToHex(generateSigningKeyPair(secret).publicKey), v.public, `${v.name} key pair from seed`);
    t.equal(bytesToHex(sign(msg, secret)), v.signature, `${v.name} portable signature`);
    t.equal(bytesToHex(signFast(msg, secret)), v.signature, `${v.name} OpenSSL signature`);
    t.ok(verify(fromHex(v.signature), msg, pub), `${v.name} portable verify`);
    t.ok(verifyFast(fromHex(v.signature), msg, pub), `${v.name} OpenSSL verify`);
  }
});

t.test('property: portable and OpenSSL signatures are byte-identical and cross-verify', async (t) => {
  fc.assert(
    fc.property(seed32, bytes(0, 300), (seed, msg) => {
      const { publicKey, secretKey } = generateSigningKeyPair(seed);
      const a = sign(msg, secretKey);
      const b = signFast(msg, secretKey);
      return (
        bytesToHex(a) === bytesToHex(b) &&
        verify(a, msg, publicKey) &&
        verifyFast(a, msg, publicKey) &&
        verify(b, msg, publicKey) &&
        verifyFast(b, msg, publicKey)
      );
    }),
    { numRuns: 150 },
  );
  t.pass('held');
});

t.test('property: flipping any bit of message, signature or key fails both verifiers', async (t) => {
  fc.assert(
    fc.property(
      seed32,
      bytes(1, 100),
      fc.nat(),
      fc.constantFrom('msg', 'sig', 'key'),
      (seed, msg, bit, what) => {
        const { publicKey, secretKey } = generateSigningKeyPair(seed);
        const sig = sign(msg, secretKey);
        const m = what === 'msg' ? flipBit(msg, bit % (msg.length * 8)) : msg;
        const s = what === 'sig' ? flipBit(sig, bit % 512) : sig;
        const k = what === 'key' ? flipBit(publicKey, bit % 256) : publicKey;
        return !verify(s, m, k) && !verifyFast(s, m, k);
      },
    ),
    { numRuns: 200 },
  );
  t.pass('held');
});

t.test('verifiers refuse wrong lengths without throwing', async (t) => {
  const { publicKey, secretKey } = generateSigningKeyPair();
  const msg = utf8('m');
  const sig = sign(msg, secretKey);
  for (const [name, s, k] of [
    ['short signature', sig.subarray(0, 63), publicKey],
    ['long signature', concatBytes(sig, new Uint8Array(1)), publicKey],
    ['short key', sig, publicKey.subarray(0, 31)],
    ['empty', new Uint8Array(0), new Uint8Array(0)],
  ] as const) {
    t.equal(verify(s, msg, k), false, `portable: ${name}`);
    t.equal(verifyFast(s, msg, k), false, `OpenSSL: ${name}`);
  }
});

// Crafted signatures on which a cofactored verifier (noble's default) and OpenSSL's cofactorless
// one used to disagree. Every node, browser and proof verifier must give the same answer.
t.test('portable and OpenSSL verifiers agree on crafted edge cases', async (t) => {
  const Point = ed25519.Point;
  const L = Point.Fn.ORDER;
  const secret = fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
  const { scalar, pointBytes: pub } = ed25519.utils.getExtendedPublicKey(secret);
  const msg = utf8('edge case');
  const torsion = Point.fromBytes(fromHex(ED25519_TORSION_SUBGROUP[1]!), true);
  const challenge = (r: Uint8Array, a: Uint8Array): bigint =>
    bytesToNumberLE(sha512(concatBytes(r, a, msg))) % L;
  const sigOf = (rPoint: Uint8Array, s: bigint): Uint8Array => concatBytes(rPoint, numberToBytesLE(s, 32));

  // R with a small-order component: the cofactored equation holds, the exact one does not.
  const r = 123456789n;
  const rTorsion = Point.BASE.multiply(r).add(torsion).toBytes();
  const torsionSig = sigOf(rTorsion, (r + challenge(rTorsion, pub) * scalar) % L);
  // Small-order (identity) public key: anyone can "sign" for it.
  const identity = Point.ZERO.toBytes();
  const forged = sigOf(Point.BASE.multiply(5n).toBytes(), 5n);
  // The identity encoded with y + p (non-canonical).
  const nonCanonicalIdentity = numberToBytesLE(Point.Fp.ORDER + 1n, 32);
  // S + L instead of S.
  const good = sign(msg, secret);
  const sPlusL = sigOf(good.subarray(0, 32), bytesToNumberLE(good.subarray(32)) + L);

  const refused: [string, Uint8Array, Uint8Array][] = [
    ['R with a torsion component', torsionSig, pub],
    ['small-order public key', forged, identity],
    ['non-canonical small-order public key', forged, nonCanonicalIdentity],
    ['S not reduced', sPlusL, pub],
  ];
  for (const [name, sig, key] of refused) {
    t.equal(verify(sig, msg, key), false, `portable refuses: ${name}`);
    t.equal(verifyFast(sig, msg, key), false, `OpenSSL refuses: ${name}`);
  }
  t.notOk(isStrictPublicKey(identity), 'identity is not a strict key');
  t.notOk(isStrictPublicKey(nonCanonicalIdentity), 'non-canonical encoding is not a strict key');
  t.ok(isStrictPublicKey(pub), 'an honest key is strict');

  // A public key with a torsion component: both must give the same answer for every R tried.
  const mixed = Point.BASE.multiply(scalar).add(torsion).toBytes();
  for (let i = 1n; i <= 16n; i++) {
    const rBytes = Point.BASE.multiply(i).toBytes();
    const sig = sigOf(rBytes, (i + challenge(rBytes, mixed) * scalar) % L);
    t.equal(verify(sig, msg, mixed), verifyFast(sig, msg, mixed), `mixed-order key, r=${i}`);
  }
});

t.test('property: OpenSSL and portable X25519 agree; keys wrapped by one open with the other', async (t) => {
  fc.assert(
    fc.property(seed32, seed32, (a, b) => {
      const peer = x25519.getPublicKey(b);
      const eph = opensslX25519.ephemeral(peer);
      return (
        bytesToHex(opensslX25519.publicKey(a)) === bytesToHex(x25519.getPublicKey(a)) &&
        bytesToHex(opensslX25519.sharedSecret(a, peer)) === bytesToHex(x25519.getSharedSecret(a, peer)) &&
        bytesToHex(eph.shared) === bytesToHex(x25519.getSharedSecret(b, eph.publicKey))
      );
    }),
    { numRuns: 100 },
  );
  // Low-order points give an all-zero secret: both refuse them.
  const lowOrder = [new Uint8Array(32), Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0))];
  const secret = randomBytes(32);
  for (const point of lowOrder) {
    t.throws(() => opensslX25519.sharedSecret(secret, point), 'OpenSSL refuses a low-order key');
    t.throws(() => x25519.getSharedSecret(secret, point), 'noble refuses a low-order key');
  }
  const alice = generateEncryptionKeyPair();
  const dataKey = randomBytes(32);
  const ctx = utf8('record/x');
  useX25519();
  const byNoble = wrapKey(dataKey, alice.publicKey, ctx);
  useX25519(opensslX25519);
  const byOpenssl = wrapKey(dataKey, alice.publicKey, ctx);
  t.same(unwrapKey(byNoble, alice.secretKey, ctx), dataKey, 'noble-wrapped opens with OpenSSL');
  useX25519();
  t.same(unwrapKey(byOpenssl, alice.secretKey, ctx), dataKey, 'OpenSSL-wrapped opens with noble');
  useX25519(opensslX25519);
});

t.test('X25519 key wrapping (HPKE)', async (t) => {
  const alice = generateEncryptionKeyPair();
  const bob = generateEncryptionKeyPair();
  const dataKey = randomBytes(32);
  const ctx = utf8('record/abc');
  const wrapped = wrapKey(dataKey, alice.publicKey, ctx);

  t.same(unwrapKey(wrapped, alice.secretKey, ctx), dataKey, 'round trip');
  t.notSame(wrapKey(dataKey, alice.publicKey, ctx), wrapped, 'fresh ephemeral key each time');
  t.equal(fromBase64url(wrapped.enc).length, 32, 'enc: the 32-byte encapsulated key');
  t.equal(fromBase64url(wrapped.ct).length, 48, 'ct: the 32-byte data key and a 16-byte tag');
  // The wrap is HPKE base mode with info = label || 0 || recipient || context, aad = context.
  const info = new Uint8Array([...utf8('datagrant/wrap/v2'), 0, ...alice.publicKey, ...ctx]);
  t.same(
    hpkeOpen(alice.secretKey, fromBase64url(wrapped.enc), info, ctx, fromBase64url(wrapped.ct)),
    dataKey,
    'opens as plain RFC 9180 with the documented info and aad',
  );

  const FAIL = { code: 'CRYPTO_UNWRAP_FAILED' };
  const tamper = (field: keyof WrappedKey): WrappedKey => {
    const raw = fromBase64url(wrapped[field]);
    return { ...wrapped, [field]: toBase64url(flipBit(raw, 3)) };
  };
  const cases: [string, () => unknown][] = [
    ["another recipient's key", () => unwrapKey(wrapped, bob.secretKey, ctx)],
    ['another context', () => unwrapKey(wrapped, alice.secretKey, utf8('record/abd'))],
    ['empty context', () => unwrapKey(wrapped, alice.secretKey, new Uint8Array(0))],
    ['tampered ct', () => unwrapKey(tamper('ct'), alice.secretKey, ctx)],
    ['tampered enc', () => unwrapKey(tamper('enc'), alice.secretKey, ctx)],
    ['truncated ct', () => unwrapKey({ ...wrapped, ct: wrapped.ct.slice(0, 40) }, alice.secretKey, ctx)],
    ['malformed base64url', () => unwrapKey({ ...wrapped, enc: '***' }, alice.secretKey, ctx)],
    [
      'all-zero enc',
      () => unwrapKey({ ...wrapped, enc: toBase64url(new Uint8Array(32)) }, alice.secretKey, ctx),
    ],
  ];
  for (const [name, fn] of cases) t.throws(fn, FAIL, name);

  // Re-wrapping for another recipient (what a grant does) opens for that recipient only.
  const rewrapped = wrapKey(unwrapKey(wrapped, alice.secretKey, ctx), bob.publicKey, ctx);
  t.same(unwrapKey(rewrapped, bob.secretKey, ctx), dataKey, 're-wrapped key opens for the grantee');
  t.throws(() => unwrapKey(rewrapped, alice.secretKey, ctx), FAIL, 'and not for the original holder');
  t.equal(bytesToHex(encryptionPublicKey(bob.secretKey)), bytesToHex(bob.publicKey));
});

t.test('property: wrap/unwrap round trip for random keys and contexts', async (t) => {
  fc.assert(
    fc.property(seed32, seed32, bytes(0, 40), (recipientSeed, dataKey, ctx) => {
      const recipient = generateEncryptionKeyPair(recipientSeed);
      const wrapped = wrapKey(dataKey, recipient.publicKey, ctx);
      return bytesToHex(unwrapKey(wrapped, recipient.secretKey, ctx)) === bytesToHex(dataKey);
    }),
    { numRuns: 50 },
  );
  t.pass('held');
});

t.test('payload sealing', async (t) => {
  const key = randomBytes(32);
  const plain = utf8('{"monthlyContribution":1234}');
  const aad = utf8('digest-context');
  const sealed = sealPayload(key, plain, aad);
  t.equal(sealed.length, 12 + plain.length + 16, 'nonce (12, ChaCha20-Poly1305) || ciphertext || tag');
  t.same(openPayload(key, sealed, aad), plain, 'round trip with associated data');
  t.same(openPayload(key, sealPayload(key, plain)), plain, 'round trip without associated data');
  t.same(openPayload(key, sealPayload(key, new Uint8Array(0))), new Uint8Array(0), 'empty payload');

  const FAIL = { code: 'CRYPTO_DECRYPT_FAILED' };
  for (let bit = 0; bit < sealed.length * 8; bit += 37) {
    t.throws(() => openPayload(key, flipBit(sealed, bit), aad), FAIL, `flipped bit ${bit}`);
  }
  t.throws(() => openPayload(randomBytes(32), sealed, aad), FAIL, 'wrong key');
  t.throws(() => openPayload(key, sealed, utf8('other')), FAIL, 'wrong associated data');
  t.throws(() => openPayload(key, sealed), FAIL, 'missing associated data');
  t.throws(() => openPayload(key, sealed.subarray(0, 27)), FAIL, 'shorter than nonce + tag');
  t.throws(() => openPayload(key, sealed.subarray(0, sealed.length - 1), aad), FAIL, 'truncated');
});

t.test('property: seal/open round trip', async (t) => {
  fc.assert(
    fc.property(seed32, bytes(0, 500), bytes(0, 20), (key, plain, aad) => {
      return bytesToHex(openPayload(key, sealPayload(key, plain, aad), aad)) === bytesToHex(plain);
    }),
    { numRuns: 100 },
  );
  t.pass('held');
});

t.test('publicKeyFromHex names the field', async (t) => {
  const { publicKey } = generateSigningKeyPair();
  t.same(publicKeyFromHex(bytesToHex(publicKey)), publicKey);
  t.throws(() => publicKeyFromHex('abcd', 'encKey'), { code: 'CRYPTO_BAD_ENCODING', message: /encKey/ });
});
