/**
 * A lean HTTP client for load generation: node:http with keep-alive sockets (fetch costs the
 * load generator several times more CPU per request), and a server-sent-events reader that
 * records when each committed transaction was announced.
 */
import { Agent, type IncomingMessage, request } from 'node:http';
import type { RedactedTx } from '../../src/api/chain-routes.js';
import type { AnyTx } from '../../src/ledger/index.js';

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** A response: status and body text. */
export interface HttpResponse {
  status: number;
  text: string;
  headers: IncomingMessage['headers'];
}

/** One HTTP request over a pooled keep-alive socket. */
export function httpCall(
  method: 'GET' | 'POST',
  url: string,
  body?: string,
  headers: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<HttpResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        method,
        host: u.hostname,
        port: u.port,
        path: `${u.pathname}${u.search}`,
        headers:
          body === undefined
            ? headers
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** GET or POST returning parsed JSON; throws with the API's error code on a non-2xx status. */
export async function jsonCall<T>(
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  const r = await httpCall(
    method,
    url,
    body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    headers,
  );
  if (r.status < 200 || r.status >= 300) {
    let code = `HTTP_${r.status}`;
    try {
      code = (JSON.parse(r.text) as { error: { code: string } }).error.code;
    } catch {
      // Not a coded error body.
    }
    throw Object.assign(new Error(`${method} ${url}: ${code}`), { code, status: r.status });
  }
  return JSON.parse(r.text) as T;
}

/** One committed block as the event stream announced it. */
export interface SeenBlock {
  height: number;
  txCount: number;
  /** When the announcement arrived (performance.now() ms). */
  at: number;
  /** Block time chosen by the proposer (unix ms). */
  time: number;
}

/**
 * Follows `GET /v1/events?txs=true` of one node: remembers when each transaction hash was seen
 * committed and resolves waiters. Times are `performance.now()` milliseconds.
 */
export class CommitWatcher {
  readonly committedAt = new Map<string, number>();
  readonly blocks: SeenBlock[] = [];
  private readonly waiters = new Map<string, (at: number) => void>();
  private req: ReturnType<typeof request> | undefined;
  private buffer = '';

  /**
   * With `onBlock`, every announced block is also fetched (`GET /v1/blocks/:height`) and handed
   * over with its announcement time, e.g. to follow what transactions did. The bodies of
   * transactions about a subject come only to a reader who proves to be a party: `options.sign`
   * gives the signed-call headers of a block read (`{ redacted: true }` stands in for each body
   * the reader may not see). A block that cannot be read goes to `options.onError`.
   */
  constructor(
    private readonly api: string,
    private readonly onBlock?: (
      block: { txs: (AnyTx | RedactedTx)[]; txHashes: string[] },
      at: number,
    ) => void,
    private readonly options: {
      sign?: (path: string) => Record<string, string>;
      onError?: (err: Error) => void;
    } = {},
  ) {}

  /** Connects; resolves once the stream is open. */
  start(): Promise<void> {
    const u = new URL('/v1/events?txs=true', this.api);
    return new Promise((resolve, reject) => {
      this.req = request(
        { host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: 'GET' },
        (res) => {
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => this.onData(chunk));
          resolve();
        },
      );
      this.req.on('error', (err) => reject(err));
      this.req.end();
    });
  }

  /** Disconnects. */
  stop(): void {
    this.req?.destroy();
  }

  /** Resolves with the time `hash` was seen committed (at once if it already was). */
  wait(hash: string): Promise<number> {
    const at = this.committedAt.get(hash);
    if (at !== undefined) return Promise.resolve(at);
    return new Promise((resolve) => this.waiters.set(hash, resolve));
  }

  /** Forgets per-transaction records (between load steps). */
  clear(): void {
    this.committedAt.clear();
    this.blocks.length = 0;
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let end = this.buffer.indexOf('\n\n');
    while (end >= 0) {
      const event = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      end = this.buffer.indexOf('\n\n');
      if (!event.startsWith('event: block')) continue;
      const at = performance.now();
      const line = event.split('\n').find((l) => l.startsWith('data: '));
      if (!line) continue;
      const data = JSON.parse(line.slice(6)) as {
        height: number;
        txCount: number;
        time: number;
        txHashes: string[];
      };
      this.blocks.push({ height: data.height, txCount: data.txCount, at, time: data.time });
      if (this.onBlock && data.txCount > 0) {
        const onBlock = this.onBlock;
        const path = `/v1/blocks/${data.height}`;
        jsonCall<{ block: { txs: (AnyTx | RedactedTx)[] }; txHashes: string[] }>(
          'GET',
          `${this.api}${path}`,
          undefined,
          this.options.sign?.(path) ?? {},
        )
          .then((b) => onBlock({ txs: b.block.txs, txHashes: b.txHashes }, at))
          .catch((err: Error) => this.options.onError?.(err));
      }
      for (const hash of data.txHashes) {
        this.committedAt.set(hash, at);
        const waiter = this.waiters.get(hash);
        if (waiter) {
          this.waiters.delete(hash);
          waiter(at);
        }
      }
    }
  }
}
