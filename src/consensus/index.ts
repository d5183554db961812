/** Public surface of the PBFT-style consensus core: pure, synchronous, driven by a shell. */
export type { BlockVerdict, Clock, ConsensusApp, ProposeContext } from './consensus-app.js';
export { ConsensusCore, type ConsensusStatus } from './consensus-core.js';
export { DROP_REASONS, type DropReason, emptyDropCounters } from './drop-reason.js';
export { type DecodeResult, decodeMessage, encodeMessage, MAX_MESSAGE_BYTES } from './message-codec.js';
export {
  blockHashOf,
  type ConsensusMessage,
  type DecidedMessage,
  MESSAGE_TYPES,
  type NewViewMessage,
  type PreparedCertificate,
  type ProposalMessage,
  proposalSigningBytes,
  type Signer,
  signingBytesOf,
  signProposal,
  signViewChange,
  signVote,
  stripViewChange,
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
