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
import { bytesToHex, concatBytes, fromHex } from '../common/bytes.js';
import { sha256 } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';

/** 32 zero bytes: the hash of an empty subtree, and the root of an empty map. */
export const EMPTY_TREE_ROOT = '0'.repeat(64);

const EMPTY = new Uint8Array(32);
const LEAF = Uint8Array.of(0);
const INTERNAL = Uint8Array.of(1);

/** A stored tree node. */
export type TreeNode =
  | { kind: 'leaf'; keyHash: Uint8Array; valueHash: Uint8Array }
  | { kind: 'internal'; left: Uint8Array; right: Uint8Array };

/** Where tree nodes live, by hash (hex). */
export interface TreeNodeStore {
  getNode(hash: string): TreeNode | undefined;
  putNode(hash: string, node: TreeNode): void;
}

/** Tree nodes in a Map. */
export class MemoryTreeNodeStore implements TreeNodeStore {
  readonly nodes = new Map<string, TreeNode>();
  getNode(hash: string): TreeNode | undefined {
    return this.nodes.get(hash);
  }
  putNode(hash: string, node: TreeNode): void {
    this.nodes.set(hash, node);
  }
}

/** SHA-256 of a leaf. */
export function leafHash(keyHash: Uint8Array, valueHash: Uint8Array): Uint8Array {
  return sha256(concatBytes(LEAF, keyHash, valueHash));
}

/** SHA-256 of an internal node. */
export function internalHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(concatBytes(INTERNAL, left, right));
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

/** A sparse Merkle tree over a node store; `root` moves with every `apply`. */
export class StateTree {
  root: string;

  constructor(
    private readonly store: TreeNodeStore,
    root: string = EMPTY_TREE_ROOT,
  ) {
    this.root = root;
  }

  /** Applies updates (keys distinct) and returns the new root. */
  apply(updates: TreeUpdate[]): string {
    let root = fromHex(this.root, 'root', 32);
    for (const [keyHash, valueHash] of updates) {
      root = valueHash === null ? this.remove(root, keyHash, 0) : this.insert(root, keyHash, valueHash, 0);
    }
    this.root = bytesToHex(root);
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
    const node = this.store.getNode(hex);
    if (!node) throw new DatagrantError('LEDGER_STATE_TREE_MISSING', `state tree node ${hex} is missing`);
    return node;
  }

  private putLeaf(keyHash: Uint8Array, valueHash: Uint8Array): Uint8Array {
    const h = leafHash(keyHash, valueHash);
    this.store.putNode(bytesToHex(h), { kind: 'leaf', keyHash, valueHash });
    return h;
  }

  protected putInternal(left: Uint8Array, right: Uint8Array): Uint8Array {
    const h = internalHash(left, right);
    this.store.putNode(bytesToHex(h), { kind: 'internal', left, right });
    return h;
  }

  /** Two leaves below a common prefix: internal nodes down to the first bit where they differ. */
  private split(
    depth: number,
    a: Uint8Array,
    aHash: Uint8Array,
    b: Uint8Array,
    bHash: Uint8Array,
  ): Uint8Array {
    if (depth >= 256) throw new DatagrantError('LEDGER_STATE_TREE_COLLISION', 'two keys hash alike');
    const ba = bit(a, depth);
    const bb = bit(b, depth);
    if (ba === bb) {
      const child = this.split(depth + 1, a, aHash, b, bHash);
      return ba === 0 ? this.putInternal(child, EMPTY) : this.putInternal(EMPTY, child);
    }
    return ba === 0 ? this.putInternal(aHash, bHash) : this.putInternal(bHash, aHash);
  }

  private insert(at: Uint8Array, keyHash: Uint8Array, valueHash: Uint8Array, depth: number): Uint8Array {
    if (isEmpty(at)) return this.putLeaf(keyHash, valueHash);
    const node = this.node(at);
    if (node.kind === 'leaf') {
      if (sameBytes(node.keyHash, keyHash)) return this.putLeaf(keyHash, valueHash);
      return this.split(depth, keyHash, this.putLeaf(keyHash, valueHash), node.keyHash, at);
    }
    return bit(keyHash, depth) === 0
      ? this.putInternal(this.insert(node.left, keyHash, valueHash, depth + 1), node.right)
      : this.putInternal(node.left, this.insert(node.right, keyHash, valueHash, depth + 1));
  }

  protected remove(at: Uint8Array, keyHash: Uint8Array, depth: number): Uint8Array {
    if (isEmpty(at)) return at;
    const node = this.node(at);
    if (node.kind === 'leaf') return sameBytes(node.keyHash, keyHash) ? EMPTY : at;
    const goRight = bit(keyHash, depth) === 1;
    const before = goRight ? node.right : node.left;
    const after = this.remove(before, keyHash, depth + 1);
    if (sameBytes(before, after)) return at;
    const left = goRight ? node.left : after;
    const right = goRight ? after : node.right;
    // Canonical form: a subtree of one leaf is that leaf, wherever it ends up.
    if (isEmpty(left) && this.isLeaf(right)) return right;
    if (isEmpty(right) && this.isLeaf(left)) return left;
    return this.putInternal(left, right);
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
