/**
 * `datagrant/client`: the bank client library. An institution's application system signs its
 * calls and its own transactions with keys that never leave it, and gets a person's records only
 * as a sealed bundle it verifies against genesis and opens itself.
 *
 * ```ts
 * import { DatagrantClient } from 'datagrant/client';
 * const client = new DatagrantClient({ api, institution: 'demo-bank', keys, genesis });
 * const request = await client.openRequest({ subject, types: ['tax'], purpose: 'mortgage', format: 'csv', fields: {} });
 * await client.waitFor(request.id, ['granted']);
 * const doc = await client.document(request.id); // usage committed, bundle verified, decrypted, CSV assembled here
 * ```
 *
 * `LightClient` is the verifier the client (and the CLI and the portal) proves every fact with:
 * certified headers, state and transaction proofs against genesis; a node whose answer does not
 * verify is refused with a code naming it (CLIENT_NODE_LIED here).
 */

export { decodeKeyFile, type KeySet } from '../common/keyfile.js';
export { type Genesis, parseGenesis } from '../ledger/genesis.js';
export {
  type Blame,
  type Expectation,
  type HeaderCheck,
  LightClient,
  type LightClientOptions,
  nodeLied,
  type ProvenEntry,
  type RequestFacts,
  requestViewFaults,
  type ViewFault,
} from '../ledger/light-client.js';
export {
  type ProofResult,
  type StateProofCheck,
  type StateValueProof,
  type TxProof,
  verifyStateValueProof,
  verifyTxProof,
} from '../ledger/proof.js';
export { type ValidatorEpoch, validatorSetHash } from '../ledger/validator-set.js';
export type { RequestInput, RequestView } from '../platform/views.js';
export type { SealedBundle } from '../records/bundle.js';
export type { RecordPlaintext } from '../records/record-crypto.js';
export {
  type SignedSourceStatement,
  type SourceStatement,
  sourceStatementBytes,
  sourceStatementCommitment,
  verifySourceStatement,
} from '../records/source-statement.js';
export {
  BUNDLE_ERROR_CODES,
  documentDigest,
  documentOf,
  type Grantee,
  openBundle,
  type ProvenTx,
  provenanceOf,
  provenSources,
  type VerifiedBundle,
  type VerifiedRecord,
  verifyBundle,
} from './bundle.js';
export {
  type ClientDocument,
  DatagrantClient,
  type DatagrantClientOptions,
  type DeliveryOptions,
} from './client.js';
export { assembleDocument, type DocumentInput, type Provenance, type RenderedDocument } from './document.js';
