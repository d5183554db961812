/**
 * Block storage behind one interface, with a LevelDB implementation and an in-memory one that
 * pass the same test suite. Each block is written in one atomic batch together with its
 * indexes (height, block hash, tx hash, subject) and the state writes it caused, so a crash at
 * any point leaves either the whole block or none of it.
 */
import { Level } from 'level';
import { DatagrantError } from '../common/errors.js';
import {
  CURRENT_STORE_FORMAT,
  checkStoreFormat,
  encodeStoreMarker,
  STORE_FORMAT_KEY,
  type StoreLocation,
  storeHasData,
  storeOpenError,
} from '../common/store-format.js';
import { blockHash, type CertifiedBlock } from './block.js';
import type { CommittedState, StateValue, StateWrites } from './state.js';
import {
  type KvOp,
  KvStateStorage,
  type RawKv,
  STATE_KV,
  type StateStorage,
  stateKvOps,
  type TreeChange,
} from './state-storage.js';
import { txHash } from './tx-codec.js';

/** Where a transaction sits in the chain. */
export interface TxLocation {
  height: number;
  index: number;
}

/** The latest committed block, as the store knows it. */
export interface ChainTip {
  height: number;
  hash: string;
  time: number;
  stateRoot: string;
  /**
   * The height of the state snapshot the store was started from (`installSnapshot`): it holds that
   * block and the ones after it, none before; its transaction index starts with that block, its
   * subject (audit) index with the next. Absent for a store that started from genesis.
   */
  base?: number;
}

/** What committing a block changes besides the block itself. */
export interface CommitEffects {
  writes: StateWrites;
  /** Per transaction, the subject it concerns (for the audit index). */
  subjects: (string | undefined)[];
  /** Per transaction, its hash. */
  hashes: string[];
  /** What the height writes to the state tree's storage (`CommittedState.prepare`). */
  tree?: TreeChange;
  /**
   * Metadata written in the same atomic batch (as `putMeta` would), which then also makes the
   * batch durable like `putMeta`: consensus stores its write-ahead state with the commit in one write.
   */
  meta?: { key: string; value: string };
}

/** One entry of the subject index. */
export interface SubjectTxRef extends TxLocation {
  hash: string;
}

/** Storage of certified blocks, indexes, committed state and small metadata. */
export interface BlockStore {
  open(): Promise<void>;
  close(): Promise<void>;
  /** Tip after `open`; `height` 0 before the first block. */
  tip(): ChainTip;
  /** Atomically stores the next block (height = tip + 1) with its effects. */
  commit(certified: CertifiedBlock, effects: CommitEffects): Promise<void>;
  getBlock(height: number): Promise<CertifiedBlock | undefined>;
  getBlockByHash(hash: string): Promise<CertifiedBlock | undefined>;
  getTxLocation(hash: string): Promise<TxLocation | undefined>;
  /** Transactions concerning `subject`, oldest first. */
  txsBySubject(subject: string, options?: { limit?: number; afterHeight?: number }): Promise<SubjectTxRef[]>;
  /**
   * The committed state and its tree as stored (read synchronously; `CommittedState` reads through
   * it). Valid once the store is open.
   */
  stateStorage(): StateStorage;
  /**
   * Copies every committed entry into `into`, a state that keeps its own storage (tools and tests
   * comparing states; a node reads through `stateStorage` instead), with the tip's root and height.
   */
  loadState(into: CommittedState): Promise<void>;
  /** Durable metadata (consensus write-ahead state); written alone, synchronously flushed. */
  putMeta(key: string, value: string): Promise<void>;
  getMeta(key: string): Promise<string | undefined>;
}

/** Whether a store lacks block `height` because it started from a snapshot at a later height. */
export function notHeld(tip: ChainTip, height: number): boolean {
  return tip.base !== undefined && height >= 1 && height < tip.base;
}

/**
 * A verified state snapshot at a committed height h, to start an empty store from: the certified
 * block h and every state entry at h (src/node/snapshot.ts checks both against the genesis
 * validators and the header's state root before this is called).
 */
export interface SnapshotInstall {
  certified: CertifiedBlock;
  entries: Iterable<readonly [string, StateValue]>;
}

/** A store that can start from a state snapshot instead of from genesis. */
export interface SnapshotTarget {
  /**
   * Replaces the genesis state of an empty store (tip at 0; SNAPSHOT_STORE_NOT_EMPTY otherwise)
   * with a snapshot's, in one atomic batch: the entries, block h with its hash and tx index, and the
   * tip at h with `base` h.
   */
  installSnapshot(snapshot: SnapshotInstall): Promise<void>;
}

/** Genesis state written once into an empty store (height 0). */
export interface GenesisInit {
  genesisHash: string;
  time: number;
  stateRoot: string;
  writes: StateWrites;
}

const pad = (n: number): string => n.toString().padStart(12, '0');

const K = {
  tip: 'm:tip',
  format: STORE_FORMAT_KEY.chain,
  meta: (k: string) => `m:x:${k}`,
  block: (h: number) => `b:${pad(h)}`,
  hash: (hash: string) => `h:${hash}`,
  tx: (hash: string) => `t:${hash}`,
  subject: (s: string, h: number, i: number) => `x:${s}:${pad(h)}:${i.toString().padStart(6, '0')}`,
  subjectPrefix: (s: string) => `x:${s}:`,
  state: STATE_KV.value,
} as const;

/** Whether a raw key holds committed state or its tree (replaced when a snapshot is installed). */
function isStateKey(key: string): boolean {
  return key.startsWith('s:') || STATE_KV.treeRanges.some(([gt]) => key.startsWith(gt));
}

function checkNext(tip: ChainTip, certified: CertifiedBlock): void {
  const header = certified.block.header;
  if (header.height !== tip.height + 1 || header.prev !== tip.hash) {
    throw new DatagrantError(
      'LEDGER_BLOCK_OUT_OF_ORDER',
      `block ${header.height} does not extend tip ${tip.height}`,
    );
  }
}

function tipOf(certified: CertifiedBlock, base?: number): ChainTip {
  const header = certified.block.header;
  return {
    height: header.height,
    hash: blockHash(header),
    time: header.time,
    stateRoot: header.stateRoot,
    ...(base !== undefined ? { base } : {}),
  };
}

type Op = KvOp;

function blockOps(certified: CertifiedBlock, effects: CommitEffects, base?: number): Op[] {
  const header = certified.block.header;
  const tip = tipOf(certified, base);
  const ops: Op[] = [
    { type: 'put', key: K.block(header.height), value: JSON.stringify(certified) },
    { type: 'put', key: K.hash(tip.hash), value: String(header.height) },
  ];
  effects.hashes.forEach((hash, index) => {
    ops.push({ type: 'put', key: K.tx(hash), value: `${header.height}:${index}` });
    const subject = effects.subjects[index];
    if (subject) ops.push({ type: 'put', key: K.subject(subject, header.height, index), value: hash });
  });
  // A loop, not a spread: a block's tree changes can be more operations than a call takes arguments.
  for (const op of stateKvOps(effects.writes, effects.tree)) ops.push(op);
  ops.push({ type: 'put', key: K.tip, value: JSON.stringify(tip) });
  if (effects.meta) ops.push({ type: 'put', key: K.meta(effects.meta.key), value: effects.meta.value });
  return ops;
}

/** The operations that start an empty store (tip at 0) from `snapshot`, removing `stale` state keys. */
function snapshotOps(tip: ChainTip, snapshot: SnapshotInstall, stale: Iterable<string>): Op[] {
  if (tip.height !== 0)
    throw new DatagrantError(
      'SNAPSHOT_STORE_NOT_EMPTY',
      `the block store already holds blocks (tip at height ${tip.height}): a snapshot starts only an empty store`,
    );
  const ops: Op[] = [];
  for (const key of stale) ops.push({ type: 'del', key });
  for (const [key, value] of snapshot.entries)
    ops.push({ type: 'put', key: K.state(key), value: JSON.stringify(value) });
  const height = snapshot.certified.block.header.height;
  // Block h as if committed, without its subject index (that needs its execution).
  const txs = snapshot.certified.block.txs as Parameters<typeof txHash>[0][];
  return [
    ...ops,
    ...blockOps(snapshot.certified, { writes: new Map(), subjects: [], hashes: txs.map(txHash) }, height),
  ];
}

async function copyState(storage: StateStorage, into: CommittedState, tip: ChainTip): Promise<void> {
  for await (const [key, value] of storage.scan('')) into.load(key, value);
  into.root = tip.stateRoot;
  into.height = tip.height;
}

function parseLocation(value: string): TxLocation {
  const [height, index] = value.split(':').map(Number);
  return { height: height!, index: index! };
}

/** Something a chain store's raw keys can be read from (an open LevelDB database). */
export interface RawChainStore {
  get(key: string): Promise<string | undefined>;
}

/**
 * The genesis hash a chain store without a format marker (format 1) was made for, read from its
 * blocks: the tip's hash at height 0, else block 1's `prev`. Undefined for a store with no tip.
 */
export async function unmarkedChainGenesis(db: RawChainStore): Promise<string | undefined> {
  const rawTip = await db.get(K.tip);
  if (rawTip === undefined) return undefined;
  const tip = JSON.parse(rawTip) as ChainTip;
  if (tip.height === 0) return tip.hash;
  const first = await db.get(K.block(1));
  if (first === undefined)
    throw new DatagrantError(
      'LEDGER_STORE_CORRUPT',
      `the store's tip is at ${tip.height} but block 1 is missing`,
    );
  return (JSON.parse(first) as CertifiedBlock).block.header.prev;
}

/** Options of `LevelBlockStore`. */
export interface LevelBlockStoreOptions {
  /** Directory of the LevelDB database; created when missing. */
  path: string;
  /** The chain's genesis: written into an empty store, checked against the marker of any other. */
  genesis: GenesisInit;
  /** Home of the node, named in the `datagrant migrate` command of a refusal. */
  home?: string;
}

/**
 * LevelDB's buffers for the chain store (outside the JS heap): a block writes thousands of state
 * tree records and reads tree nodes below the heap's cache synchronously, so a larger block cache
 * and write buffer than LevelDB's defaults (8 MiB, 4 MiB) keep those reads and compactions cheap.
 */
export const CHAIN_DB_TUNING = {
  cacheSize: 64 * 1024 * 1024,
  writeBufferSize: 16 * 1024 * 1024,
  maxFileSize: 8 * 1024 * 1024,
} as const;

/**
 * Writes `ops` in one atomic LevelDB batch through classic-level's own `_batch`, the entry point
 * below abstract-level's public `batch`. The public one clones every operation together with the
 * options, normalises its encodings, checks its key and value and runs hooks: about 5 µs per
 * operation on the main thread, against 1 µs for the same batch handed to LevelDB directly (a
 * block at 10⁶ transactions writes about 19,000). Both write the same bytes here: this store's
 * keys and values are strings in the encoding the database was opened with (utf8, which encodes
 * a string as itself), and it has no sublevels, hooks or write listeners. Where any of that is
 * not so (a hook was added, the database is not open), the public path is taken.
 */
export function writeLevelBatch(db: Level<string, string>, ops: KvOp[], sync: boolean): Promise<void> {
  const direct = (db as unknown as { _batch?: (ops: KvOp[], options: { sync: boolean }) => Promise<void> })
    ._batch;
  if (
    ops.length === 0 ||
    typeof direct !== 'function' ||
    db.status !== 'open' ||
    (db.hooks.prewrite as { noop?: boolean }).noop !== true ||
    db.listenerCount('write') > 0
  )
    return db.batch(ops, { sync });
  return direct.call(db, ops, { sync });
}

/**
 * LevelDB-backed block store in one directory, in store format 2 (src/common/store-format.ts):
 * its marker records the genesis hash, so a store of another chain is refused at any height.
 */
export class LevelBlockStore implements BlockStore, SnapshotTarget {
  private readonly db: Level<string, string>;
  private current: ChainTip = { height: 0, hash: '', time: 0, stateRoot: '' };
  /** The block batch LevelDB does not have yet (see `commit`); one at a time. */
  private inFlight: Promise<void> | undefined;

  constructor(private readonly options: LevelBlockStoreOptions) {
    this.db = new Level<string, string>(options.path, {
      keyEncoding: 'utf8',
      valueEncoding: 'utf8',
      ...CHAIN_DB_TUNING,
    });
  }

  /**
   * Opens the store: an empty one gets the genesis state and the format marker in one batch; any
   * other must be in a format this code reads and made for this genesis (STORE_MIGRATION_NEEDED,
   * STORE_VERSION_UNKNOWN, LEDGER_GENESIS_MISMATCH otherwise; the database is closed again).
   */
  async open(): Promise<void> {
    const at: StoreLocation = {
      kind: 'chain',
      path: this.options.path,
      ...(this.options.home ? { home: this.options.home } : {}),
    };
    try {
      await this.db.open();
    } catch (err) {
      throw storeOpenError(err, at, 'retry');
    }
    try {
      await this.load(at);
    } catch (err) {
      await this.db.close();
      throw err;
    }
  }

  private async load(at: StoreLocation): Promise<void> {
    const g = this.options.genesis;
    const format = checkStoreFormat(at, await this.db.get(K.format), await storeHasData(this.db));
    if (format.state === 'fresh') {
      const tip: ChainTip = { height: 0, hash: g.genesisHash, time: g.time, stateRoot: g.stateRoot };
      const ops: Op[] = [];
      for (const [key, value] of g.writes) {
        if (value !== null) ops.push({ type: 'put', key: K.state(key), value: JSON.stringify(value) });
      }
      ops.push({ type: 'put', key: K.tip, value: JSON.stringify(tip) });
      ops.push({
        type: 'put',
        key: K.format,
        value: encodeStoreMarker({ store: 'chain', format: CURRENT_STORE_FORMAT, genesis: g.genesisHash }),
      });
      await writeLevelBatch(this.db, ops, true);
      this.current = tip;
      return;
    }
    if (format.marker.genesis !== g.genesisHash)
      throw new DatagrantError(
        'LEDGER_GENESIS_MISMATCH',
        `${at.path} was created for another genesis (${format.marker.genesis ?? 'none recorded'}, this node's is ${g.genesisHash})`,
        { path: at.path, found: format.marker.genesis, expected: g.genesisHash },
      );
    const raw = await this.db.get(K.tip);
    if (raw === undefined)
      throw new DatagrantError('LEDGER_STORE_CORRUPT', `${at.path} has a format marker but no tip`);
    this.current = JSON.parse(raw) as ChainTip;
    if (this.current.height === 0 && this.current.hash !== g.genesisHash)
      throw new DatagrantError('LEDGER_GENESIS_MISMATCH', `${at.path} was created for another genesis`);
  }

  async close(): Promise<void> {
    await this.settled();
    await this.db.close();
  }

  tip(): ChainTip {
    return this.current;
  }

  /**
   * Starts the block's batch and moves the tip at once (the order check of the next block, and
   * `tip()`, see it); resolves when LevelDB has the batch. Until then every read of this store
   * waits for it, so nothing reads a tip whose block is not there yet. A failed write puts the tip
   * back (nothing after it can have started: one batch is in flight at a time).
   */
  commit(certified: CertifiedBlock, effects: CommitEffects): Promise<void> {
    const before = this.current;
    let write: Promise<void>;
    try {
      checkNext(before, certified);
      // Two commits in flight could both pass the order check; the caller serialises, this makes sure.
      if (this.inFlight)
        throw new DatagrantError('LEDGER_CONCURRENT_COMMIT', 'another block is being committed');
      write = writeLevelBatch(this.db, blockOps(certified, effects, before.base), effects.meta !== undefined);
    } catch (err) {
      return Promise.reject(err);
    }
    this.current = tipOf(certified, before.base);
    const done: Promise<void> = write.then(
      () => {
        this.inFlight = undefined;
      },
      (err: unknown) => {
        this.inFlight = undefined;
        this.current = before;
        throw err;
      },
    );
    this.inFlight = done;
    return done;
  }

  /** Waits for the batch in flight, if any (its failure is its committer's to handle). */
  private async settled(): Promise<void> {
    if (this.inFlight) await this.inFlight.catch(() => undefined);
  }

  async getBlock(height: number): Promise<CertifiedBlock | undefined> {
    if (!Number.isSafeInteger(height) || height < Math.max(1, this.current.base ?? 1)) return undefined;
    await this.settled();
    if (height > this.current.height) return undefined;
    const raw = await this.db.get(K.block(height));
    return raw === undefined ? undefined : (JSON.parse(raw) as CertifiedBlock);
  }

  async getBlockByHash(hash: string): Promise<CertifiedBlock | undefined> {
    await this.settled();
    const raw = await this.db.get(K.hash(hash));
    return raw === undefined ? undefined : this.getBlock(Number(raw));
  }

  async getTxLocation(hash: string): Promise<TxLocation | undefined> {
    await this.settled();
    const raw = await this.db.get(K.tx(hash));
    return raw === undefined ? undefined : parseLocation(raw);
  }

  async txsBySubject(
    subject: string,
    options: { limit?: number; afterHeight?: number } = {},
  ): Promise<SubjectTxRef[]> {
    await this.settled();
    const prefix = K.subjectPrefix(subject);
    const gt = options.afterHeight !== undefined ? `${prefix}${pad(options.afterHeight)}:~` : prefix;
    const out: SubjectTxRef[] = [];
    for await (const [key, hash] of this.db.iterator({
      gt,
      lt: `${prefix}~`,
      limit: options.limit ?? 10_000,
    })) {
      const [height, index] = key.slice(prefix.length).split(':').map(Number);
      out.push({ height: height!, index: index!, hash });
    }
    return out;
  }

  loadState(into: CommittedState): Promise<void> {
    return copyState(this.stateStorage(), into, this.current);
  }

  stateStorage(): StateStorage {
    const db = this.db;
    return new KvStateStorage({
      getSync: (key) => db.getSync(key),
      getMany: (keys) => db.getMany(keys),
      scan: (gte, lt) => db.iterator({ gte, lt }),
      batch: (ops) => writeLevelBatch(db, ops, false),
    });
  }

  async putMeta(key: string, value: string): Promise<void> {
    await this.db.put(K.meta(key), value, { sync: true });
  }

  async getMeta(key: string): Promise<string | undefined> {
    await this.settled();
    return this.db.get(K.meta(key));
  }

  async installSnapshot(snapshot: SnapshotInstall): Promise<void> {
    const stale: string[] = [];
    for (const [gt, lt] of [['s:', 's;'] as const, ...STATE_KV.treeRanges])
      for await (const key of this.db.keys({ gt, lt })) stale.push(key);
    const ops = snapshotOps(this.current, snapshot, stale);
    await writeLevelBatch(this.db, ops, true);
    this.current = tipOf(snapshot.certified, snapshot.certified.block.header.height);
  }

  // ---- Backup and state snapshots (used by src/node/backup.ts, src/node/snapshot.ts) ----------

  /**
   * A consistent read of the committed state for a state snapshot: one LevelDB snapshot, its tip,
   * the certified block at the tip, and every state entry (key, stored JSON). Blocks commit in one
   * batch each, so all three are of the same height. `close()` releases the snapshot.
   */
  async stateSnapshot(): Promise<{
    tip: ChainTip;
    certified: CertifiedBlock | undefined;
    entries(): AsyncIterable<[string, string]>;
    close(): Promise<void>;
  }> {
    await this.settled();
    const snapshot = this.db.snapshot();
    try {
      const raw = await this.db.get(K.tip, { snapshot });
      if (raw === undefined) throw new DatagrantError('LEDGER_STORE_EMPTY', 'the block store holds no tip');
      const tip = JSON.parse(raw) as ChainTip;
      const block = tip.height > 0 ? await this.db.get(K.block(tip.height), { snapshot }) : undefined;
      const db = this.db;
      return {
        tip,
        certified: block === undefined ? undefined : (JSON.parse(block) as CertifiedBlock),
        async *entries() {
          for await (const [key, value] of db.iterator({ snapshot, gt: 's:', lt: 's;' }))
            yield [key.slice(2), value];
        },
        close: () => snapshot.close(),
      };
    } catch (err) {
      await snapshot.close();
      throw err;
    }
  }

  /**
   * A consistent read of the whole store for a backup: one LevelDB snapshot, the tip it holds, and
   * its raw entries except this node's own metadata (`putMeta`: the consensus write-ahead state and
   * probes), which a backup never carries. Blocks commit in one batch each, so the snapshot lies
   * between two commits. `close()` releases the snapshot.
   */
  async backupSnapshot(): Promise<{
    tip: ChainTip;
    entries(): AsyncIterable<[string, string]>;
    close(): Promise<void>;
  }> {
    await this.settled();
    const snapshot = this.db.snapshot();
    const raw = await this.db.get(K.tip, { snapshot });
    if (raw === undefined) {
      await snapshot.close();
      throw new DatagrantError('LEDGER_STORE_EMPTY', 'the block store holds no tip');
    }
    const db = this.db;
    return {
      tip: JSON.parse(raw) as ChainTip,
      async *entries() {
        // The metadata range `m:x:` .. `m:x;` is skipped.
        yield* db.iterator({ snapshot, lt: 'm:x:' });
        yield* db.iterator({ snapshot, gte: 'm:x;' });
      },
      close: () => snapshot.close(),
    };
  }

  /** Whether a raw key of this store is node-local metadata (never backed up, dropped on restore). */
  static isLocalKey(key: string): boolean {
    return key.startsWith('m:x:');
  }
}

/** In-memory block store with the same behaviour, for tests and simulations. */
export class MemoryBlockStore implements BlockStore, SnapshotTarget {
  private readonly kv = new Map<string, string>();
  private current: ChainTip;

  constructor(genesis: GenesisInit) {
    this.current = { height: 0, hash: genesis.genesisHash, time: genesis.time, stateRoot: genesis.stateRoot };
    for (const [key, value] of genesis.writes)
      if (value !== null) this.kv.set(K.state(key), JSON.stringify(value));
  }

  async open(): Promise<void> {}
  async close(): Promise<void> {}

  tip(): ChainTip {
    return this.current;
  }

  async commit(certified: CertifiedBlock, effects: CommitEffects): Promise<void> {
    checkNext(this.current, certified);
    this.write(blockOps(certified, effects, this.current.base));
    this.current = tipOf(certified, this.current.base);
  }

  async installSnapshot(snapshot: SnapshotInstall): Promise<void> {
    const stale = [...this.kv.keys()].filter(isStateKey);
    this.write(snapshotOps(this.current, snapshot, stale));
    this.current = tipOf(snapshot.certified, snapshot.certified.block.header.height);
  }

  private write(ops: Op[]): void {
    for (const op of ops) {
      if (op.type === 'put') this.kv.set(op.key, op.value);
      else this.kv.delete(op.key);
    }
  }

  async getBlock(height: number): Promise<CertifiedBlock | undefined> {
    if (notHeld(this.current, height)) return undefined;
    const raw = this.kv.get(K.block(height));
    return raw === undefined ? undefined : (JSON.parse(raw) as CertifiedBlock);
  }

  async getBlockByHash(hash: string): Promise<CertifiedBlock | undefined> {
    const raw = this.kv.get(K.hash(hash));
    return raw === undefined ? undefined : this.getBlock(Number(raw));
  }

  async getTxLocation(hash: string): Promise<TxLocation | undefined> {
    const raw = this.kv.get(K.tx(hash));
    return raw === undefined ? undefined : parseLocation(raw);
  }

  async txsBySubject(
    subject: string,
    options: { limit?: number; afterHeight?: number } = {},
  ): Promise<SubjectTxRef[]> {
    const prefix = K.subjectPrefix(subject);
    const keys = [...this.kv.keys()].filter((k) => k.startsWith(prefix)).sort();
    const out: SubjectTxRef[] = [];
    const limit = options.limit ?? 10_000;
    for (const key of keys) {
      if (out.length >= limit) break;
      const [height, index] = key.slice(prefix.length).split(':').map(Number);
      if (options.afterHeight !== undefined && height! <= options.afterHeight) continue;
      out.push({ height: height!, index: index!, hash: this.kv.get(key)! });
    }
    return out;
  }

  loadState(into: CommittedState): Promise<void> {
    return copyState(this.stateStorage(), into, this.current);
  }

  stateStorage(): StateStorage {
    const kv = this.kv;
    const raw: RawKv = {
      getSync: (key) => kv.get(key),
      getMany: async (keys) => keys.map((key) => kv.get(key)),
      async *scan(gte, lt) {
        const keys = [...kv.keys()].filter((k) => k >= gte && k < lt).sort();
        for (const key of keys) yield [key, kv.get(key)!];
      },
      batch: async (ops) => {
        for (const op of ops) {
          if (op.type === 'put') kv.set(op.key, op.value);
          else kv.delete(op.key);
        }
      },
    };
    return new KvStateStorage(raw);
  }

  async putMeta(key: string, value: string): Promise<void> {
    this.kv.set(K.meta(key), value);
  }

  async getMeta(key: string): Promise<string | undefined> {
    return this.kv.get(K.meta(key));
  }
}
