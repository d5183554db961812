/**
 * Sealing of one extracted record, and the subject-side re-wrap that makes consent
 * cryptographic. Portable (no Node APIs): the CLI, the browser portal and the platform use it.
 *
 * - plaintext: canonical JSON of `{type, subject, fields, source, fetchedAt, sourceDigest}` (and,
 *   when the source signed its answer, `statement` and `content`: source-statement.ts), padded with
 *   trailing spaces to a multiple of `RECORD_PAD_BYTES` so the on-chain size says little about
 *   the content (JSON parsers ignore the padding);
 * - a fresh random 32-byte data key seals it with ChaCha20-Poly1305 (`sealPayload`: a random
 *   12-byte nonce, then ciphertext and tag), the record context as associated data; the digest is
 *   SHA-256 (hex) of the ciphertext;
 * - the data key is wrapped with HPKE (RFC 9180, `wrapKey`) to the subject's X25519 key under the
 *   same context; the subject re-wraps it to a grantee when granting, or, under the `on-consent`
 *   policy, the extractor wraps it to the grantee as well. The byte formats are in docs/formats.md.
 */

import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, fromHex, utf8ToBytes } from '../common/bytes.js';
import { canonicalize } from '../common/canonical.js';
import {
  openPayload,
  randomBytes,
  sealPayload,
  sha256Hex,
  unwrapKey,
  type WrappedKey,
  wrapKey,
} from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';
import { CHAIN_RE, HASH_RE } from '../ledger/patterns.js';
import { DATA_TYPES, type DataType } from '../ledger/tx.js';
import type { FieldValue } from '../plugins/data-source.js';
import {
  parseSignedSourceStatement,
  type SignedSourceStatement,
  sourceStatementCommitment,
} from './source-statement.js';

/** The decrypted content of a record. */
export interface RecordPlaintext {
  type: DataType;
  /** Pseudonymous subject id. */
  subject: string;
  fields: Record<string, FieldValue>;
  source: string;
  /** Unix ms when the extractor fetched it. */
  fetchedAt: number;
  /**
   * SHA-256 (hex) of the source's raw answer. Kept inside the sealed record only: on chain there
   * is just a commitment to it under a key derived from the data key (`sourceCommitment`), so the
   * ledger cannot confirm a guess of the answer.
   */
  sourceDigest: string;
  /**
   * The source's signed statement about its answer, when the source signs (its digest is
   * `sourceDigest`). Sealed with `content`; `record.put` carries `sourceStatementCommitment` of it.
   */
  statement?: SignedSourceStatement;
  /** With `statement`: the source's exact answer bytes, base64url without padding. */
  content?: string;
}

/** A sealed record, ready to store (ciphertext) and to announce on chain (digest, size, key). */
export interface SealedRecord {
  ciphertext: Uint8Array;
  /** SHA-256 (hex) of the ciphertext. */
  digest: string;
  /** Ciphertext length in bytes. */
  size: number;
  /** The data key wrapped to the subject's X25519 key. */
  key: WrappedKey;
  /** The data key wrapped to the grantee's X25519 key, when one was given (`on-consent`). */
  granteeKey?: WrappedKey;
  /** `sourceCommitment(dataKey, record.sourceDigest)`, for `record.put`. */
  sourceCommitment: string;
  /** With a signed statement: its `sourceStatementCommitment`, for `record.put`. */
  sourceStatement?: string;
}

/** Plaintexts are padded to a multiple of this many bytes. */
export const RECORD_PAD_BYTES = 256;

/**
 * The context of a record: UTF-8 of `datagrant/record/v1|<chain>|<requestId>|<type>`. Used as the
 * AEAD associated data and as the key-wrap context, so a ciphertext or wrapped key moved to
 * another chain, request or type does not open.
 */
export function recordContext(chain: string, requestId: string, type: DataType): Uint8Array {
  if (!CHAIN_RE.test(chain)) throw new DatagrantError('RECORD_BAD_CONTEXT', 'chain must be a chain id');
  if (!HASH_RE.test(requestId))
    throw new DatagrantError('RECORD_BAD_CONTEXT', 'requestId must be 64 lower-case hex characters');
  if (!(DATA_TYPES as readonly string[]).includes(type))
    throw new DatagrantError('RECORD_BAD_CONTEXT', 'type is not a data type');
  return utf8ToBytes(`datagrant/record/v1|${chain}|${requestId}|${type}`);
}

/** SHA-256 (hex) of a ciphertext: the record's on-chain digest. */
export function recordDigest(ciphertext: Uint8Array): string {
  return sha256Hex(ciphertext);
}

function encodePlaintext(record: RecordPlaintext): Uint8Array {
  const json = canonicalize({
    type: record.type,
    subject: record.subject,
    fields: record.fields,
    source: record.source,
    fetchedAt: record.fetchedAt,
    sourceDigest: record.sourceDigest,
    ...(record.statement === undefined ? {} : { statement: record.statement }),
    ...(record.content === undefined ? {} : { content: record.content }),
  });
  const bytes = utf8ToBytes(json);
  const padded = new Uint8Array(Math.ceil((bytes.length + 1) / RECORD_PAD_BYTES) * RECORD_PAD_BYTES);
  padded.fill(0x20);
  padded.set(bytes);
  return padded;
}

/**
 * Seals a record for the subject (and, under `on-consent`, for the grantee too). Throws
 * `CANONICAL_UNSUPPORTED` when a field is outside the canonical domain (e.g. a float), and a
 * crypto error when a recipient key is unusable.
 */
export function sealRecord(
  record: RecordPlaintext,
  subjectEncKey: Uint8Array,
  context: Uint8Array,
  granteeEncKey?: Uint8Array,
): SealedRecord {
  const plaintext = encodePlaintext(record);
  const dataKey = randomBytes(32);
  try {
    const ciphertext = sealPayload(dataKey, plaintext, context);
    const key = wrapKey(dataKey, subjectEncKey, context);
    const sealed: SealedRecord = {
      ciphertext,
      digest: recordDigest(ciphertext),
      size: ciphertext.length,
      key,
      sourceCommitment: sourceCommitment(dataKey, record.sourceDigest),
    };
    if (granteeEncKey !== undefined) sealed.granteeKey = wrapKey(dataKey, granteeEncKey, context);
    if (record.statement !== undefined) sealed.sourceStatement = sourceStatementCommitment(record.statement);
    return sealed;
  } finally {
    dataKey.fill(0);
    plaintext.fill(0);
  }
}

function isFieldValue(value: unknown): value is FieldValue {
  return (
    value === null ||
    typeof value === 'string' ||
    typeof value === 'boolean' ||
    (typeof value === 'number' && Number.isSafeInteger(value))
  );
}

/** Checks decrypted JSON is a record; `RECORD_MALFORMED` otherwise. */
function toRecord(value: unknown): RecordPlaintext {
  const bad = (why: string) => new DatagrantError('RECORD_MALFORMED', `record ${why}`);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad('is not an object');
  const r = value as Record<string, unknown>;
  if (typeof r.type !== 'string' || !(DATA_TYPES as readonly string[]).includes(r.type))
    throw bad('type is invalid');
  if (typeof r.subject !== 'string') throw bad('subject is invalid');
  if (typeof r.source !== 'string') throw bad('source is invalid');
  if (typeof r.fetchedAt !== 'number' || !Number.isSafeInteger(r.fetchedAt))
    throw bad('fetchedAt is invalid');
  if (typeof r.sourceDigest !== 'string' || !HASH_RE.test(r.sourceDigest))
    throw bad('sourceDigest is invalid');
  if (r.fields === null || typeof r.fields !== 'object' || Array.isArray(r.fields))
    throw bad('fields is invalid');
  if ((r.statement === undefined) !== (r.content === undefined))
    throw bad('has a source statement without content, or content without one');
  if (r.content !== undefined && (typeof r.content !== 'string' || !/^[A-Za-z0-9_-]*$/.test(r.content)))
    throw bad('content is not base64url');
  const statement = r.statement === undefined ? undefined : parseSignedSourceStatement(r.statement);
  const fields: Record<string, FieldValue> = {};
  for (const [name, v] of Object.entries(r.fields as Record<string, unknown>)) {
    if (!isFieldValue(v)) throw bad(`field ${name} is invalid`);
    fields[name] = v;
  }
  return {
    type: r.type as DataType,
    subject: r.subject,
    fields,
    source: r.source,
    fetchedAt: r.fetchedAt,
    sourceDigest: r.sourceDigest,
    ...(statement === undefined ? {} : { statement, content: r.content as string }),
  };
}

/**
 * Opens a sealed record with its data key and context. Errors: `CRYPTO_DECRYPT_FAILED` (wrong key,
 * wrong context or tampered ciphertext), `RECORD_MALFORMED`.
 */
export function openRecord(
  ciphertext: Uint8Array,
  dataKey: Uint8Array,
  context: Uint8Array,
): RecordPlaintext {
  const plaintext = openPayload(dataKey, ciphertext, context);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext));
  } catch {
    throw new DatagrantError('RECORD_MALFORMED', 'record is not JSON');
  } finally {
    plaintext.fill(0);
  }
  return toRecord(json);
}

/** Unwraps a record's data key with the recipient's X25519 secret key; `CRYPTO_UNWRAP_FAILED` if it is not theirs. */
export function unwrapRecordKey(
  wrapped: WrappedKey,
  recipientEncSecret: Uint8Array,
  context: Uint8Array,
): Uint8Array {
  return unwrapKey(wrapped, recipientEncSecret, context);
}

const COMMITMENT_INFO = utf8ToBytes('datagrant/source-commitment/v1');

/**
 * The on-chain commitment to a source answer's digest: HMAC-SHA256 keyed with
 * HKDF-SHA256(data key, info "datagrant/source-commitment/v1") over the 32 digest bytes. Only who
 * holds the data key (the subject, the grantee) can compute or check it; it reveals nothing else.
 */
export function sourceCommitment(dataKey: Uint8Array, sourceDigestHex: string): string {
  const key = hkdf(sha256, dataKey, undefined, COMMITMENT_INFO, 32);
  try {
    return bytesToHex(hmac(sha256, key, fromHex(sourceDigestHex, 'sourceDigest', 32)));
  } finally {
    key.fill(0);
  }
}

/**
 * Unwraps the data key with the recipient's secret key and opens the record (subject or grantee
 * side). With `expect.sourceCommitment` (the committed record.put's), also checks that the sealed
 * source digest is the one committed on chain: RECORD_COMMITMENT_MISMATCH otherwise.
 */
export function openRecordAs(
  ciphertext: Uint8Array,
  wrapped: WrappedKey,
  recipientEncSecret: Uint8Array,
  context: Uint8Array,
  expect: { sourceCommitment?: string } = {},
): RecordPlaintext {
  const dataKey = unwrapKey(wrapped, recipientEncSecret, context);
  try {
    const record = openRecord(ciphertext, dataKey, context);
    if (
      expect.sourceCommitment !== undefined &&
      sourceCommitment(dataKey, record.sourceDigest) !== expect.sourceCommitment
    ) {
      throw new DatagrantError(
        'RECORD_COMMITMENT_MISMATCH',
        "the record's source digest is not the one committed on chain",
      );
    }
    return record;
  } finally {
    dataKey.fill(0);
  }
}

/**
 * The subject's side of a grant: unwraps the data key wrapped to the subject and wraps it to the
 * grantee's X25519 key under the same context. `CRYPTO_UNWRAP_FAILED` if the key is not the subject's.
 * `random` is for reproducible test vectors only; leave it to the CSPRNG otherwise.
 */
export function rewrapForGrantee(
  wrappedKeyToSubject: WrappedKey,
  subjectEncSecret: Uint8Array,
  granteeEncPublicKey: Uint8Array,
  context: Uint8Array,
  random?: (length: number) => Uint8Array,
): WrappedKey {
  const dataKey = unwrapKey(wrappedKeyToSubject, subjectEncSecret, context);
  try {
    return wrapKey(dataKey, granteeEncPublicKey, context, random);
  } finally {
    dataKey.fill(0);
  }
}
