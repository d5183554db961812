/**
 * Serves the built web pages (`web/dist`, from `npm run build:web`): the individual's portal at
 * /portal/, the explorer at /explorer/, their hashed assets at /assets/, and `/` redirecting to
 * the portal. Only these fixed paths and single asset file names are served, so no request can
 * reach outside the build folder. HTML goes out with a strict Content-Security-Policy (scripts,
 * styles and connections to this origin only, plus the registrar services configured for the portal; no eval, no inline script, no framing). When the
 * pages are not built, every page answers a coded 503 (API_WEB_NOT_BUILT).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** Options of the web routes. */
export interface WebRoutesOptions {
  /** Folder of the built pages; `web/dist` of this checkout by default. */
  root?: string;
  /**
   * Origins the pages may also connect to (the registrar services a person registers with in the
   * portal, node config `api.registrarOrigins`); only this node's origin by default.
   */
  connectOrigins?: readonly string[];
}

/** Where `npm run build:web` writes the pages. */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../web/dist/', import.meta.url));

/** The pages, each a folder of the build with an index.html. */
export const WEB_PAGES = ['portal', 'explorer'] as const;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

// Vite names assets `name-hash.ext`: one path segment, no leading dot.
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The pages' Content-Security-Policy, connecting to this origin and `connectOrigins` only. */
function contentSecurityPolicy(connectOrigins: readonly string[]): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    ["connect-src 'self'", ...connectOrigins].join(' '),
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Registers the web routes (hidden from the OpenAPI document). */
export async function webRoutes(app: FastifyInstance, options: WebRoutesOptions = {}): Promise<void> {
  const root = options.root ?? DEFAULT_WEB_ROOT;
  const csp = contentSecurityPolicy(options.connectOrigins ?? []);
  const hide = { schema: { hide: true } };

  const send = async (reply: FastifyReply, parts: string[], immutable: boolean): Promise<FastifyReply> => {
    const built = await fileSize(join(root, 'portal', 'index.html'));
    if (built === undefined) {
      return reply.status(503).send({
        error: { code: 'API_WEB_NOT_BUILT', message: 'the web pages are not built: run npm run build:web' },
      });
    }
    const path = join(root, ...parts);
    const size = await fileSize(path);
    if (size === undefined) return notFound(reply);
    const ext = extname(path);
    reply
      .type(CONTENT_TYPES[ext] ?? 'application/octet-stream')
      .header('content-length', size)
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (ext === '.html') {
      reply
        .header('content-security-policy', csp)
        .header('referrer-policy', 'no-referrer')
        .header('x-frame-options', 'DENY')
        .header('cross-origin-opener-policy', 'same-origin');
    }
    return reply.send(createReadStream(path));
  };

  app.get('/', hide, async (_request, reply) => reply.redirect('portal/', 302));
  for (const page of WEB_PAGES) {
    app.get(`/${page}`, hide, async (_request, reply) => reply.redirect(`${page}/`, 301));
    app.get(`/${page}/`, hide, async (_request, reply) => send(reply, [page, 'index.html'], false));
    app.get(`/${page}/index.html`, hide, async (_request, reply) => send(reply, [page, 'index.html'], false));
  }
  app.get<{ Params: { file: string } }>('/assets/:file', hide, async (request, reply) => {
    const { file } = request.params;
    if (!ASSET_NAME.test(file)) return notFound(reply);
    return send(reply, ['assets', file], true);
  });
}

/** Hands the request to the app's coded JSON 404. */
function notFound(reply: FastifyReply): FastifyReply {
  reply.callNotFound();
  return reply;
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}
