/**
 * Backups of a node, taken while it runs and restored while it is stopped.
 *
 * Taking one (`BackupService`, behind `GET /v1/admin/backup`): the running node holds the LevelDB
 * locks, so it streams the copy itself: first its block store through one snapshot (blocks commit
 * in one batch each, so the snapshot lies between two commits; its tip is the backup's height),
 * then its payload store, read after the snapshot — a payload a committed record names was stored
 * before its `record.put` committed, so every payload the snapshot's chain names is in the copy.
 * The stream is pulled as the caller reads (backpressure), one backup at a time.
 *
 * What a backup never holds: consensus safety state. The signing state lives outside `data/`, and
 * the block store's own metadata (the consensus write-ahead state of older homes, probes) is left
 * out and dropped again on restore. A restored validator therefore counts its signing state as lost
 * and runs the double-sign check before it votes: it cannot vote again at a height it voted at
 * after the backup was taken. The replay store of signed calls is not copied either (a restore
 * over an existing home keeps that home's own).
 *
 * Restoring one (`restoreBackup`): the whole file is verified (checksum, structure, genesis) before
 * anything is written, then written into a temporary directory beside `data/` and renamed into
 * place, after the signing state file is removed. Started, the node catches up from its peers, and
 * its start-up erasure sweep deletes the payloads erased since the backup.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { Level } from 'level';
import { utf8ToBytes } from '../common/bytes.js';
import { DatagrantError } from '../common/errors.js';
import type { KeySet } from '../common/keyfile.js';
import type { Logger } from '../common/logger.js';
import { type Genesis, genesisHash, LevelBlockStore } from '../ledger/index.js';
import type { LevelPayloadStore } from '../records/index.js';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  type BackupEntry,
  type BackupHeader,
  type BackupItem,
  type BackupStore,
  encodeBackup,
} from './backup-format.js';
import type { NodeConfig } from './config.js';
import { fsyncDir, gzipStream, readEntryFile } from './entry-file.js';
import { downloadSignedFile } from './signed-download.js';
import { SIGNING_STATE_FILE } from './signing-state.js';

export type { BackupHeader } from './backup-format.js';
export { nodeCaller } from './signed-download.js';

/** The path of the admin route that streams a backup. */
export const BACKUP_ROUTE = '/v1/admin/backup';

/** What a backup reads from the running node. */
export interface BackupStores {
  chain: Pick<LevelBlockStore, 'backupSnapshot'>;
  payloads: Pick<LevelPayloadStore, 'backupEntries'>;
}

/** Who the node is, for the backup header. */
export interface BackupServiceOptions {
  chain: string;
  genesisHash: string;
  node: string;
  nodeKey: string;
  /** A backup whose reader takes nothing for this long is ended, freeing its slot (default 60 s). */
  idleTimeoutMs?: number;
}

/** Default of `BackupServiceOptions.idleTimeoutMs`. */
const BACKUP_IDLE_TIMEOUT_MS = 60_000;

/** An open backup: its header and its gzip stream. */
export interface OpenBackup {
  header: BackupHeader;
  stream: Readable;
}

/** Streams consistent backups of a running node, one at a time. */
export class BackupService {
  private running = false;

  constructor(
    private readonly options: BackupServiceOptions,
    private readonly modules: { stores: BackupStores; now: () => number; logger: Logger },
  ) {}

  /** Whether a backup is being streamed. */
  get busy(): boolean {
    return this.running;
  }

  /**
   * Takes the snapshot and returns the stream of the backup (gzip). API_BUSY while another backup
   * streams. The stream ends with the checksum; it is destroyed on a read error, so a reader that
   * gets no trailer knows the copy is incomplete.
   */
  async open(): Promise<OpenBackup> {
    if (this.running) throw new DatagrantError('API_BUSY', 'a backup is already being taken; retry later');
    this.running = true;
    let snapshot: Awaited<ReturnType<BackupStores['chain']['backupSnapshot']>>;
    try {
      snapshot = await this.modules.stores.chain.backupSnapshot();
    } catch (err) {
      this.running = false;
      throw err;
    }
    let closed = false;
    const release = async () => {
      if (closed) return;
      closed = true;
      await snapshot.close().catch(() => undefined);
    };
    const header: BackupHeader = {
      format: 'datagrant-backup',
      version: BACKUP_VERSION,
      chain: this.options.chain,
      genesisHash: this.options.genesisHash,
      node: this.options.node,
      nodeKey: this.options.nodeKey,
      height: snapshot.tip.height,
      blockHash: snapshot.tip.hash,
      time: this.modules.now(),
      stores: ['chain', 'payloads'],
    };
    const counts = { chain: 0, payloads: 0 };
    const payloads = this.modules.stores.payloads;
    async function* entries(): AsyncGenerator<BackupEntry> {
      try {
        for await (const [key, value] of snapshot.entries()) {
          counts.chain++;
          yield { store: 'chain', key: utf8ToBytes(key), value: utf8ToBytes(value) };
        }
        await release();
        for await (const [key, value] of payloads.backupEntries()) {
          counts.payloads++;
          yield { store: 'payloads', key: utf8ToBytes(key), value };
        }
      } finally {
        await release();
      }
    }
    const log = this.modules.logger;
    log.info({ height: header.height }, 'backup started');
    const stream = gzipStream(encodeBackup(header, entries()), {
      // A reader that stops reading would hold the one backup slot and the snapshot for ever.
      idleMs: this.options.idleTimeoutMs ?? BACKUP_IDLE_TIMEOUT_MS,
      onEnd: (bytes, err) => {
        if (err)
          log.warn({ height: header.height, ...counts, bytes, err: err.message }, 'backup not completed');
        else log.info({ height: header.height, ...counts, bytes }, 'backup streamed');
        void release();
        this.running = false;
      },
    });
    return { header, stream };
  }
}

/** Counts of a backup's entries, by store. */
export type BackupCounts = Record<BackupStore, number>;

/** Progress of long work: the phase, entries and (compressed) bytes so far. */
export interface BackupProgress {
  phase: 'download' | 'verify' | 'write';
  entries: number;
  bytes: number;
}

/**
 * Reads a backup file: the header, then every entry; throws a coded error (BACKUP_NOT_FOUND,
 * BACKUP_CORRUPT, BACKUP_TRUNCATED, BACKUP_CHECKSUM, BACKUP_UNSUPPORTED_VERSION) when it is not a
 * whole, intact backup — at the end for a checksum mismatch, so act only once it has finished.
 */
export function readBackupFile(
  path: string,
  onBytes?: (compressedBytes: number) => void,
): AsyncGenerator<BackupItem> {
  return readEntryFile(BACKUP_FORMAT, path, onBytes);
}

/** What a whole read of a backup found. */
export interface BackupSummary {
  header: BackupHeader;
  entries: BackupCounts;
  /** Entries a restore leaves out (node-local metadata), had any been written. */
  dropped: number;
  bytes: number;
}

/** Throttles progress calls to about one a second (and the last). */
export function throttled(onProgress: ((p: BackupProgress) => void) | undefined) {
  let last = 0;
  return (p: BackupProgress, force = false) => {
    if (!onProgress) return;
    const now = Date.now();
    if (force || now - last >= 1000) {
      last = now;
      onProgress(p);
    }
  };
}

/**
 * Reads a whole backup file and checks it (structure, checksum; with `expect`, its chain and
 * genesis hash), writing nothing. `each` sees every entry once the header passed.
 */
export async function verifyBackupFile(
  path: string,
  options: {
    expect?: { chain: string; genesisHash: string };
    onProgress?: (p: BackupProgress) => void;
    phase?: BackupProgress['phase'];
    each?: (entry: BackupEntry, header: BackupHeader) => Promise<void>;
  } = {},
): Promise<BackupSummary> {
  let header: BackupHeader | undefined;
  const entries: BackupCounts = { chain: 0, payloads: 0 };
  let dropped = 0;
  let bytes = 0;
  const progress = throttled(options.onProgress);
  const phase = options.phase ?? 'verify';
  for await (const item of readBackupFile(path, (b) => {
    bytes = b;
  })) {
    if ('header' in item) {
      header = item.header;
      const expect = options.expect;
      if (expect && (header.chain !== expect.chain || header.genesisHash !== expect.genesisHash))
        throw new DatagrantError(
          'BACKUP_GENESIS_MISMATCH',
          `the backup is of chain ${header.chain} (genesis ${header.genesisHash.slice(0, 16)}…), this home runs ${expect.chain} (genesis ${expect.genesisHash.slice(0, 16)}…)`,
        );
      continue;
    }
    const { entry } = item;
    entries[entry.store]++;
    if (entry.store === 'chain' && LevelBlockStore.isLocalKey(Buffer.from(entry.key).toString('utf8')))
      dropped++;
    await options.each?.(entry, header!);
    progress({ phase, entries: entries.chain + entries.payloads, bytes });
  }
  progress({ phase, entries: entries.chain + entries.payloads, bytes }, true);
  return { header: header!, entries, dropped, bytes };
}

/** What `downloadBackup` needs: the node's API, name and keys, and its chain. */
export interface DownloadOptions {
  api: string;
  node: string;
  keys: KeySet;
  chain: string;
  out: string;
  /** Overwrite an existing `out`. */
  force?: boolean;
  /** Give up when the node sends nothing for this long (default 120 s). */
  idleTimeoutMs?: number;
  onProgress?: (p: BackupProgress) => void;
}

/**
 * Asks the node at `api` for a backup (a call signed with its own key as `node:<name>`), writes it
 * to `<out>.partial`, verifies the whole file, and renames it to `out`.
 */
export async function downloadBackup(options: DownloadOptions): Promise<BackupSummary> {
  const progress = throttled(options.onProgress);
  const onProgress = options.onProgress;
  return downloadSignedFile({
    ...options,
    route: BACKUP_ROUTE,
    codePrefix: 'BACKUP',
    onBytes: (bytes, done) => progress({ phase: 'download', entries: 0, bytes }, done),
    verify: (path) => verifyBackupFile(path, onProgress ? { onProgress } : {}),
  });
}

/** Whether the LevelDB at `path` is locked by a running process. */
async function lockedByNode(path: string): Promise<boolean> {
  if (!existsSync(path)) return false;
  const db = new Level(path, { createIfMissing: false });
  try {
    await db.open();
    await db.close();
    return false;
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string } };
    return e.code === 'LEVEL_LOCKED' || e.cause?.code === 'LEVEL_LOCKED';
  }
}

/** Options of `restoreBackup`. */
export interface RestoreOptions {
  file: string;
  /** The config of the (stopped) node to restore. */
  config: NodeConfig;
  /** The genesis the node's config names (a backup of another chain or genesis is refused). */
  genesis: Genesis;
  /** Move a non-empty data directory aside instead of refusing. */
  force?: boolean;
  onProgress?: (p: BackupProgress) => void;
  now?: () => number;
}

/** What a restore did. */
export interface RestoreResult extends BackupSummary {
  /** Where the data directory that was there went (with `force`). */
  movedAside?: string;
  /** Whether a signing state file was removed. */
  signingStateRemoved: boolean;
}

/** Entries written per LevelDB batch, and bytes. */
const BATCH_ENTRIES = 2000;
const BATCH_BYTES = 4 * 1024 * 1024;

/** A LevelDB being filled with raw entries, in synced batches. */
class RawWriter {
  private readonly db: Level<Uint8Array, Uint8Array>;
  private ops: { type: 'put'; key: Uint8Array; value: Uint8Array }[] = [];
  private bytes = 0;

  constructor(path: string) {
    this.db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  }

  open(): Promise<void> {
    return this.db.open();
  }

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.ops.push({ type: 'put', key, value });
    this.bytes += key.length + value.length;
    if (this.ops.length >= BATCH_ENTRIES || this.bytes >= BATCH_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.ops.length === 0) return;
    const ops = this.ops;
    this.ops = [];
    this.bytes = 0;
    await this.db.batch(ops, { sync: true });
  }

  async close(): Promise<void> {
    await this.flush();
    await this.db.close();
  }
}

/**
 * Restores a stopped node's data from a backup file. Refuses (before writing anything) when the
 * node runs (BACKUP_NODE_RUNNING), when its data directory is not empty and `force` is not given
 * (BACKUP_DATA_EXISTS), when the file is not a whole intact backup, or when it is of another chain
 * or genesis (BACKUP_GENESIS_MISMATCH). Then removes the signing state file, writes the stores into
 * a temporary directory and renames it into place (moving the old data aside with `force`).
 */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const { config } = options;
  const data = config.data;
  const file = resolve(options.file);
  if (await lockedByNode(join(data, 'chain')))
    throw new DatagrantError('BACKUP_NODE_RUNNING', `the node of ${config.home} is running: stop it first`);
  const dataEntries = existsSync(data) ? await readdir(data) : [];
  if (dataEntries.length > 0 && !options.force)
    throw new DatagrantError(
      'BACKUP_DATA_EXISTS',
      `${data} is not empty (use --force to move it aside and restore)`,
    );
  if (existsSync(data) && !(await stat(data)).isDirectory())
    throw new DatagrantError('BACKUP_DATA_EXISTS', `${data} is not a directory`);
  const genesis = options.genesis;
  const expect = { chain: genesis.chain, genesisHash: genesisHash(genesis) };
  const onProgress = options.onProgress;
  // First pass: the whole file checks out before anything is written.
  const checked = await verifyBackupFile(file, { expect, ...(onProgress ? { onProgress } : {}) });

  const tmp = `${data}.restoring`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const writers: Record<BackupStore, RawWriter> = {
    chain: new RawWriter(join(tmp, 'chain')),
    payloads: new RawWriter(join(tmp, 'payloads')),
  };
  let written: BackupSummary;
  try {
    for (const w of Object.values(writers)) await w.open();
    // Second pass: write, checking again (the file could have changed since the first).
    written = await verifyBackupFile(file, {
      expect,
      phase: 'write',
      ...(onProgress ? { onProgress } : {}),
      each: async (entry) => {
        if (entry.store === 'chain' && LevelBlockStore.isLocalKey(Buffer.from(entry.key).toString('utf8')))
          return;
        await writers[entry.store].put(entry.key, entry.value);
      },
    });
    for (const w of Object.values(writers)) await w.close();
    if (written.header.height !== checked.header.height)
      throw new DatagrantError('BACKUP_CORRUPT', 'the backup file changed during the restore');
  } catch (err) {
    for (const w of Object.values(writers)) await w.close().catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }

  // Never a signing state from before: the restored validator runs its double-sign check.
  const signingState = resolve(config.home, config.signingState ?? SIGNING_STATE_FILE);
  const signingStateRemoved = existsSync(signingState);
  await rm(signingState, { force: true });
  await rm(`${signingState}.tmp`, { force: true });
  await fsyncDir(dirname(signingState));

  let movedAside: string | undefined;
  if (existsSync(data)) {
    if (dataEntries.length > 0) {
      const stamp = new Date((options.now ?? Date.now)()).toISOString().replace(/[:.]/g, '-');
      movedAside = `${data}.replaced-${stamp}`;
      await rename(data, movedAside);
      // The home's own record of signed calls it has seen is newer than any backup: keep it.
      const replay = join(movedAside, 'replay');
      if (existsSync(replay)) await cp(replay, join(tmp, 'replay'), { recursive: true });
    } else await rm(data, { recursive: true, force: true });
  }
  await rename(tmp, data);
  await fsyncDir(dirname(data));
  return { ...written, ...(movedAside ? { movedAside } : {}), signingStateRemoved };
}
