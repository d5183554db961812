/**
 * The transactions whose signatures this node has checked, so a proposal's transactions admitted
 * here earlier are not checked again: a bounded first-in first-out set of (hash, signature) pairs
 * in flat buffers outside the JS heap. As `hash:signature` strings in a `Set`, 200,000 of them took
 * about 50 MiB of heap and as many objects for the collector to trace; here they take 96 bytes each
 * in a ring, plus the hash index that finds them.
 */
import { hexInto } from '../common/bytes.js';
import { HashIndex } from '../ledger/hash-index.js';

const HASH = 32;
const SIG = 64;
/** Entries the ring starts with; it doubles up to its bound. */
const INITIAL = 1024;

export class VerifiedSignatures {
  /** Transaction hash → its slot in the ring. */
  private readonly slots = new HashIndex();
  private hashes: Uint8Array;
  private sigs: Uint8Array;
  /** Slots in the ring now (≤ `limit`). */
  private capacity: number;
  /** Entries written so far: the next goes to slot `written % limit` once the ring is full. */
  private written = 0;
  private readonly sig = new Uint8Array(SIG);
  private readonly hash = new Uint8Array(HASH);

  /** `limit`: pairs remembered at most, the oldest forgotten first. */
  constructor(private readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError('limit must be a positive integer');
    this.capacity = Math.min(limit, INITIAL);
    this.hashes = new Uint8Array(this.capacity * HASH);
    this.sigs = new Uint8Array(this.capacity * SIG);
  }

  /** Pairs held. */
  get size(): number {
    return this.slots.size;
  }

  /** True when this transaction hash was recorded with exactly this signature (both hex). */
  has(hash: string, sig: string): boolean {
    return hexInto(hash, this.hash) && hexInto(sig, this.sig) && this.holds();
  }

  /** Records a checked pair; a hash recorded before keeps only its latest signature. */
  add(hash: string, sig: string): void {
    if (!hexInto(hash, this.hash) || !hexInto(sig, this.sig) || this.holds()) return;
    if (this.written >= this.capacity && this.capacity < this.limit) this.grow();
    const slot = this.written % this.capacity;
    if (this.written >= this.capacity) {
      // The ring is full: forget the pair in this slot, unless its hash was recorded again since.
      const old = this.hashes.subarray(slot * HASH, slot * HASH + HASH);
      if (this.slots.get(old) === slot) this.slots.delete(old);
    }
    this.hashes.set(this.hash, slot * HASH);
    this.sigs.set(this.sig, slot * SIG);
    this.slots.set(this.hash, slot);
    this.written++;
  }

  /** Whether the decoded pair (`hash`, `sig` scratch) is held. */
  private holds(): boolean {
    const slot = this.slots.get(this.hash);
    if (slot === undefined) return false;
    const at = slot * SIG;
    for (let i = 0; i < SIG; i++) if (this.sigs[at + i] !== this.sig[i]) return false;
    return true;
  }

  private grow(): void {
    this.capacity = Math.min(this.limit, this.capacity * 2);
    const hashes = new Uint8Array(this.capacity * HASH);
    const sigs = new Uint8Array(this.capacity * SIG);
    hashes.set(this.hashes);
    sigs.set(this.sigs);
    this.hashes = hashes;
    this.sigs = sigs;
  }
}
