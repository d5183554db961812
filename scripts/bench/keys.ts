/** Key material for benchmarks, made with OpenSSL: the portable key derivation is too slow for thousands. */
import { createPrivateKey, createPublicKey, randomFillSync, sign } from 'node:crypto';
import { bytesToHex } from '../../src/common/bytes.js';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An Ed25519 key pair: raw keys and the public key as hex. */
export interface BenchKey {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  pub: string;
  /** Signs with the imported key (importing a key costs more than signing). */
  sign(message: Uint8Array): Uint8Array;
}

/** A fresh random Ed25519 key pair, or the one of `secretKey`. */
export function benchKey(secretKey: Uint8Array = randomFillSync(new Uint8Array(32))): BenchKey {
  const key = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, secretKey]),
    format: 'der',
    type: 'pkcs8',
  });
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const publicKey = new Uint8Array(spki.subarray(spki.length - 32));
  return {
    publicKey,
    secretKey,
    pub: bytesToHex(publicKey),
    sign: (m) => new Uint8Array(sign(null, m, key)),
  };
}

/** Random lower-case hex of `bytes` bytes. */
export function randomHex(bytes: number): string {
  return bytesToHex(randomFillSync(new Uint8Array(bytes)));
}
