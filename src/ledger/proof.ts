/**
 * Transaction inclusion proofs: the transaction, its Merkle audit path, the block header and the
 * block's commit certificate. `verifyTxProof` needs only the genesis document: it checks the
 * transaction's signature, the path up to the header's tx root, and 2f+1 validator signatures
 * on the header's hash. The header chain is not needed, since finality is immediate.
 */

import { verify } from '../common/crypto.js';
import {
  type BlockHeader,
  blockHash,
  type CertifiedBlock,
  type CommitCertificate,
  checkCertificate,
  txLeaves,
} from './block.js';
import type { Genesis } from './genesis.js';
import { merkleLeaf, merklePath, rootFromPath } from './merkle.js';
import type { AnyTx } from './tx.js';
import { type SignatureVerifier, txBytes, txHash, verifyTxSignature } from './tx-codec.js';

/** A self-contained proof that a transaction is in a final block. */
export interface TxProof {
  tx: AnyTx;
  index: number;
  path: string[];
  header: BlockHeader;
  cert: CommitCertificate;
}

/** Builds the proof for the transaction at `index` of a certified block. */
export function buildTxProof(certified: CertifiedBlock, index: number): TxProof {
  const { block, cert } = certified;
  return {
    tx: block.txs[index]!,
    index,
    path: merklePath(txLeaves(block.txs), index),
    header: block.header,
    cert,
  };
}

/** Result of verifying a proof: the tx hash and block height, or the first fault found. */
export type ProofResult =
  | { ok: true; hash: string; height: number; blockHash: string; time: number }
  | { ok: false; code: string; message: string };

/** Verifies a proof against genesis alone. Never throws on malformed input. */
export function verifyTxProof(
  genesis: Genesis,
  proof: TxProof,
  verifier: SignatureVerifier = verify,
): ProofResult {
  try {
    const { tx, index, path, header, cert } = proof;
    if (header.chain !== genesis.chain || tx.chain !== genesis.chain) {
      return { ok: false, code: 'PROOF_WRONG_CHAIN', message: 'proof is for another chain' };
    }
    if (!verifyTxSignature(tx, verifier)) {
      return { ok: false, code: 'PROOF_BAD_TX_SIGNATURE', message: 'transaction signature does not verify' };
    }
    const root = rootFromPath(merkleLeaf(txBytes(tx)), index, header.txCount, path);
    if (root === null || root !== header.txRoot) {
      return { ok: false, code: 'PROOF_BAD_PATH', message: 'Merkle path does not lead to the block tx root' };
    }
    const fault = checkCertificate(genesis, header, cert, verifier);
    if (fault !== null)
      return { ok: false, code: `PROOF_CERT_${fault}`, message: `commit certificate is invalid: ${fault}` };
    return {
      ok: true,
      hash: txHash(tx),
      height: header.height,
      blockHash: blockHash(header),
      time: header.time,
    };
  } catch (err) {
    return { ok: false, code: 'PROOF_MALFORMED', message: `proof is malformed: ${(err as Error).message}` };
  }
}
