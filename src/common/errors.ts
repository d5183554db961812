/**
 * One error base class for the whole project. Every error carries a stable UPPER_SNAKE code
 * prefixed by its area; the API maps codes to HTTP statuses in one table (`httpStatusOf`).
 */
export class DatagrantError extends Error {
  readonly code: string;
  readonly meta: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, meta: Record<string, unknown> = {}) {
    super(message);
    this.name = 'DatagrantError';
    this.code = code;
    this.meta = meta;
  }
}

/** True when `err` is a DatagrantError, optionally with the given code. */
export function isDatagrantError(err: unknown, code?: string): err is DatagrantError {
  return err instanceof DatagrantError && (code === undefined || err.code === code);
}

const STATUS_BY_CODE: Record<string, number> = {
  API_NOT_FOUND: 404,
  API_BAD_REQUEST: 400,
  API_BODY_TOO_LARGE: 413,
  API_UNSUPPORTED_MEDIA_TYPE: 415,
  API_RATE_LIMITED: 429,
  API_UNAUTHENTICATED: 401,
  API_WRONG_AUDIENCE: 401,
  API_WRONG_CHAIN: 401,
  API_STALE_CALL: 401,
  API_BAD_SIGNATURE: 401,
  API_REPLAYED: 401,
  API_REPLAY_GUARD_FULL: 503,
  API_TOO_MANY_STREAMS: 503,
  API_FORBIDDEN: 403,
  API_BUSY: 503,
  API_NOT_READY: 503,
  API_INTERNAL: 500,
  API_TIMEOUT: 504,
  LEDGER_TX_NOT_FOUND: 404,
  LEDGER_STATE_UNPROVABLE: 409,
  LEDGER_BLOCK_NOT_FOUND: 404,
  LEDGER_BLOCK_NOT_HELD: 404,
  SNAPSHOT_UNAVAILABLE: 409,
  LEDGER_INSTITUTION_NOT_FOUND: 404,
  LEDGER_PROPOSAL_NOT_FOUND: 404,
  LEDGER_NO_COUNCIL: 404,
  LEDGER_MEMPOOL_FULL: 503,
  LEDGER_TX_TOO_LARGE: 413,
  LEDGER_TX_DUPLICATE: 409,
  LEDGER_TX_REPLAYED: 409,
  PLATFORM_CHAIN_INCONSISTENT: 500,
  PLATFORM_REQUEST_NOT_FOUND: 404,
  PLATFORM_GRANT_REQUIRED: 403,
  PLATFORM_NOT_GRANTEE: 403,
  PLATFORM_PAYLOAD_UNAVAILABLE: 502,
  PLATFORM_PAYLOAD_TAMPERED: 502,
  PLATFORM_ROLE_DISABLED: 404,
  PLATFORM_ERASED: 410,
  PLATFORM_SUBJECT_NOT_FOUND: 404,
  PLATFORM_INSTITUTION_NOT_SERVED: 403,
  PLATFORM_USAGE_REQUIRED: 403,
  PLATFORM_NOT_YOURS: 403,
  PLATFORM_NOT_A_TX: 400,
  LEDGER_TX_TIMEOUT: 504,
  CONSENSUS_NOT_READY: 503,
  // A gateway assembling a document found a record that fails its checks: the data upstream is bad.
  CLIENT_RECORD_MISMATCH: 502,
  CLIENT_SOURCE_UNSIGNED: 502,
  CLIENT_SOURCE_FORGED: 502,
  CLIENT_SOURCE_NOT_REGISTERED: 502,
  REGISTRAR_CODE_INVALID: 403,
  REGISTRAR_LOCKED: 403,
  REGISTRAR_CODE_USED: 409,
  REGISTRAR_CODE_EXPIRED: 410,
  REGISTRAR_STORE_UNREADABLE: 500,
};

/** HTTP status for an error code: explicit table first, then 400 for the input-validation families. */
export function httpStatusOf(code: string): number {
  const explicit = STATUS_BY_CODE[code];
  if (explicit !== undefined) return explicit;
  if (code.startsWith('LEDGER_') || code.startsWith('CRYPTO_') || code.startsWith('API_')) return 400;
  if (code.startsWith('PLATFORM_') || code.startsWith('REGISTRAR_')) return 400;
  return 500;
}
