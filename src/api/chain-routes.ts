/**
 * Chain query routes: status, genesis, validators, blocks, transactions and their proofs,
 * submission. Anyone sees kinds, hashes, heights and signers' roles; the body (and proof) of a
 * transaction that concerns a subject is shown only to that subject or the institution concerned,
 * who prove it with a signed call.
 */
import type {} from '@fastify/swagger';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DatagrantError } from '../common/errors.js';
import type {
  AnyTx,
  ChainView,
  CommittedBlockEvent,
  PendingTxs,
  StateValue,
  StateValueProof,
} from '../ledger/index.js';
import {
  blockHash,
  buildTxProof,
  HASH_PATTERN,
  ID_PATTERN,
  MAX_TX_BYTES,
  notHeld,
  quorumSize,
  signerRole,
  stateKey,
  stateRootRule,
  txHash,
  txParties,
} from '../ledger/index.js';
import { ErrorBodySchema } from './errors.js';
import { openEventStream } from './event-stream.js';
import { govRoutes } from './gov-routes.js';
import type { Caller } from './http-auth.js';

/** Live facts about the node that only its consensus and network layers know. */
export interface NodeStatusSource {
  status(): {
    mode: 'dev' | 'pbft';
    /** A validator votes; a gateway syncs, relays and serves, but never votes. */
    kind: 'validator' | 'gateway';
    /** Whether it votes now (a validator that lost its signing state waits for its double-sign check). */
    voting: boolean;
    /** While that check runs: the height the chain must pass first. */
    doubleSignCheckUntil?: number;
    view: number;
    primary: string;
    peers: string[];
    lastCommitAt: number | null;
    self: string;
  };
  /** Last time each validator was heard from (unix ms), by key. */
  liveness?(): Record<string, number | null>;
  /** Whether the node is ready to serve (for `/readyz`); without it, a serving node is ready. */
  readiness?(): Promise<Readiness>;
}

/** The checks behind `/readyz`. */
export interface Readiness {
  /** Not behind the chain (no heights committed by peers that it has not fetched yet). */
  synced: boolean;
  /** Connected to enough validators to follow consensus (a quorum, itself included for a validator). */
  peers: boolean;
  /** Its block store takes a durable write. */
  storeWritable: boolean;
}

/** What the chain routes need. */
export interface ChainRouteModules {
  chain: ChainView;
  mempool: PendingTxs;
  node: NodeStatusSource;
  /** Admits a transaction (mempool, gossip, producer wake-up); returns its hash. */
  submit: (tx: unknown) => Promise<string>;
  /**
   * Who signed this call, when it is signed (a bad signature is a 401); undefined for an anonymous
   * reader. Without it every reader is anonymous.
   */
  identify?: (request: FastifyRequest) => Promise<Caller | undefined>;
}

/** A transaction as an anonymous reader sees one that concerns a subject: no body. */
export interface RedactedTx {
  v: 1;
  chain: string;
  kind: AnyTx['kind'];
  signer: string;
  expires: number;
  redacted: true;
}

const HASH = { type: 'string', pattern: HASH_PATTERN } as const;
/** Most transactions in one `POST /v1/txs/batch`. */
export const MAX_BATCH_TXS = 256;
const errors = { 400: ErrorBodySchema, 404: ErrorBodySchema };

/** Registers the chain routes under /v1. */
export async function chainRoutes(app: FastifyInstance, modules: ChainRouteModules): Promise<void> {
  const { chain, mempool, node } = modules;
  const identify = async (request: FastifyRequest) => (await modules.identify?.(request)) ?? undefined;
  /** Whether `caller` may read the body of `tx`. */
  const mayRead = (tx: AnyTx, caller: Caller | undefined): boolean => {
    const { subject, institution } = txParties(chain.state, tx);
    if (subject === undefined) return true;
    return (
      (caller?.kind === 'subject' && caller.id === subject) ||
      (caller?.kind === 'institution' && caller.id === institution)
    );
  };
  const visible = (tx: AnyTx, caller: Caller | undefined): AnyTx | RedactedTx =>
    mayRead(tx, caller)
      ? tx
      : { v: tx.v, chain: tx.chain, kind: tx.kind, signer: tx.signer, expires: tx.expires, redacted: true };
  const roleOf = (tx: AnyTx) => signerRole(chain.genesis, chain.state, tx.signer);

  app.get(
    '/healthz',
    { schema: { tags: ['chain'], summary: 'Liveness: the process is up and serving' } },
    async () => ({ ok: true }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['chain'],
        summary: 'Readiness: synced, connected to enough validators, store writable (503 when not)',
      },
    },
    async (_request, reply) => {
      const checks: Readiness = (await node.readiness?.()) ?? {
        synced: true,
        peers: true,
        storeWritable: true,
      };
      const ready = checks.synced && checks.peers && checks.storeWritable;
      if (!ready) {
        const failing = Object.entries(checks)
          .filter(([, ok]) => !ok)
          .map(([name]) => name);
        return reply.code(503).send({
          ready,
          checks,
          error: { code: 'API_NOT_READY', message: `not ready: ${failing.join(', ')}` },
        });
      }
      return { ready, checks };
    },
  );

  app.get(
    '/v1/status',
    { schema: { tags: ['chain'], summary: 'Height, view, primary, peers and last commit time' } },
    async () => {
      const tip = chain.store.tip();
      const s = node.status();
      return {
        chain: chain.genesis.chain,
        height: tip.height,
        hash: tip.hash,
        time: tip.time,
        stateRoot: tip.stateRoot,
        ...(tip.base !== undefined ? { base: tip.base } : {}),
        mode: s.mode,
        kind: s.kind,
        voting: s.voting,
        ...(s.doubleSignCheckUntil !== undefined ? { doubleSignCheckUntil: s.doubleSignCheckUntil } : {}),
        view: s.view,
        primary: s.primary,
        self: s.self,
        peers: s.peers,
        lastCommitAt: s.lastCommitAt,
        mempool: mempool.size,
        validators: chain.validatorsAt(chain.height + 1).length,
        quorum: quorumSize(chain.validatorsAt(chain.height + 1).length),
      };
    },
  );

  app.get(
    '/v1/genesis',
    { schema: { tags: ['chain'], summary: 'The genesis document' } },
    async () => chain.genesis,
  );

  app.get<{ Querystring: { height?: number } }>(
    '/v1/validators',
    {
      schema: {
        tags: ['chain'],
        summary:
          'Validator set certifying the next height (or `height`) with roles and liveness; council changes take effect 2 blocks after they are enacted',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { height: { type: 'integer', minimum: 1 } },
        },
      },
    },
    async (request) => {
      const s = node.status();
      const seen = node.liveness?.() ?? {};
      const height = request.query.height ?? chain.height + 1;
      const set = chain.validatorsAt(height);
      return {
        height,
        quorum: quorumSize(set.length),
        validators: set.map((v) => ({
          ...v,
          self: v.key === s.self,
          primary: v.key === s.primary,
          connected: v.key === s.self || s.peers.includes(v.key),
          lastSeenAt: v.key === s.self ? Date.now() : (seen[v.key] ?? null),
        })),
      };
    },
  );

  app.get<{ Querystring: { txs?: boolean } }>(
    '/v1/events',
    {
      schema: {
        tags: ['chain'],
        summary:
          'Server-sent events: one `block` event per committed block (header summary; with `txs=true`, its tx hashes)',
        querystring: {
          type: 'object',
          properties: { txs: { type: 'boolean' } },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const withTxs = request.query.txs === true;
      openEventStream(request, reply, (send) => {
        const tip = chain.store.tip();
        send('tip', { height: tip.height, hash: tip.hash, time: tip.time });
        const listener = (event: CommittedBlockEvent) => {
          const h = event.certified.block.header;
          send('block', {
            height: h.height,
            hash: event.hash,
            time: h.time,
            txCount: h.txCount,
            proposer: h.proposer,
            view: h.view,
            ...(withTxs ? { txHashes: event.txHashes } : {}),
          });
        };
        chain.on('committed', listener);
        return () => chain.off('committed', listener);
      });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/institutions/:id',
    {
      schema: {
        tags: ['chain'],
        summary: 'An institution: name, public keys, whether active',
        params: {
          type: 'object',
          properties: { id: { type: 'string', pattern: ID_PATTERN } },
        },
        response: errors,
      },
    },
    async (request) => {
      const inst = chain.state.get(stateKey.institution(request.params.id));
      if (!inst) throw new DatagrantError('LEDGER_INSTITUTION_NOT_FOUND', 'no such institution');
      return inst;
    },
  );

  app.get<{ Querystring: { before?: number; limit?: number } }>(
    '/v1/blocks',
    {
      schema: {
        tags: ['chain'],
        summary: 'Latest block headers, newest first',
        querystring: {
          type: 'object',
          properties: {
            before: { type: 'integer', minimum: 1 },
            limit: { type: 'integer', minimum: 1, maximum: 100 },
          },
          additionalProperties: false,
        },
        response: { 400: ErrorBodySchema },
      },
    },
    async (request) => {
      const tip = chain.store.tip().height;
      const start = Math.min(tip, (request.query.before ?? tip + 1) - 1);
      const limit = request.query.limit ?? 20;
      const out = [];
      for (let h = start; h >= 1 && out.length < limit; h--) {
        const certified = await chain.store.getBlock(h);
        if (certified)
          out.push({
            hash: blockHash(certified.block.header),
            header: certified.block.header,
            votes: certified.cert.votes.length,
          });
      }
      return { height: tip, blocks: out };
    },
  );

  app.get<{ Params: { height: string } }>(
    '/v1/blocks/:height',
    {
      schema: {
        tags: ['chain'],
        summary:
          'A certified block by height, by hash, or `latest`; bodies of transactions about a subject only for her and the institution concerned (signed call)',
        params: {
          type: 'object',
          properties: { height: { type: 'string', pattern: '^(latest|[0-9]{1,15}|[0-9a-f]{64})$' } },
        },
        response: errors,
      },
    },
    async (request) => {
      const caller = await identify(request);
      const { height } = request.params;
      const certified =
        height.length === 64
          ? await chain.store.getBlockByHash(height)
          : await chain.store.getBlock(height === 'latest' ? chain.store.tip().height : Number(height));
      if (!certified) {
        const tip = chain.store.tip();
        if (height.length < 64 && height !== 'latest' && notHeld(tip, Number(height)))
          throw new DatagrantError(
            'LEDGER_BLOCK_NOT_HELD',
            `this node started from a state snapshot at height ${tip.base}: it holds no block below it (ask another node)`,
            { base: tip.base },
          );
        throw new DatagrantError('LEDGER_BLOCK_NOT_FOUND', `no block ${height}`);
      }
      const txs = certified.block.txs as AnyTx[];
      return {
        hash: blockHash(certified.block.header),
        block: { header: certified.block.header, txs: txs.map((tx) => visible(tx, caller)) },
        cert: certified.cert,
        txHashes: txs.map((tx) => txHash(tx)),
        signerRoles: txs.map(roleOf),
      };
    },
  );

  app.get<{ Params: { hash: string } }>(
    '/v1/txs/:hash',
    {
      schema: {
        tags: ['chain'],
        summary:
          'A transaction: committed (with its block), pending, or rejected (with the code); the body of one about a subject only for her and the institution concerned (signed call)',
        params: { type: 'object', properties: { hash: HASH } },
        response: errors,
      },
    },
    async (request) => {
      const caller = await identify(request);
      const { hash } = request.params;
      const location = await chain.store.getTxLocation(hash);
      if (location) {
        const certified = await chain.store.getBlock(location.height);
        const tx = certified?.block.txs[location.index] as AnyTx | undefined;
        return {
          status: 'committed',
          hash,
          height: location.height,
          index: location.index,
          blockHash: certified ? blockHash(certified.block.header) : null,
          time: certified?.block.header.time ?? null,
          tx: tx ? visible(tx, caller) : null,
          ...(tx ? { signerRole: roleOf(tx) } : {}),
        };
      }
      const pending = mempool.get(hash);
      if (pending)
        return { status: 'pending', hash, tx: visible(pending, caller), signerRole: roleOf(pending) };
      const rejected = mempool.rejection(hash);
      if (rejected)
        return { status: 'rejected', hash, error: { code: rejected.code, message: rejected.message } };
      const base = chain.store.tip().base;
      throw new DatagrantError(
        'LEDGER_TX_NOT_FOUND',
        base === undefined
          ? 'no such transaction'
          : `no such transaction here (this node started from a state snapshot at height ${base}: transactions before it are not indexed here)`,
      );
    },
  );

  app.get<{ Params: { hash: string } }>(
    '/v1/txs/:hash/proof',
    {
      schema: {
        tags: ['chain'],
        summary:
          'Inclusion proof of a committed transaction (verifiable with the genesis alone); of one about a subject only for her and the institution concerned (signed call)',
        params: { type: 'object', properties: { hash: HASH } },
        response: errors,
      },
    },
    async (request) => {
      const caller = await identify(request);
      const location = await chain.store.getTxLocation(request.params.hash);
      const certified = location ? await chain.store.getBlock(location.height) : undefined;
      if (!location || !certified)
        throw new DatagrantError('LEDGER_TX_NOT_FOUND', 'no committed transaction with this hash');
      if (!mayRead(certified.block.txs[location.index] as AnyTx, caller))
        throw new DatagrantError(
          'API_FORBIDDEN',
          'this transaction concerns a subject: only she and the institution concerned read it (a signed call)',
        );
      return buildTxProof(certified, location.index);
    },
  );

  /**
   * A state entry with its proof against the latest certified header (`verifyStateValueProof`). The
   * entry and the header are taken at one height; `allowed` decides who may read an entry found.
   */
  const proveEntry = async (
    key: string,
    allowed: (value: StateValue) => boolean,
  ): Promise<StateValueProof> => {
    const state = chain.state;
    if (stateRootRule(chain.genesis.params) !== 'sparse-merkle' || !state.prove)
      throw new DatagrantError('LEDGER_STATE_UNPROVABLE', "this chain's headers commit to no provable state");
    // The state's own height: the store commits a block before the state applies it.
    const height = state.height ?? 0;
    const value = state.get(key) ?? null;
    const proven = height > 0 ? state.prove(key, height) : undefined;
    if (!proven)
      throw new DatagrantError('LEDGER_STATE_UNPROVABLE', 'no certified header to prove against yet');
    if (value !== null && !allowed(value))
      throw new DatagrantError(
        'API_FORBIDDEN',
        'this entry concerns a subject: only she and the institution concerned read it (a signed call)',
      );
    const certified = await chain.store.getBlock(height);
    if (!certified) throw new DatagrantError('LEDGER_STATE_UNPROVABLE', 'the certified header is not stored');
    return { key, value, proof: proven.proof, header: certified.block.header, cert: certified.cert };
  };
  /** Whether `caller` is the subject or the institution an entry names. */
  const party = (caller: Caller | undefined) => (value: StateValue) => {
    const v = value as { subject?: string; institution?: string };
    return (
      (caller?.kind === 'subject' && caller.id === v.subject) ||
      (caller?.kind === 'institution' && caller.id === v.institution)
    );
  };
  const proofResponse = {
    200: { type: 'object', additionalProperties: true },
    ...errors,
    409: ErrorBodySchema,
  };

  app.get<{ Params: { id: string } }>(
    '/v1/state/institutions/:id',
    {
      schema: {
        tags: ['state'],
        summary:
          "An institution's registered name, keys and status with a proof against the latest certified header (or a proof that it is absent)",
        params: { type: 'object', properties: { id: { type: 'string', pattern: ID_PATTERN } } },
        response: proofResponse,
      },
    },
    async (request) => proveEntry(stateKey.institution(request.params.id), () => true),
  );

  // Entries about a subject: only for her and the institution they name (signed calls).
  const partyEntries = [
    {
      path: '/v1/state/requests/:id',
      key: stateKey.request,
      summary:
        'A request as the ledger holds it, with a proof against the latest certified header; only for its subject and institution (signed call)',
    },
    {
      path: '/v1/state/grants/:id',
      key: stateKey.grant,
      summary:
        "A grant's status and remaining uses as the ledger holds them, with a proof against the latest certified header; only for its subject and institution (signed call)",
    },
  ];
  govRoutes(app, { chain, proveEntry });

  for (const entry of partyEntries) {
    app.get<{ Params: { id: string } }>(
      entry.path,
      {
        schema: {
          tags: ['state'],
          summary: entry.summary,
          params: { type: 'object', properties: { id: HASH } },
          response: { ...proofResponse, 401: ErrorBodySchema, 403: ErrorBodySchema },
        },
      },
      async (request) => {
        const caller = await identify(request);
        if (!caller)
          throw new DatagrantError('API_UNAUTHENTICATED', 'sign the call as the subject or the institution');
        return proveEntry(entry.key(request.params.id), party(caller));
      },
    );
  }

  app.post(
    '/v1/txs',
    {
      schema: {
        tags: ['chain'],
        summary: 'Submit a signed transaction',
        body: { type: 'object' },
        response: {
          202: { type: 'object', properties: { hash: HASH, status: { type: 'string' } } },
          ...errors,
          409: ErrorBodySchema,
        },
      },
    },
    async (request, reply) => {
      const hash = await modules.submit(request.body);
      return reply.status(202).send({ hash, status: 'pending' });
    },
  );

  app.post<{ Body: unknown[] }>(
    '/v1/txs/batch',
    {
      bodyLimit: MAX_BATCH_TXS * MAX_TX_BYTES + 64 * 1024,
      schema: {
        tags: ['chain'],
        summary: `Submit up to ${MAX_BATCH_TXS} signed transactions; each is admitted or refused on its own, in order`,
        body: { type: 'array', minItems: 1, maxItems: MAX_BATCH_TXS, items: { type: 'object' } },
        response: {
          200: {
            type: 'object',
            properties: {
              results: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    hash: HASH,
                    status: { type: 'string' },
                    error: ErrorBodySchema.properties.error,
                  },
                },
              },
            },
          },
          400: ErrorBodySchema,
        },
      },
    },
    async (request) => {
      const results = [];
      for (const tx of request.body) {
        try {
          results.push({ hash: await modules.submit(tx), status: 'pending' });
        } catch (err) {
          if (!(err instanceof DatagrantError)) throw err;
          results.push({ status: 'refused', error: { code: err.code, message: err.message } });
        }
      }
      return { results };
    },
  );
}
