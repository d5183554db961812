/**
 * Transaction kinds, their JSON schemas and TypeScript types. Every transaction is an envelope
 * (chain id, kind, signer, nonce, expiry, body) signed by `signer` over its canonical bytes.
 * Schemas are strict: unknown fields, wrong types and oversize values are refused.
 */

import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { CHAIN_PATTERN, HASH_PATTERN, ID_PATTERN, SIG_PATTERN, SUBJECT_ID_PATTERN } from './patterns.js';

/** Government data types a request can ask for. */
export const DATA_TYPES = ['social-insurance', 'tax', 'housing-fund', 'property'] as const;
/** One of DATA_TYPES. */
export type DataType = (typeof DATA_TYPES)[number];

/** Document formats a platform can assemble. */
export const DOCUMENT_FORMATS = ['json', 'csv', 'xml'] as const;

const Hex32 = Type.String({ pattern: HASH_PATTERN });
const Hex64 = Type.String({ pattern: SIG_PATTERN });
const Nonce = Type.String({ pattern: '^[0-9a-f]{16,64}$' });
const Id = Type.String({ pattern: ID_PATTERN });
const SubjectId = Type.String({ pattern: SUBJECT_ID_PATTERN });
/** Unix ms, up to the largest time a JavaScript Date can hold. */
const Time = Type.Integer({ minimum: 0, maximum: 8_640_000_000_000_000 });
const DayDate = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' });
const Text = (max: number) => Type.String({ minLength: 1, maxLength: max });
const DataTypeSchema = Type.Union(DATA_TYPES.map((t) => Type.Literal(t)));
const TypeList = Type.Array(DataTypeSchema, { minItems: 1, maxItems: DATA_TYPES.length, uniqueItems: true });
const strict = { additionalProperties: false } as const;

/**
 * A 32-byte data key wrapped to one X25519 recipient with HPKE (RFC 9180, see common/crypto
 * `wrapKey` and docs/formats.md): `enc` is the 32-byte encapsulated key, `ct` the sealed key and
 * its 16-byte tag, both base64url without padding.
 */
export const WrappedKeySchema = Type.Object(
  {
    enc: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }),
    ct: Type.String({ pattern: '^[A-Za-z0-9_-]{64}$' }),
  },
  strict,
);

/**
 * Most storage receipts one `record.put` carries. A receipt is about 340 bytes of canonical JSON, so
 * 40 of them and the rest of the body stay well within `MAX_TX_BYTES`; that covers the f + 1
 * receipts a record needs on a validator set of up to 118 (f = 39).
 */
export const MAX_RECEIPTS = 40;

/**
 * A validator's signed statement that it holds a ciphertext durably in its payload store (see
 * ledger/storage-receipt `storageReceiptBytes` and docs/formats.md): `validator` is its Ed25519 key
 * (hex), `digest` and `size` name the ciphertext, `height` is the validator's committed tip when it
 * stored it, `sig` its Ed25519 signature over the domain tag and the other fields.
 */
export const StorageReceiptSchema = Type.Object(
  {
    validator: Hex32,
    digest: Hex32,
    size: Type.Integer({ minimum: 1, maximum: 16 * 1024 * 1024 }),
    chain: Type.String({ pattern: CHAIN_PATTERN }),
    height: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    sig: Hex64,
  },
  strict,
);

/** A storage receipt (`StorageReceiptSchema`). */
export type StorageReceipt = Static<typeof StorageReceiptSchema>;

/**
 * Chain parameters a council may change (`params.set`), each within what genesis allows: the
 * block limits may be lowered or raised back up to their genesis values (which size the consensus
 * and gossip limits), the time maxima set freely within their schema bounds, and the extraction
 * policy of requests opened from then on.
 */
export const GovernableParamsSchema = Type.Object(
  {
    maxTxTtlMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 30 * 24 * 3600 * 1000 })),
    maxConsentMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 10 * 365 * 24 * 3600 * 1000 })),
    maxGrantMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 10 * 365 * 24 * 3600 * 1000 })),
    maxBlockTxs: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    maxBlockBytes: Type.Optional(Type.Integer({ minimum: 16 * 1024, maximum: 8 * 1024 * 1024 })),
    /** When extractors pull data, for requests opened from then on (each keeps the policy it opened under). */
    extraction: Type.Optional(Type.Union([Type.Literal('on-request'), Type.Literal('on-consent')])),
  },
  { additionalProperties: false, minProperties: 1 },
);

/** Roles a validator node can play besides consensus. */
export const NODE_ROLES = ['platform', 'extractor'] as const;

/** A validator as genesis and `validator.add` name it: its name, key, roles and data types. */
export const ValidatorInfoSchema = Type.Object(
  {
    name: Id,
    key: Hex32,
    roles: Type.Array(Type.Union(NODE_ROLES.map((r) => Type.Literal(r))), { uniqueItems: true }),
    types: Type.Array(Type.Union(DATA_TYPES.map((t) => Type.Literal(t))), { uniqueItems: true }),
  },
  strict,
);

/**
 * A gateway as genesis `gateways` and `gateway.add` name it: its name, node key and roles. Its
 * roles are GATEWAY_ROLES (ledger/genesis): a gateway serves institutions, it never extracts.
 */
export const GatewayInfoSchema = Type.Object(
  {
    name: Id,
    key: Hex32,
    roles: Type.Array(Type.Union([Type.Literal('platform')]), { uniqueItems: true }),
  },
  strict,
);

/** A data source as genesis `sources` and `source.add` name it: its id, Ed25519 key and data types. */
export const SourceInfoSchema = Type.Object({ id: Id, key: Hex32, types: TypeList }, strict);

/** What a governance proposal changes once its council threshold of approvals has committed. */
export const GovChangeSchema = Type.Union([
  Type.Object(
    {
      type: Type.Literal('institution.add'),
      institution: Id,
      name: Text(120),
      signKey: Hex32,
      encKey: Hex32,
    },
    strict,
  ),
  Type.Object({ type: Type.Literal('institution.retire'), institution: Id }, strict),
  Type.Object({ type: Type.Literal('registrar.add'), key: Hex32 }, strict),
  Type.Object({ type: Type.Literal('registrar.retire'), key: Hex32 }, strict),
  Type.Object({ type: Type.Literal('params.set'), params: GovernableParamsSchema }, strict),
  /** A validator joins the set (in force VALIDATOR_SET_DELAY blocks after enactment). */
  Type.Object({ type: Type.Literal('validator.add'), validator: ValidatorInfoSchema }, strict),
  /** A validator leaves the set. */
  Type.Object({ type: Type.Literal('validator.retire'), key: Hex32 }, strict),
  /**
   * A validator's key is replaced; `proof` is the new key's signature over
   * `validatorRotationBytes` (ledger/governance), so nobody is made a validator by a key it lacks.
   */
  Type.Object({ type: Type.Literal('validator.rotate'), key: Hex32, newKey: Hex32, proof: Hex64 }, strict),
  /** A validator's roles and data types change. */
  Type.Object(
    {
      type: Type.Literal('validator.update'),
      key: Hex32,
      roles: ValidatorInfoSchema.properties.roles,
      types: ValidatorInfoSchema.properties.types,
    },
    strict,
  ),
  /** A gateway (a non-voting node) is admitted to the network. */
  Type.Object({ type: Type.Literal('gateway.add'), gateway: GatewayInfoSchema }, strict),
  /** A gateway is no longer admitted. */
  Type.Object({ type: Type.Literal('gateway.retire'), key: Hex32 }, strict),
  /** A data source is registered: banks take its signed answers for `types`. */
  Type.Object({ type: Type.Literal('source.add'), source: SourceInfoSchema }, strict),
  /** A data source is no longer registered: its statements stand for no record. */
  Type.Object({ type: Type.Literal('source.retire'), id: Id }, strict),
  /** The data types a registered source answers for change. */
  Type.Object(
    { type: Type.Literal('source.update'), id: Id, types: SourceInfoSchema.properties.types },
    strict,
  ),
]);

/** A governance change (`GovChangeSchema`). */
export type GovChange = Static<typeof GovChangeSchema>;
/** The kinds of governance change. */
export type GovChangeType = GovChange['type'];

/** Bodies, one schema per kind. */
export const BODY_SCHEMAS = {
  'subject.register': Type.Object(
    { subject: SubjectId, encKey: Hex32, registrar: Hex32, attestation: Hex64 },
    strict,
  ),
  /**
   * A subject who lost her key (or fears it stolen) binds new keys to her subject id, signed with
   * the new signing key and attested by a registrar over `recoveryBytes` at `issued` (which must be
   * recent and after her keys last changed, so an old attestation cannot be played again).
   */
  'subject.recover': Type.Object(
    { subject: SubjectId, encKey: Hex32, registrar: Hex32, attestation: Hex64, issued: Time },
    strict,
  ),
  'request.open': Type.Object(
    {
      subject: SubjectId,
      types: TypeList,
      purpose: Text(200),
      format: Type.Union(DOCUMENT_FORMATS.map((f) => Type.Literal(f))),
      fields: Type.Record(
        Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_.-]{0,63}$' }),
        Type.String({ maxLength: 96, pattern: '^[a-z-]+\\.[A-Za-z0-9_]+$' }),
        { maxProperties: 64, additionalProperties: false },
      ),
      dataFrom: Type.Optional(DayDate),
      dataTo: Type.Optional(DayDate),
      consentBy: Time,
    },
    strict,
  ),
  'record.put': Type.Object(
    {
      request: Hex32,
      type: DataTypeSchema,
      digest: Hex32,
      size: Type.Integer({ minimum: 1, maximum: 16 * 1024 * 1024 }),
      key: WrappedKeySchema,
      source: Text(200),
      fetchedAt: Time,
      /**
       * Keyed commitment to the digest of the source's answer (record-crypto `sourceCommitment`): who
       * opens the record can check it; to anyone else it says nothing about the answer.
       */
      sourceCommitment: Hex32,
      /**
       * When the source signed its answer: `sourceStatementCommitment` of the signed statement
       * sealed inside the record (records/source-statement.ts). The bank client checks the opened
       * statement hashes to it; to anyone else it says nothing about the answer.
       */
      sourceStatement: Type.Optional(Hex32),
      /** Under the `on-consent` policy only: the data key wrapped to the grant's grantee key. */
      granteeKey: Type.Optional(WrappedKeySchema),
      /**
       * The subject's X25519 key (hex) `key` is wrapped to. When given, the ledger refuses the
       * record unless it is her current key (she may have recovered since it was sealed).
       */
      subjectKey: Type.Optional(Hex32),
      /**
       * Storage receipts of the ciphertext from genesis validators: the ledger takes the record only
       * with valid receipts from at least f + 1 distinct validators, so one honest validator holds it.
       */
      receipts: Type.Array(StorageReceiptSchema, { minItems: 1, maxItems: MAX_RECEIPTS }),
    },
    strict,
  ),
  'record.fail': Type.Object(
    {
      request: Hex32,
      type: DataTypeSchema,
      reason: Type.String({ pattern: '^[A-Z][A-Z0-9_]{2,63}$' }),
      detail: Type.String({ maxLength: 300 }),
    },
    strict,
  ),
  grant: Type.Object(
    {
      request: Hex32,
      /** The grantee: the institution that opened the request. */
      institution: Id,
      /** The grantee's registered X25519 key (hex) that every data key of this grant is wrapped to. */
      granteeKey: Hex32,
      types: TypeList,
      purpose: Text(200),
      dataFrom: Type.Optional(DayDate),
      dataTo: Type.Optional(DayDate),
      expires: Time,
      uses: Type.Integer({ minimum: 1, maximum: 1000 }),
      retainDays: Type.Integer({ minimum: 0, maximum: 3650 }),
      /** One data key per granted record, wrapped to `granteeKey` (empty under `on-consent`). */
      keys: Type.Array(Type.Object({ record: Hex32, key: WrappedKeySchema }, strict), {
        maxItems: DATA_TYPES.length,
      }),
    },
    strict,
  ),
  deny: Type.Object({ request: Hex32, reason: Type.Optional(Type.String({ maxLength: 300 })) }, strict),
  revoke: Type.Object({ grant: Hex32 }, strict),
  pause: Type.Object({ grant: Hex32 }, strict),
  resume: Type.Object({ grant: Hex32 }, strict),
  usage: Type.Object(
    {
      grant: Hex32,
      /** Digest of the sealed bundle this use releases (`bundleDigest`): the ledger checks it. */
      bundle: Hex32,
      format: Type.Union(DOCUMENT_FORMATS.map((f) => Type.Literal(f))),
    },
    strict,
  ),
  erase: Type.Object({ request: Hex32 }, strict),
  'institution.add': Type.Object({ institution: Id, name: Text(120), signKey: Hex32, encKey: Hex32 }, strict),
  'institution.retire': Type.Object({ institution: Id }, strict),
  /**
   * An institution rotates its own keys, signed with its current signing key. A new signing key
   * comes with `proof`, its signature over `rotationProofBytes`, so no one can claim a key they do
   * not hold. Grants made to the old encryption key keep working until they end; new grants must
   * name the new one; requests opened with the old signing key stay live.
   */
  'institution.rotate': Type.Object(
    {
      institution: Id,
      signKey: Type.Optional(Hex32),
      encKey: Type.Optional(Hex32),
      proof: Type.Optional(Hex64),
    },
    strict,
  ),
  /**
   * A council member proposes a change; the proposal's id is this transaction's hash and the
   * proposer's approval is the first. It lapses unapproved at `deadline` (block time).
   */
  'gov.propose': Type.Object({ change: GovChangeSchema, deadline: Time }, strict),
  /** A council member approves an open proposal; the threshold-th approval enacts it. */
  'gov.approve': Type.Object({ proposal: Hex32 }, strict),
  /**
   * A subject who recovered her keys has records of a request that are still wrapped to a key she
   * lost re-extracted, signed with her current key: the stale records are set aside (their digests
   * stay on the ledger, their ciphertexts are erased) and the request is open for those types
   * again, so extractors seal them afresh to her current key.
   */
  'record.refresh': Type.Object({ request: Hex32, types: TypeList }, strict),
} satisfies Record<string, TSchema>;

/** Every transaction kind. */
export type TxKind = keyof typeof BODY_SCHEMAS;
/** All kinds, in a stable order. */
export const TX_KINDS = Object.keys(BODY_SCHEMAS) as TxKind[];

/** Body type of one kind. */
export type TxBody<K extends TxKind> = Static<(typeof BODY_SCHEMAS)[K]>;

/** The unsigned envelope of a transaction of kind K. */
export interface UnsignedTx<K extends TxKind = TxKind> {
  v: 1;
  chain: string;
  kind: K;
  /** Ed25519 public key (hex) of the signer. */
  signer: string;
  /** Random hex, so two otherwise equal transactions differ. */
  nonce: string;
  /** Unix ms after which the transaction can no longer be included. */
  expires: number;
  body: TxBody<K>;
}

/** A signed transaction. */
export interface Tx<K extends TxKind = TxKind> extends UnsignedTx<K> {
  /** Ed25519 signature (hex) over `txSigningBytes`. */
  sig: string;
}

/** Any transaction, discriminated by `kind`. */
export type AnyTx = { [K in TxKind]: Tx<K> }[TxKind];

/** Envelope schema (the body is checked against its kind's schema separately). */
export const ENVELOPE_SCHEMA = Type.Object(
  {
    v: Type.Literal(1),
    chain: Type.String({ pattern: CHAIN_PATTERN }),
    kind: Type.Union(TX_KINDS.map((k) => Type.Literal(k))),
    signer: Hex32,
    nonce: Nonce,
    expires: Time,
    body: Type.Object({}, { additionalProperties: true }),
    sig: Hex64,
  },
  strict,
);

/** Largest accepted canonical encoding of one transaction, in bytes. */
export const MAX_TX_BYTES = 16 * 1024;
