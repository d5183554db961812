/**
 * A lying node for tests of the software that must not believe one: an HTTP server in front of a
 * real node's API that passes every call through (signed headers too) and lets `forge` rewrite
 * the JSON of successful answers.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP server in front of `api` that passes every call through (signed headers too) and lets
 * `forge` rewrite JSON answers: a node that lies about what it serves.
 */
export async function lyingNode(
  api: string,
  forge: (path: string, body: Record<string, unknown>) => void,
): Promise<{ url: string; close: () => Promise<void> }> {
  // Upstream calls in flight (an event stream never ends by itself): aborted with their caller.
  const upstream = new Set<AbortController>();
  const server = createServer((req, res) => {
    const controller = new AbortController();
    upstream.add(controller);
    res.on('close', () => {
      controller.abort();
      upstream.delete(controller);
    });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      pass(req.method ?? 'GET', req.url ?? '/', req.headers, chunks, controller.signal).then(
        ({ status, type, text }) => {
          if (res.destroyed) return;
          res.writeHead(status, { 'content-type': type });
          res.end(text);
        },
        (err: unknown) => {
          if (res.destroyed) return;
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'TEST_LIAR_UPSTREAM', message: String(err) } }));
        },
      );
    });
  });
  const pass = async (
    method: string,
    url: string,
    incoming: IncomingHttpHeaders,
    chunks: Buffer[],
    signal: AbortSignal,
  ) => {
    const headers = Object.fromEntries(
      Object.entries(incoming).filter(([k]) => k !== 'host' && k !== 'content-length' && k !== 'connection'),
    ) as Record<string, string>;
    const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
    const r = await fetch(`${api}${url}`, { method, headers, signal, ...(body ? { body } : {}) });
    const type = r.headers.get('content-type') ?? 'application/json';
    let text: string | Buffer = Buffer.from(await r.arrayBuffer());
    if (type.includes('json') && r.ok) {
      const json = JSON.parse(text.toString('utf8')) as Record<string, unknown>;
      forge(url.split('?')[0]!, json);
      text = JSON.stringify(json);
    }
    return { status: r.status, type, text };
  };
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((done) => {
        // Streams (server-sent events) through it would hold a plain close open.
        for (const c of upstream) c.abort();
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
