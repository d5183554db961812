/**
 * An authenticated key–value map: a binary sparse Merkle tree over SHA-256(key), with the
 * shortcut leaves of Diem's Jellyfish Merkle tree, so a tree of N entries is about log2(N) deep
 * instead of 256.
 *
 * Shape. A key's path is the bits of SHA-256(key), most significant first. An empty subtree hashes
 * to 32 zero bytes. A subtree holding exactly one entry is that entry's leaf, placed where its path
 * first differs from every other key's; a subtree of two or more entries is an internal node
 * hashing its two children. The shape depends only on the set of entries, never on the order of
 * updates, so equal maps have equal roots (the canonical form: after a delete, an internal node
 * left with one leaf and one empty child is replaced by that leaf, upwards).
 *
 *   leaf     = SHA-256(0x00 || keyHash || valueHash)
 *   internal = SHA-256(0x01 || left || right)
 *
 * The two prefixes keep a leaf from being read as an internal node. Proofs: the sibling hashes
 * from the root down to where the key's path ends, and what is there: nothing (absent), the key's
 * own leaf (present, with its value hash), or another key's leaf sharing the path so far (absent).
 * The verifier (`verifyStateProof`) needs only the root; it is pure and portable (noble's SHA-256
 * in a browser, OpenSSL's in a node).
 *
 * Nodes are content addressed (by hash) in a `TreeNodeStore`, so an update writes only the nodes on
 * the changed paths and every earlier root stays readable until it is pruned.
 */
import { bytesToHex, fromHex } from '../common/bytes.js';
import { sha256View } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';

/** 32 zero bytes: the hash of an empty subtree, and the root of an empty map. */
export const EMPTY_TREE_ROOT = '0'.repeat(64);

const EMPTY = new Uint8Array(32);

/** A stored tree node. */
export type TreeNode =
  | { kind: 'leaf'; keyHash: Uint8Array; valueHash: Uint8Array }
  | { kind: 'internal'; left: Uint8Array; right: Uint8Array };

/** What one `StateTree.update` produced: the new root, the nodes it made, the nodes it replaced. */
export interface TreeBatch {
  root: string;
  /** New nodes by hash (hex). */
  nodes: Map<string, TreeNode>;
  /** Hashes (hex) of nodes of the old tree that the new one no longer references. */
  stale: string[];
}

/** Read access to tree nodes, by hash (hex). */
export interface TreeNodeReader {
  /** `bytes`: the hash's bytes, when the caller has them (a store may look up by them). */
  getNode(hash: string, bytes?: Uint8Array): TreeNode | undefined;
}

/** Where tree nodes live: written a batch (one version, e.g. a block height) at a time. */
export interface TreeNodeStore extends TreeNodeReader {
  write(batch: TreeBatch, version: number): void;
}

/**
 * Tree nodes in a Map, with pruning: a node replaced at version v (last referenced by the root of
 * v − 1) is deleted by `prune(w)` for any w ≥ v, unless it was written again since (a key set back
 * to an earlier value recreates its leaf), so every root from version w on stays fully readable.
 */
export class MemoryTreeNodeStore implements TreeNodeStore {
  readonly nodes = new Map<string, { node: TreeNode; version: number }>();
  private readonly staleAt = new Map<number, string[]>();

  getNode(hash: string): TreeNode | undefined {
    return this.nodes.get(hash)?.node;
  }

  write(batch: TreeBatch, version: number): void {
    for (const [hash, node] of batch.nodes) this.nodes.set(hash, { node, version });
    if (batch.stale.length > 0)
      this.staleAt.set(version, [...(this.staleAt.get(version) ?? []), ...batch.stale]);
  }

  /** Deletes the nodes that only roots before `version` referenced. */
  prune(version: number): number {
    let deleted = 0;
    for (const [at, hashes] of this.staleAt) {
      if (at > version) continue;
      for (const hash of hashes) {
        const entry = this.nodes.get(hash);
        if (entry && entry.version < at) {
          this.nodes.delete(hash);
          deleted++;
        }
      }
      this.staleAt.delete(at);
    }
    return deleted;
  }
}

/** One buffer for every node preimage (hashing is synchronous, so it is never shared). */
const PREIMAGE = new Uint8Array(65);

/** SHA-256 of a leaf. */
export function leafHash(keyHash: Uint8Array, valueHash: Uint8Array): Uint8Array {
  PREIMAGE[0] = 0;
  PREIMAGE.set(keyHash, 1);
  PREIMAGE.set(valueHash, 33);
  return sha256View(PREIMAGE);
}

/** SHA-256 of an internal node. */
export function internalHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  PREIMAGE[0] = 1;
  PREIMAGE.set(left, 1);
  PREIMAGE.set(right, 33);
  return sha256View(PREIMAGE);
}

/** Bit `depth` of a 256-bit path (0 = most significant). */
function bit(path: Uint8Array, depth: number): number {
  return (path[depth >> 3]! >> (7 - (depth & 7))) & 1;
}

function isEmpty(hash: Uint8Array): boolean {
  for (const b of hash) if (b !== 0) return false;
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A proof that a key holds a value, or holds none, under a root. */
export interface StateProof {
  /** Sibling hashes (hex) from the root's children down to where the key's path ends. */
  siblings: string[];
  /** What the path ends in: nothing, or a leaf (the key's own when present). */
  leaf?: { keyHash: string; valueHash: string };
}

/** One update of a batch: a value hash to set, or `null` to delete. */
export type TreeUpdate = [keyHash: Uint8Array, valueHash: Uint8Array | null];

/** A leaf to place: a new one (value hash) or one already stored (its hash). */
interface Entry {
  keyHash: Uint8Array;
  valueHash?: Uint8Array;
  hash?: Uint8Array;
}

/** The batch's sets (not deletes) in `ups[from..to)`, as entries. */
function liveEntries(ups: TreeUpdate[], from: number, to: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i < to; i++) {
    const [keyHash, valueHash] = ups[i]!;
    if (valueHash !== null) out.push({ keyHash, valueHash });
  }
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** A sparse Merkle tree over a node store; `root` moves with every `apply`. */
export class StateTree {
  root: string;
  private pending = new Map<string, TreeNode>();
  private stale: string[] = [];

  constructor(
    private readonly store: TreeNodeReader & Partial<Pick<TreeNodeStore, 'write'>>,
    root: string = EMPTY_TREE_ROOT,
  ) {
    this.root = root;
  }

  /**
   * The tree after `updates` (keys distinct) on top of `root` (default: the current root), as a
   * batch to write; the store and `root` are not changed. The batch is sorted by path and applied
   * in one descent, so a node on many updated paths is made once, not once per update.
   */
  update(updates: TreeUpdate[], root: string = this.root): TreeBatch {
    const sorted = [...updates].sort((a, b) => compareBytes(a[0], b[0]));
    for (let i = 1; i < sorted.length; i++)
      if (compareBytes(sorted[i - 1]![0], sorted[i]![0]) === 0)
        throw new DatagrantError('LEDGER_STATE_TREE_DUPLICATE', 'a batch updates one key twice');
    this.pending = new Map();
    this.stale = [];
    try {
      const next = this.descend(fromHex(root, 'root', 32), sorted, 0, sorted.length, 0);
      return { root: bytesToHex(next), nodes: this.pending, stale: this.stale };
    } finally {
      this.pending = new Map();
      this.stale = [];
    }
  }

  /** Applies `updates`, writes the batch to the store as `version`, and moves `root`. */
  apply(updates: TreeUpdate[], version = 0): string {
    if (!this.store.write) throw new DatagrantError('LEDGER_STATE_TREE_READ_ONLY', 'this tree cannot write');
    const batch = this.update(updates);
    this.store.write(batch, version);
    this.root = batch.root;
    return this.root;
  }

  /** The value hash stored for `keyHash` under `root` (default: the current root). */
  get(keyHash: Uint8Array, root: string = this.root): Uint8Array | undefined {
    let at = fromHex(root, 'root', 32);
    for (let depth = 0; ; depth++) {
      if (isEmpty(at)) return undefined;
      const node = this.node(at);
      if (node.kind === 'leaf') return sameBytes(node.keyHash, keyHash) ? node.valueHash : undefined;
      at = bit(keyHash, depth) === 0 ? node.left : node.right;
    }
  }

  /** A proof for `keyHash` under `root` (default: the current root). */
  prove(keyHash: Uint8Array, root: string = this.root): StateProof {
    const siblings: string[] = [];
    let at = fromHex(root, 'root', 32);
    for (let depth = 0; ; depth++) {
      if (isEmpty(at)) return { siblings };
      const node = this.node(at);
      if (node.kind === 'leaf')
        return {
          siblings,
          leaf: { keyHash: bytesToHex(node.keyHash), valueHash: bytesToHex(node.valueHash) },
        };
      const right = bit(keyHash, depth) === 1;
      siblings.push(bytesToHex(right ? node.left : node.right));
      at = right ? node.right : node.left;
    }
  }

  protected node(hash: Uint8Array): TreeNode {
    const hex = bytesToHex(hash);
    const node = this.pending.get(hex) ?? this.store.getNode(hex, hash);
    if (!node) throw new DatagrantError('LEDGER_STATE_TREE_MISSING', `state tree node ${hex} is missing`);
    return node;
  }

  private putLeaf(keyHash: Uint8Array, valueHash: Uint8Array): Uint8Array {
    const h = leafHash(keyHash, valueHash);
    this.pending.set(bytesToHex(h), { kind: 'leaf', keyHash, valueHash });
    return h;
  }

  protected putInternal(left: Uint8Array, right: Uint8Array): Uint8Array {
    const h = internalHash(left, right);
    this.pending.set(bytesToHex(h), { kind: 'internal', left, right });
    return h;
  }

  /** The subtree at `at` (depth `depth`) after the updates `ups[from..to)`, all below its prefix. */
  protected descend(at: Uint8Array, ups: TreeUpdate[], from: number, to: number, depth: number): Uint8Array {
    if (from === to) return at;
    if (isEmpty(at)) return this.build(liveEntries(ups, from, to), 0, depth);
    const node = this.node(at);
    if (node.kind === 'leaf') {
      // The old leaf joins the batch unless the batch sets or deletes its key.
      const entries = liveEntries(ups, from, to);
      const own = ups.slice(from, to).find(([k]) => sameBytes(k, node.keyHash));
      if (own === undefined) {
        const at0 = entries.findIndex((e) => compareBytes(e.keyHash, node.keyHash) > 0);
        entries.splice(at0 < 0 ? entries.length : at0, 0, { keyHash: node.keyHash, hash: at });
      } else if (own[1] === null || !sameBytes(own[1], node.valueHash)) this.stale.push(bytesToHex(at));
      return this.build(entries, 0, depth);
    }
    let mid = from;
    while (mid < to && bit(ups[mid]![0], depth) === 0) mid++;
    const left = this.descend(node.left, ups, from, mid, depth + 1);
    const right = this.descend(node.right, ups, mid, to, depth + 1);
    if (sameBytes(left, node.left) && sameBytes(right, node.right)) return at;
    this.stale.push(bytesToHex(at));
    return this.join(left, right);
  }

  /** An internal node over `left` and `right`, in canonical form (a lone leaf moves up). */
  protected join(left: Uint8Array, right: Uint8Array): Uint8Array {
    if (isEmpty(left) && (isEmpty(right) || this.isLeaf(right))) return right;
    if (isEmpty(right) && this.isLeaf(left)) return left;
    return this.putInternal(left, right);
  }

  /** The canonical subtree of `entries` (sorted by path, all sharing the first `depth` bits). */
  private build(entries: Entry[], from: number, depth: number, to = entries.length): Uint8Array {
    if (from === to) return EMPTY;
    if (to - from === 1) {
      const e = entries[from]!;
      return e.hash ?? this.putLeaf(e.keyHash, e.valueHash!);
    }
    if (depth >= 256) throw new DatagrantError('LEDGER_STATE_TREE_COLLISION', 'two keys hash alike');
    let mid = from;
    while (mid < to && bit(entries[mid]!.keyHash, depth) === 0) mid++;
    return this.putInternal(
      this.build(entries, from, depth + 1, mid),
      this.build(entries, mid, depth + 1, to),
    );
  }

  private isLeaf(hash: Uint8Array): boolean {
    return !isEmpty(hash) && this.node(hash).kind === 'leaf';
  }
}

/** Result of `verifyStateProof`. */
export type StateProofResult =
  | { ok: true; present: boolean }
  | { ok: false; code: 'PROOF_STATE_INVALID'; message: string };

/**
 * Checks `proof` for `keyHash` against `root`: present with `valueHash`, or absent when
 * `valueHash` is `null`. Pure; needs no tree.
 */
export function verifyStateProof(
  root: string,
  keyHash: Uint8Array,
  valueHash: Uint8Array | null,
  proof: StateProof,
): StateProofResult {
  const fail = (message: string): StateProofResult => ({ ok: false, code: 'PROOF_STATE_INVALID', message });
  try {
    if (!Array.isArray(proof?.siblings) || proof.siblings.length > 256) return fail('bad siblings');
    const depth = proof.siblings.length;
    let at: Uint8Array;
    let present = false;
    if (proof.leaf === undefined) at = EMPTY;
    else {
      const leafKey = fromHex(proof.leaf.keyHash, 'leaf.keyHash', 32);
      const leafValue = fromHex(proof.leaf.valueHash, 'leaf.valueHash', 32);
      if (sameBytes(leafKey, keyHash)) {
        present = true;
        if (valueHash === null || !sameBytes(leafValue, valueHash))
          return fail('the key holds another value');
      } else {
        // Another key's leaf ends the path: it must share the path so far, or it proves nothing.
        for (let d = 0; d < depth; d++)
          if (bit(leafKey, d) !== bit(keyHash, d)) return fail('the leaf found is off the key path');
      }
      at = leafHash(leafKey, leafValue);
    }
    if (!present && valueHash !== null) return fail('the key is absent');
    for (let d = depth - 1; d >= 0; d--) {
      const sibling = fromHex(proof.siblings[d]!, 'sibling', 32);
      at = bit(keyHash, d) === 0 ? internalHash(at, sibling) : internalHash(sibling, at);
    }
    if (bytesToHex(at) !== root) return fail('the proof does not lead to the root');
    return { ok: true, present };
  } catch (err) {
    return fail((err as Error).message);
  }
}
