/**
 * A deterministic byte stream (SHA-256 in counter mode over a seed) standing in for the CSPRNG
 * when a test compares the browser's signed transaction with the CLI code's, byte for byte.
 * Never used for real transactions.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';

/** Returns `random(length)` drawing successive bytes of SHA-256(seed | counter). */
export function seededRandom(seed: string): (length: number) => Uint8Array {
  let counter = 0;
  let pool = new Uint8Array(0);
  return (length: number) => {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      if (pool.length === 0) pool = sha256(utf8ToBytes(`datagrant/seeded-random|${seed}|${counter++}`));
      out[i] = pool[0]!;
      pool = pool.subarray(1);
    }
    return out;
  };
}
