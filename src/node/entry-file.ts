/**
 * Files of length-prefixed entries, the shape shared by node backups (backup-format.ts) and state
 * snapshots (snapshot-format.ts): gzip over
 *
 *   magic (8 bytes) | version u8
 *   header: u32 length | canonical JSON
 *   entries: tag u8 (1..255, what the entry is) | u32 key length | key | u32 value length | value
 *   end: u8 0 | u64 entry count
 *   trailer: SHA-256 of every byte above (magic to entry count)
 *
 * Integers are big-endian. The encoder is a generator of chunks (so a node streams a file with
 * backpressure); the decoder reads a stream, yields the header and then each entry, and throws a
 * coded error on anything out of place, the trailer last: a consumer must not act on what it read
 * until the decoder has finished. Error codes carry the file kind's prefix (`BACKUP_CORRUPT`,
 * `SNAPSHOT_TRUNCATED`, …).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { canonicalBytes } from '../common/canonical.js';
import { DatagrantError, isDatagrantError } from '../common/errors.js';

/** Largest header, key and value a reader accepts. */
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_KEY_BYTES = 64 * 1024;
const MAX_VALUE_BYTES = 256 * 1024 * 1024;
/** Size an encoder gathers small entries into before it yields a chunk. */
const CHUNK_BYTES = 64 * 1024;

/** One kind of entry file: its magic, version, entry tags, error prefix and header check. */
export interface EntryFileFormat<H, T extends string> {
  /** Eight ASCII bytes the file starts with (after gunzip). */
  magic: string;
  version: number;
  /** Prefix of the error codes (`BACKUP`, `SNAPSHOT`) and the word for the file in messages. */
  codePrefix: string;
  noun: string;
  /** Entry kinds by their tag byte (1..255). */
  tags: Readonly<Record<T, number>>;
  /** Checks a parsed header, throwing `<prefix>_CORRUPT` (or `_UNSUPPORTED_VERSION`) on a bad one. */
  checkHeader(value: unknown): H;
  /** Entry kinds a header allows (default every kind). */
  allowed?(header: H): readonly T[];
}

/** One entry: its kind, raw key and value. */
export interface FileEntry<T extends string> {
  store: T;
  key: Uint8Array;
  value: Uint8Array;
}

/** What the decoder yields: the header first, then every entry. */
export type FileItem<H, T extends string> = { header: H } | { entry: FileEntry<T> };

/** A coded error of a file kind: `<prefix>_<what>`. */
export function fileError(format: { codePrefix: string }, what: string, message: string): DatagrantError {
  return new DatagrantError(`${format.codePrefix}_${what}`, message);
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/**
 * The bytes of a file (before gzip), chunk by chunk: the header, then `entries` as they come
 * (pulled only as fast as the consumer reads), then the end record and the trailer.
 */
export async function* encodeEntryFile<H, T extends string>(
  format: EntryFileFormat<H, T>,
  header: H,
  entries: AsyncIterable<FileEntry<T>> | Iterable<FileEntry<T>>,
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
  const headerBytes = canonicalBytes(header as Parameters<typeof canonicalBytes>[0]);
  push(new TextEncoder().encode(format.magic));
  push(Uint8Array.of(format.version));
  push(u32(headerBytes.length));
  push(headerBytes);
  let count = 0n;
  for await (const entry of entries) {
    if (entry.key.length > MAX_KEY_BYTES || entry.value.length > MAX_VALUE_BYTES)
      throw fileError(format, 'ENTRY_TOO_LARGE', `an entry of the ${entry.store} store is too large`);
    push(Uint8Array.of(format.tags[entry.store]));
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

/** Reads exact byte counts from a stream of chunks, hashing what it consumes. */
class ByteReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private done = false;
  private readonly iterator: AsyncIterator<Uint8Array>;
  readonly hash: Hash = createHash('sha256');
  /** Bytes consumed so far. */
  offset = 0;

  constructor(
    source: AsyncIterable<Uint8Array>,
    private readonly format: { codePrefix: string; noun: string },
  ) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** The next `n` bytes; `<prefix>_TRUNCATED` when the stream ends first. */
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
      throw fileError(
        this.format,
        'TRUNCATED',
        `the ${this.format.noun} ends inside ${what} (at byte ${this.offset})`,
      );
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

/**
 * Decodes a file (gunzipped bytes): yields `{header}`, then `{entry}` for each entry, and returns
 * once the end record and the trailer check out. Throws `<prefix>_CORRUPT` (bad structure),
 * `_TRUNCATED` (ends early), `_CHECKSUM` (trailer mismatch) or `_UNSUPPORTED_VERSION`.
 */
export async function* decodeEntryFile<H, T extends string>(
  format: EntryFileFormat<H, T>,
  source: AsyncIterable<Uint8Array>,
): AsyncGenerator<FileItem<H, T>> {
  const corrupt = (message: string) => fileError(format, 'CORRUPT', message);
  const magicBytes = new TextEncoder().encode(format.magic);
  const storeOfTag = new Map<number, T>(
    (Object.entries(format.tags) as [T, number][]).map(([name, tag]) => [tag, name]),
  );
  const reader = new ByteReader(source, format);
  const magic = await reader.read(magicBytes.length + 1, 'the magic bytes');
  if (Buffer.compare(magic.subarray(0, magicBytes.length), magicBytes) !== 0)
    throw corrupt(`not a datagrant ${format.noun} (bad magic bytes)`);
  if (magic[magicBytes.length] !== format.version)
    throw fileError(
      format,
      'UNSUPPORTED_VERSION',
      `${format.noun} version ${magic[magicBytes.length]}; this datagrant reads version ${format.version}`,
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
  const header = format.checkHeader(parsed);
  const allowed = format.allowed?.(header);
  yield { header };
  let count = 0n;
  for (;;) {
    const tag = (await reader.read(1, 'an entry'))[0]!;
    if (tag === 0) break;
    const store = storeOfTag.get(tag);
    if (store === undefined || (allowed !== undefined && !allowed.includes(store)))
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
    throw fileError(format, 'CHECKSUM', `the ${format.noun} checksum does not match its contents`);
  if (declared !== count) throw corrupt(`the ${format.noun} declares ${declared} entries but holds ${count}`);
  if (!(await reader.atEnd())) throw corrupt('bytes follow the checksum');
}

/** Maps a gunzip or file error to a coded error of the file kind. */
function readError(err: unknown, path: string, format: { codePrefix: string; noun: string }): unknown {
  if (isDatagrantError(err)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return fileError(format, 'NOT_FOUND', `no ${format.noun} file at ${path}`);
  if (code === 'Z_BUF_ERROR')
    return fileError(format, 'TRUNCATED', `${path} ends early (${(err as Error).message})`);
  if (typeof code === 'string' && code.startsWith('Z_'))
    return fileError(format, 'CORRUPT', `${path} is not a valid gzip stream (${(err as Error).message})`);
  return err;
}

/**
 * Reads an entry file from disk: the header, then every entry; throws a coded error
 * (`<prefix>_NOT_FOUND`, `_CORRUPT`, `_TRUNCATED`, `_CHECKSUM`, `_UNSUPPORTED_VERSION`) when it is
 * not a whole, intact file — at the end for a checksum mismatch, so act only once it has finished.
 */
export async function* readEntryFile<H, T extends string>(
  format: EntryFileFormat<H, T>,
  path: string,
  onBytes?: (compressedBytes: number) => void,
): AsyncGenerator<FileItem<H, T>> {
  const file = createReadStream(path);
  const gunzip = createGunzip();
  let read = 0;
  file.on('data', (chunk) => {
    read += chunk.length;
    onBytes?.(read);
  });
  file.on('error', (err) => gunzip.destroy(err));
  file.pipe(gunzip);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of gunzip) yield chunk as Buffer;
    } catch (err) {
      throw readError(err, path, format);
    }
  }
  try {
    yield* decodeEntryFile(format, chunks());
  } catch (err) {
    throw readError(err, path, format);
  } finally {
    file.destroy();
    gunzip.destroy();
  }
}

/** Flushes a file to disk. */
export async function fsyncFile(path: string): Promise<void> {
  const file = await open(path, 'r+');
  try {
    await file.sync();
  } finally {
    await file.close();
  }
}

/** Flushes a directory (a rename in it) to disk, where the platform opens directories. */
export async function fsyncDir(path: string): Promise<void> {
  try {
    const dir = await open(path, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // Not every platform opens directories; the rename is still atomic.
  }
}

/**
 * Serves an encoded file as a gzip stream, pulled as the reader reads (backpressure). A reader that
 * takes nothing for `idleMs` has the stream destroyed (API_TIMEOUT), so it cannot hold what the
 * file is read from for ever. `onEnd` is called once, with the compressed bytes sent and the error
 * that ended the stream early, if any.
 */
export function gzipStream(
  chunks: AsyncIterable<Uint8Array>,
  options: { idleMs: number; onEnd: (bytes: number, err?: Error) => void },
): Readable {
  let bytes = 0;
  let lastOutput = Date.now();
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      lastOutput = Date.now();
      done(null, chunk);
    },
  });
  const idle = setInterval(
    () => {
      if (Date.now() - lastOutput > options.idleMs)
        counter.destroy(new DatagrantError('API_TIMEOUT', 'the reader took nothing for too long'));
    },
    Math.min(options.idleMs, 5_000),
  );
  idle.unref();
  pipeline(Readable.from(chunks, { objectMode: false }), createGzip(), counter)
    .then(
      () => options.onEnd(bytes),
      (err: unknown) => options.onEnd(bytes, err as Error),
    )
    .finally(() => clearInterval(idle));
  return counter;
}
