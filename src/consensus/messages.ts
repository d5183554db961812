/**
 * Consensus messages and the exact bytes each signature covers. Every signed payload is a domain
 * tag followed by canonical JSON, so a signature for one message kind (or one chain) can never be
 * replayed as another. Commit votes sign `commitSigningBytes` from the ledger, which is what a light
 * client checks a commit certificate against.
 */
import { bytesToHex, concatBytes, utf8ToBytes } from '../common/bytes.js';
import { canonicalBytes } from '../common/canonical.js';
import {
  type Block,
  blockHash,
  type CommitCertificate,
  type CommitVote,
  commitSigningBytes,
} from '../ledger/block.js';

/** Signs bytes with this node's validator key (Ed25519 in production). */
export type Signer = (message: Uint8Array) => Uint8Array;

/** The two voting phases. */
export type VotePhase = 'prepare' | 'commit';

/** 2f+1 prepare votes for one block in one view: proof the block may have committed in that view. */
export interface PreparedCertificate {
  view: number;
  /** Block hash (hex). */
  block: string;
  /** Prepare signatures over `voteSigningBytes('prepare', chain, height, view, block)`. */
  votes: CommitVote[];
}

/** Fields every validator-signed message carries. */
interface SignedFields {
  chain: string;
  height: number;
  view: number;
  /** Validator key (hex) of the signer. */
  sender: string;
  /** Signature (hex) over the message's signing bytes. */
  sig: string;
}

/** The primary's block for (height, view); the signature covers the block hash, not the body. */
export interface ProposalMessage extends SignedFields {
  type: 'proposal';
  block: Block;
}

/** A prepare or commit vote for a block hash in (height, view). */
export interface VoteMessage extends SignedFields {
  type: VotePhase;
  block: string;
}

/**
 * A validator's request to move to `view`, carrying its highest prepared certificate (view <
 * `view`). The certificate names the prepared block by hash only: a new primary that lacks the body
 * fetches it from the certificate's voters (each of them had it), so no view-change is ever larger
 * than a certificate, whatever the block's size.
 */
export interface ViewChangeMessage extends SignedFields {
  type: 'view-change';
  prepared: PreparedCertificate | null;
}

/**
 * The new primary's start of `view`: a quorum of view-changes and its proposal, which must be the highest prepared block among them, or a fresh block if none. The
 * primary signs which view-changes it chose, so no one else can re-wrap its proposal.
 */
export interface NewViewMessage extends SignedFields {
  type: 'new-view';
  viewChanges: ViewChangeMessage[];
  proposal: ProposalMessage;
}

/** A committed block with its certificate, sent to a validator that is still voting on that height. */
export interface DecidedMessage {
  type: 'decided';
  chain: string;
  block: Block;
  cert: CommitCertificate;
}

/** Every consensus message. */
export type ConsensusMessage =
  | ProposalMessage
  | VoteMessage
  | ViewChangeMessage
  | NewViewMessage
  | DecidedMessage;

/** The message kinds, as they appear in `type`. */
export const MESSAGE_TYPES = ['proposal', 'prepare', 'commit', 'view-change', 'new-view', 'decided'] as const;

const PROPOSAL_DOMAIN = utf8ToBytes('datagrant/proposal/v1\n');
const PREPARE_DOMAIN = utf8ToBytes('datagrant/prepare/v1\n');
const VIEW_CHANGE_DOMAIN = utf8ToBytes('datagrant/view-change/v1\n');
const NEW_VIEW_DOMAIN = utf8ToBytes('datagrant/new-view/v1\n');

/** Bytes a proposal signature covers. */
export function proposalSigningBytes(chain: string, height: number, view: number, block: string): Uint8Array {
  return concatBytes(PROPOSAL_DOMAIN, canonicalBytes({ chain, height, view, block }));
}

/** Bytes a prepare or commit vote signs; commit votes use the ledger's `commitSigningBytes`. */
export function voteSigningBytes(
  phase: VotePhase,
  chain: string,
  height: number,
  view: number,
  block: string,
): Uint8Array {
  if (phase === 'commit') return commitSigningBytes(chain, height, view, block);
  return concatBytes(PREPARE_DOMAIN, canonicalBytes({ chain, height, view, block }));
}

/** Bytes a view-change signature covers (the prepared certificate, which names its block by hash). */
export function viewChangeSigningBytes(
  chain: string,
  height: number,
  view: number,
  prepared: PreparedCertificate | null,
): Uint8Array {
  const cert = prepared && { view: prepared.view, block: prepared.block, votes: prepared.votes };
  return concatBytes(VIEW_CHANGE_DOMAIN, canonicalBytes({ chain, height, view, prepared: cert }));
}

const signingCache = new WeakMap<object, Uint8Array>();

/** Bytes a new-view signature covers: the chosen view-changes (by signer and signature) and the proposed block. */
export function newViewSigningBytes(
  chain: string,
  height: number,
  view: number,
  viewChanges: readonly ViewChangeMessage[],
  block: string,
): Uint8Array {
  const chosen = viewChanges.map((vc) => [vc.sender, vc.sig]);
  return concatBytes(NEW_VIEW_DOMAIN, canonicalBytes({ chain, height, view, viewChanges: chosen, block }));
}

/** Any message carrying a validator signature of its own. */
export type SignedMessage = ProposalMessage | VoteMessage | ViewChangeMessage | NewViewMessage;

/** The bytes a validator-signed message's `sig` covers (memoised per message object; messages are never mutated). */
export function signingBytesOf(message: SignedMessage): Uint8Array {
  let bytes = signingCache.get(message);
  if (bytes === undefined) {
    bytes = computeSigningBytes(message);
    signingCache.set(message, bytes);
  }
  return bytes;
}

function computeSigningBytes(message: SignedMessage): Uint8Array {
  switch (message.type) {
    case 'proposal':
      return proposalSigningBytes(message.chain, message.height, message.view, blockHashOf(message.block));
    case 'prepare':
    case 'commit':
      return voteSigningBytes(message.type, message.chain, message.height, message.view, message.block);
    case 'view-change':
      return viewChangeSigningBytes(message.chain, message.height, message.view, message.prepared);
    case 'new-view':
      return newViewSigningBytes(
        message.chain,
        message.height,
        message.view,
        message.viewChanges,
        blockHashOf(message.proposal.block),
      );
  }
}

// Messages are immutable once built or decoded, and the same block object often reaches many
// handlers (retransmissions, the simulator), so its hash is computed once per header object.
const hashCache = new WeakMap<object, string>();

/** `blockHash` of a block's header, memoised per header object (headers are never mutated). */
export function blockHashOf(block: Block): string {
  let hash = hashCache.get(block.header);
  if (hash === undefined) {
    hash = blockHash(block.header);
    hashCache.set(block.header, hash);
  }
  return hash;
}

/** Builds and signs a proposal. */
export function signProposal(
  chain: string,
  height: number,
  view: number,
  block: Block,
  sender: string,
  signer: Signer,
): ProposalMessage {
  const sig = bytesToHex(signer(proposalSigningBytes(chain, height, view, blockHashOf(block))));
  return { type: 'proposal', chain, height, view, sender, block, sig };
}

/** Builds and signs a prepare or commit vote. */
export function signVote(
  phase: VotePhase,
  chain: string,
  height: number,
  view: number,
  block: string,
  sender: string,
  signer: Signer,
): VoteMessage {
  const sig = bytesToHex(signer(voteSigningBytes(phase, chain, height, view, block)));
  return { type: phase, chain, height, view, sender, block, sig };
}

/** Builds and signs a view-change. */
export function signViewChange(
  chain: string,
  height: number,
  view: number,
  prepared: PreparedCertificate | null,
  sender: string,
  signer: Signer,
): ViewChangeMessage {
  const sig = bytesToHex(signer(viewChangeSigningBytes(chain, height, view, prepared)));
  return { type: 'view-change', chain, height, view, sender, prepared, sig };
}

/** Builds and signs a new-view around a signed proposal. */
export function signNewView(
  viewChanges: readonly ViewChangeMessage[],
  proposal: ProposalMessage,
  signer: Signer,
): NewViewMessage {
  const { chain, height, view, sender } = proposal;
  const chosen = [...viewChanges];
  const sig = bytesToHex(
    signer(newViewSigningBytes(chain, height, view, chosen, blockHashOf(proposal.block))),
  );
  return { type: 'new-view', chain, height, view, sender, viewChanges: chosen, proposal, sig };
}
