/**
 * Content-addressed storage of sealed record payloads, beside the ledger. Keys are the SHA-256
 * (hex) of the bytes; `put` refuses bytes that do not hash to the digest it is given, so a store
 * can never hold a payload under a wrong name.
 */

import { sha256Hex } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';
import { HASH_RE } from '../ledger/patterns.js';

/** Where ciphertexts live, by digest. Implementations must pass the shared suite in test/unit/extractor. */
export interface PayloadStore {
  /** Stores `bytes` under `digest`; `PAYLOAD_DIGEST_MISMATCH` if sha256(bytes) differs. Idempotent. */
  put(digest: string, bytes: Uint8Array): Promise<void>;
  /** The bytes stored under `digest`, or undefined. */
  get(digest: string): Promise<Uint8Array | undefined>;
  /** Removes the payload (erasure); no error when absent. */
  delete(digest: string): Promise<void>;
  /** Whether a payload is stored under `digest`. */
  has(digest: string): Promise<boolean>;
  /** Every stored payload's digest and when it was first stored here (unix ms), in digest order. */
  list(): AsyncIterable<{ digest: string; addedAt: number }>;
  /** Reclaims the space of deleted payloads, so erased bytes leave the disk. */
  compact(): Promise<void>;
}

/** Throws `PAYLOAD_BAD_DIGEST` unless `digest` is 64 lower-case hex characters. */
export function checkDigest(digest: string): void {
  if (typeof digest !== 'string' || !HASH_RE.test(digest)) {
    throw new DatagrantError('PAYLOAD_BAD_DIGEST', 'digest must be 64 lower-case hex characters');
  }
}

/** Throws `PAYLOAD_DIGEST_MISMATCH` unless sha256(bytes) is `digest`. */
export function verifyPayloadDigest(digest: string, bytes: Uint8Array): void {
  checkDigest(digest);
  if (!(bytes instanceof Uint8Array))
    throw new DatagrantError('PAYLOAD_BAD_BYTES', 'payload must be a Uint8Array');
  if (sha256Hex(bytes) !== digest) {
    throw new DatagrantError('PAYLOAD_DIGEST_MISMATCH', 'payload bytes do not hash to the digest', {
      digest,
    });
  }
}

/** A payload store in memory, for tests and single-process demos. Copies on the way in and out. */
export class MemoryPayloadStore implements PayloadStore {
  readonly #items = new Map<string, Uint8Array>();
  readonly #added = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Stores a copy after checking the digest. */
  async put(digest: string, bytes: Uint8Array): Promise<void> {
    verifyPayloadDigest(digest, bytes);
    this.#items.set(digest, bytes.slice());
    if (!this.#added.has(digest)) this.#added.set(digest, this.now());
  }

  async *list(): AsyncIterable<{ digest: string; addedAt: number }> {
    for (const digest of [...this.#items.keys()].sort()) yield { digest, addedAt: this.#added.get(digest)! };
  }

  /** Nothing to reclaim in memory. */
  async compact(): Promise<void> {}

  /** A copy of the stored bytes, or undefined. */
  async get(digest: string): Promise<Uint8Array | undefined> {
    checkDigest(digest);
    return this.#items.get(digest)?.slice();
  }

  /** Removes the payload. */
  async delete(digest: string): Promise<void> {
    checkDigest(digest);
    this.#items.delete(digest);
    this.#added.delete(digest);
  }

  /** Whether a payload is stored. */
  async has(digest: string): Promise<boolean> {
    checkDigest(digest);
    return this.#items.has(digest);
  }

  /** Number of stored payloads. */
  get size(): number {
    return this.#items.size;
  }
}
