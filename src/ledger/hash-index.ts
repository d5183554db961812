/**
 * An exact map from 32-byte hashes to numbers in flat buffers outside the JS heap: the replay
 * guard's index of every transaction still inside its lifetime. A chain at 2,000 tx/s with a
 * one-hour lifetime holds 7.2 million of them; in a `Map` each is a 69-character key string and an
 * entry (about 200 bytes, and millions of objects the collector traces on every full collection),
 * here 41 bytes per slot at a load of at most one half, and three objects in all.
 *
 * Open addressing with linear probing; a delete shifts the entries after it back (no tombstones),
 * so lookups stay short however many entries come and go. The home slot mixes the hash's first two
 * words with a per-table random seed: the keys are SHA-256 outputs, uniform unless someone grinds
 * them, and the seed keeps a ground set from clustering in a table whose seed they cannot see.
 */
import { hexInto } from '../common/bytes.js';

/** Slots a table starts with. */
const INITIAL_SLOTS = 1024;
/** The share of slots held at which the table doubles. */
const MAX_LOAD = 0.5;

/** Scratch for a key being looked up, as eight 32-bit words (lookups are synchronous). */
const PROBE = new Uint32Array(8);
const HEX_BYTES = new Uint8Array(32);

export class HashIndex {
  private keys: Uint32Array;
  private values: Float64Array;
  private used: Uint8Array;
  private mask: number;
  private readonly seed = (Math.random() * 2 ** 32) >>> 0;
  /** Entries held. */
  size = 0;

  /** `slots`: how many the table starts with (rounded up to a power of two, at least 8). */
  constructor(slots = INITIAL_SLOTS) {
    let n = 8;
    while (n < slots) n *= 2;
    this.keys = new Uint32Array(n * 8);
    this.values = new Float64Array(n);
    this.used = new Uint8Array(n);
    this.mask = n - 1;
  }

  /** Bytes the table's buffers take. */
  get bytes(): number {
    return this.keys.byteLength + this.values.byteLength + this.used.byteLength;
  }

  /** The value of the hash whose 64 lower-case hex digits start at `from` in `hex`. */
  getHex(hex: string, from = 0): number | undefined {
    if (!loadHex(hex, from)) return undefined;
    const slot = this.find();
    return slot < 0 ? undefined : this.values[slot];
  }

  /** Sets the value of a hash given as 64 lower-case hex digits from `from`; false if it is not. */
  setHex(hex: string, value: number, from = 0): boolean {
    if (!loadHex(hex, from)) return false;
    this.setProbe(value);
    return true;
  }

  /** Deletes the hash given as hex from `from`; false if it was not held. */
  deleteHex(hex: string, from = 0): boolean {
    if (!loadHex(hex, from)) return false;
    return this.deleteProbe();
  }

  get(hash: Uint8Array): number | undefined {
    loadBytes(hash);
    const slot = this.find();
    return slot < 0 ? undefined : this.values[slot];
  }

  set(hash: Uint8Array, value: number): void {
    loadBytes(hash);
    this.setProbe(value);
  }

  delete(hash: Uint8Array): boolean {
    loadBytes(hash);
    return this.deleteProbe();
  }

  private home(w0: number, w1: number): number {
    return (Math.imul(w0 ^ this.seed, 0x9e3779b1) ^ Math.imul(w1, 0x85ebca6b)) & this.mask;
  }

  /** The slot holding PROBE, or −1. */
  private find(): number {
    const { keys, used, mask } = this;
    let i = this.home(PROBE[0]!, PROBE[1]!);
    while (used[i] === 1) {
      if (this.holdsProbe(keys, i)) return i;
      i = (i + 1) & mask;
    }
    return -1;
  }

  private holdsProbe(keys: Uint32Array, slot: number): boolean {
    const at = slot * 8;
    for (let w = 0; w < 8; w++) if (keys[at + w] !== PROBE[w]) return false;
    return true;
  }

  private setProbe(value: number): void {
    const found = this.find();
    if (found >= 0) {
      this.values[found] = value;
      return;
    }
    if (this.size + 1 > (this.mask + 1) * MAX_LOAD) this.grow();
    this.place(PROBE, value);
    this.size++;
  }

  /** Puts a key (eight words, not held) and its value in the first free slot from its home. */
  private place(key: Uint32Array, value: number): void {
    let i = this.home(key[0]!, key[1]!);
    while (this.used[i] === 1) i = (i + 1) & this.mask;
    this.keys.set(key, i * 8);
    this.values[i] = value;
    this.used[i] = 1;
  }

  private deleteProbe(): boolean {
    let hole = this.find();
    if (hole < 0) return false;
    const { keys, values, used, mask } = this;
    // Backward shift: move each later entry of the run into the hole when its home slot does not
    // lie cyclically in (hole, j], so every entry stays reachable from its home without tombstones.
    let j = hole;
    for (;;) {
      j = (j + 1) & mask;
      if (used[j] !== 1) break;
      const home = this.home(keys[j * 8]!, keys[j * 8 + 1]!);
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      keys.copyWithin(hole * 8, j * 8, j * 8 + 8);
      values[hole] = values[j]!;
      hole = j;
    }
    used[hole] = 0;
    this.size--;
    return true;
  }

  private grow(): void {
    const { keys, values, used } = this;
    const slots = (this.mask + 1) * 2;
    this.keys = new Uint32Array(slots * 8);
    this.values = new Float64Array(slots);
    this.used = new Uint8Array(slots);
    this.mask = slots - 1;
    for (let s = 0; s < used.length; s++)
      if (used[s] === 1) this.place(keys.subarray(s * 8, s * 8 + 8), values[s]!);
  }
}

/** Loads a 32-byte hash into PROBE, little-endian words. */
function loadBytes(hash: Uint8Array): void {
  if (hash.length !== 32) throw new RangeError('a hash is 32 bytes');
  for (let w = 0; w < 8; w++) {
    const b = w * 4;
    PROBE[w] = hash[b]! | (hash[b + 1]! << 8) | (hash[b + 2]! << 16) | (hash[b + 3]! << 24);
  }
}

/** Loads 64 lower-case hex digits at `from` into PROBE; false unless they are exactly that. */
function loadHex(hex: string, from: number): boolean {
  if (!hexInto(hex, HEX_BYTES, from)) return false;
  loadBytes(HEX_BYTES);
  return true;
}
