/**
 * HPKE (RFC 9180), base mode, one suite only: DHKEM(X25519, HKDF-SHA256) (kem_id 0x0020),
 * HKDF-SHA256 (kdf_id 0x0001), ChaCha20-Poly1305 (aead_id 0x0003). Single-shot: one message per
 * encapsulation, sealed at sequence number 0, so the nonce is `base_nonce` itself.
 *
 * Composed, step by step as the RFC writes them, from audited primitives only: noble's HKDF
 * extract/expand over SHA-256, noble's ChaCha20-Poly1305, and X25519 through `activeX25519()` (noble
 * by default, OpenSSL once `crypto-node.ts` is imported). Nothing here is Node-specific; the module
 * is bundled into the browser page as is.
 *
 * - KEM functions (DeriveKeyPair, ExtractAndExpand) label with suite_id "KEM" || 0x0020; the key
 *   schedule labels with "HPKE" || 0x0020 || 0x0001 || 0x0003 (RFC 9180 §4.1 and §5.1).
 * - The sender DH binds enc || pkRm into the shared secret; the recipient recomputes pkRm from its
 *   own secret key, so a ciphertext sealed to another key never opens.
 * - An all-zero X25519 output (a low-order or non-canonical small-order `enc` or recipient key) is
 *   refused (RFC 9180 §7.1.4). noble and OpenSSL both throw for it already; the check is repeated
 *   here because `useX25519` accepts any implementation.
 * - `hpkeOpen` turns every failure (length, low order, tag) into one `CRYPTO_HPKE_OPEN_FAILED`, so
 *   a caller learns nothing about which step refused.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8ToBytes } from './bytes.js';
import { activeX25519 } from './crypto.js';
import { DatagrantError } from './errors.js';

/** The one HPKE suite this project speaks: KEM, KDF and AEAD identifiers (RFC 9180 §7). */
export const HPKE_SUITE = { kem: 0x0020, kdf: 0x0001, aead: 0x0003 } as const;

const SUITE_ID = concatBytes(
  utf8ToBytes('HPKE'),
  i2osp2(HPKE_SUITE.kem),
  i2osp2(HPKE_SUITE.kdf),
  i2osp2(HPKE_SUITE.aead),
);
const KEM_SUITE_ID = concatBytes(utf8ToBytes('KEM'), i2osp2(HPKE_SUITE.kem));

/**
 * suite_id of the key schedule (RFC 9180 §5.1): "HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) ||
 * I2OSP(aead_id, 2) = 48504b45 0020 0001 0003. A copy: changing it changes nothing here.
 */
export const HPKE_SUITE_ID: Uint8Array = SUITE_ID.slice();

/** suite_id inside the KEM (RFC 9180 §4.1): "KEM" || I2OSP(kem_id, 2) = 4b454d 0020. A copy, as above. */
export const HPKE_KEM_SUITE_ID: Uint8Array = KEM_SUITE_ID.slice();

/** The base-mode context of one encapsulation, as RFC 9180 §5.1 derives it (known-answer tests). */
export interface HpkeBaseContext {
  /** The encapsulated key: the ephemeral X25519 public key (32 bytes). */
  enc: Uint8Array;
  /** The KEM shared secret (32 bytes). */
  sharedSecret: Uint8Array;
  /** The ChaCha20-Poly1305 key (Nk = 32 bytes). */
  key: Uint8Array;
  /** The base nonce (Nn = 12 bytes); also the nonce of sequence number 0. */
  baseNonce: Uint8Array;
  /** The exporter secret (Nh = 32 bytes); unused by this project, exposed for the vectors. */
  exporterSecret: Uint8Array;
}

const N_SK = 32;
const N_PK = 32;
const N_SECRET = 32;
const N_K = 32;
const N_N = 12;
const N_H = 32;
const MODE_BASE = 0x00;
const VERSION = utf8ToBytes('HPKE-v1');
const EMPTY = new Uint8Array(0);

function i2osp2(n: number): Uint8Array {
  return Uint8Array.of((n >> 8) & 0xff, n & 0xff);
}

function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return extract(sha256, concatBytes(VERSION, suiteId, utf8ToBytes(label), ikm), salt);
}

function labeledExpand(
  suiteId: Uint8Array,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  length: number,
): Uint8Array {
  return expand(sha256, prk, concatBytes(i2osp2(length), VERSION, suiteId, utf8ToBytes(label), info), length);
}

function extractAndExpand(dhOutput: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const eaePrk = labeledExtract(KEM_SUITE_ID, EMPTY, 'eae_prk', dhOutput);
  return labeledExpand(KEM_SUITE_ID, eaePrk, 'shared_secret', kemContext, N_SECRET);
}

function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const b of bytes) acc |= b;
  return acc === 0;
}

/** The RFC 7748 / RFC 9180 §7.1.4 check on a DH output: 32 bytes, not all zero; throws otherwise. */
function checkedDh(shared: Uint8Array): Uint8Array {
  if (shared.length !== 32 || isAllZero(shared)) throw new Error('X25519 output is all zero');
  return shared;
}

/** DH(sk, pk) through the installed X25519, checked. */
function dh(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return checkedDh(activeX25519().sharedSecret(secretKey, publicKey));
}

function keySchedule(
  sharedSecret: Uint8Array,
  info: Uint8Array,
): { key: Uint8Array; baseNonce: Uint8Array; exporterSecret: Uint8Array } {
  // Base mode: psk and psk_id are the empty default (RFC 9180 §5.1).
  const pskIdHash = labeledExtract(SUITE_ID, EMPTY, 'psk_id_hash', EMPTY);
  const infoHash = labeledExtract(SUITE_ID, EMPTY, 'info_hash', info);
  const context = concatBytes(Uint8Array.of(MODE_BASE), pskIdHash, infoHash);
  const secret = labeledExtract(SUITE_ID, sharedSecret, 'secret', EMPTY);
  return {
    key: labeledExpand(SUITE_ID, secret, 'key', context, N_K),
    baseNonce: labeledExpand(SUITE_ID, secret, 'base_nonce', context, N_N),
    exporterSecret: labeledExpand(SUITE_ID, secret, 'exp', context, N_H),
  };
}

function sealFailed(message: string): DatagrantError {
  return new DatagrantError('CRYPTO_HPKE_SEAL_FAILED', message);
}

/**
 * DeriveKeyPair for X25519 (RFC 9180 §7.1.3): sk = LabeledExpand(LabeledExtract("", "dkp_prk", ikm),
 * "sk", "", 32), pk = X25519(sk, 9). `ikm` must be at least 32 bytes (the RFC's SHOULD, enforced) and
 * carry that much entropy; it must not be reused for anything else.
 */
export function hpkeDeriveKeyPair(ikm: Uint8Array): { secretKey: Uint8Array; publicKey: Uint8Array } {
  if (!(ikm instanceof Uint8Array) || ikm.length < N_SK) {
    throw new DatagrantError('CRYPTO_HPKE_BAD_IKM', `ikm must be at least ${N_SK} bytes`);
  }
  const dkpPrk = labeledExtract(KEM_SUITE_ID, EMPTY, 'dkp_prk', ikm);
  const secretKey = labeledExpand(KEM_SUITE_ID, dkpPrk, 'sk', EMPTY, N_SK);
  return { secretKey, publicKey: activeX25519().publicKey(secretKey) };
}

/**
 * SetupBaseS (RFC 9180 §5.1.1): Encap to `recipientPublicKey`, then the key schedule with `info`.
 * Returns every intermediate the known-answer vectors list. `ephemeralSecretKey` is for those
 * vectors only; without it a fresh ephemeral key pair is made. `CRYPTO_HPKE_SEAL_FAILED` for a
 * malformed or low-order recipient key.
 */
export function hpkeSetupBaseS(
  recipientPublicKey: Uint8Array,
  info: Uint8Array,
  ephemeralSecretKey?: Uint8Array,
): HpkeBaseContext {
  if (!(recipientPublicKey instanceof Uint8Array) || recipientPublicKey.length !== N_PK) {
    throw sealFailed(`recipientPublicKey must be ${N_PK} bytes`);
  }
  if (!(info instanceof Uint8Array)) throw sealFailed('info must be bytes');
  if (
    ephemeralSecretKey !== undefined &&
    (!(ephemeralSecretKey instanceof Uint8Array) || ephemeralSecretKey.length !== N_SK)
  ) {
    throw sealFailed(`ephemeralSecretKey must be ${N_SK} bytes`);
  }
  let enc: Uint8Array;
  let shared: Uint8Array;
  try {
    const x25519 = activeX25519();
    if (ephemeralSecretKey === undefined) {
      ({ publicKey: enc, shared } = x25519.ephemeral(recipientPublicKey));
      checkedDh(shared);
    } else {
      enc = x25519.publicKey(ephemeralSecretKey);
      shared = dh(ephemeralSecretKey, recipientPublicKey);
    }
  } catch {
    throw sealFailed('the recipient public key is not a usable X25519 key');
  }
  const sharedSecret = extractAndExpand(shared, concatBytes(enc, recipientPublicKey));
  return { enc, sharedSecret, ...keySchedule(sharedSecret, info) };
}

/**
 * Single-shot base-mode seal (RFC 9180 §6.1, sequence number 0): `ct` is the ChaCha20-Poly1305
 * ciphertext of `plaintext` with its 16-byte tag, under `aad`; `enc` (32 bytes) travels beside it.
 * `ephemeralSecretKey` is injectable only for known-answer tests; callers leave it out.
 */
export function hpkeSeal(
  recipientPublicKey: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  ephemeralSecretKey?: Uint8Array,
): { enc: Uint8Array; ct: Uint8Array } {
  if (!(aad instanceof Uint8Array)) throw sealFailed('aad must be bytes');
  if (!(plaintext instanceof Uint8Array)) throw sealFailed('plaintext must be bytes');
  const { enc, key, baseNonce } = hpkeSetupBaseS(recipientPublicKey, info, ephemeralSecretKey);
  return { enc, ct: chacha20poly1305(key, baseNonce, aad).encrypt(plaintext) };
}

/**
 * Single-shot base-mode open (RFC 9180 §6.1): Decap `enc` with `recipientSecretKey`, derive the
 * context from `info`, and open `ct` under `aad` at sequence number 0. Throws
 * `CRYPTO_HPKE_OPEN_FAILED` for any failure: another key, info or aad, a changed byte, a malformed
 * or low-order `enc`.
 */
export function hpkeOpen(
  recipientSecretKey: Uint8Array,
  enc: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  ct: Uint8Array,
): Uint8Array {
  try {
    if (recipientSecretKey.length !== N_SK || enc.length !== N_PK) throw new Error('bad length');
    const shared = dh(recipientSecretKey, enc);
    const pkRm = activeX25519().publicKey(recipientSecretKey);
    const sharedSecret = extractAndExpand(shared, concatBytes(enc, pkRm));
    const { key, baseNonce } = keySchedule(sharedSecret, info);
    return chacha20poly1305(key, baseNonce, aad).decrypt(ct);
  } catch {
    throw new DatagrantError(
      'CRYPTO_HPKE_OPEN_FAILED',
      'the HPKE ciphertext does not open with this key, info and aad',
    );
  }
}
