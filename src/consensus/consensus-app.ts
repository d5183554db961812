/**
 * What the consensus core needs from the world besides messages: the application that builds and
 * checks blocks, and a clock. Both are injected so the core stays pure and can run simulated.
 */
import type { Block } from '../ledger/block.js';

/** Everything a proposer needs to build the next block. */
export interface ProposeContext {
  height: number;
  view: number;
  /** Hash of the committed block at `height - 1` (the genesis hash for height 1). */
  prev: string;
  /** Block time the core chose: the clock, but always after the previous block's time. */
  time: number;
  /** This node's validator key (hex), to put in the header. */
  proposer: string;
}

/** Result of checking a proposed block against the application state. */
export type BlockVerdict = { ok: true } | { ok: false; fault: string };

/**
 * The application behind consensus (the ledger on a node, a fake in the simulator). The core calls
 * it only for height = last committed height + 1, and only in a step after the one whose output
 * committed that block, so the shell has already applied it.
 */
export interface ConsensusApp {
  /** Builds a block from the mempool on top of the committed state, executing it tentatively. */
  propose(ctx: ProposeContext): Block;
  /**
   * Executes a block tentatively on top of the committed state and checks its header (tx root, tx
   * count, state root, transaction rules). Pure: it must not change the committed state.
   */
  validate(block: Block): BlockVerdict;
}

/** Source of time in unix ms; a manual clock in tests. */
export interface Clock {
  now(): number;
}
