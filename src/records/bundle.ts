/**
 * The sealed bundle: what a platform hands a grantee for one committed use of a grant. It holds
 * no plaintext and no key a node could open — only the ciphertexts, each record's data key wrapped
 * to the grantee, and inclusion proofs of the request, the grant, the usage and every record, so
 * the grantee checks everything against genesis alone (client/bundle `verifyBundle`) and opens
 * it with its own key. Byte formats: docs/formats.md.
 */

import { type Static, Type } from '@sinclair/typebox';
import { CHAIN_PATTERN, HASH_PATTERN, SIG_PATTERN } from '../ledger/patterns.js';
import { DATA_TYPES, WrappedKeySchema } from '../ledger/tx.js';

const Hex32 = Type.String({ pattern: HASH_PATTERN });
const Hex64 = Type.String({ pattern: SIG_PATTERN });

/** An inclusion proof as it travels (its transaction is decoded and checked by the verifier). */
export const TxProofSchema = Type.Object(
  {
    tx: Type.Unknown(),
    index: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
    path: Type.Array(Hex32, { maxItems: 64 }),
    header: Type.Object(
      {
        chain: Type.String({ maxLength: 64 }),
        height: Type.Integer({ minimum: 1 }),
        prev: Hex32,
        txRoot: Hex32,
        txCount: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
        stateRoot: Hex32,
        proposer: Hex32,
        view: Type.Integer({ minimum: 0 }),
        time: Type.Integer({ minimum: 0 }),
        validators: Type.Optional(Hex32),
        nextValidators: Type.Optional(Hex32),
      },
      { additionalProperties: false },
    ),
    cert: Type.Object(
      {
        height: Type.Integer({ minimum: 1 }),
        view: Type.Integer({ minimum: 0 }),
        block: Hex32,
        votes: Type.Array(Type.Object({ validator: Hex32, sig: Hex64 }, { additionalProperties: false }), {
          maxItems: 1000,
        }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

/** One record of a bundle. */
export const BundleRecordSchema = Type.Object(
  {
    type: Type.Union(DATA_TYPES.map((t) => Type.Literal(t))),
    digest: Hex32,
    /** The ciphertext, base64url without padding. */
    ciphertext: Type.String({ pattern: '^[A-Za-z0-9_-]+$', maxLength: 22 * 1024 * 1024 }),
    /** The record's data key wrapped to the grantee (as on chain: in the grant, or in the record under `on-consent`). */
    key: WrappedKeySchema,
    /** Inclusion proof of the `record.put`. */
    proof: TxProofSchema,
  },
  { additionalProperties: false },
);

/** A sealed bundle. */
export const SealedBundleSchema = Type.Object(
  {
    v: Type.Literal(1),
    chain: Type.String({ pattern: CHAIN_PATTERN }),
    /** Request id (hash of its `request.open`). */
    request: Hex32,
    /** Grant id (hash of its `grant`). */
    grant: Hex32,
    /** Hash of the grantee's committed `usage` this bundle is released against. */
    usage: Hex32,
    /** `bundleDigest` of the records: what the usage names. */
    digest: Hex32,
    proofs: Type.Object(
      { request: TxProofSchema, grant: TxProofSchema, usage: TxProofSchema },
      { additionalProperties: false },
    ),
    records: Type.Array(BundleRecordSchema, { minItems: 1, maxItems: DATA_TYPES.length }),
  },
  { additionalProperties: false },
);

/** A sealed bundle. */
export type SealedBundle = Static<typeof SealedBundleSchema>;
/** One record of a sealed bundle. */
export type BundleRecord = Static<typeof BundleRecordSchema>;
