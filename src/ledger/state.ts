/**
 * Application state as a key-value map of canonical JSON values, with overlays for tentative
 * execution. A chain's genesis picks how the state root in each header is computed:
 * - `sparse-merkle` (what `datagrant init` writes): the root of the sparse Merkle tree
 *   (state-tree.ts) over SHA-256(key) → SHA-256(canonical value), so any entry can be proven
 *   present or absent at a height against that height's certified header;
 * - `running-hash` (chains made before the tree; genesis without `params.stateRoot`): each root is
 *   SHA-256(previous root || canonical list of the block's writes), which commits to the history
 *   but proves nothing about a single entry.
 * The tree is kept either way (proofs need it); only the header's root differs.
 */
import { bytesToHex, concatBytes, fromHex, hexInto, utf8ToBytes } from '../common/bytes.js';
import { type CanonicalValue, canonicalBytes } from '../common/canonical.js';
import { sha256, sha256View } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';
import { HashIndex } from './hash-index.js';
import { type TreeNodeCache, treeNodeCache } from './node-table.js';
import type { SeenAtState } from './records.js';
import { RewriteWatch } from './rewrite-watch.js';
import {
  LruCache,
  MemoryStateStorage,
  type StateStorage,
  type StoredTreeNode,
  type TreeChange,
} from './state-storage.js';
import {
  EMPTY_TREE_ROOT,
  type StateProof,
  StateTree,
  type TreeBatch,
  type TreeNode,
  type TreeUpdate,
} from './state-tree.js';

/** A value stored in state. Treated as immutable: updates store a new object. */
export type StateValue = CanonicalValue;

/** Read access to state. */
export interface StateReader {
  get(key: string): StateValue | undefined;
}

/** A set of writes; `null` deletes the key. */
export type StateWrites = Map<string, StateValue | null>;

const ROOT_DOMAIN = utf8ToBytes('datagrant/state/v1\n');
/** State root before any block. */
export const EMPTY_STATE_ROOT = bytesToHex(sha256(ROOT_DOMAIN));

/** Root after applying `writes` on top of `prevRoot`. */
export function nextStateRoot(prevRoot: string, writes: StateWrites): string {
  const entries = [...writes.keys()].sort().map((key) => {
    const value = writes.get(key);
    return [key, value === null || value === undefined ? null : bytesToHex(sha256(canonicalBytes(value)))];
  });
  return bytesToHex(
    sha256(concatBytes(ROOT_DOMAIN, fromHex(prevRoot, 'prevRoot', 32), canonicalBytes(entries))),
  );
}

/** How a chain computes the state root in its headers (genesis `params.stateRoot`). */
export type StateRootRule = 'running-hash' | 'sparse-merkle';

/** The rule of a chain's params; chains whose genesis predates the tree keep the running hash. */
export function stateRootRule(params: { stateRoot?: StateRootRule }): StateRootRule {
  return params.stateRoot ?? 'running-hash';
}

/** Path of a state key in the tree: SHA-256 of its UTF-8 bytes. */
export function stateKeyHash(key: string): Uint8Array {
  return sha256(utf8ToBytes(key));
}

/** What the tree holds for a value: SHA-256 of its canonical encoding. */
export function stateValueHash(value: StateValue): Uint8Array {
  return sha256(canonicalBytes(value));
}

/** A block's writes as tree updates (`stateKeyHash`, `stateValueHash`, uncopied: only read). */
function treeUpdates(writes: StateWrites): TreeUpdate[] {
  return [...writes].map(([key, value]) => [
    sha256View(utf8ToBytes(key)),
    value === null ? null : sha256View(canonicalBytes(value)),
  ]);
}

/** How many recent heights' trees stay whole for proofs (older nodes are pruned). */
export const STATE_PROOF_HEIGHTS = 256;

/** Heights pruning may trail the proof window by (it waits on reads off the event loop). */
const PRUNE_LAG_HEIGHTS = 64;

/** Writes layered over a reader; `child()` nests a layer that can be merged or dropped. */
export class StateOverlay implements StateReader {
  readonly writes: StateWrites = new Map();

  constructor(private readonly base: StateReader) {}

  get(key: string): StateValue | undefined {
    const own = this.writes.get(key);
    if (own !== undefined) return own === null ? undefined : own;
    return this.base.get(key);
  }

  set(key: string, value: StateValue): void {
    this.writes.set(key, value);
  }

  delete(key: string): void {
    this.writes.set(key, null);
  }

  /** A nested layer over this one. */
  child(): StateOverlay {
    return new StateOverlay(this);
  }

  /** Copies a child layer's writes into this one. */
  absorb(child: StateOverlay): void {
    for (const [key, value] of child.writes) this.writes.set(key, value);
  }
}

const SEEN_PREFIX = 'seen/';
/** One block's replay guard (`per-block`): its transactions' hashes and their latest expiry. */
const SEEN_AT_PREFIX = 'seen-at/';
/** Granularity at which expired replay-protection entries are pruned. */
export const SEEN_BUCKET_MS = 60_000;

/** How many entries the caches of a state on disk hold (values, tree nodes). */
export interface StateCacheSize {
  values: number;
  nodes: number;
}

/**
 * Default cache bounds of a state on disk: entries in the heap; tree nodes in a table outside it
 * (104 bytes a node, so at most 436 MB, grown as the tree grows: enough for the whole current tree
 * of about 2.4 million nodes at 10⁶ transactions of the growth benchmark, which the previous bound
 * of 2²¹ nodes could not hold, so the tree's lowest nodes were read from LevelDB).
 */
export const DEFAULT_STATE_CACHE: StateCacheSize = { values: 20_000, nodes: 1 << 22 };

/** Entries the tree is rebuilt with per write when a store holds no tree (start-up only). */
const REBUILD_CHUNK = 20_000;

/**
 * The committed state and its sparse Merkle tree, read through bounded caches from a
 * `StateStorage`: a block store's database (LevelDB, read synchronously), so the heap holds only
 * what is hot, or Maps owned by this state (genesis, snapshot checks, tests). It also keeps a
 * derived index of replay-protection entries by expiry, so that pruning them is proportional to
 * what expires, not to the state's size.
 *
 * Committing a height on a store is two steps: `prepare` computes what the height writes to the
 * tree's storage (nodes, root, replaced nodes, what leaves the proof window), which the block store
 * writes in the block's batch; then `apply` moves this state to the new height. Between the two,
 * reads still answer the previous height's values.
 */
export class CommittedState implements StateReader {
  private readonly storage: StateStorage;
  /** Set when this state writes its own storage (no block store behind it). */
  private readonly own: MemoryStateStorage | undefined;
  private readonly values: LruCache<string, StateValue | null>;
  private readonly nodes: TreeNodeCache;
  private readonly seenByBucket = new Map<number, Set<string>>();
  /**
   * Every transaction the replay guard holds, as its `seen/<hash>` key, and its expiry (answered
   * from here, never from storage); under `per-block` it is indexed from the `seen-at/` entries.
   */
  private readonly seen = new HashIndex();
  /** The transaction hashes of each `seen-at/<height>` entry (32 bytes each), and its expiry. */
  private readonly seenAt = new Map<string, { expires: number; hashes: Uint8Array }>();
  private readonly tree: StateTree;
  /** Tree roots of recent heights, for proofs. */
  private readonly treeRoots = new Map<number, string>();
  /** The last tentative tree batches (`rootAfter`), reused when the block commits. */
  private tentative: { base: string; batch: TreeBatch }[] = [];
  /** Values of the keys a prepared height writes, as before it, until `apply`. */
  private pinned: Map<string, StateValue | undefined> | undefined;
  private prepared:
    | { height: number; writes: StateWrites; tree: TreeChange | undefined; pruneFrom: number }
    | undefined;
  private treeBuilt = true;
  /** A height applied before the store wrote it: its writes and new tree nodes (see `apply`). */
  private unwritten:
    | { height: number; writes: StateWrites; nodes: Map<string, TreeNode> | undefined }
    | undefined;
  /** The lowest height whose stale list is not pruned yet. */
  private pruneFrom = 1;
  /** Which replaced nodes may have been written again (pruning reads back only those). */
  private rewrites: RewriteWatch | undefined;
  /** Nodes to delete, read off the event loop since the last commit (see `startPrune`). */
  private pruning:
    | { upTo: number; pruned: string[] | undefined; failed: boolean; written: Set<string> }
    | undefined;
  root: string;
  height: number;

  /**
   * `rule`: how the chain's headers commit to state; under `running-hash` no tree is kept (nothing
   * proves against it). Default `sparse-merkle`. `storage`: a block store's state (then `open`
   * before use, and commit through `prepare` and `apply`); without it this state keeps its own.
   */
  constructor(
    root = EMPTY_STATE_ROOT,
    height = 0,
    private readonly rule: StateRootRule = 'sparse-merkle',
    storage?: StateStorage,
    cache: StateCacheSize = DEFAULT_STATE_CACHE,
  ) {
    this.root = root;
    this.height = height;
    if (storage) {
      this.storage = storage;
      this.values = new LruCache(cache.values);
      this.nodes = treeNodeCache(cache.nodes);
    } else {
      this.own = new MemoryStateStorage();
      this.storage = this.own;
      this.values = new LruCache(0);
      this.nodes = treeNodeCache(0);
    }
    this.tree = new StateTree({ getNode: (hash, bytes) => this.storedNode(hash, bytes)?.node });
  }

  get(key: string): StateValue | undefined {
    if (this.pinned?.has(key)) return this.pinned.get(key);
    if (key.startsWith(SEEN_PREFIX)) return this.seen.getHex(key, SEEN_PREFIX.length);
    const cached = this.values.get(key);
    if (cached !== undefined) return cached === null ? undefined : cached;
    const unwritten = this.unwritten?.writes.get(key);
    if (unwritten !== undefined) return unwritten === null ? undefined : unwritten;
    const value = this.storage.value(key);
    this.values.set(key, value ?? null);
    return value;
  }

  /** Entries held in the value cache (all of them when this state keeps its own storage). */
  get cachedEntries(): number {
    return this.own ? this.own.values.size : this.values.size;
  }

  /** Number of entries of a state that keeps its own storage (undefined for one on a store). */
  get size(): number | undefined {
    return this.own?.values.size;
  }

  private storedNode(hash: string, bytes?: Uint8Array): StoredTreeNode | undefined {
    const cached = this.nodes.get(hash, bytes);
    if (cached) return cached;
    const unwritten = this.unwritten?.nodes?.get(hash);
    if (unwritten) return { node: unwritten, version: this.unwritten!.height };
    const stored = this.storage.node(hash);
    if (stored) this.nodes.set(hash, stored, bytes);
    return stored;
  }

  /**
   * Loads one entry into a state that keeps its own storage (snapshot checks, tests); the tree is
   * rebuilt when next used.
   */
  load(key: string, value: StateValue): void {
    if (!this.own)
      throw new DatagrantError('LEDGER_STATE_RULE', 'a state on a block store is loaded with open()');
    this.own.values.set(key, value);
    this.noteLoaded(key, value);
    this.treeBuilt = false;
  }

  /** Prefixes of the keys whose entries `noteLoaded` indexes when a stored state opens. */
  protected indexedPrefixes(): string[] {
    return [SEEN_PREFIX, SEEN_AT_PREFIX];
  }

  /** Indexes one entry found at start-up (`load`, `open`). */
  protected noteLoaded(key: string, value: StateValue): void {
    this.index(key, value);
  }

  /**
   * Opens a state on a block store at the store's tip: indexes what needs indexing, and checks that
   * the stored tree's root is the certified root at that height (LEDGER_STATE_CORRUPT), building the
   * tree first when the store has none (a store from before the tree was kept on disk, or started
   * from a snapshot).
   */
  async open(root: string, height: number): Promise<void> {
    this.root = root;
    this.height = height;
    for (const prefix of this.indexedPrefixes())
      for await (const [key, value] of this.storage.scan(prefix)) this.noteLoaded(key, value);
    if (this.rule === 'running-hash') return;
    if (this.storage.root(height) === undefined) await this.rebuildStoredTree(height);
    this.treeRoots.clear();
    for (let h = Math.max(0, height - STATE_PROOF_HEIGHTS + 1); h <= height; h++) {
      const r = this.storage.root(h);
      if (r !== undefined) this.treeRoots.set(h, r);
    }
    this.tree.root = this.treeRoots.get(height)!;
    this.checkRoot(this.rule);
    this.pruneFrom = (await this.storage.firstStale()) ?? height + 1;
    this.rewrites = new RewriteWatch(height + 1, STATE_PROOF_HEIGHTS + PRUNE_LAG_HEIGHTS);
  }

  /** Builds the tree of every stored entry in chunks, writing each chunk's nodes as `height`. */
  private async rebuildStoredTree(height: number): Promise<void> {
    const updates: TreeUpdate[] = [];
    for await (const [key, value] of this.storage.scan(''))
      updates.push([stateKeyHash(key), stateValueHash(value)]);
    updates.sort((a, b) => compareKeyHashes(a[0], b[0]));
    let root = EMPTY_TREE_ROOT;
    for (let i = 0; i === 0 || i < updates.length; i += REBUILD_CHUNK) {
      const batch = this.tree.update(updates.slice(i, i + REBUILD_CHUNK), root);
      const last = i + REBUILD_CHUNK >= updates.length;
      // Nodes a later chunk replaces are dropped now; nothing ever referenced them but this build.
      await this.storage.writeTree({
        version: height,
        root: last ? batch.root : root,
        nodes: batch.nodes,
        stale: [],
        pruned: batch.stale,
      });
      root = batch.root;
    }
  }

  /**
   * Under `sparse-merkle`, checks that the state held reproduces the certified root
   * (LEDGER_STATE_CORRUPT otherwise: the state on disk is not the state the chain certified).
   */
  checkRoot(rule: StateRootRule): void {
    this.buildTree();
    if (rule === 'sparse-merkle' && this.tree.root !== this.root)
      throw new DatagrantError(
        'LEDGER_STATE_CORRUPT',
        `the stored state's tree root ${this.tree.root} is not the certified root ${this.root} at height ${this.height}`,
      );
  }

  /** After `load`s into its own storage: the tree over everything loaded, at the loaded height. */
  private buildTree(): void {
    if (this.treeBuilt || this.rule === 'running-hash' || !this.own) return;
    const updates: TreeUpdate[] = [...this.own.values].map(([k, v]) => [stateKeyHash(k), stateValueHash(v)]);
    const batch = this.tree.update(updates, EMPTY_TREE_ROOT);
    this.own.nodes.clear();
    this.own.roots.clear();
    this.own.staleLists.clear();
    this.own.applyTree({ version: this.height, root: batch.root, nodes: batch.nodes, stale: [], pruned: [] });
    this.tree.root = batch.root;
    this.treeRoots.clear();
    this.treeRoots.set(this.height, batch.root);
    this.treeBuilt = true;
  }

  /** The state root after `writes` on top of this state, under `rule`; this state is not changed. */
  rootAfter(writes: StateWrites, rule: StateRootRule): string {
    if (rule === 'running-hash') return nextStateRoot(this.root, writes);
    if (this.rule !== rule)
      throw new DatagrantError(
        'LEDGER_STATE_RULE',
        'this state keeps no tree: it was made for running-hash headers',
      );
    this.buildTree();
    const batch = this.tree.update(treeUpdates(writes));
    this.tentative = [{ base: this.tree.root, batch }, ...this.tentative.slice(0, 3)];
    return batch.root;
  }

  /**
   * What committing `writes` as `height` (with state root `root`) writes to the tree's storage;
   * undefined under `running-hash`. Until `apply`, reads answer the values before these writes.
   */
  prepare(writes: StateWrites, root: string, height: number): TreeChange | undefined {
    const pinned = new Map<string, StateValue | undefined>();
    for (const key of writes.keys()) pinned.set(key, this.get(key));
    this.pinned = pinned;
    let tree: TreeChange | undefined;
    const pruneFrom = this.pruneFrom;
    if (this.rule !== 'running-hash') {
      this.buildTree();
      // The batch computed when the block was built or checked, if it is this one; else compute it.
      const base = this.tree.root;
      const hit = this.tentative.find((t) => t.base === base && t.batch.root === root);
      const batch = hit?.batch ?? this.tree.update(treeUpdates(writes));
      tree = { version: height, root: batch.root, nodes: batch.nodes, stale: batch.stale, pruned: [] };
      this.pruneInto(tree, height);
      if (height - STATE_PROOF_HEIGHTS >= 0) {
        tree.droppedRoot = height - STATE_PROOF_HEIGHTS;
        this.treeRoots.delete(tree.droppedRoot);
      }
    }
    this.prepared = { height, writes, tree, pruneFrom };
    return tree;
  }

  /** Forgets a `prepare` whose block was not written (reads answer the committed values again). */
  discard(): void {
    if (this.prepared) this.pruneFrom = this.prepared.pruneFrom;
    this.prepared = undefined;
    this.pinned = undefined;
  }

  /**
   * Moves this state to `height`: after the block store wrote what `prepare` returned, or, for a
   * state that keeps its own storage, writing it there now. `unwritten`: the store's write is still
   * in flight; reads below the caches answer this height's writes and nodes from memory until
   * `written(height)`.
   */
  apply(writes: StateWrites, root: string, height: number, unwritten = false): void {
    const prepared =
      this.prepared?.height === height && this.prepared.writes === writes
        ? this.prepared
        : { tree: this.prepare(writes, root, height) };
    const before = this.pinned;
    this.prepared = undefined;
    this.pinned = undefined;
    this.own?.apply(writes, prepared.tree);
    // Until the store has them (`written`), reads that miss the caches answer from these.
    this.unwritten = unwritten && !this.own ? { height, writes, nodes: prepared.tree?.nodes } : undefined;
    for (const [key, value] of writes) {
      if (key.startsWith(SEEN_PREFIX)) {
        const old = before?.get(key) ?? this.seen.getHex(key, SEEN_PREFIX.length);
        if (old !== undefined) this.seenByBucket.get(bucketOf(old as number))?.delete(key);
        this.seen.deleteHex(key, SEEN_PREFIX.length);
        if (value !== null) this.index(key, value);
      } else if (key.startsWith(SEEN_AT_PREFIX)) {
        // Read again only at start-up: kept out of the value cache.
        this.values.delete(key);
        this.unindexSeenAt(key);
        if (value !== null) this.index(key, value);
      } else this.values.set(key, value);
    }
    this.root = root;
    this.height = height;
    this.tentative = [];
    const tree = prepared.tree;
    if (!tree) return;
    // The cache keeps the current tree: a replaced node leaves it now (a proof at an older height
    // reads it from storage), so the nodes of 256 heights of history do not crowd out live ones.
    for (const hash of tree.stale) this.nodes.delete(hash);
    for (const [hash, node] of tree.nodes) this.nodes.set(hash, { node, version: height });
    this.tree.root = tree.root;
    this.treeRoots.set(height, tree.root);
    if (this.own) return;
    this.rewrites?.noteReplaced(height, tree.stale);
    this.rewrites?.noteWritten(height, tree.nodes.keys());
    if (this.pruning) for (const hash of tree.nodes.keys()) this.pruning.written.add(hash);
    else {
      const job = this.startPrune(height + 1);
      // Its read may not see this height's nodes yet: they count as written again.
      if (job && this.unwritten) for (const hash of tree.nodes.keys()) job.written.add(hash);
    }
  }

  /** The store now holds what `apply(…, height, true)` left unwritten. */
  written(height: number): void {
    if (this.unwritten?.height === height) this.unwritten = undefined;
  }

  /**
   * Nodes replaced at a height `at` and not written since are referenced by no root from `at` on:
   * once `at` leaves the proof window they are deleted with the block being committed. Which of
   * them were written again is read off the event loop (`startPrune`), and used by the first
   * commit after the answer; a state that keeps its own storage reads it here.
   */
  private pruneInto(tree: TreeChange, height: number): void {
    const upTo = height - STATE_PROOF_HEIGHTS + 1;
    const job = this.pruning;
    if (job && !job.failed) {
      if (!job.pruned) return; // still reading: a later block deletes them
      this.pruning = undefined;
      // The read began after the height before the job; what was written since, this height's
      // writes included, is written again and stays.
      tree.pruned = job.pruned.filter((hash) => !job.written.has(hash) && !tree.nodes.has(hash));
      tree.prunedAt = range(this.pruneFrom, job.upTo);
      this.pruneFrom = job.upTo + 1;
      this.rewrites?.forgetBefore(this.pruneFrom);
      return;
    }
    this.pruning = undefined;
    if (!this.own) return; // a failed read: the next commit starts another
    const pruned: string[] = [];
    const prunedAt: number[] = [];
    for (let at = this.pruneFrom; at <= upTo; at++) {
      for (const hash of this.storage.stale(at) ?? []) {
        if (tree.nodes.has(hash)) continue;
        const stored = this.storedNode(hash);
        if (stored && stored.version < at) pruned.push(hash);
      }
      prunedAt.push(at);
    }
    if (prunedAt.length === 0) return;
    tree.pruned = pruned;
    tree.prunedAt = prunedAt;
    this.pruneFrom = upTo + 1;
  }

  /**
   * Reads, off the event loop, which nodes of the stale lists up to `height`'s may be deleted. The
   * first `prepare` after the answer takes it; until then each commit's new nodes are noted, so
   * that a node written again meanwhile is kept.
   */
  private startPrune(height: number): { written: Set<string> } | undefined {
    const upTo = height - STATE_PROOF_HEIGHTS + 1;
    if (this.rule === 'running-hash' || upTo < this.pruneFrom) return undefined;
    const lists: { at: number; hashes: string[] }[] = [];
    for (let at = this.pruneFrom; at <= upTo; at++) lists.push({ at, hashes: this.storage.stale(at) ?? [] });
    const job: NonNullable<CommittedState['pruning']> = {
      upTo,
      pruned: undefined,
      failed: false,
      written: new Set(),
    };
    this.pruning = job;
    // A node no height from its replacement on wrote again is deleted without reading it back;
    // the rest (all of a height the watch does not cover) are kept if written at `at` or later.
    const pruned: string[] = [];
    const check: { at: number; hash: string }[] = [];
    const watch = this.rewrites;
    for (const { at, hashes: list } of lists) {
      if (watch?.covers(at, height)) {
        for (const hash of list)
          if (watch.mayBeRewritten(hash)) check.push({ at, hash });
          else pruned.push(hash);
      } else for (const hash of list) check.push({ at, hash });
    }
    if (check.length === 0) {
      job.pruned = pruned;
      return job;
    }
    this.storage.nodeVersions(check.map((c) => c.hash)).then(
      (versions) => {
        for (let i = 0; i < check.length; i++) {
          const version = versions[i];
          if (version !== undefined && version < check[i]!.at) pruned.push(check[i]!.hash);
        }
        job.pruned = pruned;
      },
      () => {
        job.failed = true;
      },
    );
    return job;
  }

  /** The tree root at `height`, while it is recent enough to prove against. */
  treeRootAt(height: number): string | undefined {
    this.buildTree();
    return this.treeRoots.get(height);
  }

  /** A proof of `key`'s value (or absence) at `height` (default: the latest), while retained. */
  prove(key: string, height = this.height): { root: string; proof: StateProof } | undefined {
    this.buildTree();
    const root = this.treeRoots.get(height);
    if (root === undefined) return undefined;
    return { root, proof: this.tree.prove(stateKeyHash(key), root) };
  }

  /** Keys of replay-protection entries in buckets that ended before `time`, oldest first. */
  expiredSeenKeys(time: number): string[] {
    const limit = bucketOf(time);
    const out: string[] = [];
    for (const bucket of [...this.seenByBucket.keys()].sort((a, b) => a - b)) {
      if (bucket >= limit) break;
      const keys = this.seenByBucket.get(bucket)!;
      if (keys.size === 0) {
        this.seenByBucket.delete(bucket);
        continue;
      }
      for (const key of [...keys].sort()) out.push(key);
    }
    return out;
  }

  private index(key: string, value: StateValue): void {
    let expires: number;
    if (key.startsWith(SEEN_PREFIX)) {
      expires = value as number;
      if (!this.seen.setHex(key, expires, SEEN_PREFIX.length)) throw badSeenKey(key);
    } else if (key.startsWith(SEEN_AT_PREFIX)) {
      const entry = value as unknown as SeenAtState;
      expires = entry.expires;
      const hashes = new Uint8Array(entry.txs.length * 32);
      entry.txs.forEach((hash, i) => {
        const bytes = hashes.subarray(i * 32, i * 32 + 32);
        if (!hexInto(hash, bytes)) throw badSeenKey(`${key}: ${hash}`);
        this.seen.set(bytes, expires);
      });
      this.seenAt.set(key, { expires, hashes });
    } else return;
    const bucket = bucketOf(expires);
    let set = this.seenByBucket.get(bucket);
    if (!set) {
      set = new Set();
      this.seenByBucket.set(bucket, set);
    }
    set.add(key);
  }

  private unindexSeenAt(key: string): void {
    const entry = this.seenAt.get(key);
    if (!entry) return;
    this.seenAt.delete(key);
    for (let at = 0; at < entry.hashes.length; at += 32) this.seen.delete(entry.hashes.subarray(at, at + 32));
    this.seenByBucket.get(bucketOf(entry.expires))?.delete(key);
  }
}

function compareKeyHashes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** The integers from..to, inclusive. */
function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/** A replay-guard entry whose transaction hash is not 64 lower-case hex digits. */
function badSeenKey(what: string): DatagrantError {
  return new DatagrantError(
    'LEDGER_BAD_SEEN_KEY',
    `replay guard entry is not a transaction hash: ${what.slice(0, 100)}`,
  );
}

function bucketOf(expires: number): number {
  return Math.floor(expires / SEEN_BUCKET_MS);
}
