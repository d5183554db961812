/** Why the core dropped an input; each reason has a counter (see `ConsensusCore.dropped`). */

/** Every drop reason. */
export const DROP_REASONS = [
  /** Not a well-formed consensus message. */
  'malformed',
  /** For another chain. */
  'wrong-chain',
  /** Signed by a key outside the validator set. */
  'unknown-validator',
  /** The signature does not verify. */
  'bad-signature',
  /** For a height already committed here. */
  'stale-height',
  /** For a view this node has left. */
  'stale-view',
  /** Too far ahead to buffer (height beyond the next one, view beyond the window, buffer full). */
  'future',
  /** Already seen (retransmissions, gossip echoes). */
  'duplicate',
  /** A second, different vote or proposal from the same validator for one (height, view). */
  'equivocation',
  /** A proposal or new-view from a validator that is not the primary of its view. */
  'not-primary',
  /** A proposal whose header does not fit (height, previous hash, time, proposer, view, body) or the new view. */
  'bad-proposal',
  /** The application refused the block. */
  'invalid-block',
  /** A new-view whose view-changes do not justify it. */
  'bad-new-view',
  /** A view-change with an invalid prepared certificate. */
  'bad-view-change',
  /** A commit certificate that does not verify or does not extend this chain. */
  'bad-certificate',
  /** A fetched block body that is not the one this node asked for. */
  'unwanted-block',
] as const;

/** One of DROP_REASONS. */
export type DropReason = (typeof DROP_REASONS)[number];

/** A zeroed counter per drop reason. */
export function emptyDropCounters(): Record<DropReason, number> {
  const counters = {} as Record<DropReason, number>;
  for (const reason of DROP_REASONS) counters[reason] = 0;
  return counters;
}
