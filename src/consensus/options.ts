/** Options of the consensus core, its injected collaborators, and the state it starts from. */
import type { CertifiedBlock } from '../ledger/block.js';
import type { Genesis } from '../ledger/genesis.js';
import { genesisHash } from '../ledger/genesis.js';
import type { SignatureVerifier } from '../ledger/tx-codec.js';
import type { Clock, ConsensusApp } from './consensus-app.js';
import type { Signer } from './messages.js';
import type { ConsensusWal } from './wal.js';

/** Timing parameters, all in milliseconds. */
export interface ConsensusTiming {
  /** Timeout of view 0; view v waits `viewTimeoutMs * 2^v` (capped) plus the block interval. */
  viewTimeoutMs: number;
  /** Cap on the view timeout. */
  maxViewTimeoutMs: number;
  /** How long a primary waits at a new height before proposing (lets the mempool fill). */
  blockIntervalMs: number;
  /** First retransmission delay in a view; doubles after each retransmission up to `maxRetransmitMs`. */
  retransmitMs: number;
  /** Cap on the retransmission delay. */
  maxRetransmitMs: number;
  /**
   * A proposal whose time is further than this from the local clock, ahead or (for a fresh, not
   * re-proposed block) behind, is refused. The chain checks block time against the same bound.
   */
  maxClockSkewMs: number;
}

/** Timing used when the node config says nothing. */
export const DEFAULT_TIMING: ConsensusTiming = {
  viewTimeoutMs: 3000,
  maxViewTimeoutMs: 60_000,
  blockIntervalMs: 1000,
  retransmitMs: 1000,
  maxRetransmitMs: 8000,
  maxClockSkewMs: 10_000,
};

/** Plain configuration of the core. */
export interface ConsensusOptions {
  genesis: Genesis;
  /**
   * This node's validator key (hex). It votes at the heights whose validator set holds it (it may be
   * outside genesis's: a validator added later starts from genesis and follows until then). Omit
   * to follow the chain without ever voting.
   */
  self?: string;
  timing?: Partial<ConsensusTiming>;
  /** Most votes of later views kept per phase, counted from the current view. */
  viewWindow?: number;
  /** Most messages for the next height buffered per validator. */
  futureBufferPerValidator?: number;
  /**
   * TEST ONLY: replaces the 2f+1 quorum for prepare, commit and new-view at every height, whatever
   * the size of the set there. The simulation uses it to
   * prove it can catch a broken protocol. Never set it on a node.
   */
  unsafeQuorumForTesting?: number;
}

/** Collaborators injected into the core. */
export interface ConsensusModules {
  app: ConsensusApp;
  clock: Clock;
  /** Checks validator signatures (OpenSSL's Ed25519 on a node). */
  verifier: SignatureVerifier;
  /** Signs with this node's validator key; required when `self` is set. */
  signer?: Signer;
}

/** The last committed block as the core needs it. */
export interface ChainTip {
  height: number;
  hash: string;
  /** Block time (unix ms); the genesis time at height 0. */
  time: number;
}

/** What a (re)started core resumes from: the block store's tip and the last persisted WAL snapshot. */
export interface ConsensusInit {
  tip: ChainTip;
  /** The tip block with its certificate, to hand to validators still voting on it (absent at genesis). */
  last?: CertifiedBlock;
  /** The last `persist` output written before the restart, if any. */
  wal?: ConsensusWal;
}

/** The tip of an empty chain. */
export function genesisTip(genesis: Genesis): ChainTip {
  return { height: 0, hash: genesisHash(genesis), time: genesis.time };
}
