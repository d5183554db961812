/**
 * The validator set in force at each height, as the consensus core uses it: keys in proposer
 * order, their decoded public keys, f and the quorum. Sets come from the app (`validatorsAt`) or,
 * without one, are genesis's at every height. A height's set never changes once known (it follows
 * from blocks already committed), so each is built once, kept in a small map by height that the
 * core prunes as it advances, and shared between heights whose sets are equal.
 */
import { fromHex } from '../common/bytes.js';
import { DatagrantError } from '../common/errors.js';
import { faultTolerance, quorumSize } from '../ledger/genesis.js';

/** A validator set ready for the hot path. */
export interface ActiveSet {
  /** Validator keys (hex) in proposer order: the primary of (h, v) is `keys[(h + v) % n]`. */
  readonly keys: readonly string[];
  /** Each member's public key, decoded. */
  readonly members: ReadonlyMap<string, Uint8Array>;
  /** Faults tolerated: floor((n - 1) / 3). */
  readonly f: number;
  /** Votes needed for a prepared or commit certificate and for a new-view (n - f, or the test override). */
  readonly quorum: number;
}

/** Where the sets come from: keys in proposer order for a height. */
export type SetSource = (height: number) => readonly string[];

const RECENT = 4;

/** Builds and caches `ActiveSet`s by height. */
export class HeightSets {
  private readonly byHeight = new Map<number, ActiveSet>();
  /** The last few distinct sets built, so an unchanged set is not rebuilt at every height. */
  private readonly recent: ActiveSet[] = [];
  private readonly genesisSet: ActiveSet;

  /** `source` absent: genesis's set at every height. `quorumOverride` is the TEST ONLY quorum. */
  constructor(
    genesisKeys: readonly string[],
    private readonly source: SetSource | undefined,
    private readonly quorumOverride: number | undefined,
  ) {
    this.genesisSet = this.build(genesisKeys);
  }

  /** The set at `height`; the caller asks only for heights the source may be asked about. */
  at(height: number): ActiveSet {
    if (this.source === undefined) return this.genesisSet;
    const known = this.byHeight.get(height);
    if (known !== undefined) return known;
    const set = this.intern(this.source(height));
    this.byHeight.set(height, set);
    return set;
  }

  /** The set at `height` if it was built already (never asks the source). */
  cached(height: number): ActiveSet | undefined {
    if (this.source === undefined) return this.genesisSet;
    return this.byHeight.get(height);
  }

  /** Forgets the sets of heights below `height`. */
  prune(height: number): void {
    for (const h of this.byHeight.keys()) if (h < height) this.byHeight.delete(h);
  }

  private intern(keys: readonly string[]): ActiveSet {
    const same = (set: ActiveSet) =>
      set.keys.length === keys.length && set.keys.every((k, i) => k === keys[i]);
    if (same(this.genesisSet)) return this.genesisSet;
    const found = this.recent.find(same);
    if (found !== undefined) return found;
    const set = this.build(keys);
    this.recent.push(set);
    if (this.recent.length > RECENT) this.recent.shift();
    return set;
  }

  private build(keys: readonly string[]): ActiveSet {
    const members = new Map<string, Uint8Array>();
    for (const key of keys) {
      const reused =
        this.genesisSet?.members.get(key) ?? this.recent.find((s) => s.members.has(key))?.members.get(key);
      members.set(key, reused ?? fromHex(key, 'validator', 32));
    }
    if (members.size !== keys.length || keys.length === 0) {
      throw new DatagrantError(
        'CONSENSUS_BAD_VALIDATOR_SET',
        'a validator set must be non-empty without repeated keys',
        { size: keys.length },
      );
    }
    const n = keys.length;
    return {
      keys: [...keys],
      members,
      f: faultTolerance(n),
      quorum: this.quorumOverride ?? quorumSize(n),
    };
  }
}
