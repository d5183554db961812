/**
 * Typed views of the ledger state: what is stored under each key prefix, and the derived
 * status of a data request as institutions and subjects see it.
 */
import type { WrappedKey } from '../common/crypto.js';
import type { DataType } from './tx.js';

/** A registered data subject: a pseudonymous id bound to its keys by a registrar. */
export interface SubjectState {
  id: string;
  signKey: string;
  encKey: string;
  registrar: string;
  height: number;
}

/** An institution (bank) allowed to open requests. */
export interface InstitutionState {
  id: string;
  name: string;
  signKey: string;
  encKey: string;
  active: boolean;
  height: number;
}

/** A failed extraction, with the reason code the extractor gave. */
export interface RecordFailure {
  reason: string;
  detail: string;
  extractor: string;
  height: number;
}

/** A data request opened by an institution about one subject. */
export interface RequestState {
  id: string;
  institution: string;
  subject: string;
  types: DataType[];
  purpose: string;
  format: 'json' | 'csv' | 'xml';
  fields: Record<string, string>;
  dataFrom?: string;
  dataTo?: string;
  consentBy: number;
  openedAt: number;
  height: number;
  /** Record digest per data type, once extracted. */
  records: Record<string, string>;
  failures: Record<string, RecordFailure>;
  decision: 'pending' | 'granted' | 'denied';
  grant?: string;
  denyReason?: string;
  erased: boolean;
}

/** One extracted, encrypted record; the ciphertext itself lives in the payload store. */
export interface RecordState {
  digest: string;
  request: string;
  subject: string;
  type: DataType;
  size: number;
  /** Data key wrapped to the subject. */
  key: WrappedKey;
  source: string;
  fetchedAt: number;
  sourceDigest: string;
  extractor: string;
  height: number;
  erased: boolean;
}

/** A subject's consent to one institution for one request. */
export interface GrantState {
  id: string;
  request: string;
  subject: string;
  institution: string;
  types: DataType[];
  purpose: string;
  dataFrom?: string;
  dataTo?: string;
  expires: number;
  uses: number;
  used: number;
  retainDays: number;
  /** Data keys re-wrapped to the institution, one per record. */
  keys: { record: string; key: WrappedKey }[];
  paused: boolean;
  revoked: boolean;
  grantedAt: number;
  height: number;
}

/** State keys by prefix. */
export const stateKey = {
  subject: (id: string) => `subject/${id}`,
  subjectByKey: (signKey: string) => `subjectkey/${signKey}`,
  institution: (id: string) => `inst/${id}`,
  institutionByKey: (signKey: string) => `instkey/${signKey}`,
  request: (id: string) => `req/${id}`,
  record: (digest: string) => `rec/${digest}`,
  grant: (id: string) => `grant/${id}`,
  seen: (hash: string) => `seen/${hash}`,
} as const;

/** Where a request stands, as shown to institutions and subjects. */
export type RequestStatus =
  | 'waiting-for-data'
  | 'waiting-for-consent'
  | 'granted'
  | 'paused'
  | 'denied'
  | 'expired'
  | 'revoked'
  | 'delivered'
  | 'used-up'
  | 'failed'
  | 'erased';

/** Derives a request's status at time `now` from the request and its grant. */
export function requestStatus(
  request: RequestState,
  grant: GrantState | undefined,
  now: number,
): RequestStatus {
  if (request.erased) return 'erased';
  if (request.decision === 'denied') return 'denied';
  if (request.decision === 'granted' && grant) {
    if (grant.revoked) return 'revoked';
    if (grant.expires <= now) return 'expired';
    if (grant.used >= grant.uses) return 'used-up';
    if (grant.paused) return 'paused';
    return grant.used > 0 ? 'delivered' : 'granted';
  }
  if (request.consentBy <= now) return 'expired';
  const done = request.types.filter((t) => request.records[t] !== undefined).length;
  const failed = request.types.filter(
    (t) => request.records[t] === undefined && request.failures[t] !== undefined,
  ).length;
  if (done === request.types.length) return 'waiting-for-consent';
  if (done + failed === request.types.length) return done === 0 ? 'failed' : 'waiting-for-consent';
  return 'waiting-for-data';
}
