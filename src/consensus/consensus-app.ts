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
 * `propose` and `validate` only for height = last committed height + 1, and only in a step after the
 * one whose output committed that block, so the shell has already applied it. It calls
 * `validatorsAt` only for heights up to the last height the app has applied + 2, which a change
 * delay of 2 (ledger/validator-set.ts) lets the app answer from its committed state.
 */
export interface ConsensusApp {
  /** Builds a block from the mempool on top of the committed state, executing it tentatively. */
  propose(ctx: ProposeContext): Block;
  /**
   * Executes a block tentatively on top of the committed state and checks its header (tx root, tx
   * count, state root, transaction rules). Pure: it must not change the committed state.
   */
  validate(block: Block): BlockVerdict;
  /**
   * The validator keys (hex) certifying `height`, in proposer order: the set in force at that
   * height after every change enacted up to `height - 2`. Asked only for heights up to the applied
   * height + 2; the answer for a height must never change once given. Omit it on a chain whose
   * set never changes: the core then uses the genesis set at every height.
   */
  validatorsAt?(height: number): readonly string[];
}

/** Source of time in unix ms; a manual clock in tests. */
export interface Clock {
  now(): number;
}
