/**
 * Portable cryptography (Node, CLI and browser): Ed25519 signatures, key wrapping to X25519 keys
 * with HPKE (RFC 9180), SHA-256, and ChaCha20-Poly1305 sealing of payloads. Built only on the
 * audited noble libraries; the node's hot path uses `crypto-node.ts`, which yields the same bytes.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { sha256 as nobleSha256, sha512 as nobleSha512 } from '@noble/hashes/sha2.js';
import { randomBytes as nobleRandomBytes } from '@noble/hashes/utils.js';
import { bytesToHex, concatBytes, fromBase64url, fromHex, toBase64url, utf8ToBytes } from './bytes.js';
import { DatagrantError } from './errors.js';
import { hpkeOpen, hpkeSeal } from './hpke.js';

/**
 * A SHA-256 implementation: the digest as bytes and as lower-case hex; `view`, where it differs
 * from `bytes`, returns the digest without copying it into a plain Uint8Array (for digests used
 * only as bytes to read, never sliced, mutated or serialised as an object).
 */
export interface Sha256Impl {
  bytes(data: Uint8Array): Uint8Array;
  hex(data: Uint8Array): string;
  view?(data: Uint8Array): Uint8Array;
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

/**
 * SHA-256 of bytes, possibly as the implementation's own array type (OpenSSL's: a Node Buffer of
 * its own memory, which saves a copy on every state-tree node): to be read only, never sliced
 * (`Buffer#slice` shares memory), written to or serialised.
 */
export function sha256View(data: Uint8Array): Uint8Array {
  return (sha256Impl.view ?? sha256Impl.bytes)(data);
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

/** The X25519 implementation currently installed by `useX25519`, for modules built on it (HPKE). */
export function activeX25519(): X25519Impl {
  return x25519Impl;
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

/** A data key wrapped to one recipient's X25519 key with HPKE (both fields base64url, no padding). */
export interface WrappedKey {
  /** HPKE encapsulated key: the ephemeral X25519 public key (32 bytes). */
  enc: string;
  /** The 32-byte data key sealed by HPKE, with its 16-byte tag. */
  ct: string;
}

const WRAP_INFO = utf8ToBytes('datagrant/wrap/v2');

/** HPKE `info` of a wrap: the label, a zero byte, the recipient's public key and the context. */
function wrapInfo(recipient: Uint8Array, context: Uint8Array): Uint8Array {
  return concatBytes(WRAP_INFO, Uint8Array.of(0), recipient, context);
}

/**
 * Wraps `dataKey` to `recipientPublicKey` with HPKE (RFC 9180) base mode, suite DHKEM(X25519,
 * HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305 (`hpke.ts`): `info` binds the recipient key and
 * `context`, and `context` is the AEAD associated data, so a wrapped key moved to another record
 * or recipient no longer opens (docs/hpke.md). `random` makes the ephemeral key reproducible, only
 * so that two implementations can be compared byte for byte; callers leave it to the CSPRNG.
 */
export function wrapKey(
  dataKey: Uint8Array,
  recipientPublicKey: Uint8Array,
  context: Uint8Array,
  random?: (length: number) => Uint8Array,
): WrappedKey {
  const { enc, ct } = hpkeSeal(
    recipientPublicKey,
    wrapInfo(recipientPublicKey, context),
    context,
    dataKey,
    random?.(32),
  );
  return { enc: toBase64url(enc), ct: toBase64url(ct) };
}

/** Opens a wrapped key with the recipient's X25519 secret key; `CRYPTO_UNWRAP_FAILED` if anything differs. */
export function unwrapKey(
  wrapped: WrappedKey,
  recipientSecretKey: Uint8Array,
  context: Uint8Array,
): Uint8Array {
  try {
    const recipient = x25519Impl.publicKey(recipientSecretKey);
    return hpkeOpen(
      recipientSecretKey,
      fromBase64url(wrapped.enc, 'enc'),
      wrapInfo(recipient, context),
      context,
      fromBase64url(wrapped.ct, 'ct'),
    );
  } catch {
    throw new DatagrantError(
      'CRYPTO_UNWRAP_FAILED',
      'the wrapped key does not open with this key and context',
    );
  }
}

/** Nonce length of `sealPayload` (ChaCha20-Poly1305, RFC 8439). */
export const PAYLOAD_NONCE_BYTES = 12;

/**
 * Seals `plaintext` under a 32-byte key with ChaCha20-Poly1305 (RFC 8439): output is a random
 * 12-byte nonce || ciphertext || 16-byte tag. Each record has its own fresh key, so random nonces
 * never repeat under one key.
 */
export function sealPayload(key: Uint8Array, plaintext: Uint8Array, associatedData?: Uint8Array): Uint8Array {
  const nonce = nobleRandomBytes(PAYLOAD_NONCE_BYTES);
  return concatBytes(nonce, chacha20poly1305(key, nonce, associatedData).encrypt(plaintext));
}

/** Opens a payload sealed by `sealPayload`; `CRYPTO_DECRYPT_FAILED` if the key, data or tag is wrong. */
export function openPayload(key: Uint8Array, sealed: Uint8Array, associatedData?: Uint8Array): Uint8Array {
  if (sealed.length < PAYLOAD_NONCE_BYTES + 16)
    throw new DatagrantError('CRYPTO_DECRYPT_FAILED', 'sealed payload is too short');
  try {
    return chacha20poly1305(key, sealed.subarray(0, PAYLOAD_NONCE_BYTES), associatedData).decrypt(
      sealed.subarray(PAYLOAD_NONCE_BYTES),
    );
  } catch {
    throw new DatagrantError('CRYPTO_DECRYPT_FAILED', 'payload does not open with this key');
  }
}

/** Parses a hex Ed25519/X25519 public key, naming the field on error. */
export function publicKeyFromHex(hex: string, field = 'publicKey'): Uint8Array {
  return fromHex(hex, field, 32);
}
