/**
 * Governance routes: the council, its proposals (newest first, with their status at the tip's
 * block time) and a proposal's entry with its proof. Governance is public: who proposed and
 * approved what concerns no subject.
 */
import type { FastifyInstance } from 'fastify';
import { DatagrantError } from '../common/errors.js';
import type { ChainView } from '../ledger/chain-view.js';
import {
  gatewaysInForce,
  governedGateways,
  governedSources,
  govKey,
  type ProposalState,
  proposalStatus,
  sourcesInForce,
} from '../ledger/governance.js';
import { HASH_PATTERN, ID_PATTERN } from '../ledger/patterns.js';
import type { StateValueProof } from '../ledger/proof.js';
import type { StateValue } from '../ledger/state.js';
import { VALIDATOR_SET_DELAY, VALIDATOR_SETS_KEY, validatorsAt } from '../ledger/validator-set.js';
import { ErrorBodySchema } from './errors.js';

/** A proposal as the routes show it: its status at the tip, derived from its deadline. */
export type ProposalView = Omit<ProposalState, 'status'> & { status: ReturnType<typeof proposalStatus> };

/** Most proposals in one page of `GET /v1/gov/proposals`. */
export const MAX_PROPOSALS_PAGE = 200;

const HASH = { type: 'string', pattern: HASH_PATTERN } as const;
const errors = { 400: ErrorBodySchema, 404: ErrorBodySchema };

/** Registers the governance routes; `proveEntry` is the state routes' prover. */
export function govRoutes(
  app: FastifyInstance,
  modules: {
    chain: ChainView;
    proveEntry: (key: string, allowed: (value: StateValue) => boolean) => Promise<StateValueProof>;
  },
): void {
  const { chain } = modules;
  const tipTime = () => chain.store.tip().time;
  const view = (p: ProposalState): ProposalView => ({ ...p, status: proposalStatus(p, tipTime()) });

  app.get(
    '/v1/gov/council',
    {
      schema: {
        tags: ['governance'],
        summary: "The council's member keys and how many approve a change (from genesis)",
        response: errors,
      },
    },
    async () => {
      const council = chain.genesis.council;
      if (!council) throw new DatagrantError('LEDGER_NO_COUNCIL', 'this chain has no governance council');
      return { members: council.members, threshold: council.threshold };
    },
  );

  app.get<{ Querystring: { before?: number; limit?: number; status?: string } }>(
    '/v1/gov/proposals',
    {
      schema: {
        tags: ['governance'],
        summary: 'Proposals, newest first, with their status at the tip (open, expired, enacted, failed)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            before: { type: 'integer', minimum: 1 },
            limit: { type: 'integer', minimum: 1, maximum: MAX_PROPOSALS_PAGE },
            status: { type: 'string', enum: ['open', 'expired', 'enacted', 'failed'] },
          },
        },
        response: errors,
      },
    },
    async (request) => {
      const count = (chain.state.get(govKey.proposalCount) as number | undefined) ?? 0;
      const limit = request.query.limit ?? 50;
      const proposals: ProposalView[] = [];
      let n = Math.min(count, request.query.before ?? count) - 1;
      // A status filter scans at most a few pages' worth, so a page never costs the whole history.
      for (
        let scanned = 0;
        n >= 0 && proposals.length < limit && scanned < 4 * MAX_PROPOSALS_PAGE;
        n--, scanned++
      ) {
        const id = chain.state.get(govKey.proposalAt(n)) as string | undefined;
        const p = id ? (chain.state.get(govKey.proposal(id)) as ProposalState | undefined) : undefined;
        if (!p) continue;
        const v = view(p);
        if (request.query.status === undefined || v.status === request.query.status) proposals.push(v);
      }
      // `next`: pass as `before` for the following (older) page.
      return { count, proposals, ...(n >= 0 ? { next: n + 1 } : {}) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/gov/proposals/:id',
    {
      schema: {
        tags: ['governance'],
        summary: 'One proposal: its change, approvals, deadline and status',
        params: { type: 'object', properties: { id: HASH } },
        response: errors,
      },
    },
    async (request) => {
      const p = chain.state.get(govKey.proposal(request.params.id)) as ProposalState | undefined;
      if (!p) throw new DatagrantError('LEDGER_PROPOSAL_NOT_FOUND', 'no such proposal');
      return view(p);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/state/proposals/:id',
    {
      schema: {
        tags: ['state'],
        summary:
          'A proposal as the ledger holds it, with a proof against the latest certified header (or a proof that it is absent)',
        params: { type: 'object', properties: { id: HASH } },
        response: { 200: { type: 'object', additionalProperties: true }, ...errors, 409: ErrorBodySchema },
      },
    },
    async (request) => modules.proveEntry(govKey.proposal(request.params.id), () => true),
  );

  app.get<{ Querystring: { height?: number } }>(
    '/v1/gov/validator-sets',
    {
      schema: {
        tags: ['governance'],
        summary:
          "The validator set over time: genesis's, then each set a council change scheduled with the first height it certifies; with `height`, the set in force there",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { height: { type: 'integer', minimum: 1 } },
        },
        response: errors,
      },
    },
    async (request) => {
      const epochs = chain.validatorEpochs();
      const at = request.query.height;
      return {
        height: chain.height,
        delay: VALIDATOR_SET_DELAY,
        genesis: chain.genesis.validators,
        epochs,
        ...(at !== undefined
          ? {
              at: {
                height: at,
                validators: validatorsAt(chain.genesis, epochs, at),
                // A set is known up to the committed height plus the delay.
                final: at <= chain.height + VALIDATOR_SET_DELAY,
              },
            }
          : {}),
      };
    },
  );

  app.get(
    '/v1/state/validator-sets',
    {
      schema: {
        tags: ['state'],
        summary:
          'The scheduled validator sets as the ledger holds them, with a proof against the latest certified header (absent while the set never changed)',
        response: { 200: { type: 'object', additionalProperties: true }, ...errors, 409: ErrorBodySchema },
      },
    },
    async () => modules.proveEntry(VALIDATOR_SETS_KEY, () => true),
  );

  app.get(
    '/v1/gov/gateways',
    {
      schema: {
        tags: ['governance'],
        summary:
          "The gateways the network admits (genesis' and those the council added, less those it retired), and every entry the council wrote",
        response: errors,
      },
    },
    async () => ({
      height: chain.height,
      genesis: chain.genesis.gateways ?? [],
      governed: governedGateways(chain.state),
      inForce: gatewaysInForce(chain.state, chain.genesis.gateways ?? []),
    }),
  );

  app.get(
    '/v1/gov/sources',
    {
      schema: {
        tags: ['governance'],
        summary:
          "The data sources registered (genesis' and those the council added or changed, less those it retired), and every entry the council wrote",
        response: errors,
      },
    },
    async () => ({
      height: chain.height,
      genesis: chain.genesis.sources ?? [],
      governed: governedSources(chain.state),
      inForce: sourcesInForce(chain.state, chain.genesis.sources ?? []),
    }),
  );

  const stateProof = { 200: { type: 'object', additionalProperties: true }, ...errors, 409: ErrorBodySchema };
  app.get(
    '/v1/state/gateways',
    {
      schema: {
        tags: ['state'],
        summary:
          'The keys of the gateways the council added or retired, with a proof against the latest certified header (absent while it changed none)',
        response: stateProof,
      },
    },
    async () => modules.proveEntry(govKey.gatewayKeys, () => true),
  );

  app.get<{ Params: { key: string } }>(
    '/v1/state/gateways/:key',
    {
      schema: {
        tags: ['state'],
        summary:
          "A gateway's entry as the council wrote it, with a proof against the latest certified header (or a proof that it is absent: genesis' word stands)",
        params: { type: 'object', properties: { key: HASH } },
        response: stateProof,
      },
    },
    async (request) => modules.proveEntry(govKey.gateway(request.params.key), () => true),
  );

  app.get(
    '/v1/state/sources',
    {
      schema: {
        tags: ['state'],
        summary:
          'The ids of the data sources the council added, changed or retired, with a proof against the latest certified header (absent while it changed none)',
        response: stateProof,
      },
    },
    async () => modules.proveEntry(govKey.sourceIds, () => true),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/state/sources/:id',
    {
      schema: {
        tags: ['state'],
        summary:
          "A data source's entry as the council wrote it, with a proof against the latest certified header (or a proof that it is absent: genesis' word stands)",
        params: { type: 'object', properties: { id: { type: 'string', pattern: ID_PATTERN } } },
        response: stateProof,
      },
    },
    async (request) => modules.proveEntry(govKey.source(request.params.id), () => true),
  );
}
