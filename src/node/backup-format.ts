/**
 * The backup file format (docs/formats.md, "A node backup"): an entry file (entry-file.ts) with
 * magic "DGBACKUP", version 1, a `BackupHeader`, and entries tagged by the store they come from
 * (1 chain, 2 payloads) holding that store's raw keys and values.
 */
import { DatagrantError } from '../common/errors.js';
import {
  decodeEntryFile,
  type EntryFileFormat,
  encodeEntryFile,
  type FileEntry,
  type FileItem,
} from './entry-file.js';

/** The magic bytes a backup starts with (after gunzip). */
export const BACKUP_MAGIC = 'DGBACKUP';
/** The version of the format this code writes and reads. */
export const BACKUP_VERSION = 1;

/** Stores of a node a backup holds, by their tag byte. */
export const BACKUP_STORES = { chain: 1, payloads: 2 } as const;
/** A store a backup holds. */
export type BackupStore = keyof typeof BACKUP_STORES;

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
export type BackupEntry = FileEntry<BackupStore>;

/** What the decoder yields: the header first, then every entry. */
export type BackupItem = FileItem<BackupHeader, BackupStore>;

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

/** The backup kind of entry file. */
export const BACKUP_FORMAT: EntryFileFormat<BackupHeader, BackupStore> = {
  magic: BACKUP_MAGIC,
  version: BACKUP_VERSION,
  codePrefix: 'BACKUP',
  noun: 'backup',
  tags: BACKUP_STORES,
  checkHeader: checkBackupHeader,
  allowed: (header) => header.stores,
};

/**
 * The bytes of a backup (before gzip), chunk by chunk: the header, then `entries` as they come
 * (pulled only as fast as the consumer reads), then the end record and the trailer.
 */
export function encodeBackup(
  header: BackupHeader,
  entries: AsyncIterable<BackupEntry> | Iterable<BackupEntry>,
): AsyncGenerator<Uint8Array> {
  return encodeEntryFile(BACKUP_FORMAT, header, entries);
}

/**
 * Decodes a backup (gunzipped bytes): yields `{header}`, then `{entry}` for each entry, and
 * returns once the end record and the trailer check out. Throws BACKUP_CORRUPT (bad structure),
 * BACKUP_TRUNCATED (ends early), BACKUP_CHECKSUM (trailer mismatch) or BACKUP_UNSUPPORTED_VERSION.
 */
export function decodeBackup(source: AsyncIterable<Uint8Array>): AsyncGenerator<BackupItem> {
  return decodeEntryFile(BACKUP_FORMAT, source);
}
