/**
 * A data source's signed statement about one answer: which source (its genesis id) said what
 * about whom — the subject, the data type, the period asked for, the SHA-256 of the exact answer
 * bytes, and when. The source signs it with the Ed25519 key registered for it (in genesis, or by
 * a council's `source.add`); the
 * extractor seals the statement and the answer bytes inside the record, and `record.put` carries
 * only `sourceStatementCommitment`, so the ledger learns nothing of the answer. The bank client
 * checks the statement after opening the record (client/bundle `openBundle`).
 *
 * Signed bytes: UTF-8 `datagrant/source-statement/v1\n`, then the canonical JSON of the statement
 * (docs/formats.md). Portable (no Node APIs): the bank client uses it in a browser too.
 */

import { bytesToHex, concatBytes, fromHex, utf8ToBytes } from '../common/bytes.js';
import { canonicalBytes } from '../common/canonical.js';
import { isStrictPublicKey, sha256Hex, sign, verify } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';
import type { GenesisSource } from '../ledger/genesis.js';
import { HASH_RE, ID_RE } from '../ledger/patterns.js';
import { DATA_TYPES, type DataType } from '../ledger/tx.js';

/** What a source states about one answer. Absent `from` / `to`: the period was not asked for. */
export interface SourceStatement {
  v: 1;
  /** The source's id, as registered (genesis `sources`, or a council's `source.add`). */
  source: string;
  /** Pseudonymous subject id the answer is about. */
  subject: string;
  type: DataType;
  /** First day of the period asked for (YYYY-MM-DD). */
  from?: string;
  /** Last day of the period asked for (YYYY-MM-DD). */
  to?: string;
  /** SHA-256 (hex) of the exact answer bytes. */
  digest: string;
  /** Unix ms when the source answered. */
  time: number;
}

/** A statement with the source's Ed25519 signature (hex) over `sourceStatementBytes`. */
export interface SignedSourceStatement {
  statement: SourceStatement;
  sig: string;
}

const DOMAIN = utf8ToBytes('datagrant/source-statement/v1\n');
const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;
const SIG_RE = /^[0-9a-f]{128}$/;
const SUBJECT_MAX = 64;

function malformed(why: string): DatagrantError {
  return new DatagrantError('RECORD_MALFORMED', `source statement ${why}`);
}

/** The statement reduced to its defined fields, in the form that is signed. */
function normalized(s: SourceStatement): SourceStatement {
  return {
    v: 1,
    source: s.source,
    subject: s.subject,
    type: s.type,
    ...(s.from === undefined ? {} : { from: s.from }),
    ...(s.to === undefined ? {} : { to: s.to }),
    digest: s.digest,
    time: s.time,
  };
}

/** The bytes a source signs: the domain tag line, then the statement's canonical JSON. */
export function sourceStatementBytes(statement: SourceStatement): Uint8Array {
  return concatBytes(DOMAIN, canonicalBytes(normalized(statement)));
}

/** Signs a statement with the source's Ed25519 secret key (`signer` defaults to the portable one). */
export function signSourceStatement(
  statement: SourceStatement,
  secretKey: Uint8Array,
  signer: (message: Uint8Array, secretKey: Uint8Array) => Uint8Array = sign,
): SignedSourceStatement {
  const clean = parseSourceStatement(statement);
  return { statement: clean, sig: bytesToHex(signer(sourceStatementBytes(clean), secretKey)) };
}

/** Whether `signed.sig` is the signature of `publicKeyHex` over the statement. Never throws. */
export function verifySourceStatement(signed: SignedSourceStatement, publicKeyHex: string): boolean {
  if (!HASH_RE.test(publicKeyHex) || !SIG_RE.test(signed.sig)) return false;
  const key = fromHex(publicKeyHex, 'key', 32);
  if (!isStrictPublicKey(key)) return false;
  try {
    return verify(fromHex(signed.sig, 'sig', 64), sourceStatementBytes(signed.statement), key);
  } catch {
    return false;
  }
}

/**
 * What `record.put` carries: SHA-256 (hex) of the signed bytes followed by the 64 signature bytes.
 * The signature is inside the hash, so no one without the source's key can confirm a guess of the
 * answer against it (Ed25519 signatures cannot be computed without the key).
 */
export function sourceStatementCommitment(signed: SignedSourceStatement): string {
  return sha256Hex(concatBytes(sourceStatementBytes(signed.statement), fromHex(signed.sig, 'sig', 64)));
}

/** Checks untrusted input is a statement (`RECORD_MALFORMED` otherwise) and returns it normalized. */
export function parseSourceStatement(input: unknown): SourceStatement {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw malformed('is not an object');
  const s = input as Record<string, unknown>;
  for (const key of Object.keys(s))
    if (!['v', 'source', 'subject', 'type', 'from', 'to', 'digest', 'time'].includes(key))
      throw malformed(`has an unknown field ${key}`);
  if (s.v !== 1) throw malformed('version is not 1');
  if (typeof s.source !== 'string' || !ID_RE.test(s.source)) throw malformed('source is not an id');
  if (typeof s.subject !== 'string' || s.subject.length === 0 || s.subject.length > SUBJECT_MAX)
    throw malformed('subject is invalid');
  if (typeof s.type !== 'string' || !(DATA_TYPES as readonly string[]).includes(s.type))
    throw malformed('type is invalid');
  for (const f of ['from', 'to'] as const) {
    const v = s[f];
    if (v !== undefined && (typeof v !== 'string' || !DAY_RE.test(v)))
      throw malformed(`${f} is not YYYY-MM-DD`);
  }
  if (typeof s.digest !== 'string' || !HASH_RE.test(s.digest)) throw malformed('digest is invalid');
  if (typeof s.time !== 'number' || !Number.isSafeInteger(s.time) || s.time < 0)
    throw malformed('time is invalid');
  return normalized(s as unknown as SourceStatement);
}

/** Checks untrusted input is a signed statement; `RECORD_MALFORMED` otherwise. */
export function parseSignedSourceStatement(input: unknown): SignedSourceStatement {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw malformed('is not an object');
  const { statement, sig, ...rest } = input as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw malformed('has unknown fields');
  if (typeof sig !== 'string' || !SIG_RE.test(sig)) throw malformed('signature is not 128 hex characters');
  return { statement: parseSourceStatement(statement), sig };
}

/** Why a signed statement does not stand for a record, if it does not. */
export type SourceProblem =
  | { code: 'not-registered'; message: string }
  | { code: 'forged'; message: string }
  | { code: 'mismatch'; message: string };

/** What the statement must say to stand for a record. */
export interface StatementExpectation {
  subject: string;
  type: DataType;
  from?: string;
  to?: string;
  /** SHA-256 (hex) of the answer bytes sealed with the record. */
  digest: string;
}

/**
 * Checks a signed statement against the sources registered (genesis', or those in force where a
 * council changed them: ledger/governance `sourcesInForce`) and the record it came with:
 * its source must be registered for the record's type (`not-registered`), its signature must
 * verify under that source's key (`forged`), and it must be about this subject, type and period
 * and name the digest of the sealed answer (`mismatch`). `undefined` when it stands.
 */
export function sourceStatementProblem(
  signed: SignedSourceStatement,
  sources: readonly GenesisSource[],
  expect: StatementExpectation,
): SourceProblem | undefined {
  const s = signed.statement;
  const source = sources.find((x) => x.id === s.source);
  if (source === undefined || !source.types.includes(expect.type))
    return {
      code: 'not-registered',
      message: `source ${s.source} is not registered for ${expect.type}`,
    };
  if (!verifySourceStatement(signed, source.key))
    return { code: 'forged', message: `the signature of source ${s.source} does not verify` };
  if (s.subject !== expect.subject || s.type !== expect.type)
    return { code: 'mismatch', message: 'the source statement is about another subject or type' };
  if (s.from !== expect.from || s.to !== expect.to)
    return { code: 'mismatch', message: 'the source statement is about another period' };
  if (s.digest !== expect.digest)
    return { code: 'mismatch', message: 'the source statement names other content than the sealed answer' };
  return undefined;
}
