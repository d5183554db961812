/**
 * Which replaced state-tree nodes may have been written again since they were replaced, so that
 * pruning reads back the stored version of those only.
 *
 * Nodes are content addressed: a node replaced at height `a` is deleted once `a` leaves the proof
 * window, unless an identical node (same hash) was written at `a` or later, in which case the one
 * record serves the newer root too and must stay. Rewrites are rare (a subtree returning to exactly
 * an earlier content), yet ruling them out by reading takes one read per replaced node, thousands per
 * block. This watch rules them out in memory instead:
 * - every height's replaced hashes go into a Bloom filter of the generation of heights it belongs
 *   to (blocked: one 64-byte line per hash, four bits in it), in a buffer outside the JS heap;
 * - every node written afterwards is looked up in the filters; a hit (a rewrite, or a false
 *   positive: measured over five full generations, 0.3% of written nodes at 5,000 replaced per
 *   height, 2.4% at 9,800, the rate at 10⁶ transactions) is remembered exactly, with its height;
 * - at pruning, a hash that is not remembered was not written again since it was replaced, so it
 *   is deleted without a read; a remembered one is read back as before.
 * Only heights this process saw replaced are covered (`covers`): after a restart, the first
 * proof window of heights is pruned the old way. A generation is reused once every height in it
 * is older than `keep` heights, so the filters hold at most `keep` + one generation of heights.
 */
import { hexByteAt } from '../common/bytes.js';

const LINE = 64;
const PROBES = 4;
/** The bits within its line that a hash sets (hash bytes 8–15), filled by `probeBits`. */
const PROBE_BITS = new Int32Array(PROBES);

function probeBits(hash: string): void {
  for (let p = 0; p < PROBES; p++)
    PROBE_BITS[p] = ((hexByteAt(hash, 8 + 2 * p) << 8) | hexByteAt(hash, 9 + 2 * p)) & (LINE * 8 - 1);
}

export class RewriteWatch {
  private readonly generations: (Uint8Array | undefined)[];
  /** The generation number each filter holds (-1: none yet). */
  private readonly held: number[];
  private readonly lines: number;
  /** Hashes written again after they were replaced, and the height they were written at. */
  private readonly rewritten = new Map<string, number>();
  private readonly rewrittenAt = new Map<number, string[]>();

  /**
   * `from`: the first height whose replaced nodes this watch sees. `keep`: how many heights back
   * pruning may still look (the proof window and some lag). `span`: heights per generation.
   * `linesPerGeneration`: 64-byte lines of each generation's filter (a power of two).
   */
  constructor(
    readonly from: number,
    private readonly keep: number,
    private readonly span = 64,
    linesPerGeneration = 1 << 14,
  ) {
    const count = Math.ceil(keep / span) + 2;
    this.generations = Array.from({ length: count }, () => undefined);
    this.held = Array.from({ length: count }, () => -1);
    this.lines = linesPerGeneration;
  }

  /** Whether pruning the nodes replaced at `at` may rely on this watch. */
  covers(at: number, now: number): boolean {
    return at >= this.from && now - at < this.keep;
  }

  /** Notes the hashes that `height` replaced (its stale list). */
  noteReplaced(height: number, hashes: readonly string[]): void {
    if (hashes.length === 0) return;
    const generation = Math.floor(height / this.span);
    const slot = generation % this.generations.length;
    let filter = this.generations[slot];
    if (this.held[slot] !== generation) {
      if (filter) filter.fill(0);
      else {
        filter = new Uint8Array(this.lines * LINE);
        this.generations[slot] = filter;
      }
      this.held[slot] = generation;
    }
    for (const hash of hashes) this.add(filter!, hash);
  }

  /** Notes the nodes written at `height` (after `noteReplaced` for the same height). */
  noteWritten(height: number, hashes: Iterable<string>): void {
    let list: string[] | undefined;
    for (const hash of hashes) {
      if (!this.mayHoldReplaced(hash)) continue;
      this.rewritten.set(hash, height);
      if (!list) {
        list = [];
        this.rewrittenAt.set(height, list);
      }
      list.push(hash);
    }
  }

  /** Whether `hash` may have been written again since a height this watch covers replaced it. */
  mayBeRewritten(hash: string): boolean {
    return this.rewritten.has(hash);
  }

  /** Forgets rewrites before `height`: no replaced node pruned from now on is older. */
  forgetBefore(height: number): void {
    for (const [at, hashes] of this.rewrittenAt) {
      if (at >= height) continue;
      for (const hash of hashes) if (this.rewritten.get(hash) === at) this.rewritten.delete(hash);
      this.rewrittenAt.delete(at);
    }
  }

  /** Entries remembered as written again (for tests and metrics). */
  get remembered(): number {
    return this.rewritten.size;
  }

  private line(hash: string): number {
    return (
      (((hexByteAt(hash, 4) << 24) |
        (hexByteAt(hash, 5) << 16) |
        (hexByteAt(hash, 6) << 8) |
        hexByteAt(hash, 7)) >>>
        0) &
      (this.lines - 1)
    );
  }

  private add(filter: Uint8Array, hash: string): void {
    const base = this.line(hash) * LINE;
    probeBits(hash);
    for (const bit of PROBE_BITS) filter[base + (bit >> 3)] = filter[base + (bit >> 3)]! | (1 << (bit & 7));
  }

  private mayHoldReplaced(hash: string): boolean {
    const base = this.line(hash) * LINE;
    probeBits(hash);
    // Four probes (PROBES), unrolled: a filter is ruled out at its first clear bit.
    const b0 = PROBE_BITS[0]!;
    const b1 = PROBE_BITS[1]!;
    const b2 = PROBE_BITS[2]!;
    const b3 = PROBE_BITS[3]!;
    for (const f of this.generations) {
      if (
        f &&
        (f[base + (b0 >> 3)]! & (1 << (b0 & 7))) !== 0 &&
        (f[base + (b1 >> 3)]! & (1 << (b1 & 7))) !== 0 &&
        (f[base + (b2 >> 3)]! & (1 << (b2 & 7))) !== 0 &&
        (f[base + (b3 >> 3)]! & (1 << (b3 & 7))) !== 0
      )
        return true;
    }
    return false;
  }
}
