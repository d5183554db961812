/**
 * Downloading a file a running node streams to its own operator (a backup, a state snapshot): a
 * GET signed as `node:<name>` with the node's own key, written to `<out>.partial`, flushed,
 * verified by the caller's check, then renamed to `out`. No overall deadline (a large store takes
 * as long as it takes), but one on silence.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { bytesToHex } from '../common/bytes.js';
import { DatagrantError, isDatagrantError } from '../common/errors.js';
import { signCall } from '../common/http-signature.js';
import type { KeySet } from '../common/keyfile.js';
import { fsyncDir, fsyncFile } from './entry-file.js';

/** Names that sign as `node:<name>` (the caller pattern of signed calls). */
const NODE_NAME_RE = /^[a-z0-9][a-z0-9-]{2,63}$/;
/** Default of `SignedDownloadOptions.idleTimeoutMs`. */
const DOWNLOAD_IDLE_TIMEOUT_MS = 120_000;

/** The signed-call caller of the node operator: `node:<name>`, signed with the node's own key. */
export function nodeCaller(name: string): string {
  return `node:${name}`;
}

/** What `downloadSignedFile` needs. */
export interface SignedDownloadOptions<S> {
  /** The node's API, the route, and the prefix of the error codes (`BACKUP`, `SNAPSHOT`). */
  api: string;
  route: string;
  codePrefix: string;
  node: string;
  keys: KeySet;
  chain: string;
  out: string;
  /** Overwrite an existing `out`. */
  force?: boolean;
  /** Give up when the node sends nothing for this long (default 120 s). */
  idleTimeoutMs?: number;
  /** Called with the compressed bytes received so far. */
  onBytes?: (bytes: number, done: boolean) => void;
  /** Checks the whole downloaded file (at its `.partial` path) before it is renamed into place. */
  verify: (path: string) => Promise<S>;
}

/**
 * Asks the node at `api` for `route` (a call signed with its own key as `node:<name>`), writes the
 * answer to `<out>.partial`, verifies it and renames it to `out`. Refuses an existing `out`
 * (`<prefix>_EXISTS`) unless `force`; a stream that breaks off is `<prefix>_INCOMPLETE`.
 */
export async function downloadSignedFile<S>(options: SignedDownloadOptions<S>): Promise<S> {
  const code = (what: string) => `${options.codePrefix}_${what}`;
  if (!NODE_NAME_RE.test(options.node))
    throw new DatagrantError(
      code('NODE_NAME'),
      `node name ${JSON.stringify(options.node)} cannot sign as node:<name> (lower-case letters, digits, '-'; 3 to 64)`,
    );
  const out = resolve(options.out);
  if (existsSync(out) && !options.force)
    throw new DatagrantError(code('EXISTS'), `${out} exists (use --force to overwrite it)`);
  const headers = signCall(
    {
      method: 'GET',
      path: options.route,
      body: '',
      caller: nodeCaller(options.node),
      audience: bytesToHex(options.keys.signing.publicKey),
      chain: options.chain,
    },
    options.keys.signing.secretKey,
  );
  const idleMs = options.idleTimeoutMs ?? DOWNLOAD_IDLE_TIMEOUT_MS;
  const abort = new AbortController();
  let idle = setTimeout(() => abort.abort(), idleMs);
  const alive = () => {
    clearTimeout(idle);
    idle = setTimeout(() => abort.abort(), idleMs);
  };
  let response: Response;
  try {
    response = await fetch(new URL(options.route, options.api), { headers, signal: abort.signal });
  } catch (err) {
    clearTimeout(idle);
    throw new DatagrantError('CLI_UNREACHABLE', `cannot reach ${options.api}: ${(err as Error).message}`);
  }
  if (!response.ok || !response.body) {
    clearTimeout(idle);
    const text = await response.text().catch(() => '');
    let error: { code?: string; message?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
    } catch {
      error = undefined;
    }
    throw new DatagrantError(error?.code ?? 'CLI_HTTP_ERROR', error?.message ?? `HTTP ${response.status}`, {
      status: response.status,
    });
  }
  const partial = `${out}.partial`;
  await mkdir(dirname(out), { recursive: true });
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      alive();
      options.onBytes?.(bytes, false);
      done(null, chunk);
    },
  });
  try {
    await pipeline(
      Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>),
      counter,
      createWriteStream(partial, { mode: 0o600 }),
    );
    clearTimeout(idle);
    await fsyncFile(partial);
    options.onBytes?.(bytes, true);
    const summary = await options.verify(partial);
    await rename(partial, out);
    await fsyncDir(dirname(out));
    return summary;
  } catch (err) {
    clearTimeout(idle);
    await rm(partial, { force: true });
    if (isDatagrantError(err)) throw err;
    throw new DatagrantError(code('INCOMPLETE'), `the stream broke off: ${(err as Error).message}`);
  }
}
