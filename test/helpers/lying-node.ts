/**
 * A lying node for tests of the software that must not believe one: an HTTP server in front of a
 * real node's API that passes every call through (signed headers too) and lets `forge` rewrite
 * the JSON of successful answers; `forgeFacts` makes one forger that lies about an institution's
 * key, a request's content and a grant's status at once, in its views and in its proofs alike.
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
): Promise<{ url: string; calls: string[]; close: () => Promise<void> }> {
  /** `METHOD path` of every call passed through, in order. */
  const calls: string[] = [];
  // Upstream calls in flight (an event stream never ends by itself): aborted with their caller.
  const upstream = new Set<AbortController>();
  const server = createServer((req, res) => {
    const controller = new AbortController();
    upstream.add(controller);
    res.on('close', () => {
      controller.abort();
      upstream.delete(controller);
    });
    calls.push(`${req.method ?? 'GET'} ${(req.url ?? '/').split('?')[0]}`);
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
    calls,
    close: () =>
      new Promise((done) => {
        // Streams (server-sent events) through it would hold a plain close open.
        for (const c of upstream) c.abort();
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/** What `forgeFacts` lies about. */
export interface Forgeries {
  /** Institutions whose encryption key (what a subject wraps her data key to) is replaced. */
  institutionKey?: readonly string[];
  /** Requests whose purpose is rewritten: what the subject would consent to. */
  requestContent?: readonly string[];
  /** Requests whose grant is shown live: not revoked, not paused, no use spent. */
  grantStatus?: readonly string[];
}

/** The key a lying node gives for an institution. */
export const FORGED_KEY = 'ab'.repeat(32);
/** The purpose a lying node gives a request. */
export const FORGED_PURPOSE = 'a small loan';

type Json = Record<string, unknown>;

/**
 * A `forge` for `lyingNode` that lies about the facts of `f` wherever they appear: in the views
 * (`/v1/requests/:id`, a subject's or institution's request list, `/v1/institutions/:id`) and in
 * the state proofs (`/v1/state/...`, the value rewritten and the proof kept), so that nothing but
 * the proof itself gives it away.
 */
export function forgeFacts(f: Forgeries): (path: string, body: Json) => void {
  const inst = new Set(f.institutionKey ?? []);
  const content = new Set(f.requestContent ?? []);
  const status = new Set(f.grantStatus ?? []);
  const liveGrant = (g: Json) => Object.assign(g, { revoked: false, paused: false, used: 0 });
  const forgeView = (view: Json) => {
    const id = view.id as string;
    if (content.has(id)) view.purpose = FORGED_PURPOSE;
    if (status.has(id) && view.grant) {
      liveGrant(view.grant as Json);
      view.status = 'granted';
    }
  };
  return (path, body) => {
    const [, v1, area, id, sub] = path.split('/') as (string | undefined)[];
    if (v1 !== 'v1') return;
    if (area === 'state') {
      const value = body.value as Json | null;
      if (!value) return;
      if (id === 'institutions' && inst.has(value.id as string)) value.encKey = FORGED_KEY;
      if (id === 'requests' && content.has(value.id as string)) value.purpose = FORGED_PURPOSE;
      if (id === 'grants' && status.has(value.request as string)) liveGrant(value);
      return;
    }
    if (area === 'institutions' && id !== undefined && sub === undefined && inst.has(id))
      body.encKey = FORGED_KEY;
    if (area === 'requests' && sub === undefined) forgeView(body);
    if (Array.isArray(body.requests)) for (const view of body.requests as Json[]) forgeView(view);
  };
}
