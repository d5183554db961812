/**
 * Platform HTTP routes: institutions hand over their own signed `request.open` to relay, and
 * fetch the sealed bundle of a granted request (a signed call, against their committed usage);
 * on an institution's own gateway they may also have it sign and assemble for them. A request's
 * state (JSON or server-sent events) is served only to its institution and its subject, a
 * subject's pending requests and audit trail only to her: every read is a signed call.
 */
import type {} from '@fastify/swagger';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ErrorBodySchema } from '../api/errors.js';
import { openEventStream } from '../api/event-stream.js';
import type { Caller, HttpAuthVerifier } from '../api/http-auth.js';
import { DatagrantError } from '../common/errors.js';
import {
  BODY_SCHEMAS,
  DOCUMENT_FORMATS,
  ENVELOPE_SCHEMA,
  HASH_PATTERN,
  SUBJECT_ID_PATTERN,
  stateKey,
} from '../ledger/index.js';
import { MAX_AUDIT_PAGE, type Platform, type RequestInput } from './platform.js';

const HASH = { type: 'string', pattern: HASH_PATTERN } as const;
const SUBJECT_ID = { type: 'string', pattern: SUBJECT_ID_PATTERN } as const;
const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 404: ErrorBodySchema };

const { consentBy: _c, ...requestProps } = BODY_SCHEMAS['request.open'].properties;
/** Body of POST /v1/requests: the request.open body, consentBy optional. */
const RequestBodySchema = {
  type: 'object',
  properties: { ...requestProps, consentBy: { type: 'integer', minimum: 0 } },
  required: ['subject', 'types', 'purpose', 'format', 'fields'],
  additionalProperties: false,
};
/** Body of POST /v1/requests carrying the institution's own signed `request.open`. */
const RelayBodySchema = {
  type: 'object',
  properties: { tx: ENVELOPE_SCHEMA },
  required: ['tx'],
  additionalProperties: false,
};

/** Registers the platform routes. */
export async function platformRoutes(
  app: FastifyInstance,
  modules: { platform: Platform; auth: HttpAuthVerifier },
): Promise<void> {
  const { platform, auth } = modules;
  const caller = (request: FastifyRequest): Promise<Caller> =>
    auth.verify(request.method, request.url, request.rawBody ?? '', request.headers);
  /** The institution a signed call comes from. */
  const authenticate = async (request: FastifyRequest): Promise<string> => {
    const who = await caller(request);
    if (who.kind !== 'institution')
      throw new DatagrantError('API_FORBIDDEN', 'this route is for institutions');
    return who.id;
  };
  /** The request `id`, if the signed caller is its institution or its subject. */
  const ownView = async (request: FastifyRequest, id: string) => {
    const who = await caller(request);
    const view = platform.view(id);
    const mine =
      (who.kind === 'institution' && who.id === view.institution) ||
      (who.kind === 'subject' && who.id === view.subject);
    if (!mine)
      throw new DatagrantError('PLATFORM_NOT_YOURS', 'only its institution and its subject read a request');
    return view;
  };
  /** Checks the signed caller is subject `id`. */
  const asSubject = async (request: FastifyRequest, id: string): Promise<void> => {
    const who = await caller(request);
    if (who.kind !== 'subject' || who.id !== id)
      throw new DatagrantError('PLATFORM_NOT_YOURS', 'only the subject reads her requests and audit trail');
  };

  app.post<{ Body: RequestInput | { tx: unknown } }>(
    '/v1/requests',
    {
      schema: {
        tags: ['institutions'],
        summary:
          "Open a data request about a subject: relays the institution's own signed request.open ({tx}) and multicasts it to extractors. On the institution's own gateway, a signed call with the request body has the gateway sign it.",
        body: { anyOf: [RelayBodySchema, RequestBodySchema] },
        response: { ...errors, 201: { type: 'object', additionalProperties: true } },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const opened =
        'tx' in body
          ? await platform.relayRequest(body.tx)
          : await platform.openRequest(await authenticate(request), body);
      // Whoever relays a signed request learns only that it committed; its state is a signed read.
      return reply
        .status(201)
        .send({ ...opened, id: opened.request, status: platform.view(opened.request).status });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/requests/:id',
    {
      schema: {
        tags: ['institutions'],
        summary:
          'State of a request: waiting-for-data, waiting-for-consent, granted, denied, expired, revoked, delivered, failed (signed call by its institution or subject)',
        params: { type: 'object', properties: { id: HASH } },
        response: errors,
      },
    },
    async (request) => ownView(request, request.params.id),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/requests/:id/events',
    {
      schema: {
        tags: ['institutions'],
        summary:
          'Server-sent events: the request view each time a committed tx changes it (signed call by its institution or subject)',
        params: { type: 'object', properties: { id: HASH } },
        response: errors,
      },
    },
    async (request, reply) => {
      const id = request.params.id;
      await ownView(request, id);
      openEventStream(request, reply, (send) => {
        send('state', platform.view(id));
        const listener = (changed: string, kind: string) => {
          if (changed === id) send(kind, platform.view(id));
        };
        platform.on('request', listener);
        return () => platform.off('request', listener);
      });
    },
  );

  app.get<{ Params: { id: string }; Querystring: { usage: string } }>(
    '/v1/requests/:id/bundle',
    {
      schema: {
        tags: ['institutions'],
        summary:
          'The sealed bundle of a granted request (ciphertexts, data keys wrapped to the grantee, inclusion proofs), released to the grantee (signed call) against its own committed usage; no plaintext',
        params: { type: 'object', properties: { id: HASH } },
        querystring: {
          type: 'object',
          properties: { usage: HASH },
          required: ['usage'],
          additionalProperties: false,
        },
        response: { ...errors, 410: ErrorBodySchema, 502: ErrorBodySchema },
      },
    },
    async (request) => {
      const institution = await authenticate(request);
      return platform.bundle(institution, request.params.id, request.query.usage);
    },
  );

  app.get<{ Params: { id: string }; Querystring: { format?: 'json' | 'csv' | 'xml' } }>(
    '/v1/requests/:id/document',
    {
      schema: {
        tags: ['institutions'],
        summary:
          "On the institution's own gateway only (it holds its key): records its usage, opens the bundle and assembles the document (signed call). Any other node answers PLATFORM_INSTITUTION_NOT_SERVED",
        params: { type: 'object', properties: { id: HASH } },
        querystring: {
          type: 'object',
          properties: { format: { type: 'string', enum: [...DOCUMENT_FORMATS] } },
          additionalProperties: false,
        },
        response: { ...errors, 410: ErrorBodySchema, 502: ErrorBodySchema },
      },
    },
    async (request, reply) => {
      const institution = await authenticate(request);
      const doc = await platform.document(institution, request.params.id, request.query.format);
      return reply
        .header('content-type', doc.contentType)
        .header('x-datagrant-usage-tx', doc.usageTx)
        .header('x-datagrant-document-digest', doc.digest)
        .header('x-datagrant-grant', doc.grant)
        .header('x-datagrant-retain-until', new Date(doc.retainUntil).toISOString())
        .send(doc.body);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/subjects/:id',
    {
      schema: {
        tags: ['subjects'],
        summary: 'A registered subject: its public keys and registrar',
        params: { type: 'object', properties: { id: SUBJECT_ID } },
        response: errors,
      },
    },
    async (request) => {
      const subject = platform.stateReader().get(stateKey.subject(request.params.id));
      if (!subject) throw new DatagrantError('PLATFORM_SUBJECT_NOT_FOUND', 'no such subject');
      return subject;
    },
  );

  app.get<{ Params: { id: string }; Querystring: { all?: boolean } }>(
    '/v1/subjects/:id/requests',
    {
      schema: {
        tags: ['subjects'],
        summary:
          "A subject's requests awaiting a decision (all of them with ?all=true), newest first (signed call by the subject)",
        params: { type: 'object', properties: { id: SUBJECT_ID } },
        querystring: {
          type: 'object',
          properties: { all: { type: 'boolean' } },
          additionalProperties: false,
        },
        response: errors,
      },
    },
    async (request) => {
      await asSubject(request, request.params.id);
      return { requests: await platform.subjectRequests(request.params.id, request.query.all !== true) };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit?: number; after?: number } }>(
    '/v1/subjects/:id/audit',
    {
      schema: {
        tags: ['subjects'],
        summary:
          'Every request, record, grant, denial, usage and erasure about a subject, with inclusion proofs (signed call by the subject), oldest first, in pages: ask `after` the `next` height for the following one',
        params: { type: 'object', properties: { id: SUBJECT_ID } },
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: MAX_AUDIT_PAGE },
            after: { type: 'integer', minimum: 0 },
          },
          additionalProperties: false,
        },
        response: errors,
      },
    },
    async (request) => {
      await asSubject(request, request.params.id);
      const page = await platform.audit(request.params.id, request.query);
      return { subject: request.params.id, ...page };
    },
  );
}
