/**
 * Genesis: the chain id, the validator set with each node's roles, the gateway nodes admitted to
 * the network (they sync, relay and serve the API, but never vote), the registrars who attest
 * identities, the governance keys, the institutions present from the start, the data sources whose
 * signed answers banks check (and for which data types), and chain parameters.
 * Its hash is the `prev` of block 1; a proof verifier needs nothing else.
 */

import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { bytesToHex, fromHex } from '../common/bytes.js';
import { canonicalBytes } from '../common/canonical.js';
import { isStrictPublicKey, sha256 } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';
import { CHAIN_PATTERN, HASH_PATTERN, ID_PATTERN } from './patterns.js';
import { DATA_TYPES, type DataType, NODE_ROLES, ValidatorInfoSchema } from './tx.js';

export { NODE_ROLES };

/** Most validators a set may hold. */
export const MAX_VALIDATORS = 100;

const Hex32 = Type.String({ pattern: HASH_PATTERN });
const Id = Type.String({ pattern: ID_PATTERN });

/** One of NODE_ROLES. */
export type NodeRole = (typeof NODE_ROLES)[number];

/** Roles a gateway node can play: it serves institutions, but extraction is a validator's job. */
export const GATEWAY_ROLES = ['platform'] as const;

/** The layouts of the replay guard in the state. */
export const REPLAY_GUARDS = ['per-tx', 'per-block'] as const;
export type ReplayGuard = (typeof REPLAY_GUARDS)[number];

/**
 * When extractors pull a subject's data: `on-request` (the patent's order: as soon as the request
 * commits, so the subject decides on records already in hand) or `on-consent` (only the types she
 * granted, once the grant commits, wrapping each data key to her and to the grantee at once).
 */
export const EXTRACTION_POLICIES = ['on-request', 'on-consent'] as const;
/** One of EXTRACTION_POLICIES. */
export type ExtractionPolicy = (typeof EXTRACTION_POLICIES)[number];

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
    /**
     * Most bytes of transactions (their canonical encodings) in one block (default
     * `DEFAULT_MAX_BLOCK_BYTES`): kept below the gossip and sync message limits, so no block can
     * be too large to propose, re-propose or sync.
     */
    maxBlockBytes: Type.Optional(Type.Integer({ minimum: 16 * 1024, maximum: 8 * 1024 * 1024 })),
    /** When records are extracted (default `on-request`). */
    extraction: Type.Optional(Type.Union(EXTRACTION_POLICIES.map((p) => Type.Literal(p)))),
    /**
     * How headers commit to state (ledger/state.ts): `sparse-merkle` proves single entries; without
     * it (chains made before the tree) the running hash of writes.
     */
    stateRoot: Type.Optional(Type.Union([Type.Literal('running-hash'), Type.Literal('sparse-merkle')])),
    /** Longest a governance proposal may stay open for approvals (default `DEFAULT_MAX_PROPOSAL_MS`). */
    maxProposalMs: Type.Optional(Type.Integer({ minimum: 1000 })),
    /**
     * How the state holds the replay guard (ledger/state.ts): `per-block`, one entry per block
     * listing its transactions; without it (chains made before) `per-tx`, one entry per transaction.
     */
    replayGuard: Type.Optional(Type.Union(REPLAY_GUARDS.map((g) => Type.Literal(g)))),
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
  maxBlockBytes: 4 * 1024 * 1024,
  extraction: 'on-request',
  stateRoot: 'sparse-merkle',
  replayGuard: 'per-block',
};

/** Most transaction bytes in a block when genesis does not say (4 MiB: gossip takes 16, a sync answer 8). */
export const DEFAULT_MAX_BLOCK_BYTES = 4 * 1024 * 1024;

/** The chain's block byte budget. */
export function maxBlockBytes(params: ChainParams): number {
  return params.maxBlockBytes ?? DEFAULT_MAX_BLOCK_BYTES;
}

/** Longest a proposal stays open when genesis does not say: 14 days. */
export const DEFAULT_MAX_PROPOSAL_MS = 14 * 24 * 60 * 60 * 1000;

/** The chain's replay-guard layout (`per-tx` for chains whose genesis does not say). */
export function replayGuard(params: { replayGuard?: ReplayGuard }): ReplayGuard {
  return params.replayGuard ?? 'per-tx';
}

/** The chain's extraction policy. */
export function extractionPolicy(params: ChainParams): ExtractionPolicy {
  return params.extraction ?? 'on-request';
}

export const GenesisSchema = Type.Object(
  {
    chain: Type.String({ pattern: CHAIN_PATTERN }),
    time: Type.Integer({ minimum: 0 }),
    validators: Type.Array(ValidatorInfoSchema, { minItems: 1, maxItems: MAX_VALIDATORS }),
    /** Non-voting nodes the network admits (absent: none). */
    gateways: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Id,
            key: Hex32,
            roles: Type.Array(Type.Union(GATEWAY_ROLES.map((r) => Type.Literal(r))), { uniqueItems: true }),
          },
          { additionalProperties: false },
        ),
        { maxItems: 1000 },
      ),
    ),
    registrars: Type.Array(Hex32, { maxItems: 100 }),
    /**
     * Keys that alone may add and retire institutions: only chains made before the council
     * (`datagrant init` writes an empty list and a council). A genesis with a council has none.
     */
    admins: Type.Array(Hex32, { maxItems: 100 }),
    /**
     * The governance council: membership and parameters change only by a proposal that
     * `threshold` of these keys approve (ledger/governance.ts). At least 2 of at least 2, so no
     * single key can change anything.
     */
    council: Type.Optional(
      Type.Object(
        {
          members: Type.Array(Hex32, { minItems: 2, maxItems: 100, uniqueItems: true }),
          threshold: Type.Integer({ minimum: 2, maximum: 100 }),
        },
        { additionalProperties: false },
      ),
    ),
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
    /**
     * Data sources that sign their answers (absent: none): each one's Ed25519 key and the data
     * types it answers for. A record of a type some source is registered for is taken by the bank
     * client only with a statement signed by such a source (records/source-statement.ts).
     */
    sources: Type.Optional(
      Type.Array(
        Type.Object(
          {
            id: Id,
            key: Hex32,
            types: Type.Array(Type.Union(DATA_TYPES.map((t) => Type.Literal(t))), {
              minItems: 1,
              uniqueItems: true,
            }),
          },
          { additionalProperties: false },
        ),
        { maxItems: 100 },
      ),
    ),
    params: ChainParamsSchema,
  },
  { additionalProperties: false },
);

/** The genesis document. */
export type Genesis = Static<typeof GenesisSchema>;
/** One validator entry of genesis. */
export type ValidatorInfo = Genesis['validators'][number];
/** One gateway entry of genesis. */
export type GatewayInfo = NonNullable<Genesis['gateways']>[number];
/** One registered data source of genesis. */
export type GenesisSource = NonNullable<Genesis['sources']>[number];

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
  const names = new Set(input.validators.map((v) => v.name));
  for (const g of input.gateways ?? []) {
    if (keys.has(g.key)) throw new DatagrantError('LEDGER_GENESIS_INVALID', 'genesis: duplicate node key');
    if (names.has(g.name)) throw new DatagrantError('LEDGER_GENESIS_INVALID', 'genesis: duplicate node name');
    keys.add(g.key);
    names.add(g.name);
  }
  if (input.council) {
    if (input.council.threshold > input.council.members.length)
      throw new DatagrantError(
        'LEDGER_GENESIS_INVALID',
        'genesis/council: threshold above the number of members',
      );
    if (input.admins.length > 0)
      throw new DatagrantError(
        'LEDGER_GENESIS_INVALID',
        'genesis: a chain with a council has no single-key admins',
      );
  }
  const ids = new Set(input.institutions.map((i) => i.institution));
  const instKeys = new Set(input.institutions.map((i) => i.signKey));
  if (ids.size !== input.institutions.length || instKeys.size !== input.institutions.length) {
    throw new DatagrantError('LEDGER_GENESIS_INVALID', 'genesis: duplicate institution id or signing key');
  }
  const sourceIds = new Set<string>();
  const sourceKeys = new Set<string>();
  for (const s of input.sources ?? []) {
    if (sourceIds.has(s.id) || sourceKeys.has(s.key))
      throw new DatagrantError('LEDGER_GENESIS_INVALID', 'genesis: duplicate source id or key');
    if (!isStrictPublicKey(fromHex(s.key, 'key', 32)))
      throw new DatagrantError('LEDGER_GENESIS_INVALID', `genesis: source ${s.id} key is not an Ed25519 key`);
    sourceIds.add(s.id);
    sourceKeys.add(s.key);
  }
  return input;
}

/** Keys of every node the network admits: validators, then gateways. */
export function networkMembers(genesis: Genesis): string[] {
  return [...genesis.validators.map((v) => v.key), ...(genesis.gateways ?? []).map((g) => g.key)];
}

/** The data sources genesis registers for `type` (none on a chain without `sources`). */
export function sourcesFor(genesis: Genesis, type: DataType): GenesisSource[] {
  return (genesis.sources ?? []).filter((s) => s.types.includes(type));
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
