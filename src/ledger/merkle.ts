/**
 * RFC 6962 Merkle tree over transactions: leaves hash as SHA-256(0x00 || tx bytes), inner nodes
 * as SHA-256(0x01 || left || right), split at the largest power of two below the size. Audit
 * paths prove inclusion; the domain bytes rule out second-preimage tricks between leaves and nodes.
 */
import { bytesToHex, concatBytes, fromHex } from '../common/bytes.js';
import { sha256 } from '../common/crypto.js';

const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);
const EMPTY_ROOT = bytesToHex(sha256(new Uint8Array(0)));

/** Leaf hash of one transaction's canonical bytes. */
export function merkleLeaf(data: Uint8Array): Uint8Array {
  return sha256(concatBytes(LEAF, data));
}

function node(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(concatBytes(NODE, left, right));
}

function split(n: number): number {
  let k = 1;
  while (k << 1 < n) k <<= 1;
  return k;
}

function root(leaves: Uint8Array[], start: number, end: number): Uint8Array {
  const n = end - start;
  if (n === 1) return leaves[start]!;
  const k = split(n);
  return node(root(leaves, start, start + k), root(leaves, start + k, end));
}

/** Root (hex) over leaf hashes; the hash of the empty string for no leaves. */
export function merkleRoot(leaves: Uint8Array[]): string {
  if (leaves.length === 0) return EMPTY_ROOT;
  return bytesToHex(root(leaves, 0, leaves.length));
}

/** Audit path (hex sibling hashes, leaf to root) for the leaf at `index`. */
export function merklePath(leaves: Uint8Array[], index: number): string[] {
  const path: Uint8Array[] = [];
  const walk = (start: number, end: number, i: number): void => {
    const n = end - start;
    if (n === 1) return;
    const k = split(n);
    if (i < k) {
      walk(start, start + k, i);
      path.push(root(leaves, start + k, end));
    } else {
      walk(start + k, end, i - k);
      path.push(root(leaves, start, start + k));
    }
  };
  walk(0, leaves.length, index);
  return path.map(bytesToHex);
}

/** Recomputes the root from a leaf, its index, the tree size and its audit path (RFC 9162 §2.1.3.2). */
export function rootFromPath(leaf: Uint8Array, index: number, size: number, path: string[]): string | null {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return null;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const hex of path) {
    if (sn === 0) return null;
    let sibling: Uint8Array;
    try {
      sibling = fromHex(hex, 'path', 32);
    } catch {
      return null;
    }
    if ((fn & 1) === 1 || fn === sn) {
      r = node(sibling, r);
      if ((fn & 1) === 0) {
        while ((fn & 1) === 0 && fn !== 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = node(r, sibling);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn === 0 ? bytesToHex(r) : null;
}
