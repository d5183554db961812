/**
 * Genesis: the chain id, the validator set with each node's roles, the registrars who attest
 * identities, the governance keys, the institutions present from the start, and chain parameters.
 * Its hash is the `prev` of block 1; a proof verifier needs nothing else.
 */
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { bytesToHex } from '../common/bytes.js';
import { canonicalBytes } from '../common/canonical.js';
import { sha256 } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';
import { DATA_TYPES } from './tx.js';

const Hex32 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Id = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{2,63}$' });

/** Roles a validator node can play besides consensus. */
export const NODE_ROLES = ['platform', 'extractor'] as const;
/** One of NODE_ROLES. */
export type NodeRole = (typeof NODE_ROLES)[number];

/** Chain parameters fixed at genesis. */
export const ChainParamsSchema = Type.Object(
  {
    /** Longest a transaction may be valid for, judged against block time. */
    maxTxTtlMs: Type.Integer({ minimum: 1000 }),
    /** Longest a request may wait for consent. */
    maxConsentMs: Type.Integer({ minimum: 1000 }),
    /** Longest a grant may last. */
    maxGrantMs: Type.Integer({ minimum: 1000 }),
    /** Most transactions in one block. */
    maxBlockTxs: Type.Integer({ minimum: 1, maximum: 100_000 }),
  },
  { additionalProperties: false },
);

/** Chain parameters. */
export type ChainParams = Static<typeof ChainParamsSchema>;

/** Defaults used by `datagrant init`. */
export const DEFAULT_CHAIN_PARAMS: ChainParams = {
  maxTxTtlMs: 60 * 60 * 1000,
  maxConsentMs: 30 * 24 * 60 * 60 * 1000,
  maxGrantMs: 365 * 24 * 60 * 60 * 1000,
  maxBlockTxs: 2000,
};

export const GenesisSchema = Type.Object(
  {
    chain: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{2,63}$' }),
    time: Type.Integer({ minimum: 0 }),
    validators: Type.Array(
      Type.Object(
        {
          name: Id,
          key: Hex32,
          roles: Type.Array(Type.Union(NODE_ROLES.map((r) => Type.Literal(r))), { uniqueItems: true }),
          types: Type.Array(Type.Union(DATA_TYPES.map((t) => Type.Literal(t))), { uniqueItems: true }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 100 },
    ),
    registrars: Type.Array(Hex32, { maxItems: 100 }),
    admins: Type.Array(Hex32, { maxItems: 100 }),
    institutions: Type.Array(
      Type.Object(
        {
          institution: Id,
          name: Type.String({ minLength: 1, maxLength: 120 }),
          signKey: Hex32,
          encKey: Hex32,
        },
        { additionalProperties: false },
      ),
      { maxItems: 1000 },
    ),
    params: ChainParamsSchema,
  },
  { additionalProperties: false },
);

/** The genesis document. */
export type Genesis = Static<typeof GenesisSchema>;
/** One validator entry of genesis. */
export type ValidatorInfo = Genesis['validators'][number];

const genesisCheck = TypeCompiler.Compile(GenesisSchema);

/** Validates an untrusted genesis document; `LEDGER_GENESIS_INVALID` naming the bad field. */
export function parseGenesis(input: unknown): Genesis {
  if (!genesisCheck.Check(input)) {
    const e = genesisCheck.Errors(input).First();
    throw new DatagrantError('LEDGER_GENESIS_INVALID', `genesis${e?.path ?? ''}: ${e?.message ?? 'invalid'}`);
  }
  const keys = new Set(input.validators.map((v) => v.key));
  if (keys.size !== input.validators.length) {
    throw new DatagrantError('LEDGER_GENESIS_INVALID', 'genesis: duplicate validator key');
  }
  const ids = new Set(input.institutions.map((i) => i.institution));
  const instKeys = new Set(input.institutions.map((i) => i.signKey));
  if (ids.size !== input.institutions.length || instKeys.size !== input.institutions.length) {
    throw new DatagrantError('LEDGER_GENESIS_INVALID', 'genesis: duplicate institution id or signing key');
  }
  return input;
}

/** Hash (hex) of the canonical genesis document; block 1 points to it. */
export function genesisHash(genesis: Genesis): string {
  return bytesToHex(sha256(canonicalBytes(genesis)));
}

/** Largest number of faulty validators the set tolerates: f = floor((n - 1) / 3). */
export function faultTolerance(n: number): number {
  return Math.floor((n - 1) / 3);
}

/** Votes needed for a quorum certificate: n - f (2f + 1 when n = 3f + 1). */
export function quorumSize(n: number): number {
  return n - faultTolerance(n);
}
