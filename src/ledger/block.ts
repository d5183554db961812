/**
 * Blocks and commit certificates. A block's hash is the SHA-256 of its canonical header; the
 * header commits to the transactions (Merkle root) and to the state after them (state root).
 * A certificate is 2f+1 validator signatures over (chain, height, view, block hash).
 */
import { bytesToHex, concatBytes, fromHex, utf8ToBytes } from '../common/bytes.js';
import { canonicalBytes } from '../common/canonical.js';
import { sha256, verify } from '../common/crypto.js';
import { type Genesis, quorumSize } from './genesis.js';
import { merkleLeaf, merkleRoot } from './merkle.js';
import type { AnyTx, Tx } from './tx.js';
import { type SignatureVerifier, txBytes } from './tx-codec.js';

/** Block header: everything a light verifier needs besides the certificate. */
export interface BlockHeader {
  chain: string;
  height: number;
  /** Hash of the previous block's header; genesis hash for height 1. */
  prev: string;
  /** RFC 6962 Merkle root of the transactions' canonical bytes. */
  txRoot: string;
  txCount: number;
  /** State digest after executing this block (see ledger/state). */
  stateRoot: string;
  /** Ed25519 key (hex) of the validator that proposed it. */
  proposer: string;
  view: number;
  /** Unix ms chosen by the proposer, strictly increasing from block to block. */
  time: number;
  /** Hash of the validator set certifying this block, once a council change is in force (ledger/validator-set). */
  validators?: string;
  /** Hash of the validator set certifying the next block, once it is not genesis's. */
  nextValidators?: string;
}

/** A block: header and transactions. */
export interface Block {
  header: BlockHeader;
  txs: AnyTx[];
}

/** One validator's commit signature. */
export interface CommitVote {
  validator: string;
  sig: string;
}

/** Proof that a block is final: a quorum of commit signatures for it, all cast in `view` (at or after the header's view). */
export interface CommitCertificate {
  height: number;
  view: number;
  block: string;
  votes: CommitVote[];
}

/** A block together with its certificate, as stored and synced. */
export interface CertifiedBlock {
  block: Block;
  cert: CommitCertificate;
}

const COMMIT_DOMAIN = utf8ToBytes('datagrant/commit/v1\n');

/** Hash (hex) of a block header. */
export function blockHash(header: BlockHeader): string {
  return bytesToHex(sha256(canonicalBytes(header)));
}

/** Merkle leaves of a block's transactions. */
export function txLeaves(txs: readonly Tx[]): Uint8Array[] {
  return txs.map((tx) => merkleLeaf(txBytes(tx)));
}

/** Merkle root (hex) of a list of transactions. */
export function txRootOf(txs: readonly Tx[]): string {
  return merkleRoot(txLeaves(txs));
}

/** The bytes a commit vote signs. */
export function commitSigningBytes(chain: string, height: number, view: number, block: string): Uint8Array {
  return concatBytes(COMMIT_DOMAIN, canonicalBytes({ chain, height, view, block }));
}

/** Why a certificate was refused, or null when it is valid. */
export type CertificateFault =
  | 'WRONG_BLOCK'
  | 'UNKNOWN_VALIDATOR'
  | 'DUPLICATE_VALIDATOR'
  | 'BAD_SIGNATURE'
  | 'NO_QUORUM'
  | 'MALFORMED';

/**
 * Checks a commit certificate for `header` against the genesis validator set: distinct known
 * validators, valid signatures, at least a quorum. Extra invalid votes make it invalid. On a chain
 * whose set changed, pass the set in force at the header's height (`checkCertificateBy`).
 */
export function checkCertificate(
  genesis: Genesis,
  header: BlockHeader,
  cert: CommitCertificate,
  verifier: SignatureVerifier = verify,
): CertificateFault | null {
  return checkCertificateBy(
    genesis.chain,
    genesis.validators.map((v) => v.key),
    header,
    cert,
    verifier,
  );
}

/**
 * Checks a commit certificate for `header` against `validators` (keys, hex), the set in force at
 * the header's height: distinct members, valid signatures over (chain, height, view, block), at
 * least a quorum of the set (n - f).
 */
export function checkCertificateBy(
  chain: string,
  validators: readonly string[],
  header: BlockHeader,
  cert: CommitCertificate,
  verifier: SignatureVerifier = verify,
): CertificateFault | null {
  if (!cert || !Array.isArray(cert.votes)) return 'MALFORMED';
  const hash = blockHash(header);
  if (cert.block !== hash || cert.height !== header.height || !(cert.view >= header.view))
    return 'WRONG_BLOCK';
  const members = new Set(validators);
  const seen = new Set<string>();
  const message = commitSigningBytes(chain, cert.height, cert.view, cert.block);
  for (const vote of cert.votes) {
    if (!members.has(vote?.validator)) return 'UNKNOWN_VALIDATOR';
    if (seen.has(vote.validator)) return 'DUPLICATE_VALIDATOR';
    seen.add(vote.validator);
    let ok = false;
    try {
      ok = verifier(fromHex(vote.sig, 'sig', 64), message, fromHex(vote.validator, 'validator', 32));
    } catch {
      ok = false;
    }
    if (!ok) return 'BAD_SIGNATURE';
  }
  if (seen.size < quorumSize(members.size)) return 'NO_QUORUM';
  return null;
}
