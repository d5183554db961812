/**
 * A bounded cache of state-tree nodes in one flat buffer outside the JS heap: a set-associative
 * hash table of fixed-size slots, so holding a million nodes costs the collector one object, not
 * millions (a node in a Map is a key string, a record and two 32-byte arrays, each traced on every
 * full collection).
 *
 * Slot layout (104 bytes): hash (32) | kind (1: 0 empty, 1 leaf, 2 internal) | 3 spare |
 * version (u32) | first child or key hash (32) | second child or value hash (32).
 * A node's bucket is its hash's first four bytes (SHA-256 output, so uniform) modulo the bucket
 * count; a full bucket gives up one of its `WAYS` slots in turn. Reads copy out of the slot, so a
 * node handed to the tree never changes when its slot is reused.
 */
import { hexByteAt } from '../common/bytes.js';
import { LruCache, type StoredTreeNode } from './state-storage.js';

const SLOT = 104;
const WAYS = 4;
const KIND = 32;
const VERSION_WORD = 9; // byte 36 in 32-bit words
const FIRST = 40;
const SECOND = 72;
const LEAF = 1;
const INTERNAL = 2;
/** Buckets a table starts with (416 KiB). */
const INITIAL_BUCKETS = 1024;

/** Bytes a table of `capacity` nodes allocates (rounded up as `TreeNodeTable` does). */
export function treeNodeTableBytes(capacity: number): number {
  return bucketsFor(capacity) * WAYS * SLOT;
}

function bucketsFor(capacity: number): number {
  if (!Number.isSafeInteger(capacity) || capacity < WAYS) return 1;
  let buckets = 1;
  while (buckets * WAYS < capacity) buckets *= 2;
  return buckets;
}

/**
 * One scratch buffer for decoding a hex hash (reads are synchronous, so it is never shared): the
 * commit path looks up tens of thousands of hashes a block by hex, and `fromHex` would validate
 * and allocate for each.
 */
const SCRATCH = new Uint8Array(32);

/** `bytes` when given, else `hex` (64 lower-case digits) decoded into the scratch buffer. */
function hashOf(hex: string, bytes: Uint8Array | undefined): Uint8Array {
  if (bytes) return bytes;
  for (let i = 0; i < 32; i++) SCRATCH[i] = hexByteAt(hex, i);
  return SCRATCH;
}

/** A node cache keyed by hash: hex always, its bytes when the caller has them at hand. */
export interface TreeNodeCache {
  get(hex: string, bytes?: Uint8Array): StoredTreeNode | undefined;
  set(hex: string, stored: StoredTreeNode, bytes?: Uint8Array): void;
  delete(hex: string): void;
}

export class TreeNodeTable implements TreeNodeCache {
  private bytes: Uint8Array;
  private words: Uint32Array;
  private mask: number;
  private readonly maxBuckets: number;
  private victim = 0;
  /** Nodes held. */
  size = 0;

  /**
   * `capacity`: nodes held at most, rounded up to a power of two times the ways. The buffer starts
   * small and doubles whenever a node finds its bucket full, up to that bound, so a small chain (or
   * a test's) never holds the whole bound; only at the bound are nodes given up.
   */
  constructor(capacity: number) {
    this.maxBuckets = bucketsFor(capacity);
    const buckets = Math.min(this.maxBuckets, INITIAL_BUCKETS);
    this.mask = buckets - 1;
    this.bytes = new Uint8Array(buckets * WAYS * SLOT);
    this.words = new Uint32Array(this.bytes.buffer);
  }

  /** Nodes the table can hold. */
  get capacity(): number {
    return this.maxBuckets * WAYS;
  }

  /** Doubles the buffer, placing every node held again. */
  private grow(): void {
    const old = this.bytes;
    const buckets = (this.mask + 1) * 2;
    this.mask = buckets - 1;
    this.bytes = new Uint8Array(buckets * WAYS * SLOT);
    this.words = new Uint32Array(this.bytes.buffer);
    this.size = 0;
    for (let at = 0; at < old.length; at += SLOT) {
      if (old[at + KIND] === 0) continue;
      const hash = old.subarray(at, at + 32);
      const first = this.bucket(hash) * WAYS * SLOT;
      for (let way = 0; way < WAYS; way++) {
        const to = first + way * SLOT;
        if (this.bytes[to + KIND] !== 0) continue;
        this.bytes.set(old.subarray(at, at + SLOT), to);
        this.size++;
        break;
      }
    }
  }

  private bucket(hash: Uint8Array): number {
    return (((hash[0]! << 24) | (hash[1]! << 16) | (hash[2]! << 8) | hash[3]!) >>> 0) & this.mask;
  }

  /** The slot's byte offset holding `hash`, or -1. */
  private find(hash: Uint8Array): number {
    const first = this.bucket(hash) * WAYS * SLOT;
    const b = this.bytes;
    for (let way = 0; way < WAYS; way++) {
      const at = first + way * SLOT;
      if (b[at + KIND] === 0) continue;
      let i = 0;
      while (i < 32 && b[at + i] === hash[i]) i++;
      if (i === 32) return at;
    }
    return -1;
  }

  get(hex: string, bytes?: Uint8Array): StoredTreeNode | undefined {
    const at = this.find(hashOf(hex, bytes));
    if (at < 0) return undefined;
    const b = this.bytes;
    const first = b.slice(at + FIRST, at + FIRST + 32);
    const second = b.slice(at + SECOND, at + SECOND + 32);
    const version = this.words[at / 4 + VERSION_WORD]!;
    return b[at + KIND] === LEAF
      ? { version, node: { kind: 'leaf', keyHash: first, valueHash: second } }
      : { version, node: { kind: 'internal', left: first, right: second } };
  }

  set(hex: string, stored: StoredTreeNode, bytes?: Uint8Array): void {
    const hash = hashOf(hex, bytes);
    let at = this.find(hash);
    const b = this.bytes;
    if (at < 0) {
      const first = this.bucket(hash) * WAYS * SLOT;
      for (let way = 0; way < WAYS && at < 0; way++)
        if (b[first + way * SLOT + KIND] === 0) at = first + way * SLOT;
      if (at < 0 && this.mask + 1 < this.maxBuckets) {
        // A full bucket below the bound: double rather than give up a node.
        this.grow();
        this.set(hex, stored, bytes === undefined ? new Uint8Array(hash) : bytes);
        return;
      }
      if (at < 0) {
        this.victim = (this.victim + 1) % WAYS;
        at = first + this.victim * SLOT;
      } else this.size++;
      b.set(hash.subarray(0, 32), at);
    }
    this.write(at, stored);
  }

  private write(at: number, stored: StoredTreeNode): void {
    const b = this.bytes;
    const node = stored.node;
    b[at + KIND] = node.kind === 'leaf' ? LEAF : INTERNAL;
    this.words[at / 4 + VERSION_WORD] = stored.version;
    b.set(node.kind === 'leaf' ? node.keyHash : node.left, at + FIRST);
    b.set(node.kind === 'leaf' ? node.valueHash : node.right, at + SECOND);
  }

  delete(hex: string): void {
    const at = this.find(hashOf(hex, undefined));
    if (at < 0) return;
    this.bytes[at + KIND] = 0;
    this.size--;
  }
}

/**
 * The node cache of a state on a store: a `TreeNodeTable` of `capacity` nodes; none for 0 (storage
 * in memory); for an unbounded capacity (benchmarks' heap mode) a Map that keeps every node.
 */
export function treeNodeCache(capacity: number): TreeNodeCache {
  if (capacity > 0 && Number.isFinite(capacity)) return new TreeNodeTable(capacity);
  const lru = new LruCache<string, StoredTreeNode>(capacity);
  return {
    get: (hex) => lru.get(hex),
    set: (hex, stored) => lru.set(hex, stored),
    delete: (hex) => lru.delete(hex),
  };
}
