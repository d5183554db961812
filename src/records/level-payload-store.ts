/** A payload store in LevelDB (one directory), values kept as raw bytes. */
import { Level } from 'level';
import { DatagrantError } from '../common/errors.js';
import { checkDigest, type PayloadStore, verifyPayloadDigest } from './payload-store.js';

/** Options of `LevelPayloadStore`. */
export interface LevelPayloadStoreOptions {
  /** Directory of the LevelDB database; created when missing. Not shared with any other database. */
  location: string;
}

/** A LevelDB-backed payload store. `open()` (or `start()`) before use, `close()` (or `stop()`) when done. */
export class LevelPayloadStore implements PayloadStore {
  readonly #db: Level<string, Uint8Array>;

  /** Does not touch the disk until `open()`. */
  constructor(options: LevelPayloadStoreOptions) {
    this.#db = new Level<string, Uint8Array>(options.location, { valueEncoding: 'view' });
  }

  /** Opens (and creates) the database. */
  async open(): Promise<void> {
    await this.#db.open();
  }

  /** Closes the database; safe to call twice. */
  async close(): Promise<void> {
    await this.#db.close();
  }

  /** `open()`, for the node's start/stop lifecycle. */
  start(): Promise<void> {
    return this.open();
  }

  /** `close()`, for the node's start/stop lifecycle. */
  stop(): Promise<void> {
    return this.close();
  }

  #ready(): void {
    if (this.#db.status !== 'open')
      throw new DatagrantError('PAYLOAD_STORE_CLOSED', 'payload store is not open');
  }

  /** Stores the bytes after checking the digest. */
  async put(digest: string, bytes: Uint8Array): Promise<void> {
    verifyPayloadDigest(digest, bytes);
    this.#ready();
    await this.#db.put(digest, bytes);
  }

  /** The stored bytes, or undefined. */
  async get(digest: string): Promise<Uint8Array | undefined> {
    checkDigest(digest);
    this.#ready();
    return this.#db.get(digest);
  }

  /** Removes the payload. */
  async delete(digest: string): Promise<void> {
    checkDigest(digest);
    this.#ready();
    await this.#db.del(digest);
  }

  /** Whether a payload is stored. */
  async has(digest: string): Promise<boolean> {
    checkDigest(digest);
    this.#ready();
    return this.#db.has(digest);
  }
}
