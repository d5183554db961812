/**
 * Building the subject's and registrar's transactions: identity registration, grant (re-wrapping
 * each record's data key from the subject to the institution), deny, revoke, pause, resume and
 * erase. Portable: the CLI and the browser portal produce byte-identical transactions from the
 * same inputs.
 */
import { bytesToHex, fromHex } from '../common/bytes.js';
import { sign, type WrappedKey } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';
import type { KeySet } from '../common/keyfile.js';
import type { ExtractionPolicy } from '../ledger/genesis.js';
import { attestationBytes } from '../ledger/state-machine.js';
import type { DataType, Tx, TxBody } from '../ledger/tx.js';
import { signTx } from '../ledger/tx-codec.js';
import { recordContext, rewrapForGrantee } from '../records/record-crypto.js';

/** The parts of a request view the grant needs. */
export interface GrantableRequest {
  id: string;
  subject: string;
  types: string[];
  purpose: string;
  dataFrom?: string;
  dataTo?: string;
  records: { type: string; digest: string; key: WrappedKey }[];
  /** The request's own extraction policy, where it is not the chain's (`ctx.extraction`). */
  policy?: ExtractionPolicy;
}

/** Who a grant is to: the request's institution and its registered X25519 key (hex). */
export interface Grantee {
  institution: string;
  encKey: string;
}

/** What the subject decides. */
export interface GrantChoice {
  /** Subset of the request's types; all types with a record when omitted. */
  types?: DataType[];
  /** Grant lifetime from `now`. */
  expiresInMs: number;
  uses: number;
  retainDays: number;
  dataFrom?: string;
  dataTo?: string;
}

/** Common inputs of every subject transaction. */
export interface SignContext {
  chain: string;
  now: number;
  /** Fixed nonce (for reproducible output); random when omitted. */
  nonce?: string;
  /** Transaction lifetime; the ledger default when omitted. */
  ttlMs?: number;
  /** The chain's extraction policy (genesis `params.extraction`); `on-request` when omitted. */
  extraction?: ExtractionPolicy;
}

function draftTimes(ctx: SignContext): { expires?: number; nonce?: string } {
  return {
    ...(ctx.ttlMs !== undefined ? { expires: ctx.now + ctx.ttlMs } : {}),
    ...(ctx.nonce !== undefined ? { nonce: ctx.nonce } : {}),
  };
}

/**
 * Signs a grant for `request` to `grantee`, naming the institution and the key every data key is
 * wrapped to. Under `on-request` each granted record's key is re-wrapped from the subject to the
 * grantee here; under `on-consent` nothing is extracted yet and the extractors wrap to the key the
 * grant names. Check the grantee's key against the chain before calling (the ledger refuses any
 * other key than the institution's registered one). Errors: GRANT_TYPE_NOT_REQUESTED,
 * GRANT_RECORD_MISSING, CRYPTO_UNWRAP_FAILED (the key file is not the subject's).
 */
export function buildGrantTx(
  ctx: SignContext,
  request: GrantableRequest,
  subject: KeySet,
  grantee: Grantee,
  choice: GrantChoice,
  random?: (length: number) => Uint8Array,
): Tx<'grant'> {
  const onConsent = (request.policy ?? ctx.extraction) === 'on-consent';
  const types = (
    choice.types ?? ((onConsent ? request.types : request.records.map((r) => r.type)) as DataType[])
  ).slice();
  for (const type of types) {
    if (!request.types.includes(type))
      throw new DatagrantError('GRANT_TYPE_NOT_REQUESTED', `${type} was not requested`);
  }
  const granteeKey = fromHex(grantee.encKey, 'grantee.encKey', 32);
  const keys = (onConsent ? [] : types).map((type) => {
    const record = request.records.find((r) => r.type === type);
    if (!record) throw new DatagrantError('GRANT_RECORD_MISSING', `no ${type} record has been extracted yet`);
    const context = recordContext(ctx.chain, request.id, type);
    return {
      record: record.digest,
      key: rewrapForGrantee(record.key, subject.encryption.secretKey, granteeKey, context, random),
    };
  });
  const body: TxBody<'grant'> = {
    request: request.id,
    institution: grantee.institution,
    granteeKey: grantee.encKey,
    types,
    purpose: request.purpose,
    ...(choice.dataFrom ? { dataFrom: choice.dataFrom } : {}),
    ...(choice.dataTo ? { dataTo: choice.dataTo } : {}),
    expires: ctx.now + choice.expiresInMs,
    uses: choice.uses,
    retainDays: choice.retainDays,
    keys,
  };
  return signTx(
    { chain: ctx.chain, kind: 'grant', body, ...draftTimes(ctx) },
    subject.signing.publicKey,
    subject.signing.secretKey,
    ctx.now,
  );
}

/** Signs a subject decision that names only a request or a grant. */
export function buildSubjectTx<K extends 'deny' | 'revoke' | 'pause' | 'resume' | 'erase'>(
  ctx: SignContext,
  kind: K,
  body: TxBody<K>,
  subject: KeySet,
): Tx<K> {
  return signTx(
    { chain: ctx.chain, kind, body, ...draftTimes(ctx) },
    subject.signing.publicKey,
    subject.signing.secretKey,
    ctx.now,
  );
}

/** The registrar's attestation (hex signature) binding `subjectId` to a subject's keys. */
export function attestSubject(
  chain: string,
  subjectId: string,
  subject: { signKey: string; encKey: string },
  registrar: KeySet,
): string {
  return bytesToHex(
    sign(attestationBytes(chain, subjectId, subject.signKey, subject.encKey), registrar.signing.secretKey),
  );
}

/** The subject's `subject.register` transaction carrying the registrar's attestation. */
export function buildRegisterTx(
  ctx: SignContext,
  subjectId: string,
  subject: KeySet,
  registrarKey: string,
  attestation: string,
): Tx<'subject.register'> {
  return signTx(
    {
      chain: ctx.chain,
      kind: 'subject.register',
      body: {
        subject: subjectId,
        encKey: bytesToHex(subject.encryption.publicKey),
        registrar: registrarKey,
        attestation,
      },
      ...draftTimes(ctx),
    },
    subject.signing.publicKey,
    subject.signing.secretKey,
    ctx.now,
  );
}
