/**
 * The application: a pure, deterministic state machine. `applyTx(state, tx, ctx)` either writes
 * the transaction's effects into the overlay and returns them, or returns a typed rejection and
 * writes nothing. Every privacy rule of the ledger lives here: only a request's subject can
 * decide on it, a grant never widens a request, time is block time, use counts are enforced,
 * records come only from extractors serving the type and only once f + 1 validators signed that
 * they hold the ciphertext (storage-receipt.ts), replays are refused.
 */
import { concatBytes, fromHex, utf8ToBytes } from '../common/bytes.js';
import { canonicalBytes } from '../common/canonical.js';
import { verify } from '../common/crypto.js';
import {
  type ChainParams,
  DEFAULT_MAX_PROPOSAL_MS,
  type ExtractionPolicy,
  extractionPolicy,
  type GatewayInfo,
  type Genesis,
  type GenesisSource,
  type ValidatorInfo,
} from './genesis.js';
import {
  addInstitution,
  effectiveParams,
  govApprove,
  govPropose,
  isRegistrar,
  retireInstitution,
  validatorMapAt,
} from './governance.js';
import {
  bundleDigest,
  type GrantState,
  grantedRecordDigests,
  type InstitutionState,
  type RecordState,
  type RequestState,
  requestPolicy,
  type SubjectState,
  stateKey,
} from './records.js';
import type { StateOverlay, StateReader, StateValue } from './state.js';
import { checkStorageReceipts } from './storage-receipt.js';
import type { AnyTx, DataType, Tx } from './tx.js';
import { type SignatureVerifier, txHash, verifyTxSignature } from './tx-codec.js';

/** Static facts of the chain the state machine judges against (from genesis). */
export interface LedgerConfig {
  chain: string;
  params: ChainParams;
  /** When extractors pull data (`params.extraction`, default `on-request`). */
  policy: ExtractionPolicy;
  /** The genesis validators by key; the set in force at a height is `validatorsInForce`. */
  validators: ReadonlyMap<string, ValidatorInfo>;
  /** The genesis validators in genesis order (the proposer rotation). */
  genesisValidators: readonly ValidatorInfo[];
  /** Keys of the gateways genesis admits (no validator may take one). */
  gateways: ReadonlySet<string>;
  /** The gateways genesis admits; those in force are `gatewaysInForce` (governance.ts). */
  genesisGateways: readonly GatewayInfo[];
  /** The data sources genesis registers; those in force are `sourcesInForce` (governance.ts). */
  genesisSources: readonly GenesisSource[];
  registrars: ReadonlySet<string>;
  /** Single-key admins of chains made before the council (none when genesis has a council). */
  admins: ReadonlySet<string>;
  /** The governance council (governance.ts), when genesis names one. */
  council?: { members: ReadonlySet<string>; threshold: number };
  /** Longest a proposal stays open. */
  maxProposalMs: number;
}

/** Builds the ledger config from a genesis document. */
export function ledgerConfigOf(genesis: Genesis): LedgerConfig {
  return {
    chain: genesis.chain,
    params: genesis.params,
    policy: extractionPolicy(genesis.params),
    validators: new Map(genesis.validators.map((v) => [v.key, v])),
    genesisValidators: genesis.validators,
    gateways: new Set((genesis.gateways ?? []).map((g) => g.key)),
    genesisGateways: genesis.gateways ?? [],
    genesisSources: genesis.sources ?? [],
    registrars: new Set(genesis.registrars),
    admins: new Set(genesis.admins),
    ...(genesis.council
      ? { council: { members: new Set(genesis.council.members), threshold: genesis.council.threshold } }
      : {}),
    maxProposalMs: genesis.params.maxProposalMs ?? DEFAULT_MAX_PROPOSAL_MS,
  };
}

/** The block a transaction is executed in. */
export interface BlockContext {
  height: number;
  /** Block time (unix ms): the only clock the ledger knows. */
  time: number;
  proposer: string;
}

/** Why a transaction was refused. */
export interface Rejection {
  ok: false;
  code: string;
  message: string;
}

/** What an accepted transaction did. */
export interface Accepted {
  ok: true;
  hash: string;
  /** The data subject this transaction concerns, for the audit index. */
  subject?: string;
}

/** Outcome of `applyTx`. */
export type TxOutcome = Accepted | Rejection;

function reject(code: string, message: string): Rejection {
  return { ok: false, code, message };
}

const ATTEST_DOMAIN = utf8ToBytes('datagrant/attest/v1\n');

/** The bytes a registrar signs to bind a subject id to its keys. */
export function attestationBytes(
  chain: string,
  subject: string,
  signKey: string,
  encKey: string,
): Uint8Array {
  return concatBytes(ATTEST_DOMAIN, canonicalBytes({ chain, subject, signKey, encKey }));
}

function read<T>(state: StateReader, key: string): T | undefined {
  return state.get(key) as T | undefined;
}

function write<T>(state: StateOverlay, key: string, value: T): void {
  state.set(key, value as unknown as StateValue);
}

function verifyHex(
  verifier: SignatureVerifier,
  sigHex: string,
  message: Uint8Array,
  keyHex: string,
): boolean {
  try {
    return verifier(fromHex(sigHex, 'sig', 64), message, fromHex(keyHex, 'key', 32));
  } catch {
    return false;
  }
}

/** Options of `applyTx`. */
export interface ApplyOptions {
  /** Signature check; the node passes a cached OpenSSL verifier. */
  verifier?: SignatureVerifier;
  /** Set when the signature was already checked (e.g. at mempool admission) for this exact tx. */
  signatureChecked?: boolean;
}

/**
 * Applies one transaction. On success its writes are in `state`; on rejection `state` is
 * untouched. Pure: the result depends only on the arguments.
 */
export function applyTx(
  state: StateOverlay,
  tx: AnyTx,
  ctx: BlockContext,
  config: LedgerConfig,
  options: ApplyOptions = {},
): TxOutcome {
  const verifier = options.verifier ?? verify;
  if (tx.chain !== config.chain) return reject('LEDGER_WRONG_CHAIN', `tx is for chain ${tx.chain}`);
  if (tx.expires <= ctx.time) return reject('LEDGER_TX_EXPIRED', 'tx expired before this block');
  const { maxTxTtlMs } = effectiveParams(state, config);
  if (tx.expires > ctx.time + maxTxTtlMs) {
    return reject('LEDGER_TX_TTL_TOO_LONG', `tx expiry is more than ${maxTxTtlMs} ms ahead`);
  }
  const hash = txHash(tx);
  if (state.get(stateKey.seen(hash)) !== undefined)
    return reject('LEDGER_TX_REPLAYED', 'tx was already included');
  if (!options.signatureChecked && !verifyTxSignature(tx, verifier)) {
    return reject('LEDGER_BAD_SIGNATURE', 'signature does not verify for signer');
  }
  const layer = state.child();
  const outcome = dispatch(layer, tx, hash, ctx, config, verifier);
  if (!outcome.ok) return outcome;
  layer.set(stateKey.seen(hash), tx.expires);
  state.absorb(layer);
  return outcome;
}

function dispatch(
  s: StateOverlay,
  tx: AnyTx,
  hash: string,
  ctx: BlockContext,
  config: LedgerConfig,
  verifier: SignatureVerifier,
): TxOutcome {
  switch (tx.kind) {
    case 'subject.register':
      return subjectRegister(s, tx, hash, ctx, config, verifier);
    case 'subject.recover':
      return subjectRecover(s, tx, hash, ctx, config, verifier);
    case 'request.open':
      return requestOpen(s, tx, hash, ctx, config);
    case 'record.put':
      return recordPut(s, tx, hash, ctx, config, verifier);
    case 'record.fail':
      return recordFail(s, tx, hash, ctx, config);
    case 'record.refresh':
      return recordRefresh(s, tx, hash, ctx, config);
    case 'grant':
      return grant(s, tx, hash, ctx, config);
    case 'deny':
      return deny(s, tx, hash, ctx);
    case 'revoke':
    case 'pause':
    case 'resume':
      return grantControl(s, tx, hash);
    case 'usage':
      return usage(s, tx, hash, ctx, config);
    case 'erase':
      return erase(s, tx, hash);
    case 'institution.add':
      return institutionAdd(s, tx, hash, ctx, config);
    case 'institution.retire':
      return institutionRetire(s, tx, hash, config);
    case 'institution.rotate':
      return institutionRotate(s, tx, hash, ctx, config, verifier);
    case 'gov.propose':
      return govPropose(s, tx, hash, ctx, config);
    case 'gov.approve':
      return govApprove(s, tx, hash, ctx, config);
  }
}

function subjectRegister(
  s: StateOverlay,
  tx: Tx<'subject.register'>,
  hash: string,
  ctx: BlockContext,
  config: LedgerConfig,
  verifier: SignatureVerifier,
): TxOutcome {
  const { subject, encKey, registrar, attestation } = tx.body;
  if (!isRegistrar(s, config, registrar))
    return reject('LEDGER_UNKNOWN_REGISTRAR', 'the attesting key is not a registrar');
  if (
    !verifyHex(verifier, attestation, attestationBytes(config.chain, subject, tx.signer, encKey), registrar)
  ) {
    return reject('LEDGER_BAD_ATTESTATION', 'registrar attestation does not verify');
  }
  if (s.get(stateKey.subject(subject)) !== undefined)
    return reject('LEDGER_SUBJECT_EXISTS', 'subject already registered');
  if (s.get(stateKey.subjectByKey(tx.signer)) !== undefined) {
    return reject('LEDGER_KEY_IN_USE', 'signing key already bound to a subject');
  }
  const record: SubjectState = { id: subject, signKey: tx.signer, encKey, registrar, height: ctx.height };
  write(s, stateKey.subject(subject), record);
  s.set(stateKey.subjectByKey(tx.signer), subject);
  return { ok: true, hash, subject };
}

const RECOVER_DOMAIN = utf8ToBytes('datagrant/recover/v1\n');
/** How old a recovery attestation may be when its transaction commits: one day. */
export const MAX_RECOVERY_AGE_MS = 24 * 60 * 60 * 1000;

/** The bytes a registrar signs to bind a subject id to new keys at `issued` (a recovery). */
export function recoveryBytes(
  chain: string,
  subject: string,
  signKey: string,
  encKey: string,
  issued: number,
): Uint8Array {
  return concatBytes(RECOVER_DOMAIN, canonicalBytes({ chain, subject, signKey, encKey, issued }));
}

function subjectRecover(
  s: StateOverlay,
  tx: Tx<'subject.recover'>,
  hash: string,
  ctx: BlockContext,
  config: LedgerConfig,
  verifier: SignatureVerifier,
): TxOutcome {
  const { subject, encKey, registrar, attestation, issued } = tx.body;
  const current = read<SubjectState>(s, stateKey.subject(subject));
  if (!current) return reject('LEDGER_UNKNOWN_SUBJECT', 'no such subject');
  if (!isRegistrar(s, config, registrar))
    return reject('LEDGER_UNKNOWN_REGISTRAR', 'the attesting key is not a registrar');
  // Fresh, and made after her keys last changed: an attestation for keys she recovered away from
  // (perhaps stolen ones) is never good again.
  if (issued > ctx.time || issued < ctx.time - MAX_RECOVERY_AGE_MS || issued <= (current.keysSince ?? 0))
    return reject(
      'LEDGER_STALE_ATTESTATION',
      'the recovery attestation is not recent, or predates her current keys',
    );
  if (
    !verifyHex(
      verifier,
      attestation,
      recoveryBytes(config.chain, subject, tx.signer, encKey, issued),
      registrar,
    )
  )
    return reject('LEDGER_BAD_ATTESTATION', 'registrar attestation does not verify');
  if (tx.signer === current.signKey) return reject('LEDGER_ROTATE_NOTHING', 'these are her current keys');
  if (
    s.get(stateKey.subjectByKey(tx.signer)) !== undefined ||
    s.get(stateKey.institutionByKey(tx.signer)) !== undefined
  )
    return reject('LEDGER_KEY_IN_USE', 'signing key already used');
  s.delete(stateKey.subjectByKey(current.signKey));
  s.set(stateKey.subjectByKey(tx.signer), subject);
  const recovered: SubjectState = {
    ...current,
    signKey: tx.signer,
    encKey,
    registrar,
    keysSince: ctx.time,
    previousKeys: [
      ...(current.previousKeys ?? []),
      { signKey: current.signKey, encKey: current.encKey, until: ctx.height },
    ],
  };
  write(s, stateKey.subject(subject), recovered);
  return { ok: true, hash, subject };
}

function activeInstitutionOf(s: StateReader, signKey: string): InstitutionState | undefined {
  const id = s.get(stateKey.institutionByKey(signKey));
  if (typeof id !== 'string') return undefined;
  const inst = read<InstitutionState>(s, stateKey.institution(id));
  return inst?.active ? inst : undefined;
}

function requestOpen(
  s: StateOverlay,
  tx: Tx<'request.open'>,
  hash: string,
  ctx: BlockContext,
  config: LedgerConfig,
): TxOutcome {
  const body = tx.body;
  const inst = activeInstitutionOf(s, tx.signer);
  if (!inst) return reject('LEDGER_NOT_INSTITUTION', 'signer is not an active institution');
  const subject = read<SubjectState>(s, stateKey.subject(body.subject));
  if (!subject) return reject('LEDGER_UNKNOWN_SUBJECT', 'subject is not registered');
  if (body.consentBy <= ctx.time || body.consentBy > ctx.time + effectiveParams(s, config).maxConsentMs) {
    return reject('LEDGER_BAD_DEADLINE', 'consentBy must be in the future and within the chain limit');
  }
  if (body.dataFrom && body.dataTo && body.dataFrom > body.dataTo) {
    return reject('LEDGER_BAD_RANGE', 'dataFrom is after dataTo');
  }
  for (const [column, source] of Object.entries(body.fields)) {
    const type = source.slice(0, source.indexOf('.'));
    if (!(body.types as string[]).includes(type)) {
      return reject(
        'LEDGER_FIELD_OUT_OF_SCOPE',
        `field ${column} reads ${type}, which the request does not ask for`,
      );
    }
  }
  // The extraction policy in force when it opens stays the request's.
  const policy = extractionPolicy(effectiveParams(s, config));
  const request: RequestState = {
    ...(policy !== config.policy ? { policy } : {}),
    id: hash,
    institution: inst.id,
    subject: body.subject,
    types: [...body.types],
    purpose: body.purpose,
    format: body.format,
    fields: { ...body.fields },
    ...(body.dataFrom ? { dataFrom: body.dataFrom } : {}),
    ...(body.dataTo ? { dataTo: body.dataTo } : {}),
    consentBy: body.consentBy,
    openedAt: ctx.time,
    height: ctx.height,
    records: {},
    failures: {},
    decision: 'pending',
    erased: false,
  };
  write(s, stateKey.request(hash), request);
  return { ok: true, hash, subject: body.subject };
}

function extractorServes(
  s: StateReader,
  config: LedgerConfig,
  height: number,
  key: string,
  type: DataType,
): boolean {
  const v = validatorMapAt(s, config, height).get(key);
  if (!v) return false;
  return v.roles.includes('extractor') && v.types.includes(type);
}

/**
 * The request a record (or failure) of `type` may be added to now, or why not. Under `on-request`
 * the request must still await consent; under `on-consent` it must be granted that type, by a grant
 * that is neither revoked nor expired.
 */
function openRequestFor(
  s: StateReader,
  requestId: string,
  type: DataType,
  ctx: BlockContext,
  config: LedgerConfig,
): RequestState | Rejection {
  const request = read<RequestState>(s, stateKey.request(requestId));
  if (!request) return reject('LEDGER_UNKNOWN_REQUEST', 'no such request');
  const closed = requestTakesRecords(s, request, type, ctx, config);
  if (closed) return closed;
  if (request.records[type] !== undefined)
    return reject('LEDGER_RECORD_EXISTS', `a ${type} record is already on the request`);
  return request;
}

/**
 * Why `request` can take no record of `type` now, whatever it holds already (null when it can):
 * see `openRequestFor`.
 */
function requestTakesRecords(
  s: StateReader,
  request: RequestState,
  type: DataType,
  ctx: BlockContext,
  config: LedgerConfig,
): Rejection | null {
  if (!request.types.includes(type))
    return reject('LEDGER_TYPE_NOT_REQUESTED', `request does not ask for ${type}`);
  if (request.erased) return reject('LEDGER_REQUEST_CLOSED', 'request is no longer open');
  if (requestPolicy(request, config.policy) === 'on-consent') {
    const g = request.grant ? read<GrantState>(s, stateKey.grant(request.grant)) : undefined;
    if (request.decision !== 'granted' || !g)
      return reject('LEDGER_NOT_GRANTED', 'under on-consent extraction, records follow the grant');
    if (!g.types.includes(type)) return reject('LEDGER_TYPE_NOT_GRANTED', `the grant does not cover ${type}`);
    if (g.revoked) return reject('LEDGER_GRANT_REVOKED', 'grant was revoked');
    if (g.expires <= ctx.time) return reject('LEDGER_GRANT_EXPIRED', 'grant has expired');
  } else {
    if (request.decision !== 'pending') return reject('LEDGER_REQUEST_CLOSED', 'request is no longer open');
    if (request.consentBy <= ctx.time)
      return reject('LEDGER_REQUEST_EXPIRED', 'request consent deadline has passed');
  }
  return null;
}

/** The open request an extractor may add a record (or a failure) of `type` to, or why not. */
function requestForExtractor(
  s: StateReader,
  signer: string,
  requestId: string,
  type: DataType,
  ctx: BlockContext,
  config: LedgerConfig,
): RequestState | Rejection {
  if (!extractorServes(s, config, ctx.height, signer, type)) {
    return reject('LEDGER_NOT_EXTRACTOR', `signer is not an extractor serving ${type}`);
  }
  return openRequestFor(s, requestId, type, ctx, config);
}

function recordPut(
  s: StateOverlay,
  tx: Tx<'record.put'>,
  hash: string,
  ctx: BlockContext,
  config: LedgerConfig,
  verifier: SignatureVerifier,
): TxOutcome {
  const body = tx.body;
  const request = requestForExtractor(s, tx.signer, body.request, body.type, ctx, config);
  if ('ok' in request) return request;
  if (s.get(stateKey.record(body.digest)) !== undefined)
    return reject('LEDGER_DIGEST_EXISTS', 'record digest already used');
  const policy = requestPolicy(request, config.policy);
  if (policy === 'on-consent' && body.granteeKey === undefined)
    return reject(
      'LEDGER_GRANTEE_KEY_MISSING',
      'under on-consent extraction the record carries the grantee key',
    );
  if (policy === 'on-request' && body.granteeKey !== undefined)
    return reject('LEDGER_GRANTEE_KEY_UNEXPECTED', 'a record wraps to the grantee only under on-consent');
  const subject = read<SubjectState>(s, stateKey.subject(request.subject));
  // Sealed to a key she recovered away from while it was being extracted: she could not open it.
  if (body.subjectKey !== undefined && body.subjectKey !== subject?.encKey)
    return reject('LEDGER_SUBJECT_KEY_STALE', "the record is wrapped to a key that is not the subject's");
  // Last, after every cheap check: it costs one signature check per receipt.
  const receipts = checkStorageReceipts(
    body.receipts,
    { chain: config.chain, digest: body.digest, size: body.size, height: ctx.height },
    validatorMapAt(s, config, ctx.height),
    verifier,
  );
  if (!receipts.ok) return reject(receipts.code, receipts.message);
  const record: RecordState = {
    digest: body.digest,
    request: body.request,
    subject: request.subject,
    type: body.type,
    size: body.size,
    key: { ...body.key },
    source: body.source,
    fetchedAt: body.fetchedAt,
    sourceCommitment: body.sourceCommitment,
    extractor: tx.signer,
    holders: receipts.holders,
    tx: hash,
    ...(body.granteeKey ? { granteeKey: { ...body.granteeKey } } : {}),
    // Only where the put names it: a record.put of an older extractor writes what it always did,
    // so blocks from before replay to the same state root (older records are judged by height).
    ...(body.subjectKey !== undefined ? { subjectKey: body.subjectKey } : {}),
    height: ctx.height,
    erased: false,
  };
  write(s, stateKey.record(body.digest), record);
  const { [body.type]: _failed, ...failures } = request.failures;
  write(s, stateKey.request(request.id), {
    ...request,
    records: { ...request.records, [body.type]: body.digest },
    failures,
  });
  return { ok: true, hash, subject: request.subject };
}

function recordFail(
  s: StateOverlay,
  tx: Tx<'record.fail'>,
  hash: string,
  ctx: BlockContext,
  config: LedgerConfig,
): TxOutcome {
  const body = tx.body;
  const request = requestForExtractor(s, tx.signer, body.request, body.type, ctx, config);
  if ('ok' in request) return request;
  const failure = { reason: body.reason, detail: body.detail, extractor: tx.signer, height: ctx.height };
  write(s, stateKey.request(request.id), {
    ...request,
    failures: { ...request.failures, [body.type]: failure },
  });
  return { ok: true, hash, subject: request.subject };
}

/**
 * Whether `record` is wrapped to an encryption key `subject` no longer holds: the key it names, or
 * for a record that names none, whether it was put before her latest recovery took effect (in the
 * same block counts: it may have been sealed to either key).
 */
function wrappedToLostKey(record: RecordState, subject: SubjectState): boolean {
  if (record.subjectKey !== undefined) return record.subjectKey !== subject.encKey;
  const latest = subject.previousKeys?.at(-1);
  return latest !== undefined && record.height <= latest.until;
}

/**
 * `record.refresh`: the subject, with her current key, sets aside records of her request that are
 * wrapped to a key she recovered away from. Each is kept in state as superseded and erased (the
 * payload sweep deletes its ciphertext; the ledger keeps its digest and its `record.put`), and its
 * type is open again for the extractors, which seal the new record to her current key. The request
 * must still take records of each type (`openRequestFor` without the record already there).
 */
function recordRefresh(
  s: StateOverlay,
  tx: Tx<'record.refresh'>,
  hash: string,
  ctx: BlockContext,
  config: LedgerConfig,
): TxOutcome {
  const request = read<RequestState>(s, stateKey.request(tx.body.request));
  if (!request) return reject('LEDGER_UNKNOWN_REQUEST', 'no such request');
  const subject = read<SubjectState>(s, stateKey.subject(request.subject));
  if (!subject || subject.signKey !== tx.signer)
    return reject('LEDGER_NOT_SUBJECT', "only the request's subject can have its records re-extracted");
  const records = { ...request.records };
  const superseded = { ...request.superseded };
  const stale: RecordState[] = [];
  for (const type of tx.body.types) {
    const closed = requestTakesRecords(s, request, type, ctx, config);
    if (closed) return closed;
    const digest = request.records[type];
    const record = digest === undefined ? undefined : read<RecordState>(s, stateKey.record(digest));
    if (!record) return reject('LEDGER_RECORD_MISSING', `no ${type} record to re-extract`);
    if (!wrappedToLostKey(record, subject))
      return reject('LEDGER_RECORD_CURRENT', `the ${type} record is already wrapped to her current key`);
    stale.push(record);
    delete records[type];
    superseded[type] = [...(superseded[type] ?? []), record.digest];
  }
  for (const record of stale)
    write(s, stateKey.record(record.digest), {
      ...record,
      erased: true,
      superseded: { by: hash, height: ctx.height },
    });
  write(s, stateKey.request(request.id), { ...request, records, superseded, reopenedAt: ctx.time });
  return { ok: true, hash, subject: request.subject };
}

function subjectOwns(s: StateReader, request: RequestState, signer: string): boolean {
  const subject = read<SubjectState>(s, stateKey.subject(request.subject));
  return subject !== undefined && subject.signKey === signer;
}

function grant(
  s: StateOverlay,
  tx: Tx<'grant'>,
  hash: string,
  ctx: BlockContext,
  config: LedgerConfig,
): TxOutcome {
  const body = tx.body;
  const request = read<RequestState>(s, stateKey.request(body.request));
  if (!request) return reject('LEDGER_UNKNOWN_REQUEST', 'no such request');
  if (!subjectOwns(s, request, tx.signer))
    return reject('LEDGER_NOT_SUBJECT', 'only the request subject can grant');
  if (request.decision !== 'pending' || request.erased)
    return reject('LEDGER_REQUEST_CLOSED', 'request was already decided');
  if (request.consentBy <= ctx.time)
    return reject('LEDGER_REQUEST_EXPIRED', 'request consent deadline has passed');
  if (body.institution !== request.institution)
    return reject('LEDGER_GRANTEE_MISMATCH', 'a grant names the institution that opened the request');
  const inst = read<InstitutionState>(s, stateKey.institution(body.institution));
  if (!inst?.active) return reject('LEDGER_NOT_INSTITUTION', 'grantee institution is retired');
  if (body.granteeKey !== inst.encKey)
    return reject('LEDGER_GRANTEE_KEY_MISMATCH', "grantee key is not the institution's registered key");
  for (const type of body.types) {
    if (!request.types.includes(type))
      return reject('LEDGER_SCOPE_WIDENED', `grant adds ${type}, which was not requested`);
  }
  if (body.purpose !== request.purpose)
    return reject('LEDGER_PURPOSE_MISMATCH', 'grant purpose differs from the request');
  const from = body.dataFrom ?? request.dataFrom;
  const to = body.dataTo ?? request.dataTo;
  if (
    (request.dataFrom && (!from || from < request.dataFrom)) ||
    (request.dataTo && (!to || to > request.dataTo))
  ) {
    return reject('LEDGER_SCOPE_WIDENED', 'grant date range is wider than the request');
  }
  if (from && to && from > to) return reject('LEDGER_BAD_RANGE', 'dataFrom is after dataTo');
  if (body.expires <= ctx.time || body.expires > ctx.time + effectiveParams(s, config).maxGrantMs) {
    return reject('LEDGER_BAD_EXPIRY', 'grant expiry must be in the future and within the chain limit');
  }
  if (requestPolicy(request, config.policy) === 'on-consent') {
    // Nothing is extracted before consent; each record will carry its own key to the grantee.
    if (body.keys.length > 0)
      return reject('LEDGER_KEYS_MISMATCH', 'under on-consent extraction a grant carries no keys');
  } else {
    const expected = new Set<string>();
    for (const type of body.types) {
      const digest = request.records[type];
      if (digest === undefined) return reject('LEDGER_RECORD_MISSING', `no ${type} record to grant yet`);
      expected.add(digest);
    }
    const given = new Set(body.keys.map((k) => k.record));
    if (
      given.size !== body.keys.length ||
      given.size !== expected.size ||
      [...given].some((d) => !expected.has(d))
    ) {
      return reject('LEDGER_KEYS_MISMATCH', 'grant must carry exactly one key per granted record');
    }
  }
  const record: GrantState = {
    id: hash,
    request: request.id,
    subject: request.subject,
    institution: request.institution,
    granteeKey: body.granteeKey,
    types: [...body.types],
    purpose: body.purpose,
    ...(from ? { dataFrom: from } : {}),
    ...(to ? { dataTo: to } : {}),
    expires: body.expires,
    uses: body.uses,
    used: 0,
    retainDays: body.retainDays,
    keys: body.keys.map((k) => ({ record: k.record, key: { ...k.key } })),
    paused: false,
    revoked: false,
    grantedAt: ctx.time,
    height: ctx.height,
  };
  write(s, stateKey.grant(hash), record);
  write(s, stateKey.request(request.id), { ...request, decision: 'granted', grant: hash });
  return { ok: true, hash, subject: request.subject };
}

function deny(s: StateOverlay, tx: Tx<'deny'>, hash: string, ctx: BlockContext): TxOutcome {
  const request = read<RequestState>(s, stateKey.request(tx.body.request));
  if (!request) return reject('LEDGER_UNKNOWN_REQUEST', 'no such request');
  if (!subjectOwns(s, request, tx.signer))
    return reject('LEDGER_NOT_SUBJECT', 'only the request subject can deny');
  if (request.decision !== 'pending' || request.erased)
    return reject('LEDGER_REQUEST_CLOSED', 'request was already decided');
  if (request.consentBy <= ctx.time)
    return reject('LEDGER_REQUEST_EXPIRED', 'request consent deadline has passed');
  write(s, stateKey.request(request.id), {
    ...request,
    decision: 'denied',
    ...(tx.body.reason ? { denyReason: tx.body.reason } : {}),
  });
  return { ok: true, hash, subject: request.subject };
}

function grantControl(s: StateOverlay, tx: Tx<'revoke' | 'pause' | 'resume'>, hash: string): TxOutcome {
  const g = read<GrantState>(s, stateKey.grant(tx.body.grant));
  if (!g) return reject('LEDGER_UNKNOWN_GRANT', 'no such grant');
  const subject = read<SubjectState>(s, stateKey.subject(g.subject));
  if (!subject || subject.signKey !== tx.signer)
    return reject('LEDGER_NOT_SUBJECT', `only the grant's subject can ${tx.kind}`);
  if (g.revoked) return reject('LEDGER_GRANT_REVOKED', 'grant is already revoked');
  if (tx.kind === 'revoke') write(s, stateKey.grant(g.id), { ...g, revoked: true });
  else if (tx.kind === 'pause') {
    if (g.paused) return reject('LEDGER_GRANT_PAUSED', 'grant is already paused');
    write(s, stateKey.grant(g.id), { ...g, paused: true });
  } else {
    if (!g.paused) return reject('LEDGER_GRANT_NOT_PAUSED', 'grant is not paused');
    write(s, stateKey.grant(g.id), { ...g, paused: false });
  }
  return { ok: true, hash, subject: g.subject };
}

function usage(
  s: StateOverlay,
  tx: Tx<'usage'>,
  hash: string,
  ctx: BlockContext,
  config: LedgerConfig,
): TxOutcome {
  const g = read<GrantState>(s, stateKey.grant(tx.body.grant));
  if (!g) return reject('LEDGER_UNKNOWN_GRANT', 'no such grant');
  const inst = read<InstitutionState>(s, stateKey.institution(g.institution));
  // Only the grantee's own key records a use: no node can spend a use, or be handed data, for it.
  if (inst === undefined || inst.signKey !== tx.signer)
    return reject('LEDGER_NOT_GRANTEE', 'usage must be signed by the grantee institution');
  if (!inst.active) return reject('LEDGER_NOT_INSTITUTION', 'grantee institution is retired');
  const request = read<RequestState>(s, stateKey.request(g.request));
  if (!request || request.erased) return reject('LEDGER_ERASED', 'the data was erased');
  if (g.revoked) return reject('LEDGER_GRANT_REVOKED', 'grant was revoked');
  if (g.paused) return reject('LEDGER_GRANT_PAUSED', 'grant is paused');
  if (g.expires <= ctx.time) return reject('LEDGER_GRANT_EXPIRED', 'grant has expired');
  if (g.used >= g.uses) return reject('LEDGER_GRANT_USED_UP', 'grant has no uses left');
  const records = grantedRecordDigests(request, g);
  if (records.length === 0)
    return reject('LEDGER_RECORD_MISSING', 'no granted record has been extracted yet');
  if (tx.body.bundle !== bundleDigest(config.chain, g.id, records))
    return reject('LEDGER_BUNDLE_MISMATCH', 'usage names another bundle than the grant releases now');
  write(s, stateKey.grant(g.id), { ...g, used: g.used + 1 });
  return { ok: true, hash, subject: g.subject };
}

function erase(s: StateOverlay, tx: Tx<'erase'>, hash: string): TxOutcome {
  const request = read<RequestState>(s, stateKey.request(tx.body.request));
  if (!request) return reject('LEDGER_UNKNOWN_REQUEST', 'no such request');
  if (!subjectOwns(s, request, tx.signer))
    return reject('LEDGER_NOT_SUBJECT', 'only the request subject can erase');
  if (request.erased) return reject('LEDGER_ERASED', 'request data is already erased');
  for (const digest of Object.values(request.records)) {
    const record = read<RecordState>(s, stateKey.record(digest));
    if (record) write(s, stateKey.record(digest), { ...record, erased: true });
  }
  if (request.grant) {
    const g = read<GrantState>(s, stateKey.grant(request.grant));
    if (g && !g.revoked) write(s, stateKey.grant(g.id), { ...g, revoked: true });
  }
  write(s, stateKey.request(request.id), { ...request, erased: true });
  return { ok: true, hash, subject: request.subject };
}

/** Legacy single-key admins only; a chain with a council changes membership by proposal. */
function adminOnly(config: LedgerConfig, signer: string): Rejection | null {
  if (config.council)
    return reject(
      'LEDGER_GOVERNANCE_REQUIRED',
      'this chain changes membership only by council proposal (gov.propose)',
    );
  if (!config.admins.has(signer))
    return reject('LEDGER_NOT_ADMIN', 'only a governance key can change institutions');
  return null;
}

function institutionAdd(
  s: StateOverlay,
  tx: Tx<'institution.add'>,
  hash: string,
  ctx: BlockContext,
  config: LedgerConfig,
): TxOutcome {
  return adminOnly(config, tx.signer) ?? addInstitution(s, tx.body, ctx.height) ?? { ok: true, hash };
}

function institutionRetire(
  s: StateOverlay,
  tx: Tx<'institution.retire'>,
  hash: string,
  config: LedgerConfig,
): TxOutcome {
  return adminOnly(config, tx.signer) ?? retireInstitution(s, tx.body.institution) ?? { ok: true, hash };
}

const ROTATE_DOMAIN = utf8ToBytes('datagrant/institution-rotate/v1\n');

/**
 * What a new signing key signs to show it is held (`institution.rotate`'s `proof`): the chain, the
 * institution, the new key and the key it replaces.
 */
export function rotationProofBytes(
  chain: string,
  institution: string,
  signKey: string,
  previous: string,
): Uint8Array {
  return concatBytes(ROTATE_DOMAIN, canonicalBytes({ chain, institution, signKey, previous }));
}

function institutionRotate(
  s: StateOverlay,
  tx: Tx<'institution.rotate'>,
  hash: string,
  ctx: BlockContext,
  config: LedgerConfig,
  verifier: SignatureVerifier,
): TxOutcome {
  const { institution, signKey, encKey, proof } = tx.body;
  const inst = read<InstitutionState>(s, stateKey.institution(institution));
  if (!inst) return reject('LEDGER_UNKNOWN_INSTITUTION', 'no such institution');
  if (inst.signKey !== tx.signer)
    return reject('LEDGER_NOT_INSTITUTION', "only the institution's current signing key rotates its keys");
  if (!inst.active) return reject('LEDGER_INSTITUTION_RETIRED', 'institution is retired');
  const nextSign = signKey ?? inst.signKey;
  const nextEnc = encKey ?? inst.encKey;
  if (nextSign === inst.signKey && nextEnc === inst.encKey)
    return reject('LEDGER_ROTATE_NOTHING', 'a rotation changes the signing key, the encryption key or both');
  if (nextEnc !== inst.encKey && (inst.previousKeys ?? []).some((k) => k.encKey === nextEnc))
    return reject('LEDGER_KEY_REUSED', 'an encryption key is never taken back');
  if (nextSign !== inst.signKey) {
    if (
      s.get(stateKey.institutionByKey(nextSign)) !== undefined ||
      s.get(stateKey.subjectByKey(nextSign)) !== undefined
    )
      return reject('LEDGER_KEY_IN_USE', 'signing key already used');
    if (
      !proof ||
      !verifyHex(
        verifier,
        proof,
        rotationProofBytes(config.chain, institution, nextSign, inst.signKey),
        nextSign,
      )
    )
      return reject('LEDGER_BAD_KEY_PROOF', 'the new signing key did not sign the rotation');
    s.delete(stateKey.institutionByKey(inst.signKey));
    s.set(stateKey.institutionByKey(nextSign), institution);
  } else if (proof !== undefined)
    return reject('LEDGER_BAD_KEY_PROOF', 'a proof comes only with a new signing key');
  const rotated: InstitutionState = {
    ...inst,
    signKey: nextSign,
    encKey: nextEnc,
    previousKeys: [
      ...(inst.previousKeys ?? []),
      { signKey: inst.signKey, encKey: inst.encKey, until: ctx.height },
    ],
  };
  write(s, stateKey.institution(institution), rotated);
  return { ok: true, hash };
}

/** State writes of the genesis document (institutions present from the start). */
export function genesisWrites(genesis: Genesis, state: StateOverlay): void {
  for (const inst of genesis.institutions) addInstitution(state, inst, 0);
}
