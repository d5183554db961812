/**
 * The node's HTTP API as the pages use it: JSON in and out, every failure an `ApiError` with the
 * node's error code. Paths are relative to the page's parent folder, so the pages work wherever
 * the node (or a proxy in front of it) mounts them.
 */
import { signCall } from '../../src/common/http-signature.js';
import type { Tx } from '../../src/ledger/tx.js';

/** A failed call: the node's error code and message (or a PORTAL_ code for transport failures). */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Base URL of the node API: the folder above the page (`/portal/` → `/`). */
export const apiBase = new URL('../', window.location.href);

/** Absolute URL of an API path such as `v1/status`. */
export function apiUrl(path: string): string {
  return new URL(path, apiBase).toString();
}

async function call<T>(
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(apiUrl(path), {
      method,
      headers: {
        ...(body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json' }),
        ...extraHeaders,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (err) {
    throw new ApiError('PORTAL_NODE_UNREACHABLE', `cannot reach the node: ${(err as Error).message}`, 0);
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const code = typeof error?.code === 'string' ? error.code : `API_HTTP_${response.status}`;
    const message = typeof error?.message === 'string' ? error.message : response.statusText;
    throw new ApiError(code, message, response.status);
  }
  if (json === undefined) throw new ApiError('PORTAL_BAD_RESPONSE', 'the node did not answer with JSON', 0);
  return json as T;
}

/** GET a JSON resource. */
export function getJson<T>(path: string): Promise<T> {
  return call<T>('GET', path);
}

let node: Promise<{ self: string; chain: string }> | undefined;

/**
 * GET a resource with a read signed in this page (common/http-signature): as `caller` (e.g.
 * `subject:alice-01`), addressed to this node and chain, with a fresh nonce. The secret key never
 * leaves the page; the node answers only the party the data is about.
 */
export async function signedGetJson<T>(path: string, caller: string, secretKey: Uint8Array): Promise<T> {
  node ??= getJson<{ self: string; chain: string }>('v1/status').catch((err: unknown) => {
    node = undefined;
    throw err;
  });
  const { self, chain } = await node;
  const url = new URL(apiUrl(path));
  const headers = signCall(
    { method: 'GET', path: `${url.pathname}${url.search}`, body: '', caller, audience: self, chain },
    secretKey,
  );
  return call<T>('GET', path, undefined, headers);
}

/**
 * A transaction as an anonymous reader sees one about a subject: kind, signer and expiry, but no
 * body (and no proof); only the subject and the institution concerned read those.
 */
export interface RedactedTx {
  v: 1;
  chain: string;
  kind: Tx['kind'];
  signer: string;
  expires: number;
  redacted: true;
}

/** What GET /v1/txs/:hash answers. */
export type TxStatus =
  | {
      status: 'committed';
      hash: string;
      height: number;
      index: number;
      blockHash: string;
      time: number;
      tx: Tx | RedactedTx;
      signerRole?: string;
    }
  | { status: 'pending'; hash: string; tx: Tx | RedactedTx; signerRole?: string }
  | { status: 'rejected'; hash: string; error: { code: string; message: string } };

/** Submits a signed transaction; resolves with its hash once the mempool admitted it. */
export async function submitTx(tx: Tx): Promise<string> {
  const r = await call<{ hash: string }>('POST', 'v1/txs', tx);
  return r.hash;
}

/**
 * Polls until the transaction is committed (resolves with its height) or rejected (throws the
 * ledger's code). PORTAL_TX_TIMEOUT when it is neither after `timeoutMs`.
 */
export async function waitForCommit(hash: string, timeoutMs = 30_000): Promise<{ height: number }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const s = await getJson<TxStatus>(`v1/txs/${hash}`);
      if (s.status === 'committed') return { height: s.height };
      if (s.status === 'rejected') throw new ApiError(s.error.code, s.error.message, 409);
    } catch (err) {
      // Right after submission a node behind a load balancer may not know the tx yet.
      if (!(err instanceof ApiError && err.code === 'LEDGER_TX_NOT_FOUND')) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new ApiError('PORTAL_TX_TIMEOUT', 'the transaction was not committed in time; check again later', 0);
}

/** Subscribes to the node's block events; calls `onState` with true/false as the stream opens or drops. */
export function onBlocks(
  onBlock: (block: { height: number; hash: string; time: number; txCount: number }) => void,
  onState: (live: boolean) => void,
): EventSource {
  const source = new EventSource(apiUrl('v1/events'));
  source.addEventListener('open', () => onState(true));
  source.addEventListener('error', () => onState(false));
  source.addEventListener('block', (event) => {
    try {
      onBlock(JSON.parse((event as MessageEvent<string>).data));
    } catch {
      // A malformed event is ignored; the next one or a refresh brings the page up to date.
    }
  });
  return source;
}
