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
import { bytesToHex, concatBytes, fromHex, utf8ToBytes } from '../common/bytes.js';
import { type CanonicalValue, canonicalBytes } from '../common/canonical.js';
import { sha256 } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';
import {
  EMPTY_TREE_ROOT,
  MemoryTreeNodeStore,
  type StateProof,
  StateTree,
  type TreeBatch,
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

function treeUpdates(writes: StateWrites): TreeUpdate[] {
  return [...writes].map(([key, value]) => [
    stateKeyHash(key),
    value === null ? null : stateValueHash(value),
  ]);
}

/** How many recent heights' trees stay whole for proofs (older nodes are pruned). */
export const STATE_PROOF_HEIGHTS = 256;

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
/** Granularity at which expired replay-protection entries are pruned. */
export const SEEN_BUCKET_MS = 60_000;

/**
 * The committed state held in memory, plus a derived index of replay-protection entries by
 * expiry so that pruning them is proportional to what expires, not to the state's size.
 */
export class CommittedState implements StateReader {
  private readonly map = new Map<string, StateValue>();
  private readonly seenByBucket = new Map<number, Set<string>>();
  private readonly nodes = new MemoryTreeNodeStore();
  private readonly tree = new StateTree(this.nodes);
  /** Tree roots of recent heights, for proofs. */
  private readonly treeRoots = new Map<number, string>();
  /** The last tentative tree batches (`rootAfter`), reused when the block commits. */
  private tentative: { base: string; batch: TreeBatch }[] = [];
  private treeBuilt = true;
  root: string;
  height: number;

  /**
   * `rule`: how the chain's headers commit to state; under `running-hash` no tree is kept (nothing
   * proves against it). Default `sparse-merkle`.
   */
  constructor(
    root = EMPTY_STATE_ROOT,
    height = 0,
    private readonly rule: StateRootRule = 'sparse-merkle',
  ) {
    this.root = root;
    this.height = height;
  }

  get(key: string): StateValue | undefined {
    return this.map.get(key);
  }

  /** Number of keys held. */
  get size(): number {
    return this.map.size;
  }

  /** Loads one persisted entry (used when reopening the store); the tree is rebuilt when next used. */
  load(key: string, value: StateValue): void {
    this.map.set(key, value);
    this.index(key, value);
    this.treeBuilt = false;
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

  /** After `load`s: the tree over everything loaded, at the loaded height. */
  private buildTree(): void {
    if (this.treeBuilt || this.rule === 'running-hash') return;
    const updates: TreeUpdate[] = [...this.map].map(([k, v]) => [stateKeyHash(k), stateValueHash(v)]);
    const batch = this.tree.update(updates, EMPTY_TREE_ROOT);
    this.nodes.write(batch, this.height);
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

  /** Applies a block's writes and advances root and height. */
  apply(writes: StateWrites, root: string, height: number): void {
    for (const [key, value] of writes) {
      if (value === null) {
        const old = this.map.get(key);
        this.map.delete(key);
        if (old !== undefined && key.startsWith(SEEN_PREFIX)) {
          this.seenByBucket.get(bucketOf(old as number))?.delete(key);
        }
      } else {
        this.map.set(key, value);
        this.index(key, value);
      }
    }
    this.root = root;
    this.height = height;
    if (this.rule === 'running-hash') return;
    this.buildTree();
    // The batch computed when the block was built or checked, if it is this one; else compute it.
    const base = this.tree.root;
    const hit = this.tentative.find((t) => t.base === base && t.batch.root === root);
    const batch = hit?.batch ?? this.tree.update(treeUpdates(writes));
    this.nodes.write(batch, height);
    this.tree.root = batch.root;
    this.tentative = [];
    this.treeRoots.set(height, batch.root);
    this.treeRoots.delete(height - STATE_PROOF_HEIGHTS);
    this.nodes.prune(height - STATE_PROOF_HEIGHTS + 1);
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
    if (!key.startsWith(SEEN_PREFIX)) return;
    const bucket = bucketOf(value as number);
    let set = this.seenByBucket.get(bucket);
    if (!set) {
      set = new Set();
      this.seenByBucket.set(bucket, set);
    }
    set.add(key);
  }
}

function bucketOf(expires: number): number {
  return Math.floor(expires / SEEN_BUCKET_MS);
}
