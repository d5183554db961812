/**
 * Typed views of the ledger state: what is stored under each key prefix, and the derived
 * status of a data request as institutions and subjects see it.
 */
import { bytesToHex, concatBytes, utf8ToBytes } from '../common/bytes.js';
import { canonicalBytes } from '../common/canonical.js';
import { sha256, type WrappedKey } from '../common/crypto.js';
import type { ExtractionPolicy } from './genesis.js';
import type { DataType } from './tx.js';

/** A registered data subject: a pseudonymous id bound to its keys by a registrar. */
export interface SubjectState {
  id: string;
  signKey: string;
  encKey: string;
  registrar: string;
  height: number;
  /** Block time of her last recovery; a recovery attestation must be issued after it. */
  keysSince?: number;
  /** Keys she recovered away from, each with the height it stopped at. */
  previousKeys?: { signKey: string; encKey: string; until: number }[];
}

/** An institution (bank) allowed to open requests. */
export interface InstitutionState {
  id: string;
  name: string;
  signKey: string;
  encKey: string;
  active: boolean;
  height: number;
  /** Keys it rotated away from (`institution.rotate`), each with the height it stopped at. */
  previousKeys?: { signKey: string; encKey: string; until: number }[];
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
  /**
   * Records set aside by `record.refresh` (wrapped to a key the subject recovered away from),
   * digests per data type, oldest first: they stay on record, their ciphertexts are erased.
   */
  superseded?: Record<string, string[]>;
  /** Block time of the last `record.refresh`: the extractors' new trigger for the reopened types. */
  reopenedAt?: number;
  /**
   * When its records are extracted, where it is not genesis' policy: the policy in force when it
   * was opened (a council's `params.set` of `extraction` applies to requests opened after it).
   */
  policy?: ExtractionPolicy;
}

/** The extraction policy a request follows: its own, else the chain's (genesis'). */
export function requestPolicy(
  request: Pick<RequestState, 'policy'>,
  chainPolicy: ExtractionPolicy,
): ExtractionPolicy {
  return request.policy ?? chainPolicy;
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
  /** Keyed commitment to the source answer's digest (only a record's opener can check it). */
  sourceCommitment: string;
  extractor: string;
  /** Genesis validators (keys, sorted) whose storage receipts the `record.put` carried: they hold the ciphertext. */
  holders: string[];
  /** Hash of the `record.put` transaction. */
  tx: string;
  /** Under `on-consent`: the data key wrapped to the grantee, set at extraction. */
  granteeKey?: WrappedKey;
  /**
   * The subject's X25519 key (hex) `key` is wrapped to: the key the `record.put` named, else her
   * key when it committed (absent on records put before the ledger kept it).
   */
  subjectKey?: string;
  height: number;
  erased: boolean;
  /** Set when a `record.refresh` set the record aside: its hash and height (the record is erased). */
  superseded?: { by: string; height: number };
}

/** A subject's consent to one institution for one request. */
export interface GrantState {
  id: string;
  request: string;
  subject: string;
  institution: string;
  /** The grantee's X25519 key (hex) the data keys are wrapped to. */
  granteeKey: string;
  types: DataType[];
  purpose: string;
  dataFrom?: string;
  dataTo?: string;
  expires: number;
  uses: number;
  used: number;
  retainDays: number;
  /** Data keys re-wrapped to the institution, one per record (empty under `on-consent`). */
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
  /** The replay guard of one block's transactions (genesis `replayGuard: per-block`). */
  seenAt: (height: number) => `seen-at/${height}`,
} as const;

/** A `seen-at/<height>` entry: the block's transaction hashes, sorted, and their latest expiry. */
export interface SeenAtState {
  expires: number;
  txs: string[];
}

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

/**
 * The data types of a grant that have a record: what a use releases. Under `on-request` these
 * are the records the grant carries keys for; under `on-consent` the granted types extracted so far.
 */
export function grantedRecordDigests(request: RequestState, grant: GrantState): string[] {
  if (grant.keys.length > 0) return grant.keys.map((k) => k.record);
  return grant.types.map((t) => request.records[t]).filter((d): d is string => d !== undefined);
}

/** Granted types that have neither a record nor a failure yet (only ever non-empty under `on-consent`). */
function grantedTypesPending(request: RequestState, grant: GrantState): DataType[] {
  return grant.types.filter((t) => request.records[t] === undefined && request.failures[t] === undefined);
}

const BUNDLE_DOMAIN = utf8ToBytes('datagrant/bundle/v1\n');

/**
 * Digest (hex) of what one use of a grant releases: the chain, the grant and the record digests,
 * sorted. The grantee signs it in its `usage`; the ledger refuses a usage whose digest is not the
 * one its state gives, and a bundle is handed out only against that committed usage.
 */
export function bundleDigest(chain: string, grant: string, records: readonly string[]): string {
  return bytesToHex(
    sha256(concatBytes(BUNDLE_DOMAIN, canonicalBytes({ chain, grant, records: [...records].sort() }))),
  );
}

/** Derives a request's status at time `now` from the request and its grant. */
export function requestStatus(
  request: RequestState,
  grant: GrantState | undefined,
  now: number,
  policy: ExtractionPolicy = 'on-request',
): RequestStatus {
  if (request.erased) return 'erased';
  if (request.decision === 'denied') return 'denied';
  if (request.decision === 'granted' && grant) {
    if (grant.revoked) return 'revoked';
    if (grant.expires <= now) return 'expired';
    if (grant.used >= grant.uses) return 'used-up';
    if (grant.paused) return 'paused';
    if (grantedTypesPending(request, grant).length > 0) return 'waiting-for-data';
    if (grantedRecordDigests(request, grant).length === 0) return 'failed';
    return grant.used > 0 ? 'delivered' : 'granted';
  }
  if (request.consentBy <= now) return 'expired';
  if (requestPolicy(request, policy) === 'on-consent') return 'waiting-for-consent';
  const done = request.types.filter((t) => request.records[t] !== undefined).length;
  const failed = request.types.filter(
    (t) => request.records[t] === undefined && request.failures[t] !== undefined,
  ).length;
  if (done === request.types.length) return 'waiting-for-consent';
  if (done + failed === request.types.length) return done === 0 ? 'failed' : 'waiting-for-consent';
  return 'waiting-for-data';
}
