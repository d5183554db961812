/**
 * Application state as a key-value map of canonical JSON values, with overlays for tentative
 * execution. The state root is a running digest: each block's root is
 * SHA-256(previous root || canonical list of the block's writes), so it commits to the whole
 * history of state in O(writes) per block, however large the state grows.
 */
import { bytesToHex, concatBytes, fromHex, utf8ToBytes } from '../common/bytes.js';
import { type CanonicalValue, canonicalBytes } from '../common/canonical.js';
import { sha256 } from '../common/crypto.js';

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
  root: string;
  height: number;

  constructor(root = EMPTY_STATE_ROOT, height = 0) {
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

  /** Loads one persisted entry (used when reopening the store). */
  load(key: string, value: StateValue): void {
    this.map.set(key, value);
    this.index(key, value);
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
