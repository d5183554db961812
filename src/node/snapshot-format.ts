/**
 * The state snapshot file format (docs/formats.md, "A state snapshot"): an entry file
 * (entry-file.ts) with magic "DGSNAPSH", version 1, a `SnapshotHeader`, then exactly one `block`
 * entry (key: the height in decimal; value: the canonical JSON of the certified block at that
 * height — header, transactions and commit certificate) followed by one `state` entry per state
 * key (key: the state key in UTF-8; value: the canonical JSON of its value), in key order.
 */
import { DatagrantError } from '../common/errors.js';
import {
  decodeEntryFile,
  type EntryFileFormat,
  encodeEntryFile,
  type FileEntry,
  type FileItem,
} from './entry-file.js';

/** The magic bytes a snapshot starts with (after gunzip). */
export const SNAPSHOT_MAGIC = 'DGSNAPSH';
/** The version of the format this code writes and reads. */
export const SNAPSHOT_VERSION = 1;
/**
 * Kinds of snapshot entries, by their tag byte: first the links of the chain of validator sets up to
 * the snapshot's height (`EpochLink`s, none while the set never changed), then the block, then the
 * state entries.
 */
export const SNAPSHOT_ENTRY_TAGS = { block: 1, state: 2, link: 3 } as const;
/** A kind of snapshot entry. */
export type SnapshotEntryKind = keyof typeof SNAPSHOT_ENTRY_TAGS;

/** What a snapshot says about itself; every field is checked against its block when it is read. */
export interface SnapshotHeader {
  format: 'datagrant-snapshot';
  version: number;
  chain: string;
  /** Hash of the genesis of the chain; a node of another genesis refuses the snapshot. */
  genesisHash: string;
  /** The committed height of the state, its block's hash and the state root that header certifies. */
  height: number;
  blockHash: string;
  stateRoot: string;
  /** Name and key (hex) of the node it was taken from (informative: nothing in it is trusted). */
  node: string;
  nodeKey: string;
  /** When it was taken (unix ms). */
  time: number;
}

/** One snapshot entry. */
export type SnapshotEntry = FileEntry<SnapshotEntryKind>;
/** What the decoder yields: the header first, then every entry. */
export type SnapshotItem = FileItem<SnapshotHeader, SnapshotEntryKind>;

const HEX64 = /^[0-9a-f]{64}$/;

function corrupt(message: string): DatagrantError {
  return new DatagrantError('SNAPSHOT_CORRUPT', message);
}

/** Checks a parsed header's fields; SNAPSHOT_CORRUPT naming the first bad one. */
export function checkSnapshotHeader(value: unknown): SnapshotHeader {
  const h = value as Partial<SnapshotHeader> | null;
  if (h === null || typeof h !== 'object' || h.format !== 'datagrant-snapshot')
    throw corrupt('the header is not a datagrant snapshot header');
  if (h.version !== SNAPSHOT_VERSION)
    throw new DatagrantError(
      'SNAPSHOT_UNSUPPORTED_VERSION',
      `snapshot version ${String(h.version)}; this datagrant reads version ${SNAPSHOT_VERSION}`,
    );
  for (const name of ['chain', 'node', 'nodeKey'] as const)
    if (typeof h[name] !== 'string') throw corrupt(`header.${name} is missing`);
  for (const name of ['genesisHash', 'blockHash', 'stateRoot'] as const)
    if (typeof h[name] !== 'string' || !HEX64.test(h[name])) throw corrupt(`header.${name} is not a hash`);
  if (!Number.isSafeInteger(h.height) || h.height! < 1) throw corrupt('header.height is not a block height');
  if (!Number.isSafeInteger(h.time)) throw corrupt('header.time is not a time');
  return h as SnapshotHeader;
}

/** The snapshot kind of entry file. */
export const SNAPSHOT_FORMAT: EntryFileFormat<SnapshotHeader, SnapshotEntryKind> = {
  magic: SNAPSHOT_MAGIC,
  version: SNAPSHOT_VERSION,
  codePrefix: 'SNAPSHOT',
  noun: 'snapshot',
  tags: SNAPSHOT_ENTRY_TAGS,
  checkHeader: checkSnapshotHeader,
};

/** The bytes of a snapshot (before gzip), chunk by chunk. */
export function encodeSnapshot(
  header: SnapshotHeader,
  entries: AsyncIterable<SnapshotEntry> | Iterable<SnapshotEntry>,
): AsyncGenerator<Uint8Array> {
  return encodeEntryFile(SNAPSHOT_FORMAT, header, entries);
}

/**
 * Decodes a snapshot (gunzipped bytes): yields `{header}`, then `{entry}` for each entry. Throws
 * SNAPSHOT_CORRUPT, SNAPSHOT_TRUNCATED, SNAPSHOT_CHECKSUM or SNAPSHOT_UNSUPPORTED_VERSION.
 */
export function decodeSnapshot(source: AsyncIterable<Uint8Array>): AsyncGenerator<SnapshotItem> {
  return decodeEntryFile(SNAPSHOT_FORMAT, source);
}
