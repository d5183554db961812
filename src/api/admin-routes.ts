/**
 * Routes for the node's operator only: a call signed as `node:<name>` with the node's own key.
 * Anyone else is refused: an unsigned call with API_UNAUTHENTICATED, another signed caller with
 * API_FORBIDDEN. `GET /v1/admin/backup` streams a consistent backup of the running node (see
 * node/backup and docs/formats.md), `GET /v1/admin/snapshot` a state snapshot at its committed tip
 * (node/snapshot), each one at a time (API_BUSY otherwise).
 */

import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DatagrantError } from '../common/errors.js';
import { ErrorBodySchema } from './errors.js';
import type { Caller } from './http-auth.js';

/** A file the node streams to its operator: the height and block it was read at, and its bytes. */
export interface OperatorStream {
  open(): Promise<{ header: { height: number; blockHash: string }; stream: Readable }>;
}

/** What the admin routes need. */
export interface AdminRouteModules {
  /** The verified caller of a signed call (a bad signature throws); undefined when unsigned. */
  identify: (request: FastifyRequest) => Promise<Caller | undefined>;
  /** Opens a backup stream (API_BUSY while one is being taken). */
  backup: OperatorStream;
  /** Opens a state snapshot stream (API_BUSY while one is being taken, SNAPSHOT_UNAVAILABLE). */
  snapshot: OperatorStream;
}

/** Registers the admin routes. */
export async function adminRoutes(app: FastifyInstance, modules: AdminRouteModules): Promise<void> {
  /** Throws unless the call is signed by this node's own key. */
  const operator = async (request: FastifyRequest): Promise<void> => {
    const who = await modules.identify(request);
    if (!who) throw new DatagrantError('API_UNAUTHENTICATED', "sign the call with the node's own key");
    if (who.kind !== 'node')
      throw new DatagrantError('API_FORBIDDEN', "only the node's operator (its own key) may call this");
  };

  const streamed = (name: 'backup' | 'snapshot', summary: string, source: OperatorStream) =>
    app.get(
      `/v1/admin/${name}`,
      {
        schema: {
          tags: ['admin'],
          summary,
          querystring: { type: 'object', properties: {}, additionalProperties: false },
          response: {
            401: ErrorBodySchema,
            403: ErrorBodySchema,
            409: ErrorBodySchema,
            503: ErrorBodySchema,
          },
        },
      },
      async (request, reply) => {
        await operator(request);
        const { header, stream } = await source.open();
        // A client that goes away ends the stream (it is destroyed with the response).
        reply.raw.once('close', () => stream.destroy());
        return reply
          .header('content-type', 'application/octet-stream')
          .header(`x-datagrant-${name}-height`, String(header.height))
          .header(`x-datagrant-${name}-block`, header.blockHash)
          .send(stream);
      },
    );

  streamed(
    'backup',
    "Stream a consistent backup of this node (gzip; docs/formats.md). Signed call as node:<name> with the node's own key; one at a time.",
    modules.backup,
  );
  streamed(
    'snapshot',
    "Stream a state snapshot at this node's committed tip: the certified block and every state entry (gzip; docs/formats.md). Signed call as node:<name> with the node's own key; one at a time.",
    modules.snapshot,
  );
}
