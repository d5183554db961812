/**
 * API rate limits on a stopped clock: token buckets refill at their rate up to their burst; over
 * the limit a request gets a coded 429 with Retry-After; loopback has its own budget and is not
 * exempt; an institution's budget is spent only by authenticated calls to signed routes (a
 * forged header costs the bank nothing); the node config validates the limits.
 */
import '../../../src/common/polyfill.js';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import {
  DEFAULT_RATE_LIMIT,
  isLoopback,
  type RateLimitOptions,
  TokenBuckets,
} from '../../../src/api/rate-limit.js';
import { createApi } from '../../../src/api/server.js';
import { DatagrantError } from '../../../src/common/errors.js';
import { silentLogger } from '../../../src/common/logger.js';
import { parseNodeConfig } from '../../../src/node/config.js';

t.test('token buckets: burst, refill, retry time, bounded keys', async (t) => {
  let now = 0;
  const buckets = new TokenBuckets({ ratePerSecond: 2, burst: 3 }, 2, () => now);
  t.same(
    [buckets.take('a'), buckets.take('a'), buckets.take('a')],
    [0, 0, 0],
    'a full bucket allows the burst',
  );
  t.equal(buckets.take('a'), 500, 'then a token is 500 ms away at 2/s');
  now += 499;
  t.ok(buckets.take('a') > 0, 'not yet after 499 ms');
  now += 1;
  t.equal(buckets.take('a'), 0, 'after 500 ms one token is back');
  now += 60_000;
  t.same(
    [buckets.take('a'), buckets.take('a'), buckets.take('a'), buckets.take('a') > 0],
    [0, 0, 0, true],
    'refill stops at the burst',
  );
  buckets.refund('a');
  t.equal(buckets.take('a'), 0, 'a refunded token can be taken again');
  buckets.take('b');
  buckets.take('c');
  t.equal(buckets.size, 2, 'at most maxTracked keys are kept (least recently used dropped)');
  t.equal(buckets.take('a'), 0, 'a forgotten key starts again with a full bucket');
  const never = new TokenBuckets({ ratePerSecond: 0, burst: 1 }, 10, () => now);
  never.take('x');
  t.ok(never.take('x') >= 3_600_000, 'a zero rate never refills');
});

t.test('loopback addresses', async (t) => {
  for (const ip of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) t.ok(isLoopback(ip), ip);
  for (const ip of ['10.0.0.1', '::ffff:10.0.0.1', '192.168.1.1', '2001:db8::1', ''])
    t.notOk(isLoopback(ip), ip || '(empty)');
});

async function app(limits: Partial<RateLimitOptions>): Promise<FastifyInstance> {
  const app = await createApi({ bodyLimit: 1024, logger: silentLogger, rateLimit: limits });
  app.get('/v1/open', async () => ({ ok: true }));
  // A stand-in for a signed route: 401 unless the signature header says "good".
  app.post('/v1/requests', async (request) => {
    if (request.headers['x-datagrant-signature'] !== 'good')
      throw new DatagrantError('API_UNAUTHENTICATED', 'bad signature');
    return { ok: true };
  });
  await app.ready();
  return app;
}

t.test('per IP: 429 API_RATE_LIMITED with Retry-After; loopback not exempt', async (t) => {
  // Rates so slow that no token comes back while the test runs.
  const a = await app({
    perIp: { ratePerSecond: 0.01, burst: 2 },
    loopback: { ratePerSecond: 0.01, burst: 3 },
  });
  t.teardown(() => a.close());
  const from = (ip: string) => a.inject({ method: 'GET', url: '/v1/open', remoteAddress: ip });
  t.same(
    [(await from('10.0.0.1')).statusCode, (await from('10.0.0.1')).statusCode],
    [200, 200],
    'the burst passes',
  );
  const limited = await from('10.0.0.1');
  t.equal(limited.statusCode, 429, 'then 429');
  t.same(limited.json(), {
    error: { code: 'API_RATE_LIMITED', message: 'too many requests from this address; retry later' },
  });
  t.equal(
    limited.headers['retry-after'],
    '100',
    'Retry-After: seconds until a token is back (100 s at 0.01/s)',
  );
  t.equal((await from('10.0.0.2')).statusCode, 200, 'another address has its own bucket');
  const loop = [];
  for (let i = 0; i < 4; i++) loop.push((await from('127.0.0.1')).statusCode);
  t.same(loop, [200, 200, 200, 429], 'loopback has its own (here small) budget and is limited too');
  const notFound = await a.inject({ method: 'GET', url: '/nowhere', remoteAddress: '10.0.0.1' });
  t.equal(notFound.statusCode, 429, 'unknown routes count too');
});

t.test('per institution: only authenticated calls to signed routes spend the budget', async (t) => {
  const a = await app({ perInstitution: { ratePerSecond: 0.001, burst: 2 } });
  t.teardown(() => a.close());
  const call = (signature: string, institution = 'demo-bank', ip = '10.1.0.1') =>
    a.inject({
      method: 'POST',
      url: '/v1/requests',
      payload: '{}',
      remoteAddress: ip,
      headers: {
        'content-type': 'application/json',
        'x-datagrant-caller': `institution:${institution}`,
        'x-datagrant-signature': signature,
      },
    });
  for (let i = 0; i < 10; i++)
    t.equal(
      (await call('forged', 'demo-bank', `10.2.0.${i}`)).statusCode,
      401,
      `forged call ${i}: 401, nothing spent`,
    );
  t.equal((await call('good')).statusCode, 200, 'first real call');
  t.equal(
    (await call('good', 'demo-bank', '10.1.0.2')).statusCode,
    200,
    'second real call, from another address',
  );
  const limited = await call('good', 'demo-bank', '10.1.0.3');
  t.equal(limited.statusCode, 429, 'third: the institution is over its budget, whatever the address');
  t.match(limited.json(), { error: { code: 'API_RATE_LIMITED', message: /institution/ } });
  t.ok(Number(limited.headers['retry-after']) >= 1, 'with Retry-After');
  t.equal((await call('good', 'other-bank')).statusCode, 200, 'another institution is not affected');
  const open = await a.inject({
    method: 'GET',
    url: '/v1/open',
    remoteAddress: '10.1.0.9',
    headers: { 'x-datagrant-caller': 'institution:demo-bank' },
  });
  t.equal(open.statusCode, 200, 'unsigned routes ignore the institution header');
});

t.test('defaults are generous; limits can be turned off', async (t) => {
  t.ok(DEFAULT_RATE_LIMIT.loopback.ratePerSecond >= 10_000, 'loopback: at least 10,000 requests/s');
  t.ok(DEFAULT_RATE_LIMIT.perIp.ratePerSecond >= 100, 'per address: at least 100 requests/s');
  const a = await createApi({ bodyLimit: 1024, logger: silentLogger });
  a.get('/x', async () => ({}));
  const statuses = new Set<number>();
  for (let i = 0; i < 3000; i++) statuses.add((await a.inject({ method: 'GET', url: '/x' })).statusCode);
  t.same([...statuses], [200], '3,000 quick loopback requests are not throttled by default');
  await a.close();
  const off = await createApi({ bodyLimit: 1024, logger: silentLogger, rateLimit: false });
  off.get('/x', async () => ({}));
  t.equal(
    (await off.inject({ method: 'GET', url: '/x' })).statusCode,
    200,
    'rateLimit: false installs no limit',
  );
  await off.close();
});

t.test('node config: api.rateLimit is validated', async (t) => {
  const base = {
    name: 'n',
    genesis: 'g.json',
    key: 'k.json',
    data: 'data',
    p2p: { listen: [], peers: [] },
    consensus: { blockIntervalMs: 100, minBlockIntervalMs: 10 },
    mempool: { maxTxs: 10 },
  };
  const ok = parseNodeConfig(
    {
      ...base,
      api: {
        host: '127.0.0.1',
        port: 1,
        rateLimit: { perIp: { ratePerSecond: 5, burst: 10 }, enabled: true },
      },
    },
    '/tmp',
  );
  t.same(ok.api.rateLimit?.perIp, { ratePerSecond: 5, burst: 10 }, 'a valid limit is kept');
  for (const bad of [
    { perIp: { ratePerSecond: -1, burst: 1 } },
    { perIp: { ratePerSecond: 1, burst: 0 } },
    { perIp: { ratePerSecond: 1 } },
    { bogus: 1 },
  ]) {
    t.throws(
      () => parseNodeConfig({ ...base, api: { host: '127.0.0.1', port: 1, rateLimit: bad } }, '/tmp'),
      { code: 'CONFIG_INVALID' },
      `refused: ${JSON.stringify(bad)}`,
    );
  }
});
