/**
 * Security limits of the API on a stopped clock: the signed-request clock-skew window holds at
 * its edges, a signature is good once (replay), a signature covers method, path, body and
 * institution; body size limits hold with coded 413s; media types, malformed URLs and over-long
 * parameters get coded refusals; consensus messages over the size limit are refused.
 */
import '../../../src/common/polyfill.js';
import t from 'tap';
import { createApi } from '../../../src/api/server.js';
import { bytesToHex } from '../../../src/common/bytes.js';
import { verifyFast } from '../../../src/common/crypto-node.js';
import { generateKeySet } from '../../../src/common/keyfile.js';
import { silentLogger } from '../../../src/common/logger.js';
import { decodeMessage } from '../../../src/consensus/index.js';
import { HttpAuthVerifier, signHttpRequest } from '../../../src/platform/http-auth.js';

const SKEW = 5 * 60 * 1000;

t.test('signed requests: the clock-skew window, replays, and what the signature covers', async (t) => {
  const bank = generateKeySet('bank');
  let now = 1_800_000_000_000;
  const verifier = new HttpAuthVerifier(
    { maxSkewMs: SKEW },
    {
      institutionKey: (id) => (id === 'demo-bank' ? bytesToHex(bank.signing.publicKey) : undefined),
      verifier: verifyFast,
      now: () => now,
    },
  );
  const sign = (ts: number, path = '/v1/requests', body = '{}', method = 'POST') =>
    signHttpRequest(method, path, body, 'demo-bank', bank.signing.secretKey, ts);
  const verify = (headers: Record<string, string>, path = '/v1/requests', body = '{}', method = 'POST') =>
    verifier.verify(method, path, body, headers);

  for (const offset of [-SKEW, -SKEW + 1, 0, SKEW - 1, SKEW]) {
    t.equal(
      verify(sign(now + offset)),
      'demo-bank',
      `timestamp ${offset} ms from the platform clock: accepted`,
    );
  }
  for (const offset of [-SKEW - 1, SKEW + 1, -10 * SKEW, 1e12]) {
    t.throws(
      () => verify(sign(now + offset)),
      { code: 'API_UNAUTHENTICATED', message: /window/ },
      `timestamp ${offset} ms off: refused`,
    );
  }
  // Ed25519 is deterministic: same request, same millisecond, same signature, so use a new instant.
  const headers = sign(now + 7);
  t.equal(verify(headers), 'demo-bank', 'a fresh signed request is accepted');
  t.throws(
    () => verify(headers),
    { code: 'API_UNAUTHENTICATED', message: /replay/ },
    'the same signature again: replay refused',
  );
  now += 60_000;
  t.throws(
    () => verify(headers),
    { code: 'API_UNAUTHENTICATED' },
    'still refused a minute later (inside the window)',
  );
  now += 2 * SKEW;
  t.throws(
    () => verify(headers),
    { code: 'API_UNAUTHENTICATED', message: /window/ },
    'and out of the window later on',
  );

  const fresh = () => sign(now);
  t.throws(
    () => verify(fresh(), '/v1/requests?x=1'),
    { code: 'API_UNAUTHENTICATED' },
    'another path: refused',
  );
  t.throws(
    () => verify(fresh(), '/v1/requests', '{"a":1}'),
    { code: 'API_UNAUTHENTICATED' },
    'another body: refused',
  );
  t.throws(
    () => verify(fresh(), '/v1/requests', '{}', 'GET'),
    { code: 'API_UNAUTHENTICATED' },
    'another method: refused',
  );
  t.throws(
    () => verify({ ...fresh(), 'x-datagrant-institution': 'other-bank' }),
    { code: 'API_UNAUTHENTICATED' },
    'unknown institution: refused',
  );
  t.throws(
    () => verify({ ...fresh(), 'x-datagrant-timestamp': String(now + 1) }),
    { code: 'API_UNAUTHENTICATED' },
    'timestamp changed after signing: refused',
  );
  for (const ts of ['', '-1', '1e12', '0x10', '１２３', `${now}.5`, ' 1'])
    t.throws(
      () => verify({ ...fresh(), 'x-datagrant-timestamp': ts }),
      { code: 'API_UNAUTHENTICATED' },
      `timestamp ${JSON.stringify(ts)}: refused`,
    );
  const { 'x-datagrant-signature': _s, ...unsigned } = fresh();
  t.throws(
    () => verify(unsigned),
    { code: 'API_UNAUTHENTICATED', message: /missing/ },
    'missing signature: refused',
  );

  // The replay memory stays bounded: old signatures leave once out of the window.
  for (let i = 0; i < 1500; i++) verify(sign(now - SKEW + 10, `/v1/requests/${i}`), `/v1/requests/${i}`);
  now += 20;
  for (let i = 0; i < 10; i++) verify(sign(now, `/v1/later/${i}`), `/v1/later/${i}`);
  const seen = (verifier as unknown as { seen: Map<string, number> }).seen;
  t.ok(seen.size < 1500, `the replay memory forgot expired signatures (${seen.size} left)`);
});

t.test('body size limit, media types, malformed URLs: coded refusals', async (t) => {
  const app = await createApi({ bodyLimit: 2048, logger: silentLogger });
  t.teardown(() => app.close());
  app.post('/echo', async (request) => ({ got: request.body }));
  app.get('/items/:id', async () => ({ ok: true }));
  const post = (payload: string, type = 'application/json') =>
    app.inject({ method: 'POST', url: '/echo', payload, headers: { 'content-type': type } });
  t.equal((await post(`{"a":"${'x'.repeat(2000)}"}`)).statusCode, 200, 'just under the limit: accepted');
  const big = await post(`{"a":"${'x'.repeat(2100)}"}`);
  t.equal(big.statusCode, 413, 'over the limit: 413');
  t.equal(big.json().error.code, 'API_BODY_TOO_LARGE');
  const lying = await app.inject({
    method: 'POST',
    url: '/echo',
    payload: '{}',
    headers: { 'content-type': 'application/json', 'content-length': '999999' },
  });
  t.ok(
    lying.statusCode >= 400 && lying.statusCode < 500 && typeof lying.json().error.code === 'string',
    `a lying content-length: coded ${lying.statusCode}`,
  );
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
    const r = await post('a=1', type);
    t.equal(r.statusCode, 415, `${type}: 415`);
    t.equal(r.json().error.code, 'API_UNSUPPORTED_MEDIA_TYPE');
  }
  const bad = await post('{"a":');
  t.same([bad.statusCode, bad.json().error.code], [400, 'API_BAD_JSON'], 'broken JSON: 400 API_BAD_JSON');
  const badUrl = await app.inject({ method: 'GET', url: '/items/%E0%A4%A' });
  t.same(
    [badUrl.statusCode, badUrl.json().error.code],
    [400, 'API_BAD_URL'],
    'malformed percent-encoding: 400 API_BAD_URL',
  );
  const longParam = await app.inject({ method: 'GET', url: `/items/${'a'.repeat(500)}` });
  t.same(
    [longParam.statusCode, longParam.json().error.code],
    [414, 'API_URI_TOO_LONG'],
    'over-long path parameter: 414 API_URI_TOO_LONG',
  );
});

t.test('consensus messages over the size limit are refused before parsing', async (t) => {
  const text = JSON.stringify({ type: 'prepare', pad: 'x'.repeat(5000) });
  const r = decodeMessage(new TextEncoder().encode(text), 1024);
  t.notOk(r.ok, 'refused');
  t.match(r.ok ? '' : r.detail, /larger than 1024 bytes/, 'because of its size');
});
