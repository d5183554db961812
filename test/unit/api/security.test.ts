/**
 * Security limits of the API on a stopped clock: the signed-call clock-skew window holds at its
 * edges, a nonce is good once (replay, also across a restart of the LevelDB guard), a signature
 * covers method, path, body, caller, audience node and chain; body size limits hold with coded 413s; media types, malformed URLs and over-long
 * parameters get coded refusals; consensus messages over the size limit are refused.
 */
import '../../../src/common/polyfill.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { HttpAuthVerifier } from '../../../src/api/http-auth.js';
import { LevelReplayGuard, MemoryReplayGuard } from '../../../src/api/replay-guard.js';
import { createApi } from '../../../src/api/server.js';
import { bytesToHex } from '../../../src/common/bytes.js';
import { verifyFast } from '../../../src/common/crypto-node.js';
import { institutionCaller, signCall, signedCallBytes } from '../../../src/common/http-signature.js';
import { generateKeySet } from '../../../src/common/keyfile.js';
import { silentLogger } from '../../../src/common/logger.js';
import { decodeMessage } from '../../../src/consensus/index.js';

const SKEW = 5 * 60 * 1000;
const NODE = 'a1'.repeat(32);
const CHAIN = 'datagrant-test';

t.test(
  'signed calls: the skew window, audience, chain, replays, and what the signature covers',
  async (t) => {
    const bank = generateKeySet('bank');
    let now = 1_800_000_000_000;
    const replay = new MemoryReplayGuard(() => now);
    const verifier = new HttpAuthVerifier(
      { maxSkewMs: SKEW, audience: NODE, chain: CHAIN },
      {
        callerKey: (c) =>
          c.kind === 'institution' && c.id === 'demo-bank' ? bytesToHex(bank.signing.publicKey) : undefined,
        verifier: verifyFast,
        replay,
        now: () => now,
      },
    );
    const sign = (
      ts: number,
      path = '/v1/requests',
      body = '{}',
      method = 'POST',
      over: { audience?: string; chain?: string; nonce?: string } = {},
    ) =>
      signCall(
        {
          method,
          path,
          body,
          caller: institutionCaller('demo-bank'),
          audience: over.audience ?? NODE,
          chain: over.chain ?? CHAIN,
          timestamp: ts,
          ...(over.nonce ? { nonce: over.nonce } : {}),
        },
        bank.signing.secretKey,
      );
    const verify = (headers: Record<string, string>, path = '/v1/requests', body = '{}', method = 'POST') =>
      verifier.verify(method, path, body, headers);

    for (const offset of [-SKEW, -SKEW + 1, 0, SKEW - 1, SKEW]) {
      t.match(
        await verify(sign(now + offset)),
        { kind: 'institution', id: 'demo-bank' },
        `timestamp ${offset} ms from the node clock: accepted`,
      );
    }
    for (const offset of [-SKEW - 1, SKEW + 1, -10 * SKEW, 1e12]) {
      await t.rejects(
        verify(sign(now + offset)),
        { code: 'API_STALE_CALL' },
        `timestamp ${offset} ms off: refused`,
      );
    }
    const headers = sign(now + 7);
    t.match(await verify(headers), { id: 'demo-bank' }, 'a fresh signed call is accepted');
    await t.rejects(verify(headers), { code: 'API_REPLAYED' }, 'the same call again: replay refused');
    const sameNonce = sign(now + 8, '/v1/requests', '{}', 'POST', { nonce: headers['x-datagrant-nonce']! });
    await t.rejects(verify(sameNonce), { code: 'API_REPLAYED' }, 'a new call reusing the nonce: refused');
    now += 60_000;
    await t.rejects(
      verify(headers),
      { code: 'API_REPLAYED' },
      'still refused a minute later (inside the window)',
    );
    now += 2 * SKEW;
    await t.rejects(verify(headers), { code: 'API_STALE_CALL' }, 'and out of the window later on');

    await t.rejects(
      verify(sign(now, '/v1/requests', '{}', 'POST', { audience: 'b2'.repeat(32) })),
      { code: 'API_WRONG_AUDIENCE' },
      'a call addressed to another node: refused',
    );
    await t.rejects(
      verify(sign(now, '/v1/requests', '{}', 'POST', { chain: 'other-chain' })),
      { code: 'API_WRONG_CHAIN' },
      'a call signed for another chain: refused',
    );
    await t.rejects(
      verify({ ...sign(now), 'x-datagrant-audience': NODE.replace('a1', 'a2') }),
      { code: 'API_WRONG_AUDIENCE' },
      'audience header changed after signing: refused',
    );
    const fresh = () => sign(now);
    for (const [name, run] of [
      ['another path', () => verify(fresh(), '/v1/requests?x=1')],
      ['another body', () => verify(fresh(), '/v1/requests', '{"a":1}')],
      ['another method', () => verify(fresh(), '/v1/requests', '{}', 'GET')],
      [
        'timestamp changed after signing',
        () => verify({ ...fresh(), 'x-datagrant-timestamp': String(now + 1) }),
      ],
      ['nonce changed after signing', () => verify({ ...fresh(), 'x-datagrant-nonce': 'ab'.repeat(8) })],
    ] as const) {
      await t.rejects(run(), { code: 'API_BAD_SIGNATURE' }, `${name}: refused`);
    }
    await t.rejects(
      verify({ ...fresh(), 'x-datagrant-caller': 'institution:other-bank' }),
      { code: 'API_UNAUTHENTICATED', message: /unknown/ },
      'unknown institution: refused',
    );
    for (const ts of ['', '-1', '1e12', '0x10', '１２３', `${now}.5`, ' 1'])
      await t.rejects(
        verify({ ...fresh(), 'x-datagrant-timestamp': ts }),
        { code: 'API_UNAUTHENTICATED' },
        `timestamp ${JSON.stringify(ts)}: refused`,
      );
    for (const nonce of ['', 'abc', 'AB'.repeat(8), 'z'.repeat(16), 'a'.repeat(65)])
      await t.rejects(
        verify({ ...fresh(), 'x-datagrant-nonce': nonce }),
        { code: 'API_UNAUTHENTICATED' },
        `nonce ${JSON.stringify(nonce)}: refused`,
      );
    const { 'x-datagrant-signature': _s, ...unsigned } = fresh();
    await t.rejects(
      verify(unsigned),
      { code: 'API_UNAUTHENTICATED', message: /missing/ },
      'missing signature',
    );

    // The replay memory stays bounded: claims leave once out of the window.
    const before = replay.size;
    now += 3 * SKEW;
    for (let i = 0; i < 5; i++) await verify(sign(now, `/v1/later/${i}`), `/v1/later/${i}`);
    t.ok(replay.size <= before + 5, `claims are kept only for their window (${replay.size} held)`);
  },
);

t.test('signed calls: the known answer of docs/http-signatures.md', async (t) => {
  const seed = new Uint8Array(32).fill(7);
  const call = {
    method: 'POST',
    path: '/v1/requests',
    body: '{"tx":{}}',
    caller: 'institution:demo-bank',
    audience: 'ab'.repeat(32),
    chain: 'datagrant-local',
    nonce: '0123456789abcdef0123456789abcdef',
    timestamp: 1767225600000,
  };
  t.equal(
    new TextDecoder().decode(signedCallBytes(call)),
    'datagrant/http/v2\n{"audience":"abababababababababababababababababababababababababababababababab","body":"8779ad3abe6f9a2babaabe2191a741cc880dffa2da49d0270a936bc6ec884b70","caller":"institution:demo-bank","chain":"datagrant-local","method":"POST","nonce":"0123456789abcdef0123456789abcdef","path":"/v1/requests","timestamp":1767225600000}',
    'the signed bytes',
  );
  t.equal(
    signCall(call, seed)['x-datagrant-signature'],
    'b9cb8a5b4cda73a9666837ec77badea3d8a1ee5b5c501f5415b08e629c3f8d76559824fbfdb7f0949f13036fd1f36f896dccc093b561856a206f50c68b15080d',
    'the signature',
  );
});

t.test('the LevelDB replay guard survives a restart and forgets only expired claims', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-replay-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let now = 1_800_000_000_000;
  const open = async () => {
    const guard = new LevelReplayGuard({ location: join(dir, 'replay') }, () => now);
    await guard.start();
    return guard;
  };
  let guard = await open();
  t.equal(await guard.claim('institution:a/01', now + 1000), true, 'first claim granted');
  t.equal(await guard.claim('institution:a/01', now + 1000), false, 'second claim refused');
  t.equal(await guard.claim('institution:a/02', now + 10), true, 'a short one');
  const racing = await Promise.all([
    guard.claim('institution:a/03', now + 1000),
    guard.claim('institution:a/03', now + 1000),
  ]);
  t.same(racing.sort(), [false, true], 'two concurrent claims of one key: exactly one wins');
  await guard.stop();
  now += 100;
  guard = await open();
  t.equal(await guard.claim('institution:a/01', now + 1000), false, 'after a restart: still refused');
  t.equal(await guard.claim('institution:a/03', now + 1000), false, 'the concurrent winner too');
  t.equal(await guard.claim('institution:a/02', now + 1000), true, 'an expired claim may be made again');
  await guard.stop();
  await t.rejects(guard.claim('institution:a/04', now + 10), { code: 'API_NOT_READY' }, 'closed: refused');
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
  // Values canonical JSON cannot encode are refused before any route sees them.
  for (const [name, text] of [
    ['a lone high surrogate', '{"purpose":"x\\ud800"}'],
    ['a lone low surrogate', '{"purpose":"\\udc00x"}'],
    ['reversed surrogates', '{"purpose":"\\udc00\\ud800"}'],
    ['a lone surrogate in a key', '{"\\ud800":1}'],
    ['a float', '{"uses":1.5}'],
    ['an integer past the safe range', '{"uses":9007199254740993}'],
    ['an exponent', '{"uses":1e400}'],
    ['nesting past the limit', `${'['.repeat(40)}${']'.repeat(40)}`],
  ] as const) {
    const r = await post(text);
    t.same([r.statusCode, r.json().error.code], [400, 'API_UNENCODABLE'], `${name}: 400 API_UNENCODABLE`);
  }
  const nfd = await post('{"purpose":"cafe\u0301"}');
  t.equal(nfd.statusCode, 200, 'a non-NFC string is encodable: accepted as it is');
  t.equal(nfd.json().got.purpose, 'cafe\u0301', 'and not normalised');
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
