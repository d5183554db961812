import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import {
  type SyntheticDataPlatform,
  startSyntheticDataPlatform,
  syntheticRecord,
  syntheticSourceConfig,
} from '../../../scripts/synthetic-data-platform.js';
import { silentLogger } from '../../../src/common/logger.js';
import { DATA_TYPES } from '../../../src/ledger/tx.js';
import { createDataSource } from '../../../src/plugins/create-data-source.js';
import type { DataSource, FetchContext } from '../../../src/plugins/data-source.js';

const ctx = (signal: AbortSignal = new AbortController().signal): FetchContext => ({
  signal,
  logger: silentLogger,
});

/** A tiny server answering from a handler, for cases the synthetic platform does not produce. */
async function echoServer(
  t: Test,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; urls: string[]; headers: IncomingMessage['headers'][] }> {
  const urls: string[] = [];
  const headers: IncomingMessage['headers'][] = [];
  const server = createServer((req, res) => {
    urls.push(req.url ?? '');
    headers.push(req.headers);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, urls, headers };
}

let platform: SyntheticDataPlatform;
let source: DataSource;
t.before(async () => {
  platform = await startSyntheticDataPlatform({ port: 0, host: '127.0.0.1' });
  source = createDataSource(syntheticSourceConfig(platform.url));
});
t.teardown(() => platform.close());
t.afterEach(() => platform.setFaults({}));

t.test('fetches and maps every type from the synthetic platform', async (t) => {
  t.same(source.dataTypes, DATA_TYPES);
  for (const type of DATA_TYPES) {
    const query = { subject: 'alice-001', type, dataFrom: '2024-01-01', dataTo: '2024-12-31' };
    const result = await source.fetch(query, ctx());
    t.same(
      result.fields,
      syntheticRecord('alice-001', type, { from: '2024-01-01', to: '2024-12-31' }),
      `${type}: fields`,
    );
    t.equal(result.source, `${platform.url}/v1/${type}/alice-001`, `${type}: source has no query string`);
    const body = JSON.parse(new TextDecoder().decode(result.raw));
    t.equal(body.synthetic, true, `${type}: raw is the platform's answer`);
  }
  t.same(await source.health(), { ok: true });
});

t.test('maps statuses and garbage to plugin error codes', async (t) => {
  const q = { subject: 'alice-001', type: 'tax' as const };
  await t.rejects(source.fetch({ ...q, subject: 'unknown-42' }, ctx()), { code: 'PLUGIN_NOT_FOUND' });
  platform.setFaults({ tax: { down: true } });
  await t.rejects(source.fetch(q, ctx()), { code: 'PLUGIN_UNAVAILABLE', message: /HTTP 503/ });
  platform.setFaults({ tax: { garbage: 'not-json' } });
  await t.rejects(source.fetch(q, ctx()), { code: 'PLUGIN_BAD_RESPONSE', message: /not JSON/ });
  platform.setFaults({ tax: { garbage: 'wrong-shape' } });
  await t.rejects(source.fetch(q, ctx()), { code: 'PLUGIN_BAD_RESPONSE', message: /lacks the path/ });
  platform.setFaults({ '*': { down: true } });
  t.same(await source.health(), { ok: false, detail: 'HTTP 503' });
  await t.rejects(source.fetch({ ...q, type: 'property' }, ctx()), { code: 'PLUGIN_UNAVAILABLE' });
  await t.rejects(source.fetch({ ...q, subject: 'BAD ID' }, ctx()), { code: 'PLUGIN_UNAVAILABLE' });
  platform.setFaults({});
  await t.rejects(source.fetch({ ...q, subject: 'BAD ID' }, ctx()), {
    code: 'PLUGIN_BAD_RESPONSE',
    message: /HTTP 400/,
  });
});

t.test('timeouts and aborts end the fetch promptly', async (t) => {
  platform.setFaults({ 'housing-fund': { slowMs: 10_000 } });
  const q = { subject: 'alice-001', type: 'housing-fund' as const };
  const started = Date.now();
  await t.rejects(source.fetch(q, ctx(AbortSignal.timeout(50))), { code: 'PLUGIN_TIMEOUT' });
  const stop = new AbortController();
  setTimeout(() => stop.abort(), 50);
  await t.rejects(source.fetch(q, ctx(stop.signal)), { code: 'PLUGIN_ABORTED' });
  t.ok(Date.now() - started < 5_000, 'neither waited for the slow answer');
});

t.test('URL placeholders are filled URL-encoded; headers are sent', async (t) => {
  const echo = await echoServer(t, (_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ data: { a: 1.5, b: 'x', c: null, d: true, big: 2 ** 60 } }));
  });
  const s = createDataSource({
    kind: 'http-json',
    name: 'echo',
    url: `${echo.url}/q/{type}/{subject}?from={dataFrom}&to={dataTo}&key=secret`,
    dataTypes: ['tax'],
    typeNames: { tax: 'tax bureau/äö' },
    headers: { 'x-api-key': 'k-123' },
    fields: { a: 'data.a', b: 'data.b', c: 'data.c', d: 'data.d', big: 'data.big' },
  });
  const result = await s.fetch({ subject: 'abc-1', type: 'tax', dataFrom: '2024-01-01' }, ctx());
  t.equal(echo.urls[0], '/q/tax%20bureau%2F%C3%A4%C3%B6/abc-1?from=2024-01-01&to=&key=secret');
  t.equal(echo.headers[0]?.['x-api-key'], 'k-123');
  t.equal(
    result.source,
    `${echo.url}/q/tax%20bureau%2F%C3%A4%C3%B6/abc-1`,
    'no query string (it may hold secrets)',
  );
  t.same(
    result.fields,
    { a: '1.5', b: 'x', c: null, d: true, big: String(2 ** 60) },
    'non-integers become decimal text',
  );
});

t.test('more status and body cases', async (t) => {
  let mode = '';
  const echo = await echoServer(t, (_req, res) => {
    if (mode === 'redirect') {
      res.writeHead(302, { location: 'http://127.0.0.1:1/' });
      res.end();
    } else if (mode === 'unauthorized' || mode === 'rate-limited') {
      res.writeHead(mode === 'unauthorized' ? 401 : 429);
      res.end();
    } else if (mode === 'huge') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ data: { a: 'x'.repeat(5000) } }));
    } else if (mode === 'object') {
      res.end(JSON.stringify({ data: { a: { nested: 1 } } }));
    } else if (mode === 'latin1') {
      res.end(Buffer.from([0x7b, 0xff, 0x7d]));
    }
  });
  const s = createDataSource({
    kind: 'http-json',
    url: `${echo.url}/{subject}`,
    dataTypes: ['tax'],
    fields: { a: 'data.a' },
    maxResponseBytes: 1024,
    healthUrl: `${echo.url}/health`,
  });
  const q = { subject: 'abc-1', type: 'tax' as const };
  const expect: [string, string, RegExp][] = [
    ['redirect', 'PLUGIN_BAD_RESPONSE', /HTTP 302/],
    ['unauthorized', 'PLUGIN_BAD_RESPONSE', /HTTP 401/],
    ['rate-limited', 'PLUGIN_UNAVAILABLE', /HTTP 429/],
    ['huge', 'PLUGIN_BAD_RESPONSE', /larger than 1024/],
    ['object', 'PLUGIN_BAD_RESPONSE', /no scalar/],
    ['latin1', 'PLUGIN_BAD_RESPONSE', /not JSON/],
  ];
  for (const [m, code, message] of expect) {
    mode = m;
    await t.rejects(s.fetch(q, ctx()), { code, message }, m);
  }
  mode = 'unauthorized';
  t.same(await s.health(), { ok: false, detail: 'HTTP 401' });
  await t.rejects(s.fetch({ ...q, type: 'property' }, ctx()), { code: 'PLUGIN_CONFIG_INVALID' });
});

t.test('an unreachable source is UNAVAILABLE', async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const s = createDataSource({
    kind: 'http-json',
    url: `http://127.0.0.1:${port}/{subject}`,
    dataTypes: ['tax'],
    fields: { a: 'a' },
    healthUrl: `http://127.0.0.1:${port}/health`,
  });
  await t.rejects(s.fetch({ subject: 'abc-1', type: 'tax' }, ctx()), {
    code: 'PLUGIN_UNAVAILABLE',
    message: /could not be reached/,
  });
  t.same(await s.health(), { ok: false, detail: 'unreachable' });
});
