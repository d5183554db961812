/**
 * The HTTP API app, built in one function (listen is called by the node): JSON schemas on every
 * route, a body size limit, coded errors, and OpenAPI at /openapi.json.
 */
import swagger from '@fastify/swagger';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import { canonicalize } from '../common/canonical.js';
import { DatagrantError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { installErrorHandling } from './errors.js';
import { DEFAULT_MAX_EVENT_STREAMS, limitEventStreams } from './event-stream.js';
import { installRateLimit, type RateLimitOptions } from './rate-limit.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request body exactly as received (JSON bodies only). */
    rawBody: string;
  }
}

/** API options. */
export interface ApiOptions {
  /** Largest accepted request body in bytes. */
  bodyLimit: number;
  logger: Logger;
  /** Request rate limits (defaults: `DEFAULT_RATE_LIMIT`); `false` turns them off. */
  rateLimit?: Partial<RateLimitOptions> | false;
  /** Most server-sent event streams open at once (default `DEFAULT_MAX_EVENT_STREAMS`). */
  maxEventStreams?: number;
}

/** Default largest request body. */
export const DEFAULT_BODY_LIMIT = 64 * 1024;

/** Creates the Fastify app with error handling and OpenAPI; routes are registered by the caller. */
export async function createApi(options: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimit,
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    return503OnClosing: true,
    requestTimeout: 30_000,
    // Errors raised before routing (a malformed percent-encoding, an over-long path parameter)
    // get the same coded body as every other refusal.
    frameworkErrors: (error, _request, reply) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      (reply as unknown as FastifyReply).status(tooLong ? 414 : 400).send({
        error: {
          code: tooLong ? 'API_URI_TOO_LONG' : 'API_BAD_URL',
          message: tooLong ? 'a path parameter is too long' : 'the URL is not valid',
        },
      });
    },
  });
  installErrorHandling(app);
  if (options.rateLimit !== false) installRateLimit(app, options.rateLimit ?? {});
  limitEventStreams(app, options.maxEventStreams ?? DEFAULT_MAX_EVENT_STREAMS);
  // Only JSON bodies are accepted (anything else is a coded 415); the raw text is kept because
  // signed institution requests cover the exact bytes of the body.
  app.removeContentTypeParser(['text/plain', 'application/json']);
  app.decorateRequest('rawBody', '');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    request.rawBody = body as string;
    if ((body as string).length === 0) return done(null, undefined);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body as string);
    } catch {
      return done(new DatagrantError('API_BAD_JSON', 'body is not valid JSON'), undefined);
    }
    // Everything the node signs, hashes or stores is canonical JSON: a value it cannot encode (a
    // lone surrogate, a float or an unsafe integer, nesting past the limit) is refused here, with
    // a code, on every route, instead of failing later inside a handler.
    try {
      canonicalize(parsed);
    } catch (err) {
      return done(
        new DatagrantError('API_UNENCODABLE', `body ${(err as Error).message}`, {
          path: (err as DatagrantError).meta?.path,
        }),
        undefined,
      );
    }
    done(null, parsed);
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'datagrant node API',
        description:
          'Chain queries, transaction submission, and the platform API for institutions and subjects.',
        version: '1',
      },
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
