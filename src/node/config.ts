/**
 * Node configuration: one JSON file per node home, validated once at start-up (failing fast with
 * the bad field named), paths resolved relative to the file.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { DatagrantError } from '../common/errors.js';

/** One token bucket: sustained requests per second and largest burst. */
const BucketSchema = Type.Object(
  {
    ratePerSecond: Type.Number({ minimum: 0, maximum: 1_000_000 }),
    burst: Type.Integer({ minimum: 1, maximum: 10_000_000 }),
  },
  { additionalProperties: false },
);

/** Schema of `config.json`. */
export const NodeConfigSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    genesis: Type.String({ minLength: 1 }),
    key: Type.String({ minLength: 1 }),
    data: Type.String({ minLength: 1 }),
    /** A validator's signing state file (default `signing-state.json` in the home), apart from `data`. */
    signingState: Type.Optional(Type.String({ minLength: 1 })),
    api: Type.Object(
      {
        /** Address the API binds to (e.g. `0.0.0.0`). */
        host: Type.String({ default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535 }),
        /** Where clients reach the API, when not at `http://host:port` (a bind-all host, a port mapping). */
        url: Type.Optional(Type.String({ pattern: '^https?://' })),
        bodyLimit: Type.Optional(Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024 })),
        /**
         * Origins of registrar attestation services (`datagrant registrar serve`) the portal may
         * call to register a person, e.g. `https://registrar.example.org`; added to the pages'
         * Content-Security-Policy `connect-src` (none by default: the pages reach only this node).
         */
        registrarOrigins: Type.Optional(
          Type.Array(Type.String({ pattern: '^https?://[A-Za-z0-9.-]+(:([0-9]{1,5}|\\*))?$' }), {
            maxItems: 16,
          }),
        ),
        /** Most server-sent event streams open at once (default 1000). */
        maxEventStreams: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
        /** Request rate limits (token buckets); defaults in api/rate-limit `DEFAULT_RATE_LIMIT`. */
        rateLimit: Type.Optional(
          Type.Object(
            {
              enabled: Type.Optional(Type.Boolean()),
              perIp: Type.Optional(BucketSchema),
              loopback: Type.Optional(BucketSchema),
              perInstitution: Type.Optional(BucketSchema),
            },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false },
    ),
    p2p: Type.Object(
      {
        listen: Type.Array(Type.String(), { maxItems: 8 }),
        /** Multiaddrs peers are told to dial (default: the listen addresses). */
        announce: Type.Optional(Type.Array(Type.String(), { maxItems: 8 })),
        /** Other validators: key and dialable multiaddr (without /p2p/). */
        peers: Type.Array(
          Type.Object(
            { key: Type.String({ pattern: '^[0-9a-f]{64}$' }), addr: Type.String() },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false },
    ),
    consensus: Type.Object(
      {
        /** Longest pause between blocks when idle (ms). */
        blockIntervalMs: Type.Integer({ minimum: 10, maximum: 600_000 }),
        /** Shortest pause between blocks while transactions wait (ms). */
        minBlockIntervalMs: Type.Integer({ minimum: 0, maximum: 60_000 }),
        /** Base view-change timeout (ms). */
        viewTimeoutMs: Type.Optional(Type.Integer({ minimum: 50, maximum: 600_000 })),
        /** Largest difference between a fresh block's time and this node's clock (ms; default 10 s). */
        maxClockSkewMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000 })),
      },
      { additionalProperties: false },
    ),
    mempool: Type.Object(
      { maxTxs: Type.Integer({ minimum: 1, maximum: 1_000_000 }) },
      { additionalProperties: false },
    ),
    /**
     * How much committed state is cached: entries in the heap, state-tree nodes in a table outside
     * it (104 bytes a node); the rest is read from the store on demand. Defaults: DEFAULT_STATE_CACHE.
     */
    state: Type.Optional(
      Type.Object(
        {
          cacheEntries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000 })),
          cacheTreeNodes: Type.Optional(Type.Integer({ minimum: 0, maximum: 50_000_000 })),
        },
        { additionalProperties: false },
      ),
    ),
    platform: Type.Optional(
      Type.Object(
        {
          /** Institutions this platform serves: their key files (for decrypting granted documents). */
          institutions: Type.Array(
            Type.Object({ id: Type.String(), key: Type.String() }, { additionalProperties: false }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    extractor: Type.Optional(
      Type.Object(
        {
          sources: Type.Array(Type.Record(Type.String(), Type.Unknown())),
          timeoutMs: Type.Optional(Type.Integer({ minimum: 10 })),
          retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
        },
        { additionalProperties: false },
      ),
    ),
    logLevel: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

/** A node's configuration, paths absolute. */
export type NodeConfig = Static<typeof NodeConfigSchema> & { home: string };

const check = TypeCompiler.Compile(NodeConfigSchema);

/** Validates a parsed config and resolves its paths against `home`. */
export function parseNodeConfig(input: unknown, home: string): NodeConfig {
  if (!check.Check(input)) {
    const e = check.Errors(input).First();
    throw new DatagrantError('CONFIG_INVALID', `config${e?.path ?? ''}: ${e?.message ?? 'invalid'}`);
  }
  const abs = (p: string) => resolve(home, p);
  return {
    ...input,
    home,
    genesis: abs(input.genesis),
    key: abs(input.key),
    data: abs(input.data),
    ...(input.platform
      ? {
          platform: { institutions: input.platform.institutions.map((i) => ({ id: i.id, key: abs(i.key) })) },
        }
      : {}),
  };
}

/** Reads and validates `<home>/config.json`. */
export async function loadNodeConfig(path: string): Promise<NodeConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new DatagrantError(
      'CONFIG_NOT_FOUND',
      `no node config at ${path} (run datagrant init, or start with --dev)`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new DatagrantError('CONFIG_INVALID', `${path} is not JSON`);
  }
  return parseNodeConfig(json, dirname(path));
}
