/**
 * Portable cryptography (Node, CLI and browser): Ed25519 signatures, X25519 key wrapping with
 * HKDF-SHA256 and XChaCha20-Poly1305, SHA-256, and AEAD sealing of payloads. Built only on the
 * audited noble libraries; the node's hot path uses `crypto-node.ts`, which yields the same bytes.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 as nobleSha256, sha512 as nobleSha512 } from '@noble/hashes/sha2.js';
import { randomBytes as nobleRandomBytes } from '@noble/hashes/utils.js';
import { bytesToHex, concatBytes, fromBase64url, fromHex, toBase64url, utf8ToBytes } from './bytes.js';
import { DatagrantError } from './errors.js';

/** A SHA-256 implementation: the digest as bytes and as lower-case hex. */
export interface Sha256Impl {
  bytes(data: Uint8Array): Uint8Array;
  hex(data: Uint8Array): string;
}

const nobleSha256Impl: Sha256Impl = {
  bytes: (data) => nobleSha256(data),
  hex: (data) => bytesToHex(nobleSha256(data)),
};
let sha256Impl = nobleSha256Impl;

/**
 * Replaces the SHA-256 implementation for this process (`crypto-node.ts` installs OpenSSL's,
 * two to five times faster for transactions and blocks). Digests are the same bytes; without an
 * argument the portable one is restored.
 */
export function useSha256(impl: Sha256Impl = nobleSha256Impl): void {
  sha256Impl = impl;
}

/** SHA-256 of bytes. */
export function sha256(data: Uint8Array): Uint8Array {
  return sha256Impl.bytes(data);
}

/** SHA-256 as lower-case hex. */
export function sha256Hex(data: Uint8Array): string {
  return sha256Impl.hex(data);
}

/** Cryptographically secure random bytes. */
export function randomBytes(length: number): Uint8Array {
  return nobleRandomBytes(length);
}

/** An X25519 implementation: public key of a secret key, and the shared secret (RFC 7748). */
export interface X25519Impl {
  publicKey(secretKey: Uint8Array): Uint8Array;
  /** Throws for a low-order peer key (all-zero shared secret) or a malformed one. */
  sharedSecret(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /** A fresh random key pair's public key and its shared secret with `publicKey`. */
  ephemeral(publicKey: Uint8Array): { publicKey: Uint8Array; shared: Uint8Array };
}

const nobleX25519Impl: X25519Impl = {
  publicKey: (secretKey) => x25519.getPublicKey(secretKey),
  sharedSecret: (secretKey, publicKey) => x25519.getSharedSecret(secretKey, publicKey),
  ephemeral: (publicKey) => {
    const eph = x25519.utils.randomSecretKey();
    return { publicKey: x25519.getPublicKey(eph), shared: x25519.getSharedSecret(eph, publicKey) };
  },
};
let x25519Impl = nobleX25519Impl;

/**
 * Replaces the X25519 implementation used for key wrapping in this process (`crypto-node.ts`
 * installs OpenSSL's, about twenty times faster; same keys and shared secrets). Without an
 * argument the portable one is restored.
 */
export function useX25519(impl: X25519Impl = nobleX25519Impl): void {
  x25519Impl = impl;
}

/** An Ed25519 signing key pair (raw 32-byte keys). */
export interface SigningKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** An X25519 encryption key pair (raw 32-byte keys). */
export interface EncryptionKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** New random Ed25519 key pair, or one derived from a 32-byte seed. */
export function generateSigningKeyPair(seed?: Uint8Array): SigningKeyPair {
  const secretKey = seed ?? ed25519.utils.randomSecretKey();
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
}

/** New random X25519 key pair, or one derived from a 32-byte seed. */
export function generateEncryptionKeyPair(seed?: Uint8Array): EncryptionKeyPair {
  const secretKey = seed ?? x25519.utils.randomSecretKey();
  return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
}

/** Ed25519 public key of a secret key. */
export function signingPublicKey(secretKey: Uint8Array): Uint8Array {
  return ed25519.getPublicKey(secretKey);
}

/** X25519 public key of a secret key. */
export function encryptionPublicKey(secretKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(secretKey);
}

/** Ed25519 signature (RFC 8032, deterministic) of `message`. */
export function sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return ed25519.sign(message, secretKey);
}

const Point = ed25519.Point;
const GROUP_ORDER = Point.Fn.ORDER;

/**
 * Strict Ed25519 verification (RFC 8032 §5.1.7): canonical encodings of A and R, S below the group
 * order, small-order keys refused, and the cofactorless equation [S]B = R + [k]A checked exactly.
 * It accepts precisely what OpenSSL (`crypto-node.ts`) accepts for keys that pass `isStrictPublicKey`,
 * so every node, browser and proof verifier agrees on every signature. Never throws.
 */
export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  try {
    // noble's own verify uses the cofactored equation, which also accepts signatures whose R has a
    // small-order component; OpenSSL refuses those, so the two would disagree on crafted signatures.
    const A = Point.fromBytes(publicKey, false);
    if (A.isSmallOrder()) return false;
    const rBytes = signature.subarray(0, 32);
    const R = Point.fromBytes(rBytes, false);
    const s = bytesToNumberLE(signature.subarray(32, 64));
    if (s >= GROUP_ORDER) return false;
    const k = bytesToNumberLE(nobleSha512(concatBytes(rBytes, publicKey, message))) % GROUP_ORDER;
    return Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(k)).equals(R);
  } catch {
    return false;
  }
}

/** True when `publicKey` is a canonically encoded Ed25519 point that is not of small order. */
export function isStrictPublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32) return false;
  try {
    return !Point.fromBytes(publicKey, false).isSmallOrder();
  } catch {
    return false;
  }
}

/** A data key wrapped to one recipient's X25519 key (all fields base64url). */
export interface WrappedKey {
  /** Ephemeral X25519 public key. */
  epk: string;
  /** 24-byte XChaCha20 nonce. */
  nonce: string;
  /** The data key sealed with Poly1305 tag. */
  ct: string;
}

const WRAP_INFO = utf8ToBytes('datagrant/wrap/v1');

function wrapKek(
  shared: Uint8Array,
  epk: Uint8Array,
  recipient: Uint8Array,
  context: Uint8Array,
): Uint8Array {
  return hkdf(nobleSha256, shared, concatBytes(epk, recipient), concatBytes(WRAP_INFO, context), 32);
}

/**
 * Wraps `dataKey` to `recipientPublicKey` (ephemeral-static X25519, HKDF-SHA256, XChaCha20-Poly1305).
 * The recipient key and `context` are bound into both the KDF and the AEAD associated data, so a
 * wrapped key moved to another record or recipient no longer opens. `random` is injectable only
 * so that two implementations can be compared byte for byte; callers leave it to the CSPRNG.
 */
export function wrapKey(
  dataKey: Uint8Array,
  recipientPublicKey: Uint8Array,
  context: Uint8Array,
  random?: (length: number) => Uint8Array,
): WrappedKey {
  let epk: Uint8Array;
  let shared: Uint8Array;
  if (random === undefined) ({ publicKey: epk, shared } = x25519Impl.ephemeral(recipientPublicKey));
  else {
    // Reproducible ephemeral key (tests, known answers).
    const eph = random(32);
    epk = x25519Impl.publicKey(eph);
    shared = x25519Impl.sharedSecret(eph, recipientPublicKey);
  }
  const kek = wrapKek(shared, epk, recipientPublicKey, context);
  const nonce = (random ?? nobleRandomBytes)(24);
  const ct = xchacha20poly1305(kek, nonce, concatBytes(context, recipientPublicKey)).encrypt(dataKey);
  return { epk: toBase64url(epk), nonce: toBase64url(nonce), ct: toBase64url(ct) };
}

/** Opens a wrapped key with the recipient's X25519 secret key; `CRYPTO_UNWRAP_FAILED` if anything differs. */
export function unwrapKey(
  wrapped: WrappedKey,
  recipientSecretKey: Uint8Array,
  context: Uint8Array,
): Uint8Array {
  try {
    const epk = fromBase64url(wrapped.epk, 'epk');
    const recipient = x25519Impl.publicKey(recipientSecretKey);
    const shared = x25519Impl.sharedSecret(recipientSecretKey, epk);
    const kek = wrapKek(shared, epk, recipient, context);
    const nonce = fromBase64url(wrapped.nonce, 'nonce');
    return xchacha20poly1305(kek, nonce, concatBytes(context, recipient)).decrypt(
      fromBase64url(wrapped.ct, 'ct'),
    );
  } catch {
    throw new DatagrantError(
      'CRYPTO_UNWRAP_FAILED',
      'the wrapped key does not open with this key and context',
    );
  }
}

/** Seals `plaintext` under a 32-byte key: output is nonce (24 bytes) || ciphertext || tag. */
export function sealPayload(key: Uint8Array, plaintext: Uint8Array, associatedData?: Uint8Array): Uint8Array {
  const nonce = nobleRandomBytes(24);
  return concatBytes(nonce, xchacha20poly1305(key, nonce, associatedData).encrypt(plaintext));
}

/** Opens a payload sealed by `sealPayload`; `CRYPTO_DECRYPT_FAILED` if the key, data or tag is wrong. */
export function openPayload(key: Uint8Array, sealed: Uint8Array, associatedData?: Uint8Array): Uint8Array {
  if (sealed.length < 24 + 16)
    throw new DatagrantError('CRYPTO_DECRYPT_FAILED', 'sealed payload is too short');
  try {
    return xchacha20poly1305(key, sealed.subarray(0, 24), associatedData).decrypt(sealed.subarray(24));
  } catch {
    throw new DatagrantError('CRYPTO_DECRYPT_FAILED', 'payload does not open with this key');
  }
}

/** Parses a hex Ed25519/X25519 public key, naming the field on error. */
export function publicKeyFromHex(hex: string, field = 'publicKey'): Uint8Array {
  return fromHex(hex, field, 32);
}
