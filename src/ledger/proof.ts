/**
 * Proofs a verifier checks against the genesis document alone (finality is immediate, so no header
 * chain is needed):
 * - transaction inclusion: the transaction, its Merkle audit path, the block header and the block's
 *   commit certificate; `verifyTxProof` checks the transaction's signature, the path up to the
 *   header's tx root, and 2f+1 validator signatures on the header's hash;
 * - state: a state entry's value (or its absence), its sparse Merkle proof, the header whose state
 *   root it leads to and that header's certificate; `verifyStateValueProof`.
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
import { type StateValue, stateKeyHash, stateRootRule, stateValueHash } from './state.js';
import { type StateProof, verifyStateProof } from './state-tree.js';
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

/** A state entry's value at a height (or `null`: absent), proven against that height's certified header. */
export interface StateValueProof {
  key: string;
  value: StateValue | null;
  proof: StateProof;
  header: BlockHeader;
  cert: CommitCertificate;
}

/** Result of verifying a state proof: the key, its value and the certified height, or the first fault. */
export type StateProofCheck =
  | { ok: true; key: string; value: StateValue | null; height: number; time: number; blockHash: string }
  | { ok: false; code: string; message: string };

/**
 * Verifies a state proof against genesis alone: the certificate of the header by 2f+1 genesis
 * validators, then the value's path to the header's state root. `key`, when given, is the entry
 * the caller asked for (a node answering for another key is refused). Never throws.
 */
export function verifyStateValueProof(
  genesis: Genesis,
  p: StateValueProof,
  key?: string,
  verifier: SignatureVerifier = verify,
): StateProofCheck {
  try {
    if (stateRootRule(genesis.params) !== 'sparse-merkle')
      return {
        ok: false,
        code: 'PROOF_STATE_UNSUPPORTED',
        message: 'this chain commits to no provable state',
      };
    if (typeof p.key !== 'string' || (key !== undefined && p.key !== key))
      return { ok: false, code: 'PROOF_WRONG_KEY', message: 'the proof is for another state entry' };
    if (p.header.chain !== genesis.chain)
      return { ok: false, code: 'PROOF_WRONG_CHAIN', message: 'proof is for another chain' };
    const fault = checkCertificate(genesis, p.header, p.cert, verifier);
    if (fault !== null)
      return { ok: false, code: `PROOF_CERT_${fault}`, message: `commit certificate is invalid: ${fault}` };
    const valueHash = p.value === null ? null : stateValueHash(p.value);
    const r = verifyStateProof(p.header.stateRoot, stateKeyHash(p.key), valueHash, p.proof);
    if (!r.ok) return { ok: false, code: r.code, message: r.message };
    return {
      ok: true,
      key: p.key,
      value: p.value,
      height: p.header.height,
      time: p.header.time,
      blockHash: blockHash(p.header),
    };
  } catch (err) {
    return { ok: false, code: 'PROOF_MALFORMED', message: `proof is malformed: ${(err as Error).message}` };
  }
}
