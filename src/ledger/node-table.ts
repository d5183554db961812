/**
 * A bounded cache of state-tree nodes in one flat buffer outside the JS heap: a set-associative
 * hash table of fixed-size slots, so holding a million nodes costs the collector one object, not
 * millions (a node in a Map is a key string, a record and two 32-byte arrays, each traced on every
 * full collection).
 *
 * Slot layout (104 bytes): hash (32) | kind (1: 0 empty, 1 leaf, 2 internal) | 3 spare |
 * version (u32) | first child or key hash (32) | second child or value hash (32).
 * A node may sit in either of two buckets of `WAYS` slots, picked by its hash's first and second
 * four bytes (SHA-256 output, so uniform), and goes into the emptier one; when both are full, nodes
 * in them move to their other buckets to make room (up to two cuckoo steps). So a table 85% full
 * still places nearly every node (one choice overflows buckets from a few per cent on); there it grows
 * by half, and at its bound a node gives up one of the slots in turn. Reads copy out of the slot, so a node handed to the tree
 * never changes when its slot is reused.
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
const TWO_32 = 2 ** 32;
/** The share of slots held at which a table below its bound grows. */
const MAX_LOAD = 0.85;

/** Bytes a table of `capacity` nodes allocates (rounded up as `TreeNodeTable` does). */
export function treeNodeTableBytes(capacity: number): number {
  return bucketsFor(capacity) * WAYS * SLOT;
}

function bucketsFor(capacity: number): number {
  if (!Number.isSafeInteger(capacity) || capacity < WAYS) return 1;
  return Math.ceil(capacity / WAYS);
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
  private buckets: number;
  private readonly maxBuckets: number;
  private victim = 0;
  /** Nodes held. */
  size = 0;

  /**
   * `capacity`: nodes held at most, rounded up to whole buckets. The buffer starts small and grows
   * by half whenever it is `MAX_LOAD` full, up to that bound, so a small chain (or a test's) never
   * holds the whole bound; nodes are given up only at the bound (or, rarely, when neither of a
   * node's buckets has room nor a node in them that can move).
   */
  constructor(capacity: number) {
    this.maxBuckets = bucketsFor(capacity);
    this.buckets = Math.min(this.maxBuckets, INITIAL_BUCKETS);
    this.bytes = new Uint8Array(this.buckets * WAYS * SLOT);
    this.words = new Uint32Array(this.bytes.buffer);
  }

  /** Nodes the table can hold. */
  get capacity(): number {
    return this.maxBuckets * WAYS;
  }

  /** Nodes the table holds room for now (it grows up to `capacity`). */
  get slots(): number {
    return this.buckets * WAYS;
  }

  /** Grows the buffer by half (up to the bound), placing every node held again. */
  private grow(): void {
    const old = this.bytes;
    this.buckets = Math.min(this.maxBuckets, Math.ceil(this.buckets * 1.5));
    this.bytes = new Uint8Array(this.buckets * WAYS * SLOT);
    this.words = new Uint32Array(this.bytes.buffer);
    this.size = 0;
    for (let at = 0; at < old.length; at += SLOT) {
      if (old[at + KIND] === 0) continue;
      const to = this.freeSlot(old.subarray(at, at + 32));
      if (to < 0) continue; // a cache: a node that finds no room is read from the store again
      this.bytes.set(old.subarray(at, at + SLOT), to);
      this.size++;
    }
  }

  /** The byte offset of one of the hash's two buckets (`second`: the other). */
  private bucket(hash: Uint8Array, second: boolean): number {
    const i = second ? 4 : 0;
    const h = ((hash[i]! << 24) | (hash[i + 1]! << 16) | (hash[i + 2]! << 8) | hash[i + 3]!) >>> 0;
    // h × buckets < 2^53: exact, and spread over any bucket count, not only powers of two.
    return Math.floor((h * this.buckets) / TWO_32) * WAYS * SLOT;
  }

  /** The slot's byte offset holding `hash`, or -1. */
  private find(hash: Uint8Array): number {
    const at = this.findIn(this.bucket(hash, false), hash);
    return at >= 0 ? at : this.findIn(this.bucket(hash, true), hash);
  }

  private findIn(first: number, hash: Uint8Array): number {
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

  /**
   * An empty slot for `hash` in the emptier of its two buckets; when both are full, nodes in them
   * move to their other buckets to make room (cuckoo steps: one node whose other bucket has room,
   * else one whose other bucket holds a node whose own other bucket has room); -1 when none can.
   */
  private freeSlot(hash: Uint8Array): number {
    const a = this.bucket(hash, false);
    const b = this.bucket(hash, true);
    const freeA = this.freeIn(a);
    const freeB = this.freeIn(b);
    if (freeA > 0 || freeB > 0) return this.firstFree(freeA >= freeB ? a : b);
    for (let depth = 1; depth <= 2; depth++)
      for (const first of [a, b])
        for (let way = 0; way < WAYS; way++) {
          const at = first + way * SLOT;
          if (this.makeRoom(at, first, depth)) return at;
        }
    return -1;
  }

  /**
   * Moves the node at `at` (in bucket `first`) to its other bucket, which has room or gets it by
   * moving one of its own nodes on (`depth` 2); true when `at` is free after.
   */
  private makeRoom(at: number, first: number, depth: number): boolean {
    const other = this.otherBucket(at, first);
    if (other === first) return false;
    if (this.freeIn(other) === 0) {
      if (depth < 2) return false;
      let moved = false;
      for (let way = 0; way < WAYS && !moved; way++) moved = this.makeRoom(other + way * SLOT, other, 1);
      if (!moved) return false;
    }
    this.bytes.copyWithin(this.firstFree(other), at, at + SLOT);
    this.bytes[at + KIND] = 0;
    return true;
  }

  /** The other bucket of the node at `at`, which sits in bucket `first`. */
  private otherBucket(at: number, first: number): number {
    const held = this.bytes.subarray(at, at + 32);
    const one = this.bucket(held, false);
    return one === first ? this.bucket(held, true) : one;
  }

  private firstFree(first: number): number {
    let way = 0;
    while (this.bytes[first + way * SLOT + KIND] !== 0) way++;
    return first + way * SLOT;
  }

  private freeIn(first: number): number {
    let free = 0;
    for (let way = 0; way < WAYS; way++) if (this.bytes[first + way * SLOT + KIND] === 0) free++;
    return free;
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
    if (at < 0) {
      if (this.size >= MAX_LOAD * this.buckets * WAYS && this.buckets < this.maxBuckets) {
        // Full enough that nodes would start to find no room: grow rather than give one up.
        this.grow();
        this.set(hex, stored, bytes === undefined ? new Uint8Array(hash) : bytes);
        return;
      }
      at = this.freeSlot(hash);
      if (at < 0) {
        this.victim = (this.victim + 1) % (2 * WAYS);
        at = this.bucket(hash, this.victim >= WAYS) + (this.victim % WAYS) * SLOT;
      } else this.size++;
      this.bytes.set(hash.subarray(0, 32), at);
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
