/**
 * Public surface of the PBFT-style consensus core: pure, synchronous, driven by a shell.
 *
 * How a shell drives a `ConsensusCore`:
 * 1. Build it with the genesis, this node's key, an app (`ConsensusApp`), a clock, a signer and a
 *    verifier, and `{ tip, last, wal }` read from the block store and the stored WAL; call `start()`.
 *    On a chain whose validator set changes, the app's `validatorsAt(height)` answers from the
 *    applied state for heights up to the applied height + 2.
 * 2. Feed inputs one at a time: `onMessage(bytes | json)` for network messages (or
 *    `onDecodedMessage` after `decodeMessage`), `onTimer(timer)` when a requested timer fires,
 *    `onCertifiedBlock(block, cert)` for blocks fetched by sync, in height order.
 * 3. Handle each `StepOutput` completely before the next input: store `persist` (the WAL) and
 *    `commits` durably (one batch, or commits first), apply `commits` to the app state, then send
 *    `send`, schedule `timers`, and fetch blocks up to `syncTo` from peers.
 */
export type { BlockVerdict, Clock, ConsensusApp, ProposeContext } from './consensus-app.js';
export { ConsensusCore, type ConsensusStatus } from './consensus-core.js';
export { DROP_REASONS, type DropReason, emptyDropCounters } from './drop-reason.js';
export {
  type DecodeBlockResult,
  type DecodeResult,
  decodeBlock,
  decodeMessage,
  encodeMessage,
  MAX_MESSAGE_BYTES,
} from './message-codec.js';
export {
  blockHashOf,
  type ConsensusMessage,
  type DecidedMessage,
  MESSAGE_TYPES,
  type NewViewMessage,
  newViewSigningBytes,
  type PreparedCertificate,
  type ProposalMessage,
  proposalSigningBytes,
  type SignedMessage,
  type Signer,
  signingBytesOf,
  signNewView,
  signProposal,
  signViewChange,
  signVote,
  type ViewChangeMessage,
  type VoteMessage,
  type VotePhase,
  viewChangeSigningBytes,
  voteSigningBytes,
} from './messages.js';
export {
  type ChainTip,
  type ConsensusInit,
  type ConsensusModules,
  type ConsensusOptions,
  type ConsensusTiming,
  DEFAULT_TIMING,
  genesisTip,
} from './options.js';
export type { OutMessage, StepOutput, TimerKind, TimerRequest } from './step-output.js';
export { type ConsensusWal, decodeWal } from './wal.js';
