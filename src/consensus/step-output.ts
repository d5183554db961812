/**
 * What one step of the core asks the shell to do. The order of the fields is the order of the work:
 *
 * 1. `persist` and `commits`: write durably, in one atomic batch (or the commits first), BEFORE any
 *    message of this step leaves the node; then apply `commits` to the application state in order.
 * 2. `send`: hand the messages to the network.
 * 3. `timers`: schedule each; when it fires, call `onTimer` with it.
 * 4. `syncTo`: fetch certified blocks up to that height from peers and feed them in order through
 *    `onCertifiedBlock`.
 * 5. `fetchBlock`: ask those validators for the block body with that hash (any one answer that
 *    hashes right will do) and feed it through `onBlockBody`.
 *
 * Then, and only then, feed the core its next input.
 */
import type { CertifiedBlock } from '../ledger/block.js';
import type { ConsensusMessage } from './messages.js';
import type { ConsensusWal } from './wal.js';

/** A message to send: to one validator when `to` is set (a shell may broadcast it instead), else to all. */
export interface OutMessage {
  /** Validator key (hex) of the only peer that needs it. */
  to?: string;
  message: ConsensusMessage;
}

/** The timers the core uses; at most one of each kind is ever useful, so a new one may replace the pending one. */
export type TimerKind = 'start' | 'propose' | 'view' | 'retransmit';

/** A timer to schedule. Stale timers are harmless: the core ignores any that no longer match its state. */
export interface TimerRequest {
  kind: TimerKind;
  height: number;
  view: number;
  /** Distinguishes successive timers of one kind in the same view. */
  seq: number;
  delayMs: number;
}

/** Everything one input produced. */
export interface StepOutput {
  /** New consensus state to store durably before sending `send`; absent when unchanged. */
  persist?: ConsensusWal;
  /** Blocks that are now final, in height order, with their certificates: store, then apply. Usually one. */
  commits?: CertifiedBlock[];
  send: OutMessage[];
  timers: TimerRequest[];
  /** Evidence says peers have committed up to this height: fetch the blocks this node lacks. */
  syncTo?: number;
  /** A block body this node needs by hash (a prepared block to re-propose), and the validators that hold it. */
  fetchBlock?: { hash: string; from: string[] };
}
