/**
 * The contract between an extractor and a data source (a government public data platform).
 * A plugin gets a narrow context (abort signal, logger), never the node.
 */

import { DatagrantError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { DataType } from '../ledger/tx.js';
import type { SignedSourceStatement } from '../records/source-statement.js';

/** What an extractor asks a data source for. */
export interface DataQuery {
  /** Pseudonymous subject id as named on chain; never a national ID number. */
  subject: string;
  type: DataType;
  /** First day of the period asked for (YYYY-MM-DD). */
  dataFrom?: string;
  /** Last day of the period asked for (YYYY-MM-DD). */
  dataTo?: string;
}

/** The narrow context a plugin runs in. */
export interface FetchContext {
  /** Aborted on timeout or when the extractor stops; plugins pass it to their I/O. */
  signal: AbortSignal;
  logger: Logger;
}

/** One scalar value of an extracted record. Numbers are safe integers (see `toFieldValue`). */
export type FieldValue = string | number | boolean | null;

/** One extracted record, before sealing. */
export interface FetchResult {
  /** Output field name to value. Names match `FIELD_NAME_PATTERN`. */
  fields: Record<string, FieldValue>;
  /** Where it came from, without secrets: e.g. a URL without query string, or `csv:<file name>`. */
  source: string;
  /** The source's response bytes, whose SHA-256 the extractor signs as provenance. */
  raw: Uint8Array;
  /**
   * When the source signs its answers: its signed statement about `raw` (its `digest` is the
   * SHA-256 of `raw`; subject, type and period those of the query). The extractor seals it and
   * `raw` inside the record, and the bank client checks it against the keys genesis registers.
   */
  statement?: SignedSourceStatement;
}

/** A data source plugin. */
export interface DataSource {
  /** Unique name within a node's config, used in logs and failure details. */
  readonly name: string;
  /** The data types this source can answer. */
  readonly dataTypes: readonly DataType[];
  /** Fetches one subject's record of one type. Throws `DatagrantError` with a `PLUGIN_*` code. */
  fetch(query: DataQuery, ctx: FetchContext): Promise<FetchResult>;
  /** Whether the source is reachable and configured right. Never throws. */
  health(): Promise<{ ok: boolean; detail?: string }>;
}

/** Error codes a plugin may throw, and what each means. */
export const PLUGIN_ERROR_CODES = {
  /** The source has no such subject (or no record of that type for it). */
  PLUGIN_NOT_FOUND: 'PLUGIN_NOT_FOUND',
  /** Network error, 5xx or a missing local file: worth retrying. */
  PLUGIN_UNAVAILABLE: 'PLUGIN_UNAVAILABLE',
  /** No answer within the time allowed: worth retrying. */
  PLUGIN_TIMEOUT: 'PLUGIN_TIMEOUT',
  /** The source answered, but with garbage or a shape the field mapping does not fit. */
  PLUGIN_BAD_RESPONSE: 'PLUGIN_BAD_RESPONSE',
  /** The plugin's configuration is invalid. */
  PLUGIN_CONFIG_INVALID: 'PLUGIN_CONFIG_INVALID',
  /** The work was cancelled because the extractor is stopping (never put on chain). */
  PLUGIN_ABORTED: 'PLUGIN_ABORTED',
} as const;

/** One of PLUGIN_ERROR_CODES. */
export type PluginErrorCode = keyof typeof PLUGIN_ERROR_CODES;

/** Codes an extractor retries; the others are final. */
export const RETRYABLE_PLUGIN_CODES: ReadonlySet<string> = new Set(['PLUGIN_UNAVAILABLE', 'PLUGIN_TIMEOUT']);

/** Builds a plugin error. Messages must not carry personal data: they end up in logs. */
export function pluginError(
  code: PluginErrorCode,
  message: string,
  meta: Record<string, unknown> = {},
): DatagrantError {
  return new DatagrantError(code, message, meta);
}

/** Output field names: usable as `<type>.<field>` in a request's field mapping. */
export const FIELD_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * Turns a source value into a record field value, or undefined when it is not a scalar.
 * Numbers that are not safe integers (decimals, huge values) are kept as their JSON decimal text,
 * because records are signed as canonical JSON, which admits only safe integers.
 */
export function toFieldValue(value: unknown): FieldValue | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return undefined;
    if (Number.isSafeInteger(value)) return Object.is(value, -0) ? 0 : value;
    return String(value);
  }
  return undefined;
}

/** Converts an abort of `signal` into the plugin error it stands for (timeout or stop). */
export function abortError(signal: AbortSignal, what: string): DatagrantError {
  const reason: unknown = signal.reason;
  if (reason instanceof DatagrantError && reason.code.startsWith('PLUGIN_')) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return pluginError('PLUGIN_TIMEOUT', `${what} timed out`);
  }
  return pluginError('PLUGIN_ABORTED', `${what} was aborted`);
}
