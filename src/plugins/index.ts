/** Data-source plugins: the interface, the built-in `http-json` and `csv` sources, and the config factory. */
export {
  type CreateDataSourceOptions,
  createDataSource,
  DATA_SOURCE_KINDS,
  type DataSourceConfig,
  DataSourceConfigSchema,
  validateDataSourceConfig,
} from './create-data-source.js';
export { formatCsv, formatCsvField, type ParseCsvOptions, parseCsv } from './csv-format.js';
export { CSV_VALUE_KINDS, CsvSource, type CsvSourceConfig, CsvSourceConfigSchema } from './csv-source.js';
export {
  abortError,
  type DataQuery,
  type DataSource,
  type FetchContext,
  type FetchResult,
  FIELD_NAME_PATTERN,
  type FieldValue,
  PLUGIN_ERROR_CODES,
  type PluginErrorCode,
  pluginError,
  RETRYABLE_PLUGIN_CODES,
  toFieldValue,
} from './data-source.js';
export {
  DEFAULT_SIGNATURE_HEADER,
  HttpJsonSource,
  type HttpJsonSourceConfig,
  HttpJsonSourceConfigSchema,
  signatureHeaderValue,
} from './http-json-source.js';
export { JSON_PATH_PATTERN, lookupJsonPath, parseJsonPath } from './json-path.js';
