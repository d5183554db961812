/**
 * Key files: JSON holding an Ed25519 signing key and an X25519 encryption key, optionally sealed
 * with a passphrase (scrypt + XChaCha20-Poly1305, the public keys bound as associated data).
 * Portable: the browser portal loads the same files. Writing to disk lives in `keyfile-fs.ts`.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { scrypt } from '@noble/hashes/scrypt.js';
import { bytesToHex, fromBase64url, fromHex, toBase64url, utf8ToBytes } from './bytes.js';
import {
  type EncryptionKeyPair,
  encryptionPublicKey,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  randomBytes,
  type SigningKeyPair,
  signingPublicKey,
} from './crypto.js';
import { DatagrantError } from './errors.js';

/** Loaded key material of one actor. */
export interface KeySet {
  label: string;
  signing: SigningKeyPair;
  encryption: EncryptionKeyPair;
}

/** Scrypt parameters of a sealed key file. */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** Default cost: N=2^15 takes about 100 ms here and 32 MiB, fine in a browser too. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 1 << 15, r: 8, p: 1 };

/** The JSON shape on disk. */
export interface KeyFileJson {
  type: 'datagrant-key';
  version: 1;
  label: string;
  signPublicKey: string;
  encPublicKey: string;
  /** Present when unsealed: hex secret keys. */
  secret?: { sign: string; enc: string };
  /** Present when sealed with a passphrase. */
  sealed?: {
    kdf: 'scrypt';
    N: number;
    r: number;
    p: number;
    salt: string;
    nonce: string;
    ciphertext: string;
  };
}

/** A fresh key set. */
export function generateKeySet(label = ''): KeySet {
  return { label, signing: generateSigningKeyPair(), encryption: generateEncryptionKeyPair() };
}

function sealAad(signPub: string, encPub: string): Uint8Array {
  return utf8ToBytes(`datagrant-key/v1|${signPub}|${encPub}`);
}

/** Encodes a key set as key-file JSON, sealed when a non-empty passphrase is given. */
export function encodeKeyFile(
  keys: KeySet,
  passphrase?: string,
  params: ScryptParams = DEFAULT_SCRYPT,
): KeyFileJson {
  const signPublicKey = bytesToHex(keys.signing.publicKey);
  const encPublicKey = bytesToHex(keys.encryption.publicKey);
  const base = {
    type: 'datagrant-key' as const,
    version: 1 as const,
    label: keys.label,
    signPublicKey,
    encPublicKey,
  };
  if (!passphrase) {
    return {
      ...base,
      secret: { sign: bytesToHex(keys.signing.secretKey), enc: bytesToHex(keys.encryption.secretKey) },
    };
  }
  const salt = randomBytes(16);
  const nonce = randomBytes(24);
  const kek = scrypt(passphrase.normalize('NFKC'), salt, { ...params, dkLen: 32 });
  const plain = new Uint8Array(64);
  plain.set(keys.signing.secretKey, 0);
  plain.set(keys.encryption.secretKey, 32);
  const ciphertext = xchacha20poly1305(kek, nonce, sealAad(signPublicKey, encPublicKey)).encrypt(plain);
  return {
    ...base,
    sealed: {
      kdf: 'scrypt',
      ...params,
      salt: toBase64url(salt),
      nonce: toBase64url(nonce),
      ciphertext: toBase64url(ciphertext),
    },
  };
}

/** True when the key file needs a passphrase. */
export function isSealed(json: KeyFileJson): boolean {
  return json.sealed !== undefined;
}

/**
 * Decodes key-file JSON. Errors: `KEYFILE_MALFORMED` (not a key file), `KEYFILE_PASSPHRASE_REQUIRED`,
 * `KEYFILE_BAD_PASSPHRASE` (wrong passphrase or tampered ciphertext), `KEYFILE_TAMPERED` (keys disagree).
 */
export function decodeKeyFile(input: unknown, passphrase?: string): KeySet {
  const json = input as Partial<KeyFileJson> | null;
  if (
    json === null ||
    typeof json !== 'object' ||
    json.type !== 'datagrant-key' ||
    json.version !== 1 ||
    typeof json.signPublicKey !== 'string' ||
    typeof json.encPublicKey !== 'string'
  ) {
    throw new DatagrantError('KEYFILE_MALFORMED', 'not a datagrant key file');
  }
  let signSecret: Uint8Array;
  let encSecret: Uint8Array;
  try {
    if (json.sealed) {
      if (!passphrase)
        throw new DatagrantError(
          'KEYFILE_PASSPHRASE_REQUIRED',
          'this key file is sealed: give its passphrase',
        );
      const { N, r, p, salt, nonce, ciphertext, kdf } = json.sealed;
      if (
        kdf !== 'scrypt' ||
        !Number.isInteger(N) ||
        N > 1 << 20 ||
        !Number.isInteger(r) ||
        !Number.isInteger(p)
      ) {
        throw new DatagrantError('KEYFILE_MALFORMED', 'unsupported key-file sealing parameters');
      }
      const kek = scrypt(passphrase.normalize('NFKC'), fromBase64url(salt, 'salt'), { N, r, p, dkLen: 32 });
      let plain: Uint8Array;
      try {
        plain = xchacha20poly1305(
          kek,
          fromBase64url(nonce, 'nonce'),
          sealAad(json.signPublicKey, json.encPublicKey),
        ).decrypt(fromBase64url(ciphertext, 'ciphertext'));
      } catch {
        throw new DatagrantError('KEYFILE_BAD_PASSPHRASE', 'wrong passphrase, or the key file was altered');
      }
      signSecret = plain.slice(0, 32);
      encSecret = plain.slice(32, 64);
    } else if (json.secret) {
      signSecret = fromHex(json.secret.sign, 'secret.sign', 32);
      encSecret = fromHex(json.secret.enc, 'secret.enc', 32);
    } else {
      throw new DatagrantError('KEYFILE_MALFORMED', 'key file has neither secret nor sealed keys');
    }
  } catch (err) {
    if (err instanceof DatagrantError && err.code.startsWith('KEYFILE_')) throw err;
    throw new DatagrantError('KEYFILE_MALFORMED', `key file is malformed: ${(err as Error).message}`);
  }
  const signing = { secretKey: signSecret, publicKey: signingPublicKey(signSecret) };
  const encryption = { secretKey: encSecret, publicKey: encryptionPublicKey(encSecret) };
  if (
    bytesToHex(signing.publicKey) !== json.signPublicKey ||
    bytesToHex(encryption.publicKey) !== json.encPublicKey
  ) {
    throw new DatagrantError(
      'KEYFILE_TAMPERED',
      'the public keys in the key file do not match its secret keys',
    );
  }
  return { label: typeof json.label === 'string' ? json.label : '', signing, encryption };
}
