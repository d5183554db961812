/** A small client of the node's HTTP API, used by the CLI and scripts. */
import { DatagrantError } from '../common/errors.js';

/** Error body returned by the API. */
interface ApiErrorBody {
  error?: { code?: string; message?: string };
}

/** Calls the API; resolves with the JSON body or throws a DatagrantError with the API's code. */
export async function apiCall<T>(
  base: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(new URL(path, base), {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new DatagrantError('CLI_UNREACHABLE', `cannot reach ${base}: ${(err as Error).message}`);
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const e = (json as ApiErrorBody | undefined)?.error;
    throw new DatagrantError(e?.code ?? 'CLI_HTTP_ERROR', e?.message ?? `HTTP ${response.status}`, {
      status: response.status,
    });
  }
  return json as T;
}

/** Polls until a submitted transaction is committed (or rejected, or the timeout passes). */
export async function waitForTx(
  base: string,
  hash: string,
  timeoutMs = 30_000,
): Promise<{ status: string; height?: number; error?: { code: string; message: string } }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await apiCall<{ status: string; height?: number; error?: { code: string; message: string } }>(
        base,
        'GET',
        `/v1/txs/${hash}`,
      );
      if (r.status !== 'pending') return r;
    } catch (err) {
      if (!(err instanceof DatagrantError && err.code === 'LEDGER_TX_NOT_FOUND')) throw err;
    }
    if (Date.now() > deadline)
      throw new DatagrantError('CLI_TIMEOUT', `tx ${hash} not committed within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A signed read or call as `caller` (e.g. `subject:alice-01`): addressed to the node at `base`
 * (its key from /v1/status) on its chain, signed with `secretKey`.
 */
export async function signedApiCall<T>(
  base: string,
  method: 'GET' | 'POST',
  path: string,
  caller: string,
  secretKey: Uint8Array,
  body?: unknown,
): Promise<T> {
  const status = await apiCall<{ self: string; chain: string }>(base, 'GET', '/v1/status');
  // Loaded here: the signing code is not needed by unsigned calls (`datagrant status`).
  const { signCall } = await import('../common/http-signature.js');
  const text = body === undefined ? '' : JSON.stringify(body);
  const headers = signCall(
    { method, path, body: text, caller, audience: status.self, chain: status.chain },
    secretKey,
  );
  return apiCall<T>(base, method, path, body === undefined ? undefined : text, headers);
}

/** Submits a signed transaction and waits for its commit; throws the ledger's code if refused. */
export async function submitAndWait(
  base: string,
  tx: unknown,
  timeoutMs?: number,
): Promise<{ hash: string; height: number }> {
  const { hash } = await apiCall<{ hash: string }>(base, 'POST', '/v1/txs', tx);
  const done = await waitForTx(base, hash, timeoutMs);
  if (done.status === 'rejected') throw new DatagrantError(done.error!.code, done.error!.message, { hash });
  return { hash, height: done.height! };
}
