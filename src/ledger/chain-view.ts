/**
 * The seams between the node and what serves on top of it (API routes, platform, roles): read
 * access to the committed chain and its events, pending transactions, and a way to submit. The
 * node implements them; nothing above it imports the node.
 */
import type { CertifiedBlock } from './block.js';
import type { BlockStore } from './block-store.js';
import type { Genesis, ValidatorInfo } from './genesis.js';
import type { StateReader } from './state.js';
import type { StateProof } from './state-tree.js';
import type { AnyTx } from './tx.js';
import type { ValidatorEpoch } from './validator-set.js';

/** Emitted once per committed block, after it is durable. */
export interface CommittedBlockEvent {
  certified: CertifiedBlock;
  hash: string;
  txHashes: string[];
}

/** The committed chain as readers see it. */
export interface ChainView {
  readonly genesis: Genesis;
  /** Committed state at the tip; where it can, it proves its entries (state routes). */
  readonly state: StateReader & Partial<ProvableState>;
  readonly store: BlockStore;
  /** Height of the last committed block. */
  readonly height: number;
  /** The validator set certifying `height` (known up to the committed height + VALIDATOR_SET_DELAY). */
  validatorsAt(height: number): readonly ValidatorInfo[];
  /** Every validator set scheduled after genesis's, ascending by first height. */
  validatorEpochs(): readonly ValidatorEpoch[];
  on(event: 'committed', listener: (event: CommittedBlockEvent) => void): unknown;
  off(event: 'committed', listener: (event: CommittedBlockEvent) => void): unknown;
}

/** State that proves its entries against the tree root of a recent height. */
export interface ProvableState {
  /** Height of the committed state. */
  readonly height: number;
  /** A proof of `key` at `height` (default: the latest), while that height is retained. */
  prove(key: string, height?: number): { root: string; proof: StateProof } | undefined;
}

/** Transactions admitted but not yet committed, and recent refusals. */
export interface PendingTxs {
  readonly size: number;
  get(hash: string): AnyTx | undefined;
  /** Why the block builder refused `hash`, for a while after it did. */
  rejection(hash: string): { code: string; message: string } | undefined;
}

/** Where a committed transaction landed. */
export interface CommittedTx {
  hash: string;
  height: number;
  index: number;
}

/** Admits transactions and waits for their commit. */
export interface TxSubmitter {
  /** Admits (coded error if refused) and gossips; resolves with the hash. */
  submit(input: unknown): Promise<string>;
  /** Resolves once committed; rejects with the ledger's code if refused, or LEDGER_TX_TIMEOUT. */
  waitCommitted(hash: string, timeoutMs?: number): Promise<CommittedTx>;
  submitAndWait(input: unknown, timeoutMs?: number): Promise<CommittedTx>;
}
