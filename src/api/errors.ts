/** Maps every failure of an HTTP request to `{error: {code, message}}` with the right status. */
import type { FastifyError, FastifyInstance } from 'fastify';
import { DatagrantError, httpStatusOf } from '../common/errors.js';

/** Body of every error response. */
export const ErrorBodySchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
} as const;

const FASTIFY_CODES: Record<string, { code: string; status: number }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'API_BODY_TOO_LARGE', status: 413 },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'API_UNSUPPORTED_MEDIA_TYPE', status: 415 },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'API_BAD_JSON', status: 400 },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'API_BAD_JSON', status: 400 },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'API_BAD_REQUEST', status: 400 },
  FST_ERR_VALIDATION: { code: 'API_BAD_REQUEST', status: 400 },
};

/** Installs the error and not-found handlers on an app. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | DatagrantError | Error, request, reply) => {
    if (err instanceof DatagrantError) {
      const status = httpStatusOf(err.code);
      if (status >= 500) request.log.error({ err }, 'request failed');
      return reply.status(status).send({ error: { code: err.code, message: err.message } });
    }
    const fastifyCode = (err as FastifyError).code;
    const known = fastifyCode ? FASTIFY_CODES[fastifyCode] : undefined;
    if (known) return reply.status(known.status).send({ error: { code: known.code, message: err.message } });
    if ((err as SyntaxError).name === 'SyntaxError') {
      return reply.status(400).send({ error: { code: 'API_BAD_JSON', message: 'body is not valid JSON' } });
    }
    const status = (err as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return reply.status(status).send({ error: { code: 'API_BAD_REQUEST', message: err.message } });
    }
    request.log.error({ err }, 'unexpected error');
    return reply.status(500).send({ error: { code: 'API_INTERNAL', message: 'internal error' } });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({
      error: { code: 'API_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` },
    });
  });
}
