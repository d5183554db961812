/**
 * Where committed state lives when it is not in memory: its entries, the state tree's nodes, the
 * tree roots of recent heights and the lists of nodes each height replaced, behind synchronous
 * reads (LevelDB's `getSync`, a Map in tests), so that executing a block never waits on a promise.
 *
 * Layout in a key–value store (the block store's database; every block's changes are written in
 * the block's own atomic batch):
 *   s:<state key>      canonical value as JSON
 *   n:<hash>           a tree node: `<version>:L<keyHash><valueHash>` or `<version>:I<left><right>`
 *                      (hex), the version being the height that last wrote it
 *   v:<height>         the tree root at that height (kept for STATE_PROOF_HEIGHTS heights)
 *   w:<height>         hashes of the nodes that height's update replaced, comma-separated, until
 *                      pruned STATE_PROOF_HEIGHTS − 1 heights later
 * A node is deleted when a height it was replaced at leaves the proof window, unless a later height
 * wrote it again (then its version is at least that height).
 */
import { DatagrantError } from '../common/errors.js';
import type { StateValue, StateWrites } from './state.js';
import type { TreeNode } from './state-tree.js';

/** A tree node and the version (height) that last wrote it. */
export interface StoredTreeNode {
  node: TreeNode;
  version: number;
}

/** What committing one height changes in the state tree's storage. */
export interface TreeChange {
  /** The height written. */
  version: number;
  /** The tree root at that height. */
  root: string;
  /** Nodes written, by hash (hex). */
  nodes: Map<string, TreeNode>;
  /** Hashes of nodes this height replaced (pruned once it leaves the proof window). */
  stale: string[];
  /** Hashes of nodes deleted now: replaced at a height of `prunedAt` and not written since. */
  pruned: string[];
  /** The heights whose stale lists were pruned (the lists are deleted with them). */
  prunedAt?: number[];
  /** A height whose root leaves the proof window. */
  droppedRoot?: number;
}

/** Synchronous reads of stored state, and the scans and writes used at start-up. */
export interface StateStorage {
  value(key: string): StateValue | undefined;
  node(hash: string): StoredTreeNode | undefined;
  root(version: number): string | undefined;
  stale(version: number): string[] | undefined;
  /** The versions that last wrote these nodes (undefined: not stored), read off the event loop. */
  nodeVersions(hashes: string[]): Promise<(number | undefined)[]>;
  /** The lowest height that still has a stale list. */
  firstStale(): Promise<number | undefined>;
  /** State entries whose keys start with `prefix`, in key order. */
  scan(prefix: string): AsyncIterable<[string, StateValue]>;
  /** Writes tree nodes outside a block (rebuilding the tree of a store that has none). */
  writeTree(change: TreeChange): Promise<void>;
}

/** A key–value operation of a block store's batch. */
export type KvOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

const pad = (n: number): string => n.toString().padStart(12, '0');

/** Keys of the state layout in a key–value store. */
export const STATE_KV = {
  value: (key: string) => `s:${key}`,
  node: (hash: string) => `n:${hash}`,
  root: (version: number) => `v:${pad(version)}`,
  stale: (version: number) => `w:${pad(version)}`,
  /** Key ranges (gt, lt) of the tree's records, for a store that replaces its state. */
  treeRanges: [
    ['n:', 'n;'],
    ['v:', 'v;'],
    ['w:', 'w;'],
  ] as const,
} as const;

/** Encodes a stored node: `<version>:L|I` and 128 hex digits. */
export function encodeTreeNode(node: TreeNode, version: number): string {
  return node.kind === 'leaf'
    ? `${version}:L${hex(node.keyHash)}${hex(node.valueHash)}`
    : `${version}:I${hex(node.left)}${hex(node.right)}`;
}

/** Decodes `encodeTreeNode`'s output (LEDGER_STATE_TREE_CORRUPT when malformed). */
export function decodeTreeNode(raw: string): StoredTreeNode {
  const colon = raw.indexOf(':');
  const version = Number(raw.slice(0, colon));
  const kind = raw[colon + 1];
  const body = raw.slice(colon + 2);
  if (colon < 1 || !Number.isSafeInteger(version) || body.length !== 128 || (kind !== 'L' && kind !== 'I'))
    throw new DatagrantError('LEDGER_STATE_TREE_CORRUPT', 'a stored state tree node is malformed');
  const bytes = Buffer.from(body, 'hex');
  if (bytes.length !== 64)
    throw new DatagrantError('LEDGER_STATE_TREE_CORRUPT', 'a stored state tree node is malformed');
  const a = new Uint8Array(bytes.subarray(0, 32));
  const b = new Uint8Array(bytes.subarray(32));
  return {
    version,
    node: kind === 'L' ? { kind: 'leaf', keyHash: a, valueHash: b } : { kind: 'internal', left: a, right: b },
  };
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** The key–value operations of one height's state writes and tree change. */
export function stateKvOps(writes: StateWrites, tree: TreeChange | undefined): KvOp[] {
  const ops: KvOp[] = [];
  for (const [key, value] of writes)
    ops.push(
      value === null
        ? { type: 'del', key: STATE_KV.value(key) }
        : { type: 'put', key: STATE_KV.value(key), value: JSON.stringify(value) },
    );
  if (tree) for (const op of treeKvOps(tree)) ops.push(op);
  return ops;
}

function treeKvOps(tree: TreeChange): KvOp[] {
  const ops: KvOp[] = [];
  for (const [hash, node] of tree.nodes)
    ops.push({ type: 'put', key: STATE_KV.node(hash), value: encodeTreeNode(node, tree.version) });
  ops.push({ type: 'put', key: STATE_KV.root(tree.version), value: tree.root });
  if (tree.stale.length > 0)
    ops.push({ type: 'put', key: STATE_KV.stale(tree.version), value: tree.stale.join(',') });
  for (const hash of tree.pruned) ops.push({ type: 'del', key: STATE_KV.node(hash) });
  for (const at of tree.prunedAt ?? []) ops.push({ type: 'del', key: STATE_KV.stale(at) });
  if (tree.droppedRoot !== undefined) ops.push({ type: 'del', key: STATE_KV.root(tree.droppedRoot) });
  return ops;
}

/** What a key–value store offers the state: synchronous gets, ranged scans, batches. */
export interface RawKv {
  getSync(key: string): string | undefined;
  getMany(keys: string[]): Promise<(string | undefined)[]>;
  /** Entries with keys in [gte, lt), in key order. */
  scan(gte: string, lt: string): AsyncIterable<[string, string]>;
  batch(ops: KvOp[]): Promise<void>;
}

/** State storage over a key–value store in the layout above. */
export class KvStateStorage implements StateStorage {
  constructor(private readonly kv: RawKv) {}

  value(key: string): StateValue | undefined {
    const raw = this.kv.getSync(STATE_KV.value(key));
    return raw === undefined ? undefined : (JSON.parse(raw) as StateValue);
  }

  node(hash: string): StoredTreeNode | undefined {
    const raw = this.kv.getSync(STATE_KV.node(hash));
    return raw === undefined ? undefined : decodeTreeNode(raw);
  }

  root(version: number): string | undefined {
    return this.kv.getSync(STATE_KV.root(version));
  }

  stale(version: number): string[] | undefined {
    const raw = this.kv.getSync(STATE_KV.stale(version));
    return raw === undefined ? undefined : raw.split(',');
  }

  async nodeVersions(hashes: string[]): Promise<(number | undefined)[]> {
    const raws = await this.kv.getMany(hashes.map(STATE_KV.node));
    return raws.map((raw) => (raw === undefined ? undefined : Number(raw.slice(0, raw.indexOf(':')))));
  }

  async firstStale(): Promise<number | undefined> {
    for await (const [key] of this.kv.scan('w:', 'w;')) return Number(key.slice(2));
    return undefined;
  }

  async *scan(prefix: string): AsyncIterable<[string, StateValue]> {
    const from = STATE_KV.value(prefix);
    for await (const [key, raw] of this.kv.scan(from, prefixEnd(from)))
      yield [key.slice(2), JSON.parse(raw) as StateValue];
  }

  async writeTree(change: TreeChange): Promise<void> {
    await this.kv.batch(treeKvOps(change));
  }
}

/** The first string after every string starting with `prefix`. */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/** State storage in Maps, written by the state itself (genesis, snapshot checks, tests). */
export class MemoryStateStorage implements StateStorage {
  readonly values = new Map<string, StateValue>();
  readonly nodes = new Map<string, StoredTreeNode>();
  readonly roots = new Map<number, string>();
  readonly staleLists = new Map<number, string[]>();

  value(key: string): StateValue | undefined {
    return this.values.get(key);
  }

  node(hash: string): StoredTreeNode | undefined {
    return this.nodes.get(hash);
  }

  root(version: number): string | undefined {
    return this.roots.get(version);
  }

  stale(version: number): string[] | undefined {
    return this.staleLists.get(version);
  }

  async nodeVersions(hashes: string[]): Promise<(number | undefined)[]> {
    return hashes.map((hash) => this.nodes.get(hash)?.version);
  }

  async firstStale(): Promise<number | undefined> {
    const versions = [...this.staleLists.keys()];
    return versions.length > 0 ? Math.min(...versions) : undefined;
  }

  async *scan(prefix: string): AsyncIterable<[string, StateValue]> {
    for (const key of [...this.values.keys()].filter((k) => k.startsWith(prefix)).sort())
      yield [key, this.values.get(key)!];
  }

  async writeTree(change: TreeChange): Promise<void> {
    this.applyTree(change);
  }

  /** Applies one height's writes and tree change. */
  apply(writes: StateWrites, tree: TreeChange | undefined): void {
    for (const [key, value] of writes) {
      if (value === null) this.values.delete(key);
      else this.values.set(key, value);
    }
    if (tree) this.applyTree(tree);
  }

  /** Applies a tree change. */
  applyTree(tree: TreeChange): void {
    for (const [hash, node] of tree.nodes) this.nodes.set(hash, { node, version: tree.version });
    this.roots.set(tree.version, tree.root);
    if (tree.stale.length > 0) this.staleLists.set(tree.version, tree.stale);
    for (const hash of tree.pruned) this.nodes.delete(hash);
    for (const at of tree.prunedAt ?? []) this.staleLists.delete(at);
    if (tree.droppedRoot !== undefined) this.roots.delete(tree.droppedRoot);
  }
}

/**
 * A bounded cache that keeps what was used recently, in two generations: entries go into the young
 * one; when it is full it becomes the old one (the previous old one is dropped), and an old entry
 * that is used again moves back into the young one. Every operation is a Map operation or two, with
 * no bookkeeping on a hit in the young generation; it holds at most `capacity` entries.
 * `capacity` 0 caches nothing (for storage that is itself in memory).
 */
export class LruCache<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  private readonly half: number;

  constructor(readonly capacity: number) {
    this.half = Math.max(1, Math.floor(capacity / 2));
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  get(key: K): V | undefined {
    const value = this.young.get(key);
    if (value !== undefined) return value;
    const aged = this.old.get(key);
    if (aged !== undefined) {
      this.old.delete(key);
      this.put(key, aged);
    }
    return aged;
  }

  set(key: K, value: V): void {
    if (this.capacity <= 0) return;
    this.old.delete(key);
    this.put(key, value);
  }

  private put(key: K, value: V): void {
    this.young.set(key, value);
    if (this.young.size >= this.half && this.capacity !== Number.POSITIVE_INFINITY) {
      this.old = this.young;
      this.young = new Map();
    }
  }

  delete(key: K): void {
    this.young.delete(key);
    this.old.delete(key);
  }
}
