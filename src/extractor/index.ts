/** The extractor role: plugins run for committed requests, records sealed, stored and put on chain. */
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
