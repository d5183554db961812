/**
 * The backup file format (docs/formats.md, "A node backup"): gzip over
 *
 *   magic "DGBACKUP" | version u8 (1)
 *   header: u32 length | canonical JSON (`BackupHeader`)
 *   entries: store u8 (1 chain, 2 payloads) | u32 key length | key | u32 value length | value
 *   end: u8 0 | u64 entry count
 *   trailer: SHA-256 of every byte above (magic to entry count)
 *
 * Integers are big-endian. The encoder is a generator of chunks (so a node streams a backup with
 * backpressure); the decoder reads a stream, yields the header and then each entry, and throws a
 * coded error on anything out of place, the trailer last: a consumer must not act on what it read
 * until the decoder has finished.
 */
import { createHash, type Hash } from 'node:crypto';
import { canonicalBytes } from '../common/canonical.js';
import { DatagrantError } from '../common/errors.js';

/** The magic bytes a backup starts with (after gunzip). */
export const BACKUP_MAGIC = 'DGBACKUP';
/** The version of the format this code writes and reads. */
export const BACKUP_VERSION = 1;
/** Largest header, key and value a reader accepts. */
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_KEY_BYTES = 64 * 1024;
const MAX_VALUE_BYTES = 256 * 1024 * 1024;
/** Size an encoder gathers small entries into before it yields a chunk. */
const CHUNK_BYTES = 64 * 1024;

/** Stores of a node a backup holds, by their tag byte. */
export const BACKUP_STORES = { chain: 1, payloads: 2 } as const;
/** A store a backup holds. */
export type BackupStore = keyof typeof BACKUP_STORES;
const STORE_OF_TAG = new Map<number, BackupStore>(
  Object.entries(BACKUP_STORES).map(([name, tag]) => [tag, name as BackupStore]),
);

/** What a backup says about itself. */
export interface BackupHeader {
  format: 'datagrant-backup';
  version: number;
  chain: string;
  /** Hash of the genesis the backed-up node runs; a restore refuses a home with another. */
  genesisHash: string;
  /** Name and key (hex) of the node it was taken from. */
  node: string;
  nodeKey: string;
  /** The committed tip in the chain store's snapshot. */
  height: number;
  blockHash: string;
  /** When the snapshot was taken (unix ms). */
  time: number;
  stores: BackupStore[];
}

/** One entry: a raw key and value of one of the node's stores. */
export interface BackupEntry {
  store: BackupStore;
  key: Uint8Array;
  value: Uint8Array;
}

const MAGIC_BYTES = new TextEncoder().encode(BACKUP_MAGIC);

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/**
 * The bytes of a backup (before gzip), chunk by chunk: the header, then `entries` as they come
 * (pulled only as fast as the consumer reads), then the end record and the trailer.
 */
export async function* encodeBackup(
  header: BackupHeader,
  entries: AsyncIterable<BackupEntry> | Iterable<BackupEntry>,
): AsyncGenerator<Uint8Array> {
  const hash = createHash('sha256');
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const push = (bytes: Uint8Array) => {
    hash.update(bytes);
    pending.push(bytes);
    pendingBytes += bytes.length;
  };
  const take = (): Uint8Array => {
    const out = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    return out;
  };
  const headerBytes = canonicalBytes(header);
  push(MAGIC_BYTES);
  push(Uint8Array.of(BACKUP_VERSION));
  push(u32(headerBytes.length));
  push(headerBytes);
  let count = 0n;
  for await (const entry of entries) {
    if (entry.key.length > MAX_KEY_BYTES || entry.value.length > MAX_VALUE_BYTES)
      throw new DatagrantError('BACKUP_ENTRY_TOO_LARGE', `an entry of the ${entry.store} store is too large`);
    push(Uint8Array.of(BACKUP_STORES[entry.store]));
    push(u32(entry.key.length));
    push(entry.key);
    push(u32(entry.value.length));
    push(entry.value);
    count++;
    if (pendingBytes >= CHUNK_BYTES) yield take();
  }
  const end = new Uint8Array(9);
  new DataView(end.buffer).setBigUint64(1, count);
  push(end);
  const last = take();
  yield Buffer.concat([last, hash.digest()]);
}

/** What the decoder yields: the header first, then every entry. */
export type BackupItem = { header: BackupHeader } | { entry: BackupEntry };

/** Reads exact byte counts from a stream of chunks, hashing what it consumes. */
class ByteReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private done = false;
  private readonly iterator: AsyncIterator<Uint8Array>;
  readonly hash: Hash = createHash('sha256');
  /** Bytes consumed so far. */
  offset = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** The next `n` bytes; BACKUP_TRUNCATED when the stream ends first. */
  async read(n: number, what: string, hashed = true): Promise<Uint8Array> {
    while (this.buffered < n) {
      if (this.done) break;
      const next = await this.iterator.next();
      if (next.done) this.done = true;
      else if (next.value.length > 0) {
        this.chunks.push(next.value);
        this.buffered += next.value.length;
      }
    }
    if (this.buffered < n)
      throw new DatagrantError('BACKUP_TRUNCATED', `the backup ends inside ${what} (at byte ${this.offset})`);
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    this.offset += n;
    if (hashed) this.hash.update(out);
    return out;
  }

  async u32(what: string): Promise<number> {
    const b = await this.read(4, what);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
  }

  /** True when nothing is left after what was read. */
  async atEnd(): Promise<boolean> {
    if (this.buffered > 0) return false;
    while (!this.done) {
      const next = await this.iterator.next();
      if (next.done) this.done = true;
      else if (next.value.length > 0) {
        this.chunks.push(next.value);
        this.buffered += next.value.length;
        return false;
      }
    }
    return true;
  }
}

function corrupt(message: string): DatagrantError {
  return new DatagrantError('BACKUP_CORRUPT', message);
}

/** Checks a parsed header's fields; BACKUP_CORRUPT naming the first bad one. */
export function checkBackupHeader(value: unknown): BackupHeader {
  const h = value as Partial<BackupHeader> | null;
  if (h === null || typeof h !== 'object' || h.format !== 'datagrant-backup')
    throw corrupt('the header is not a datagrant backup header');
  if (h.version !== BACKUP_VERSION)
    throw new DatagrantError(
      'BACKUP_UNSUPPORTED_VERSION',
      `backup version ${String(h.version)}; this datagrant reads version ${BACKUP_VERSION}`,
    );
  const text = (name: keyof BackupHeader) => {
    if (typeof h[name] !== 'string') throw corrupt(`header.${name} is missing`);
  };
  for (const name of ['chain', 'genesisHash', 'node', 'nodeKey', 'blockHash'] as const) text(name);
  if (!Number.isSafeInteger(h.height) || h.height! < 0) throw corrupt('header.height is not a height');
  if (!Number.isSafeInteger(h.time)) throw corrupt('header.time is not a time');
  if (!Array.isArray(h.stores) || !h.stores.every((s) => s in BACKUP_STORES))
    throw corrupt('header.stores names an unknown store');
  return h as BackupHeader;
}

/**
 * Decodes a backup (gunzipped bytes): yields `{header}`, then `{entry}` for each entry, and
 * returns once the end record and the trailer check out. Throws BACKUP_CORRUPT (bad structure),
 * BACKUP_TRUNCATED (ends early), BACKUP_CHECKSUM (trailer mismatch) or BACKUP_UNSUPPORTED_VERSION.
 */
export async function* decodeBackup(source: AsyncIterable<Uint8Array>): AsyncGenerator<BackupItem> {
  const reader = new ByteReader(source);
  const magic = await reader.read(MAGIC_BYTES.length + 1, 'the magic bytes');
  if (Buffer.compare(magic.subarray(0, MAGIC_BYTES.length), MAGIC_BYTES) !== 0)
    throw corrupt('not a datagrant backup (bad magic bytes)');
  if (magic[MAGIC_BYTES.length] !== BACKUP_VERSION)
    throw new DatagrantError(
      'BACKUP_UNSUPPORTED_VERSION',
      `backup version ${magic[MAGIC_BYTES.length]}; this datagrant reads version ${BACKUP_VERSION}`,
    );
  const headerLength = await reader.u32('the header length');
  if (headerLength > MAX_HEADER_BYTES) throw corrupt('the header is too long');
  let parsed: unknown;
  try {
    parsed = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(await reader.read(headerLength, 'the header')),
    );
  } catch (err) {
    if (err instanceof DatagrantError) throw err;
    throw corrupt('the header is not JSON');
  }
  const header = checkBackupHeader(parsed);
  yield { header };
  let count = 0n;
  for (;;) {
    const tag = (await reader.read(1, 'an entry'))[0]!;
    if (tag === 0) break;
    const store = STORE_OF_TAG.get(tag);
    if (store === undefined || !header.stores.includes(store))
      throw corrupt(`unknown store tag ${tag} at byte ${reader.offset - 1}`);
    const keyLength = await reader.u32('a key length');
    if (keyLength > MAX_KEY_BYTES) throw corrupt(`a key of ${keyLength} bytes at byte ${reader.offset}`);
    const key = await reader.read(keyLength, 'a key');
    const valueLength = await reader.u32('a value length');
    if (valueLength > MAX_VALUE_BYTES)
      throw corrupt(`a value of ${valueLength} bytes at byte ${reader.offset}`);
    const value = await reader.read(valueLength, 'a value');
    count++;
    yield { entry: { store, key, value } };
  }
  const end = await reader.read(8, 'the entry count');
  const declared = new DataView(end.buffer, end.byteOffset, 8).getBigUint64(0);
  const expected = reader.hash.digest();
  const trailer = await reader.read(32, 'the checksum', false);
  if (Buffer.compare(trailer, expected) !== 0)
    throw new DatagrantError('BACKUP_CHECKSUM', 'the backup checksum does not match its contents');
  if (declared !== count) throw corrupt(`the backup declares ${declared} entries but holds ${count}`);
  if (!(await reader.atEnd())) throw corrupt('bytes follow the checksum');
}
