/** The extractor role: request handling, record sealing and payload storage. */
export {
  assignedExtractor,
  type DataRequest,
  DEFAULT_EXTRACTOR_OPTIONS,
  type ExtractionOutcome,
  Extractor,
  type ExtractorModules,
  type ExtractorOptions,
  rankExtractors,
} from './extractor.js';
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
  unwrapRecordKey,
} from './record-crypto.js';
