/**
 * The grantee's side of a sealed bundle: check it against genesis alone, open it with the
 * grantee's own key, and assemble the document. Nothing a node says is taken on its word: every
 * transaction the bundle relies on (the request, the grant, the usage, every record) comes with
 * an inclusion proof certified by 2f+1 genesis validators, and every ciphertext must hash to the
 * digest its committed `record.put` names. Portable (bank client, CLI, gateway, browser).
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { fromBase64url } from '../common/bytes.js';
import { canonicalize } from '../common/canonical.js';
import { sha256Hex, type WrappedKey } from '../common/crypto.js';
import { DatagrantError, isDatagrantError } from '../common/errors.js';
import type { Genesis, GenesisSource } from '../ledger/genesis.js';
import { govKey, type SourceState, sourcesInForce } from '../ledger/governance.js';
import { type Blame, LightClient } from '../ledger/light-client.js';
import { type ProofResult, type TxProof, verifyTxProof } from '../ledger/proof.js';
import { bundleDigest } from '../ledger/records.js';
import type { StateValue } from '../ledger/state.js';
import type { AnyTx, DataType, Tx } from '../ledger/tx.js';
import { decodeTx, type SignatureVerifier } from '../ledger/tx-codec.js';
import { type SealedBundle, SealedBundleSchema } from '../records/bundle.js';
import { openRecordAs, type RecordPlaintext, recordContext } from '../records/record-crypto.js';
import { sourceStatementCommitment, sourceStatementProblem } from '../records/source-statement.js';
import { assembleDocument, type Provenance, type RenderedDocument } from './document.js';

/** Who the bundle must be for: the institution this client acts as. */
export interface Grantee {
  institution: string;
  /** The institution's Ed25519 key (hex): the signer of its request and usage. */
  signKey: string;
  /** The institution's X25519 key (hex): the key its grant must name. */
  encKey: string;
  /** Keys it rotated away from: requests, grants and uses made with them are its own too. */
  previous?: { signKey: string; encKey: string }[];
}

/** Whether `key` is one of the grantee's signing (or encryption) keys, current or previous. */
function ownKey(grantee: Grantee, which: 'signKey' | 'encKey', key: string): boolean {
  return grantee[which] === key || (grantee.previous ?? []).some((k) => k[which] === key);
}

/** One record of a verified bundle. */
export interface VerifiedRecord {
  type: DataType;
  digest: string;
  ciphertext: Uint8Array;
  key: WrappedKey;
  /** The committed `record.put`. */
  tx: Tx<'record.put'>;
  txHash: string;
  height: number;
}

/** A transaction proven committed: its hash, and the height and time of its block. */
export interface ProvenTx<K extends AnyTx['kind']> {
  id: string;
  tx: Tx<K>;
  height: number;
  time: number;
}

/** A bundle whose every claim was checked against genesis. */
export interface VerifiedBundle {
  /** The bundle as received (JSON-safe, no plaintext): what an institution keeps as evidence. */
  sealed: SealedBundle;
  chain: string;
  digest: string;
  request: ProvenTx<'request.open'>;
  grant: ProvenTx<'grant'>;
  usage: ProvenTx<'usage'>;
  records: VerifiedRecord[];
  /**
   * The data sources registered (`genesis.sources`, or those in force as `provenSources` proved
   * them): what `openBundle` checks records against.
   */
  sources: GenesisSource[];
}

/** Error codes of bundle verification and opening. */
export const BUNDLE_ERROR_CODES = [
  'CLIENT_BUNDLE_MALFORMED',
  'CLIENT_WRONG_CHAIN',
  'CLIENT_PROOF_INVALID',
  'CLIENT_BUNDLE_MISMATCH',
  'CLIENT_DIGEST_MISMATCH',
  'CLIENT_BUNDLE_INCOMPLETE',
  'CLIENT_DECRYPT_FAILED',
  'CLIENT_RECORD_MISMATCH',
  'CLIENT_SOURCE_UNSIGNED',
  'CLIENT_SOURCE_NOT_REGISTERED',
  'CLIENT_SOURCE_FORGED',
] as const;

const bundleCheck = TypeCompiler.Compile(SealedBundleSchema);

function fail(code: (typeof BUNDLE_ERROR_CODES)[number], message: string): DatagrantError {
  return new DatagrantError(code, message);
}

/** What proofs are checked against: genesis alone, or a light client that follows its validator sets. */
export type ProofAnchor = Genesis | LightClient;

function proven<K extends AnyTx['kind']>(
  anchor: ProofAnchor,
  proof: TxProof,
  kind: K,
  what: string,
  verifier?: SignatureVerifier,
): { tx: Tx<K>; hash: string; height: number; time: number } {
  let tx: AnyTx;
  try {
    tx = decodeTx(proof.tx);
  } catch (err) {
    throw fail('CLIENT_BUNDLE_MALFORMED', `${what}: ${(err as Error).message}`);
  }
  const result: ProofResult =
    anchor instanceof LightClient
      ? anchor.verifyTx({ ...proof, tx })
      : verifyTxProof(anchor, { ...proof, tx }, verifier);
  if (!result.ok)
    throw new DatagrantError('CLIENT_PROOF_INVALID', `${what}: ${result.code} (${result.message})`, {
      proof: result.code,
    });
  if (tx.kind !== kind) throw fail('CLIENT_BUNDLE_MISMATCH', `${what} is a ${tx.kind}, not a ${kind}`);
  return { tx: tx as Tx<K>, hash: result.hash, height: result.height, time: result.time };
}

/**
 * Checks a bundle (untrusted JSON) for `grantee` against `genesis`: shape, every inclusion proof,
 * that the request and the usage are the grantee's own and the grant names the grantee and its
 * key, that every record is a committed `record.put` of a granted type on this request whose
 * digest the ciphertext hashes to, that each wrapped key is the one on chain, and that the records
 * are exactly those the usage paid for. Throws one of BUNDLE_ERROR_CODES.
 */
export function verifyBundle(
  input: unknown,
  anchor: ProofAnchor,
  grantee: Grantee,
  expect: { request?: string; usage?: string; sources?: readonly GenesisSource[] } = {},
  verifier?: SignatureVerifier,
): VerifiedBundle {
  if (!bundleCheck.Check(input)) {
    const e = bundleCheck.Errors(input).First();
    throw fail('CLIENT_BUNDLE_MALFORMED', `bundle${e?.path ?? ''}: ${e?.message ?? 'invalid'}`);
  }
  const bundle: SealedBundle = input;
  const genesis = anchor instanceof LightClient ? anchor.genesis : anchor;
  if (bundle.chain !== genesis.chain) throw fail('CLIENT_WRONG_CHAIN', `bundle is for chain ${bundle.chain}`);
  if (expect.request !== undefined && bundle.request !== expect.request)
    throw fail('CLIENT_BUNDLE_MISMATCH', 'bundle is for another request');
  if (expect.usage !== undefined && bundle.usage !== expect.usage)
    throw fail('CLIENT_BUNDLE_MISMATCH', 'bundle is released against another usage');

  const request = proven(anchor, bundle.proofs.request as TxProof, 'request.open', 'request', verifier);
  if (request.hash !== bundle.request) throw fail('CLIENT_BUNDLE_MISMATCH', 'request proof is of another tx');
  if (!ownKey(grantee, 'signKey', request.tx.signer))
    throw fail('CLIENT_BUNDLE_MISMATCH', 'the request was not opened by this institution');

  const grant = proven(anchor, bundle.proofs.grant as TxProof, 'grant', 'grant', verifier);
  if (grant.hash !== bundle.grant) throw fail('CLIENT_BUNDLE_MISMATCH', 'grant proof is of another tx');
  const g = grant.tx.body;
  if (g.request !== bundle.request) throw fail('CLIENT_BUNDLE_MISMATCH', 'the grant is for another request');
  if (g.institution !== grantee.institution || !ownKey(grantee, 'encKey', g.granteeKey))
    throw fail('CLIENT_BUNDLE_MISMATCH', 'the grant names another grantee or key');

  const usage = proven(anchor, bundle.proofs.usage as TxProof, 'usage', 'usage', verifier);
  if (usage.hash !== bundle.usage) throw fail('CLIENT_BUNDLE_MISMATCH', 'usage proof is of another tx');
  if (!ownKey(grantee, 'signKey', usage.tx.signer) || usage.tx.body.grant !== bundle.grant)
    throw fail('CLIENT_BUNDLE_MISMATCH', "the usage is not this institution's use of this grant");

  const keyByRecord = new Map(g.keys.map((k) => [k.record, k.key]));
  const seenTypes = new Set<string>();
  const records: VerifiedRecord[] = bundle.records.map((r, i) => {
    const put = proven(anchor, r.proof as TxProof, 'record.put', `record ${i}`, verifier);
    const body = put.tx.body;
    if (body.request !== bundle.request || body.type !== r.type || body.digest !== r.digest)
      throw fail(
        'CLIENT_BUNDLE_MISMATCH',
        `record ${i} is not the committed ${r.type} record of this request`,
      );
    if (!g.types.includes(body.type)) throw fail('CLIENT_BUNDLE_MISMATCH', `${body.type} was not granted`);
    if (seenTypes.has(body.type)) throw fail('CLIENT_BUNDLE_MISMATCH', `two ${body.type} records`);
    seenTypes.add(body.type);
    let ciphertext: Uint8Array;
    try {
      ciphertext = fromBase64url(r.ciphertext, 'ciphertext');
    } catch {
      throw fail('CLIENT_BUNDLE_MALFORMED', `record ${i} ciphertext is not base64url`);
    }
    if (ciphertext.length !== body.size || sha256Hex(ciphertext) !== body.digest)
      throw fail('CLIENT_DIGEST_MISMATCH', `the ${body.type} ciphertext does not match its on-chain digest`);
    const onChainKey = g.keys.length > 0 ? keyByRecord.get(body.digest) : body.granteeKey;
    if (onChainKey === undefined || canonicalize(onChainKey) !== canonicalize(r.key))
      throw fail(
        'CLIENT_BUNDLE_MISMATCH',
        `the ${body.type} key is not the one wrapped to this grantee on chain`,
      );
    return {
      type: body.type,
      digest: body.digest,
      ciphertext,
      key: r.key,
      tx: put.tx,
      txHash: put.hash,
      height: put.height,
    };
  });
  const digest = bundleDigest(
    genesis.chain,
    bundle.grant,
    records.map((r) => r.digest),
  );
  if (digest !== usage.tx.body.bundle || digest !== bundle.digest)
    throw fail('CLIENT_BUNDLE_INCOMPLETE', 'the records are not exactly those the usage was recorded for');
  return {
    sealed: bundle,
    chain: genesis.chain,
    digest,
    request: { id: request.hash, tx: request.tx, height: request.height, time: request.time },
    grant: { id: grant.hash, tx: grant.tx, height: grant.height, time: grant.time },
    usage: { id: usage.hash, tx: usage.tx, height: usage.height, time: usage.time },
    records,
    sources: [...(expect.sources ?? genesis.sources ?? [])],
  };
}

/**
 * The data sources in force, proven through `light`: the ids the council wrote entries for
 * (`gov/source-ids`), then each entry, over genesis' `sources` (ledger/governance
 * `sourcesInForce`). A chain whose council changed no source proves the index absent, and
 * genesis' list stands; so it does on a chain whose headers commit to no provable state. A proof
 * that does not verify throws `blame.code` naming the node (LightClient `provenEntry`).
 */
export async function provenSources(
  light: LightClient,
  get: (path: string) => Promise<unknown>,
  blame: Blame,
): Promise<GenesisSource[]> {
  const genesis = light.genesis.sources ?? [];
  const index = await light.provenEntry<string[]>(get, '/v1/state/sources', govKey.sourceIds, blame);
  if (!index?.value) return [...genesis];
  const entries = new Map<string, unknown>([[govKey.sourceIds, index.value]]);
  const proven = await Promise.all(
    index.value.map((id) =>
      light.provenEntry<SourceState>(get, `/v1/state/sources/${id}`, govKey.source(id), blame, 'present'),
    ),
  );
  for (const entry of proven) if (entry?.value) entries.set(entry.key, entry.value);
  return sourcesInForce({ get: (key) => entries.get(key) as StateValue | undefined }, genesis);
}

/**
 * Opens every record of a verified bundle with the grantee's X25519 secret key. Throws
 * CLIENT_DECRYPT_FAILED (not this grantee's key, or tampered), CLIENT_RECORD_MISMATCH (the
 * plaintext names another subject or type than the committed request and record, or its source
 * digest or statement is not the one the record commits to on chain), and for a type a signing
 * source is registered for (`bundle.sources`; `checkRecordSource`): CLIENT_SOURCE_UNSIGNED,
 * CLIENT_SOURCE_NOT_REGISTERED, CLIENT_SOURCE_FORGED.
 */
export function openBundle(bundle: VerifiedBundle, encSecretKey: Uint8Array): RecordPlaintext[] {
  const subject = bundle.request.tx.body.subject;
  return bundle.records.map((r) => {
    let plain: RecordPlaintext;
    try {
      plain = openRecordAs(
        r.ciphertext,
        r.key,
        encSecretKey,
        recordContext(bundle.chain, bundle.request.id, r.type),
        { sourceCommitment: r.tx.body.sourceCommitment },
      );
    } catch (err) {
      const code = isDatagrantError(err) ? err.code : 'UNKNOWN';
      if (code === 'RECORD_COMMITMENT_MISMATCH')
        throw fail('CLIENT_RECORD_MISMATCH', `the ${r.type} record's source digest is not the one committed`);
      throw fail('CLIENT_DECRYPT_FAILED', `the ${r.type} record does not open with this key (${code})`);
    }
    if (plain.type !== r.type || plain.subject !== subject)
      throw fail('CLIENT_RECORD_MISMATCH', `the ${r.type} record names another subject or type`);
    checkRecordSource(bundle, r, plain);
    return plain;
  });
}

/**
 * The source check of one opened record. Its signed statement, if it has one, must be the one its
 * `record.put` commits to, and name the digest of the sealed answer bytes, which must be the
 * record's source digest (CLIENT_RECORD_MISMATCH). When any source is registered for the
 * record's type (`bundle.sources`), the record must have a statement (CLIENT_SOURCE_UNSIGNED)
 * from a source registered for that type (CLIENT_SOURCE_NOT_REGISTERED) whose signature verifies
 * under its registered key (CLIENT_SOURCE_FORGED), about this request's subject, type and period
 * (CLIENT_RECORD_MISMATCH). Records of a type no source is registered for are taken unsigned;
 * a statement they carry is then not checked against any key.
 */
function checkRecordSource(bundle: VerifiedBundle, r: VerifiedRecord, plain: RecordPlaintext): void {
  const committed = r.tx.body.sourceStatement;
  if (plain.statement === undefined) {
    if (committed !== undefined)
      throw fail(
        'CLIENT_RECORD_MISMATCH',
        `the ${r.type} record lacks the source statement its record.put commits to`,
      );
  } else {
    if (committed === undefined || sourceStatementCommitment(plain.statement) !== committed)
      throw fail(
        'CLIENT_RECORD_MISMATCH',
        `the ${r.type} record's source statement is not the one committed`,
      );
    let content: Uint8Array;
    try {
      content = fromBase64url(plain.content ?? '', 'content');
    } catch {
      throw fail('CLIENT_RECORD_MISMATCH', `the ${r.type} record's source content is not base64url`);
    }
    const digest = sha256Hex(content);
    if (digest !== plain.statement.statement.digest || digest !== plain.sourceDigest)
      throw fail(
        'CLIENT_RECORD_MISMATCH',
        `the ${r.type} record's source content is not what the source signed`,
      );
  }
  const registered = bundle.sources.filter((s) => s.types.includes(r.type));
  if (registered.length === 0) return;
  if (plain.statement === undefined)
    throw fail('CLIENT_SOURCE_UNSIGNED', `the ${r.type} record carries no statement signed by its source`);
  const request = bundle.request.tx.body;
  const problem = sourceStatementProblem(plain.statement, registered, {
    subject: request.subject,
    type: r.type,
    ...(request.dataFrom === undefined ? {} : { from: request.dataFrom }),
    ...(request.dataTo === undefined ? {} : { to: request.dataTo }),
    digest: plain.sourceDigest,
  });
  if (problem === undefined) return;
  const code =
    problem.code === 'not-registered'
      ? 'CLIENT_SOURCE_NOT_REGISTERED'
      : problem.code === 'forged'
        ? 'CLIENT_SOURCE_FORGED'
        : 'CLIENT_RECORD_MISMATCH';
  throw fail(code, `the ${r.type} record: ${problem.message}`);
}

/**
 * Where each record of a verified bundle came from: its committed `record.put`, the source
 * answer's digest from the opened record (checked against the record's on-chain commitment), and
 * the source that signed it, if one did.
 */
export function provenanceOf(bundle: VerifiedBundle, opened: RecordPlaintext[]): Provenance[] {
  return bundle.records.map((r, i) => ({
    type: r.type,
    digest: r.digest,
    source: r.tx.body.source,
    fetchedAt: r.tx.body.fetchedAt,
    sourceDigest: opened[i]!.sourceDigest,
    extractor: r.tx.signer,
    recordTx: r.txHash,
    ...(opened[i]!.statement === undefined ? {} : { signedBy: opened[i]!.statement!.statement.source }),
  }));
}

/**
 * Assembles the document the institution asked for (the committed request's field mapping and
 * format, unless `format` overrides it) from a verified, opened bundle.
 */
export function documentOf(
  bundle: VerifiedBundle,
  records: RecordPlaintext[],
  options: { format?: 'json' | 'csv' | 'xml'; now?: number } = {},
): RenderedDocument {
  const req = bundle.request.tx.body;
  return assembleDocument(
    {
      request: bundle.request.id,
      subject: req.subject,
      institution: bundle.grant.tx.body.institution,
      purpose: bundle.grant.tx.body.purpose,
      generatedAt: options.now ?? Date.now(),
      fields: req.fields,
      records,
      provenance: provenanceOf(bundle, records),
    },
    options.format ?? req.format,
  );
}

/** Digest (hex) of a rendered document, as the client reports it. */
export function documentDigest(document: RenderedDocument): string {
  return sha256Hex(new TextEncoder().encode(document.body));
}
