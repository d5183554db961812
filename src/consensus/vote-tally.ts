/** Votes of one phase in one (height, view): at most one per validator, counted per block hash. */
import type { CommitVote } from '../ledger/block.js';

/** One validator's recorded vote. */
export interface TalliedVote {
  block: string;
  sig: string;
}

/** Counts the votes of one phase and view; the first vote of each validator is the one that counts. */
export class VoteTally {
  private readonly votes = new Map<string, TalliedVote>();
  private readonly counts = new Map<string, number>();

  /** The vote already recorded for `validator`, if any. */
  get(validator: string): TalliedVote | undefined {
    return this.votes.get(validator);
  }

  /** Records a (verified) vote; ignored when the validator has already voted. */
  add(validator: string, block: string, sig: string): void {
    if (this.votes.has(validator)) return;
    this.votes.set(validator, { block, sig });
    this.counts.set(block, (this.counts.get(block) ?? 0) + 1);
  }

  /** A block hash with at least `quorum` votes, if there is one. */
  quorumBlock(quorum: number): string | undefined {
    for (const [block, count] of this.counts) if (count >= quorum) return block;
    return undefined;
  }

  /** The first `quorum` votes for `block`, as certificate entries. */
  certificate(block: string, quorum: number): CommitVote[] {
    const out: CommitVote[] = [];
    for (const [validator, vote] of this.votes) {
      if (vote.block !== block) continue;
      out.push({ validator, sig: vote.sig });
      if (out.length === quorum) break;
    }
    return out;
  }
}
