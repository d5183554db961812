/**
 * Sealed records, shared by every role: the record crypto (sealing by the extractor, re-wrapping
 * by the subject, opening by the grantee), the content-addressed payload store the ciphertexts
 * live in, and the sealed bundle a grantee is handed for one use.
 */

export {
  type BundleRecord,
  BundleRecordSchema,
  type SealedBundle,
  SealedBundleSchema,
  TxProofSchema,
} from './bundle.js';
export { LevelPayloadStore, type LevelPayloadStoreOptions } from './level-payload-store.js';
export { checkDigest, MemoryPayloadStore, type PayloadStore, verifyPayloadDigest } from './payload-store.js';
export {
  openRecord,
  openRecordAs,
  RECORD_PAD_BYTES,
  type RecordPlaintext,
  recordContext,
  recordDigest,
  rewrapForGrantee,
  type SealedRecord,
  sealRecord,
  sourceCommitment,
  unwrapRecordKey,
} from './record-crypto.js';
export {
  parseSignedSourceStatement,
  parseSourceStatement,
  type SignedSourceStatement,
  type SourceProblem,
  type SourceStatement,
  type StatementExpectation,
  signSourceStatement,
  sourceStatementBytes,
  sourceStatementCommitment,
  sourceStatementProblem,
  verifySourceStatement,
} from './source-statement.js';
export {
  decodeStorageReceipt,
  encodeStorageReceipt,
  type ReceiptFor,
  type StorageReceipt,
  signStorageReceipt,
  type UnsignedStorageReceipt,
  verifyStorageReceipt,
} from './storage-receipt.js';
