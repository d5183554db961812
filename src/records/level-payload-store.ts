/**
 * A payload store in LevelDB (one directory): each ciphertext under its digest, and beside it
 * (`~added/<digest>`) when it was first stored, in one synced batch, so a payload a node has
 * acknowledged survives a crash. Deleting compacts nothing by itself: `compact()` does.
 */
import { Level } from 'level';
import { utf8ToBytes } from '../common/bytes.js';
import { DatagrantError } from '../common/errors.js';
import { openMarkedStore, type StoreLocation } from '../common/store-format.js';
import { checkDigest, type PayloadStore, verifyPayloadDigest } from './payload-store.js';

/** Prefix of the first-stored times (sorts after every hex digest). */
const ADDED = '~added/';

/** Options of `LevelPayloadStore`. */
export interface LevelPayloadStoreOptions {
  /** Directory of the LevelDB database; created when missing. Not shared with any other database. */
  location: string;
  /** Home of the node, named in the `datagrant migrate` command of a refusal. */
  home?: string;
}

/** A LevelDB-backed payload store. `open()` (or `start()`) before use, `close()` (or `stop()`) when done. */
export class LevelPayloadStore implements PayloadStore {
  readonly #db: Level<string, Uint8Array>;
  readonly #at: StoreLocation;

  /** Does not touch the disk until `open()`. */
  constructor(
    options: LevelPayloadStoreOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.#db = new Level<string, Uint8Array>(options.location, { valueEncoding: 'view' });
    this.#at = { kind: 'payloads', path: options.location, ...(options.home ? { home: options.home } : {}) };
  }

  /**
   * Opens (and creates) the database: a new one gets the format marker, any other must be in a
   * format this code reads (src/common/store-format.ts; the database is closed again if not).
   */
  async open(): Promise<void> {
    await openMarkedStore<Uint8Array>(this.#db, this.#at, {
      text: (v) => new TextDecoder().decode(v),
      value: (t) => utf8ToBytes(t),
    });
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
    const added = await this.#db.get(ADDED + digest);
    await this.#db.batch(
      [
        { type: 'put', key: digest, value: bytes },
        ...(added === undefined
          ? [{ type: 'put' as const, key: ADDED + digest, value: utf8ToBytes(String(this.now())) }]
          : []),
      ],
      { sync: true },
    );
  }

  async *list(): AsyncIterable<{ digest: string; addedAt: number }> {
    this.#ready();
    for await (const [key, value] of this.#db.iterator({ gte: ADDED, lt: `${ADDED}~` })) {
      yield { digest: key.slice(ADDED.length), addedAt: Number(new TextDecoder().decode(value)) };
    }
  }

  /** Compacts the whole store: LevelDB drops the deleted values from its files. */
  async compact(): Promise<void> {
    this.#ready();
    await this.#compactRange('0', '~~');
  }

  // On Node, `level` is classic-level (LevelDB), which has compactRange; its typings hide it.
  #compactRange(start: string, end: string): Promise<void> {
    return (this.#db as unknown as { compactRange(start: string, end: string): Promise<void> }).compactRange(
      start,
      end,
    );
  }

  /** The stored bytes, or undefined. */
  async get(digest: string): Promise<Uint8Array | undefined> {
    checkDigest(digest);
    this.#ready();
    return this.#db.get(digest);
  }

  /** Removes the payload (its bytes leave the files at the next `compact()`). */
  async delete(digest: string): Promise<void> {
    checkDigest(digest);
    this.#ready();
    // The value goes to a table file before its tombstone is written. Otherwise a value still in
    // the memtable would be flushed together with its tombstone into one new table, which LevelDB
    // may place at a level that compacting the range never rewrites: the bytes would stay on disk.
    await this.#compactRange(digest, digest);
    await this.#db.batch(
      [
        { type: 'del', key: digest },
        { type: 'del', key: ADDED + digest },
      ],
      { sync: true },
    );
  }

  /** Whether a payload is stored. */
  async has(digest: string): Promise<boolean> {
    checkDigest(digest);
    this.#ready();
    return this.#db.has(digest);
  }

  // ---- Backup (used by src/node/backup.ts) ----------------------------------------------------

  /**
   * Every raw entry (ciphertexts by digest, first-stored times, whatever else the store keeps) as
   * of the call, read through one LevelDB snapshot, for a backup.
   */
  backupEntries(): AsyncIterable<[string, Uint8Array]> {
    this.#ready();
    return this.#db.iterator();
  }
}
