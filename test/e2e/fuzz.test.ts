/**
 * Bad input, fuzzed: every HTTP route (from the node's own OpenAPI document, plus targeted
 * generators for transaction submission, every tx kind, the bank's own `request.open` relayed
 * through POST /v1/requests {tx}, the bank's `usage` of a real grant, and signed calls to the
 * sealed-bundle route and the routes only a bank's own gateway serves) and every libp2p entry
 * point (consensus decoding and the consensus topic, the transaction gossip topics, the sync and
 * payload request handlers). Every input must end in a coded 4xx (`{error: {code, message}}`) or
 * an accepted answer, or be dropped and counted — never a 5xx, a crash or a hang. The node under
 * test is a validator: it holds no institution's key, so the bank signs here, as its client would.
 * In-process nodes with `app.inject()` keep it fast; FUZZ_SEED replays a run, FUZZ_SCALE scales it.
 */
import '../../src/common/polyfill.js';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import t, { type Test } from 'tap';
import { startSyntheticDataPlatform, syntheticSourceConfig } from '../../scripts/synthetic-data-platform.js';
import { DatagrantClient, openBundle, verifyBundle } from '../../src/client/index.js';
import { bytesToHex, utf8ToBytes } from '../../src/common/bytes.js';
import { signFast } from '../../src/common/crypto-node.js';
import { DatagrantError } from '../../src/common/errors.js';
import { institutionCaller, SIGNED_CALL_HEADERS, signCall } from '../../src/common/http-signature.js';
import { generateKeySet, type KeySet } from '../../src/common/keyfile.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { createLogger, silentLogger } from '../../src/common/logger.js';
import { decodeMessage, signProposal, signVote } from '../../src/consensus/index.js';
import {
  type AnyTx,
  bundleDigest,
  signTx,
  TX_KINDS,
  type TxBody,
  type TxKind,
  txHash,
} from '../../src/ledger/index.js';
import { loadNodeConfig } from '../../src/node/config.js';
import { initTestnet } from '../../src/node/init.js';
import { DatagrantNode } from '../../src/node/node.js';
import {
  emptyStats,
  type MessageHandler,
  type Network,
  type NetworkStats,
  type ProtocolName,
  type RequestHandler,
  type Topic,
} from '../../src/p2p/index.js';
import { attestSubject, buildGrantTx, buildRegisterTx } from '../../src/platform/consent.js';
import { AUTH_ERROR_CODES } from '../../src/api/http-auth.js';
import type { RequestInput, RequestView } from '../../src/platform/views.js';
import { makeTempDir } from '../helpers/tmp.js';

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
t.comment(`FUZZ_SEED=${SEED}`);

/** Inputs sent, by entry point. */
const inputs: Record<string, number> = {};
/** Outcomes: status and code (HTTP), or how the input was dropped (p2p). */
const outcomes: Record<string, number> = {};
const tally = (where: string, outcome: string) => {
  inputs[where] = (inputs[where] ?? 0) + 1;
  outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
};

const CODE = /^[A-Z][A-Z0-9_]{2,63}$/;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`HANG: ${what} did not answer within ${ms} ms`)), ms);
    }),
  ]);
}

/** Why a response breaks the rules, or null: a 5xx, or a 4xx without a coded error body. */
function verdict(res: LightMyRequestResponse, method?: string): string | null {
  if (res.statusCode >= 500) return `${res.statusCode}: ${res.body.slice(0, 300)}`;
  if (res.statusCode < 400 || method === 'HEAD') return null;
  let body: { error?: { code?: unknown; message?: unknown } };
  try {
    body = JSON.parse(res.body) as typeof body;
  } catch {
    return `${res.statusCode} without a JSON body: ${res.body.slice(0, 200)}`;
  }
  if (typeof body.error?.code !== 'string' || !CODE.test(body.error.code))
    return `${res.statusCode} without an error code: ${res.body.slice(0, 200)}`;
  if (typeof body.error.message !== 'string') return `${res.statusCode} without an error message`;
  return null;
}

function codeOf(res: LightMyRequestResponse): string {
  try {
    return (JSON.parse(res.body) as { error?: { code?: string } }).error?.code ?? '';
  } catch {
    return '';
  }
}

/** Runs a fast-check property as one tap assertion (the counterexample and seed in the failure). */
async function property<T>(
  t: Test,
  name: string,
  arb: fc.Arbitrary<T>,
  check: (value: T) => Promise<void>,
  numRuns: number,
): Promise<void> {
  try {
    await fc.assert(fc.asyncProperty(arb, check), { numRuns, seed: SEED, endOnFailure: true });
    t.pass(`${name}: ${numRuns} inputs`);
  } catch (err) {
    const cause = (err as Error).cause as Error | undefined;
    t.fail(`${name}: ${(err as Error).message.slice(0, 2000)}\n${cause?.message?.slice(0, 2000) ?? ''}`);
  }
}

// ------------------------------------------------------------------ generators

/** Lower-case hex strings of a length in [min, max]. */
const hexString = (minLength: number, maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength, maxLength });

/** Strings with the edge cases: control characters, lone surrogates, BOM, RTL marks, emoji, long runs. */
const nastyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({
    unit: fc.constantFrom(
      '\u0000',
      '\ud800',
      '\udfff',
      '\ufeff',
      '\u202e',
      '\u2028',
      '😀',
      '\\',
      '"',
      '%',
      '/',
      '?',
      '#',
      ' ',
    ),
    maxLength: 12,
  }),
  fc.constantFrom(
    '',
    ' ',
    'latest',
    '0',
    '-1',
    '1e308',
    'NaN',
    'null',
    '__proto__',
    'constructor',
    '..',
    '%00',
    'a'.repeat(200),
  ),
  hexString(63, 65),
);

/** JSON-ish values, nested a few levels, with nasty strings and numbers. */
const jsonish: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, -0, 1e308, -1e308),
    nastyString,
    fc.array(tie('v'), { maxLength: 5 }),
    fc.dictionary(nastyString, tie('v'), { maxKeys: 5 }),
  ),
})).v;

/** JSON text that is not valid JSON (or barely is). */
const brokenJson = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constantFrom(
    '{',
    '{"a":',
    '[1,2',
    '{"v":1,}',
    "{'a':1}",
    'NaN',
    '{"a":1}{"b":2}',
    '\ufeff{}',
    '{"a":"\\u12"}',
    '{"__proto__":{"x":1}}',
  ),
  jsonish.map((v) => {
    const s = JSON.stringify(v) ?? 'null';
    return s.slice(0, Math.max(0, s.length - 1));
  }),
);

/** Percent-encodes a path or query part; lone surrogates (which `encodeURIComponent` refuses) go raw. */
function encodePart(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return s;
  }
}

const deep = (depth: number, open: string, close: string) => open.repeat(depth) + close.repeat(depth);

// ------------------------------------------------------------------ HTTP

t.test('fuzzing the HTTP API of a node (every route, every tx kind)', async (t) => {
  const dir = await makeTempDir(t, 'datagrant-fuzz-');
  const source = await startSyntheticDataPlatform({ port: 0, host: '127.0.0.1' });
  t.teardown(() => source.close());
  const net = await initTestnet({
    dir,
    validators: 1,
    chain: 'datagrant-fuzz',
    institutions: 2,
    basePort: 0,
    blockIntervalMs: 200,
    minBlockIntervalMs: 5,
    sources: [syntheticSourceConfig(source.url) as unknown as Record<string, unknown>],
  });
  const chain = net.genesis.chain;
  const config = await loadNodeConfig(net.nodes[0]!.configPath);
  const errors: string[] = [];
  const logger = createLogger({
    level: 'error',
    destination: { write: (line: string) => void errors.push(line) },
  });
  const node = new DatagrantNode({ ...config, api: { ...config.api, port: 0 } }, logger);
  await node.start();
  t.teardown(() => node.stop());
  const app: FastifyInstance = node.api;
  const bank = await readKeyFile(net.keys.institution);
  // A second bank, valid on chain but not the grantee of anything here.
  const otherBankId = net.institutions[1]!.id;
  const otherBank = await readKeyFile(net.institutions[1]!.key);
  const admin = await readKeyFile(net.keys.admin);
  const registrar = await readKeyFile(net.keys.registrar);
  const nodeKey = await readKeyFile(config.key);
  const alice = generateKeySet('alice');
  const subject = 'alice-fuzz';

  let clientRefused = 0;
  /** Sends one request; fails the property on a 5xx, an uncoded 4xx or a hang. */
  const send = async (where: string, options: InjectOptions): Promise<LightMyRequestResponse> => {
    let res: LightMyRequestResponse;
    try {
      res = await withTimeout(app.inject(options), 15_000, `${options.method} ${options.url}`);
    } catch (err) {
      if ((err as Error).message.startsWith('HANG')) throw err;
      // The request could not even be built (e.g. an invalid header value): no server input.
      clientRefused++;
      inputs[where] = (inputs[where] ?? 0) + 1;
      return { statusCode: 0, body: '', headers: {} } as unknown as LightMyRequestResponse;
    }
    const bad = verdict(res, options.method);
    tally(where, `${res.statusCode} ${codeOf(res)}`.trim());
    if (bad) throw new Error(`${options.method} ${String(options.url).slice(0, 200)} → ${bad}`);
    return res;
  };
  const post = (where: string, url: string, body: string, headers: Record<string, string> = {}) =>
    send(where, {
      method: 'POST',
      url,
      payload: body,
      headers: { 'content-type': 'application/json', ...headers },
    });

  const hex = (n: number) => bytesToHex(crypto.getRandomValues(new Uint8Array(n)));
  const status0 = JSON.parse((await send('setup', { method: 'GET', url: '/v1/status' })).body) as {
    self: string;
  };
  const self = status0.self;
  t.equal(self, bytesToHex(nodeKey.signing.publicKey), 'the node names its own key as the audience');

  /** What a signed call may be made with, beyond its method, path and body (defaults: the bank, here). */
  interface CallOptions {
    keys?: KeySet;
    caller?: string;
    audience?: string;
    chain?: string;
    nonce?: string;
    timestamp?: number;
  }
  const signedHeaders = (method: string, path: string, body: string, o: CallOptions = {}) =>
    signCall(
      {
        method,
        path,
        body,
        caller: o.caller ?? institutionCaller('demo-bank'),
        audience: o.audience ?? self,
        chain: o.chain ?? chain,
        ...(o.nonce !== undefined ? { nonce: o.nonce } : {}),
        ...(o.timestamp !== undefined ? { timestamp: o.timestamp } : {}),
      },
      (o.keys ?? bank).signing.secretKey,
      signFast,
    );
  const signedInject = (method: 'GET' | 'POST', url: string, body: unknown, o: CallOptions = {}) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    return send('setup', {
      method,
      url,
      ...(body === undefined ? {} : { payload: text }),
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...signedHeaders(method, url, text, o),
      },
    });
  };
  /** A transaction signed now by `keys`. */
  const signed = <K extends TxKind>(kind: K, body: TxBody<K>, keys: KeySet, txChain = chain) =>
    signTx(
      { chain: txChain, kind, body },
      keys.signing.publicKey,
      keys.signing.secretKey,
      Date.now(),
      signFast,
    );

  // A subject, a request the bank signed itself, her grant to the bank, and the bank's own usage
  // with the sealed bundle released against it, so routes have real things to find.
  /** Where the ledger put a transaction: 'committed', or the code it refused it with (polled over the API). */
  const outcome = async (hash: string): Promise<string> => {
    for (let i = 0; i < 600; i++) {
      const r = await send('setup', { method: 'GET', url: `/v1/txs/${hash}` });
      const s = JSON.parse(r.body) as { status?: string; error?: { code?: string } };
      if (s.status === 'committed') return 'committed';
      if (s.status === 'rejected') return s.error?.code ?? 'rejected';
      await new Promise((r) => setTimeout(r, 50));
    }
    return 'still pending after 30 s';
  };
  const submit = async (tx: AnyTx) => {
    const r = await post('setup', '/v1/txs', JSON.stringify(tx));
    t.equal(r.statusCode, 202, `setup tx accepted: ${r.body}`);
    t.equal(await outcome(txHash(tx)), 'committed', `setup ${tx.kind} committed`);
  };
  const attestation = attestSubject(
    chain,
    subject,
    { signKey: bytesToHex(alice.signing.publicKey), encKey: bytesToHex(alice.encryption.publicKey) },
    registrar,
  );
  await submit(
    buildRegisterTx(
      { chain, now: Date.now() },
      subject,
      alice,
      bytesToHex(registrar.signing.publicKey),
      attestation,
    ),
  );
  const requestBody: RequestInput = {
    subject,
    types: ['tax', 'social-insurance'],
    purpose: 'fuzzing',
    format: 'json',
    fields: { income: 'tax.annualIncome' },
  };
  const openTx = signed('request.open', { ...requestBody, consentBy: Date.now() + 3_600_000 }, bank);
  const opened = await post('setup', '/v1/requests', JSON.stringify({ tx: openTx }));
  t.equal(
    opened.statusCode,
    201,
    `the bank's own request.open relayed and committed: ${opened.body.slice(0, 200)}`,
  );
  const requestId = (JSON.parse(opened.body) as { id: string }).id;
  t.equal(requestId, txHash(openTx), "the request is the bank's transaction, nothing the node signed");
  let view: RequestView | undefined;
  for (let i = 0; i < 400 && view?.status !== 'waiting-for-consent'; i++) {
    view = JSON.parse(
      (await send('setup', { method: 'GET', url: `/v1/requests/${requestId}` })).body,
    ) as RequestView;
    if (view.status !== 'waiting-for-consent') await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(view?.status, 'waiting-for-consent', 'records extracted');
  const inst = net.genesis.institutions.find((i) => i.institution === 'demo-bank')!;
  const grantee = { institution: 'demo-bank', signKey: inst.signKey, encKey: inst.encKey };
  const grantTx = buildGrantTx(
    { chain, now: Date.now() },
    view!,
    alice,
    { institution: 'demo-bank', encKey: inst.encKey },
    { expiresInMs: 3_600_000, uses: 1000, retainDays: 1 },
  );
  await submit(grantTx);
  const grantId = txHash(grantTx);
  const grantedDigests = grantTx.body.keys.map((k) => k.record);
  t.equal(grantedDigests.length, 2, 'the grant carries a key for both records');
  const bundleId = bundleDigest(chain, grantId, grantedDigests);
  const usageTx = signed('usage', { grant: grantId, bundle: bundleId, format: 'json' }, bank);
  await submit(usageTx);
  const usageId = txHash(usageTx);
  const bundlePath = (request: string, usage: string) => `/v1/requests/${request}/bundle?usage=${usage}`;
  const sealed = await signedInject('GET', bundlePath(requestId, usageId), undefined);
  t.equal(sealed.statusCode, 200, 'sealed bundle released against the usage');
  const verified = verifyBundle(JSON.parse(sealed.body), net.genesis, grantee, {
    request: requestId,
    usage: usageId,
  });
  const plain = openBundle(verified, bank.encryption.secretKey);
  t.same(
    plain.map((r) => r.type).sort(),
    ['social-insurance', 'tax'],
    'the bundle verifies against genesis and opens with the bank key only',
  );
  const personal = plain.flatMap((r) =>
    Object.values(r.fields)
      .map(String)
      .filter((v) => v.length >= 6),
  );
  t.ok(personal.length > 0, `${personal.length} plaintext values in the records`);
  t.same(
    personal.filter((v) => sealed.body.includes(v)),
    [],
    'none of them is in the sealed bundle as sent',
  );

  await t.test('clock-skew window of signed calls: inside accepted, outside refused', async (t) => {
    const url = bundlePath(requestId, usageId);
    for (const [offset, expect] of [
      [-5 * 60 * 1000 + 5000, 200],
      [5 * 60 * 1000 - 5000, 200],
      [-5 * 60 * 1000 - 5000, 401],
      [5 * 60 * 1000 + 5000, 401],
    ] as const) {
      const headers = signedHeaders('GET', url, '', { timestamp: Date.now() + offset });
      const r = await send('signed', { method: 'GET', url, headers });
      t.equal(
        r.statusCode,
        expect,
        `timestamp ${offset > 0 ? '+' : ''}${offset / 1000} s → ${r.statusCode} ${codeOf(r)}`,
      );
      if (expect === 401) t.equal(codeOf(r), 'API_STALE_CALL', 'refused as stale');
    }
  });

  await t.test('over real HTTP: server-sent events, and the bank client opening the bundle', async (t) => {
    for (const path of ['/v1/events', `/v1/requests/${requestId}/events`]) {
      const controller = new AbortController();
      const r = await fetch(`${node.apiUrl}${path}`, { signal: controller.signal });
      t.equal(r.status, 200, `${path} streams`);
      t.match(r.headers.get('content-type') ?? '', /text\/event-stream/);
      const reader = r.body!.getReader();
      const first = await reader.read();
      t.ok(first.value && first.value.length > 0, `${path} sent its first event`);
      controller.abort();
      await reader.cancel().catch(() => {});
    }
    const client = new DatagrantClient({
      api: node.apiUrl,
      institution: 'demo-bank',
      keys: bank,
      genesis: net.genesis,
    });
    const doc = await client.document(requestId, { usage: usageId });
    t.equal(doc.bundleDigest, bundleId, 'the client re-fetched the bundle of the committed usage');
    t.equal(doc.records.length, 2, 'and opened both records on its own side');
  });

  // ---- every route in the OpenAPI document, with fuzzed parameters, query strings and bodies
  const openapi = JSON.parse((await send('setup', { method: 'GET', url: '/openapi.json' })).body) as {
    paths: Record<string, Record<string, { summary?: string }>>;
  };
  const routes = Object.entries(openapi.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      path,
      method: method.toUpperCase(),
      sse: /server-sent events/i.test(op.summary ?? ''),
    })),
  );
  t.ok(routes.length >= 15, `${routes.length} routes in the OpenAPI document`);
  const known = [requestId, grantId, usageId, subject, 'demo-bank', '1', 'latest'];
  const paramValue = fc.oneof(
    { weight: 5, arbitrary: nastyString.map(encodePart) },
    { weight: 2, arbitrary: fc.constantFrom(...known) },
    {
      weight: 1,
      arbitrary: fc.string({ unit: fc.constantFrom('a', '-', '0', '.', '%2F', '%', '~'), maxLength: 80 }),
    },
  );
  const query = fc.oneof(
    fc.constant(''),
    fc
      .array(
        fc.tuple(
          fc.constantFrom('before', 'limit', 'all', 'format', 'usage', 'x', '__proto__', ''),
          paramValue,
        ),
        {
          maxLength: 4,
        },
      )
      .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
  );
  const routeInput = fc.record({
    route: fc.constantFrom(...routes),
    params: fc.array(paramValue, { minLength: 4, maxLength: 4 }),
    query,
    body: fc.oneof(
      jsonish.map((v) => JSON.stringify(v) ?? 'null'),
      brokenJson,
    ),
    contentType: fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      '',
      'application/JSON',
    ),
    method: fc.oneof(
      { weight: 8, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom('PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') },
    ),
  });
  await property(
    t,
    'every route with fuzzed params, query and body',
    routeInput,
    async ({ route, params, query, body, contentType, method }) => {
      let k = 0;
      const path = route.path.replace(/\{[^}]+\}/g, () => params[k++ % params.length]!);
      // A server-sent event stream with a real id never ends; those are checked over HTTP below.
      if (route.sse && (k === 0 || known.some((v) => path.includes(v)))) return;
      const m = method ?? route.method;
      const withBody = m !== 'GET' && m !== 'HEAD';
      await send('routes', {
        method: m as InjectOptions['method'],
        url: path + query,
        ...(withBody ? { payload: body, headers: contentType ? { 'content-type': contentType } : {} } : {}),
      });
    },
    runs(3500),
  );

  // ---- random paths and methods
  await property(
    t,
    'unknown paths and methods',
    fc.record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
      segments: fc.array(paramValue, { maxLength: 6 }),
      prefix: fc.constantFrom('/v1/', '/', '/v2/', '/v1/admin/', '//', '/v1/txs/', '/v1/requests/'),
    }),
    async ({ method, segments, prefix }) => {
      await send('paths', { method, url: prefix + segments.join('/') });
    },
    runs(1000),
  );

  // ---- POST /v1/txs: malformed, wrong types, broken JSON, odd content types
  await property(
    t,
    'tx submission: arbitrary JSON values',
    jsonish,
    async (value) => {
      const r = await post('txs', '/v1/txs', JSON.stringify(value) ?? 'null');
      if (r.statusCode < 400) throw new Error(`arbitrary value accepted: ${r.statusCode}`);
    },
    runs(1200),
  );
  await property(
    t,
    'tx submission: broken JSON',
    brokenJson,
    async (text) => {
      await post('txs', '/v1/txs', text);
    },
    runs(800),
  );
  await property(
    t,
    'tx submission: content types',
    fc.tuple(
      fc.oneof(
        fc.constantFrom(
          'text/plain',
          'application/xml',
          'application/x-www-form-urlencoded',
          'multipart/form-data',
          'application/json;charset=latin1',
          'application/jsonx',
          '*/*',
        ),
        fc.string({ maxLength: 30 }),
      ),
      fc.oneof(
        jsonish.map((v) => JSON.stringify(v) ?? ''),
        fc.string(),
      ),
    ),
    async ([type, body]) => {
      await send('txs', { method: 'POST', url: '/v1/txs', payload: body, headers: { 'content-type': type } });
    },
    runs(300),
  );

  // ---- sizes and nesting
  await t.test('huge bodies are refused with 413, deep nesting with a coded 4xx', async (t) => {
    for (const size of [64 * 1024 - 10, 64 * 1024 + 1, 200 * 1024, 1024 * 1024, 8 * 1024 * 1024]) {
      const body = `{"v":1,"pad":"${'x'.repeat(size)}"}`;
      const r = await post('sizes', '/v1/txs', body);
      t.ok(r.statusCode >= 400 && r.statusCode < 500, `${size} bytes → ${r.statusCode} ${codeOf(r)}`);
      if (size > 64 * 1024) t.equal(r.statusCode, 413, `${size} bytes over the limit → 413`);
    }
    const big = await post(
      'sizes',
      '/v1/txs',
      JSON.stringify({ ...grantTx, body: { ...grantTx.body, purpose: 'p'.repeat(30_000) } }),
    );
    t.equal(codeOf(big), 'LEDGER_TX_MALFORMED', 'an oversized field is refused by the schema');
    for (const depth of [10, 1000, 5000, 20_000]) {
      for (const [open, close] of [
        ['[', ']'],
        ['{"a":', '}'],
      ] as const) {
        for (const wrap of [(s: string) => s, (s: string) => `{"v":1,"body":${s}}`]) {
          const r = await post('sizes', '/v1/txs', wrap(deep(depth, open, close).replace(/\}$/, '1}')));
          t.ok(
            r.statusCode >= 400 && r.statusCode < 500,
            `depth ${depth} ${open}: ${r.statusCode} ${codeOf(r)}`,
          );
        }
      }
    }
    const deepRelay = await post('sizes', '/v1/requests', `{"tx":${deep(3000, '[', ']')}}`);
    t.equal(deepRelay.statusCode, 400, 'deep nesting in a relayed request: 400');
    const deepSigned = await signedInject(
      'POST',
      '/v1/requests',
      JSON.parse(`{"a":${deep(3000, '[', ']')}}`),
    );
    t.equal(deepSigned.statusCode, 400, 'deep nesting in a signed request: 400');
  });

  // ---- every tx kind, mutated: bad signatures, wrong chain, replays, expiry, unknown keys
  const keyFor: Record<TxKind, KeySet> = {
    'subject.register': alice,
    'request.open': bank,
    'record.put': nodeKey,
    'record.fail': nodeKey,
    grant: alice,
    deny: alice,
    revoke: alice,
    pause: alice,
    resume: alice,
    usage: bank,
    erase: alice,
    'institution.add': admin,
    'institution.retire': admin,
  };
  const wrapped = () => ({ enc: 'A'.repeat(43), ct: 'C'.repeat(64) });
  const bodyOf = (kind: TxKind): Record<string, unknown> => {
    switch (kind) {
      case 'subject.register':
        return {
          subject: `s-${hex(4)}`,
          encKey: hex(32),
          registrar: bytesToHex(registrar.signing.publicKey),
          attestation: hex(64),
        };
      case 'request.open':
        return {
          subject,
          types: ['tax'],
          purpose: 'x',
          format: 'csv',
          fields: {},
          consentBy: Date.now() + 60_000,
        };
      case 'record.put':
        return {
          request: requestId,
          type: 'tax',
          digest: hex(32),
          size: 10,
          key: wrapped(),
          source: 'src',
          fetchedAt: Date.now(),
          sourceCommitment: hex(32),
        };
      case 'record.fail':
        return { request: requestId, type: 'property', reason: 'SOURCE_DOWN', detail: 'x' };
      case 'grant':
        return { ...grantTx.body, expires: Date.now() + 60_000 };
      case 'deny':
        return { request: hex(32), reason: 'no' };
      // Unknown grants: a fuzzed revoke or usage must not spend the grant the other cases use.
      case 'revoke':
      case 'pause':
      case 'resume':
        return { grant: hex(32) };
      case 'usage':
        return { grant: hex(32), bundle: hex(32), format: 'json' };
      case 'erase':
        return { request: hex(32) };
      case 'institution.add':
        return { institution: `i-${hex(4)}`, name: 'N', signKey: hex(32), encKey: hex(32) };
      case 'institution.retire':
        return { institution: `i-${hex(4)}` };
    }
  };
  const build = (
    kind: TxKind,
    options: { chain?: string; expires?: number; body?: Record<string, unknown>; keys?: KeySet } = {},
  ) => {
    const keys = options.keys ?? keyFor[kind];
    return signTx(
      {
        chain: options.chain ?? chain,
        kind,
        body: (options.body ?? bodyOf(kind)) as TxBody<TxKind>,
        ...(options.expires !== undefined ? { expires: options.expires } : {}),
      },
      keys.signing.publicKey,
      keys.signing.secretKey,
      Date.now(),
      signFast,
    ) as AnyTx;
  };
  const MUTATIONS = [
    'none',
    'bad-sig',
    'wrong-chain',
    'replay',
    'expired',
    'ttl-too-long',
    'unknown-top-key',
    'unknown-body-key',
    'drop-field',
    'wrong-type',
    'unicode',
    'unknown-signer',
    'oversize',
    'sig-of-other-tx',
  ] as const;
  const EXPECT: Partial<Record<(typeof MUTATIONS)[number], string[]>> = {
    'bad-sig': ['LEDGER_BAD_SIGNATURE'],
    'sig-of-other-tx': ['LEDGER_BAD_SIGNATURE'],
    'wrong-chain': ['LEDGER_WRONG_CHAIN'],
    replay: ['LEDGER_TX_DUPLICATE', 'LEDGER_TX_REPLAYED'],
    expired: ['LEDGER_TX_EXPIRED'],
    'ttl-too-long': ['LEDGER_TX_TTL_TOO_LONG'],
    'unknown-top-key': ['LEDGER_TX_MALFORMED'],
    'unknown-body-key': ['LEDGER_TX_MALFORMED'],
    'drop-field': ['LEDGER_TX_MALFORMED'],
    'wrong-type': ['LEDGER_TX_MALFORMED'],
    oversize: ['LEDGER_TX_MALFORMED', 'LEDGER_TX_TOO_LARGE'],
  };
  await property(
    t,
    'every tx kind with every mutation',
    fc.record({
      kind: fc.constantFrom(...TX_KINDS),
      mutation: fc.constantFrom(...MUTATIONS),
      junk: jsonish,
      text: nastyString,
      pick: fc.nat(),
    }),
    async ({ kind, mutation, junk, text, pick }) => {
      let payload: string;
      const tx = build(kind) as unknown as Record<string, unknown> & {
        body: Record<string, unknown>;
        sig: string;
      };
      const fields = Object.keys(tx.body);
      const field = fields[pick % fields.length]!;
      switch (mutation) {
        case 'none':
        case 'replay':
          payload = JSON.stringify(tx);
          break;
        case 'bad-sig':
          payload = JSON.stringify({
            ...tx,
            sig: tx.sig.slice(0, -2) + (tx.sig.endsWith('00') ? '01' : '00'),
          });
          break;
        case 'sig-of-other-tx':
          payload = JSON.stringify({ ...tx, sig: (build(kind) as { sig: string }).sig });
          break;
        case 'wrong-chain':
          payload = JSON.stringify(build(kind, { chain: 'some-other-chain' }));
          break;
        case 'expired':
          payload = JSON.stringify(build(kind, { expires: Date.now() - 1 - (pick % 1_000_000) }));
          break;
        case 'ttl-too-long':
          payload = JSON.stringify(build(kind, { expires: Date.now() + 400 * 24 * 3600 * 1000 }));
          break;
        case 'unknown-top-key':
          payload = JSON.stringify({ ...tx, [text || 'extra']: junk ?? 1 });
          if (Object.hasOwn(tx, text)) return;
          break;
        case 'unknown-body-key': {
          const key = `x${text}`;
          try {
            payload = JSON.stringify(build(kind, { body: { ...bodyOf(kind), [key]: junk ?? 1 } }));
          } catch {
            // Not canonically encodable (e.g. an unsafe integer), so not signable: send it unsigned.
            payload = JSON.stringify({ ...tx, body: { ...tx.body, [key]: junk ?? 1 } });
          }
          break;
        }
        case 'drop-field': {
          const { [field]: _dropped, ...rest } = tx.body;
          if (kind === 'deny' && field === 'reason') return;
          payload = JSON.stringify({ ...tx, body: rest });
          break;
        }
        case 'wrong-type': {
          const current = tx.body[field];
          const replacement =
            typeof current === 'string'
              ? pick % 2 === 0
                ? 12345
                : null
              : typeof current === 'number'
                ? String(current)
                : 'not-an-object';
          payload = JSON.stringify({ ...tx, body: { ...tx.body, [field]: replacement } });
          break;
        }
        case 'unicode': {
          try {
            payload = JSON.stringify(build(kind, { body: { ...bodyOf(kind), [field]: text } }));
          } catch {
            payload = JSON.stringify({ ...tx, body: { ...tx.body, [field]: text } });
          }
          break;
        }
        case 'unknown-signer':
          payload = JSON.stringify(build(kind, { keys: generateKeySet() }));
          break;
        case 'oversize': {
          const textField = fields.find((f) => typeof tx.body[f] === 'string') ?? field;
          payload = JSON.stringify(
            build(kind, { body: { ...bodyOf(kind), [textField]: 'z'.repeat(17_000) } }),
          );
          break;
        }
      }
      let r = await post('tx-kinds', '/v1/txs', payload);
      if (mutation === 'replay') r = await post('tx-kinds', '/v1/txs', payload);
      const expected = EXPECT[mutation];
      if (expected && !expected.includes(codeOf(r)))
        throw new Error(
          `${kind}/${mutation}: expected ${expected.join(' or ')}, got ${r.statusCode} ${r.body.slice(0, 300)}`,
        );
    },
    runs(2000),
  );

  // ---- POST /v1/requests {tx}: the bank's own request.open, mutated. The node only relays it.
  const RELAY = [
    'none',
    'replay',
    'bad-sig',
    'sig-of-other-tx',
    'wrong-chain',
    'expired',
    'ttl-too-long',
    'unknown-top-key',
    'unknown-body-key',
    'drop-field',
    'wrong-type',
    'unicode',
    'unknown-signer',
    'unknown-subject',
    'other-kind',
    'not-a-tx',
    'beside-tx',
    'oversize',
  ] as const;
  const RELAY_EXPECT: Partial<Record<(typeof RELAY)[number], string[]>> = {
    replay: ['LEDGER_TX_REPLAYED'],
    'bad-sig': ['LEDGER_BAD_SIGNATURE'],
    'sig-of-other-tx': ['LEDGER_BAD_SIGNATURE'],
    'wrong-chain': ['LEDGER_WRONG_CHAIN'],
    expired: ['LEDGER_TX_EXPIRED'],
    'ttl-too-long': ['LEDGER_TX_TTL_TOO_LONG'],
    'unknown-body-key': ['LEDGER_TX_MALFORMED'],
    'drop-field': ['LEDGER_TX_MALFORMED'],
    'wrong-type': ['LEDGER_TX_MALFORMED'],
    'other-kind': ['PLATFORM_NOT_A_TX'],
    oversize: ['LEDGER_TX_MALFORMED', 'LEDGER_TX_TOO_LARGE'],
  };
  const relayBody = (n: number): TxBody<'request.open'> => ({
    ...requestBody,
    fields: {},
    types: [(['tax', 'social-insurance', 'housing-fund', 'property'] as const)[n % 4]!],
    purpose: `relay ${n % 1000}`,
    consentBy: Date.now() + 600_000,
  });
  let relayed = 0;
  await property(
    t,
    "POST /v1/requests {tx}: the bank's own request.open, mutated",
    fc.record({
      mutation: fc.constantFrom(...RELAY),
      kind: fc.constantFrom(...TX_KINDS.filter((k) => k !== 'request.open')),
      junk: jsonish,
      text: nastyString,
      n: fc.nat(),
    }),
    async ({ mutation, kind, junk, text, n }) => {
      const base = relayBody(n);
      const tx = signed('request.open', base, bank) as unknown as Record<string, unknown> & {
        body: Record<string, unknown>;
        sig: string;
      };
      const fields = Object.keys(tx.body);
      const field = fields[n % fields.length]!;
      const resign = (
        body: Record<string, unknown>,
        keys = bank,
        o: { chain?: string; expires?: number } = {},
      ) =>
        signTx(
          {
            chain: o.chain ?? chain,
            kind: 'request.open',
            body: body as TxBody<'request.open'>,
            ...(o.expires !== undefined ? { expires: o.expires } : {}),
          },
          keys.signing.publicKey,
          keys.signing.secretKey,
          Date.now(),
          signFast,
        );
      let envelope: unknown = { tx };
      switch (mutation) {
        case 'none':
        case 'replay':
          break;
        case 'bad-sig':
          envelope = { tx: { ...tx, sig: tx.sig.slice(0, -2) + (tx.sig.endsWith('00') ? '01' : '00') } };
          break;
        case 'sig-of-other-tx':
          envelope = { tx: { ...tx, sig: signed('request.open', relayBody(n + 1), bank).sig } };
          break;
        case 'wrong-chain':
          envelope = { tx: resign(base, bank, { chain: 'datagrant-other' }) };
          break;
        case 'expired':
          envelope = { tx: resign(base, bank, { expires: Date.now() - 1 - (n % 1_000_000) }) };
          break;
        case 'ttl-too-long':
          envelope = { tx: resign(base, bank, { expires: Date.now() + 400 * 24 * 3600 * 1000 }) };
          break;
        case 'unknown-top-key':
          if (Object.hasOwn(tx, text)) return;
          envelope = { tx: { ...tx, [text || 'extra']: junk ?? 1 } };
          break;
        case 'unknown-body-key':
          try {
            envelope = { tx: resign({ ...base, [`x${text}`]: junk ?? 1 }) };
          } catch {
            envelope = { tx: { ...tx, body: { ...tx.body, [`x${text}`]: junk ?? 1 } } };
          }
          break;
        case 'drop-field': {
          const { [field]: _dropped, ...rest } = tx.body;
          envelope = { tx: resign(rest) };
          break;
        }
        case 'wrong-type': {
          const current = tx.body[field];
          const replacement = typeof current === 'number' ? String(current) : n % 2 === 0 ? 12345 : null;
          envelope = { tx: resign({ ...base, [field]: replacement }) };
          break;
        }
        case 'unicode':
          try {
            envelope = { tx: resign({ ...base, [field]: text }) };
          } catch {
            envelope = { tx: { ...tx, body: { ...tx.body, [field]: text } } };
          }
          break;
        case 'unknown-signer':
          envelope = { tx: resign(base, generateKeySet()) };
          break;
        case 'unknown-subject':
          envelope = { tx: resign({ ...base, subject: `nobody-${hex(4)}` }) };
          break;
        case 'other-kind':
          // A well-signed transaction of another kind (e.g. the bank's own usage): not relayed.
          envelope = { tx: build(kind) };
          break;
        case 'not-a-tx':
          envelope = n % 3 === 0 ? junk : { tx: junk };
          break;
        case 'beside-tx':
          if (text === 'tx') return;
          envelope = { tx, [text]: junk ?? 1 };
          break;
        case 'oversize':
          envelope = { tx: resign({ ...base, purpose: 'z'.repeat(17_000) }) };
          break;
      }
      const payload = JSON.stringify(envelope) ?? 'null';
      let r = await post('relay', '/v1/requests', payload);
      if (mutation === 'none' || mutation === 'replay') {
        if (
          r.statusCode !== 201 ||
          (JSON.parse(r.body) as { id?: string }).id !== txHash(tx as unknown as AnyTx)
        )
          throw new Error(`a valid request.open was not relayed: ${r.statusCode} ${r.body.slice(0, 300)}`);
        relayed++;
      }
      if (mutation === 'replay') r = await post('relay', '/v1/requests', payload);
      const expected = RELAY_EXPECT[mutation];
      if (expected && !expected.includes(codeOf(r)))
        throw new Error(
          `relay/${mutation}: expected ${expected.join(' or ')}, got ${r.statusCode} ${r.body.slice(0, 300)}`,
        );
      if (
        [
          'unknown-signer',
          'unknown-subject',
          'not-a-tx',
          'beside-tx',
          'unknown-top-key',
          'other-kind',
        ].includes(mutation) &&
        (r.statusCode < 400 || r.statusCode >= 500)
      )
        throw new Error(`relay/${mutation}: expected a refusal, got ${r.statusCode} ${r.body.slice(0, 300)}`);
    },
    runs(500),
  );
  t.ok(relayed > 0, `${relayed} valid request.open relayed and committed during the fuzzing`);

  // ---- usage of the real grant, mutated: only the grantee, naming exactly the granted bundle
  const USAGE = [
    'none',
    'random-bundle',
    'bundle-of-other-grant',
    'bundle-of-one-record',
    'bundle-of-other-chain',
    'bundle-with-extra-record',
    'other-institution',
    'subject',
    'node',
    'registrar',
    'unknown-grant',
    'grant-is-request',
    'old-body',
    'bad-format',
    'bundle-garbage',
  ] as const;
  const USAGE_EXPECT: Record<(typeof USAGE)[number], string> = {
    none: 'committed',
    'random-bundle': 'LEDGER_BUNDLE_MISMATCH',
    'bundle-of-other-grant': 'LEDGER_BUNDLE_MISMATCH',
    'bundle-of-one-record': 'LEDGER_BUNDLE_MISMATCH',
    'bundle-of-other-chain': 'LEDGER_BUNDLE_MISMATCH',
    'bundle-with-extra-record': 'LEDGER_BUNDLE_MISMATCH',
    'other-institution': 'LEDGER_NOT_GRANTEE',
    subject: 'LEDGER_NOT_GRANTEE',
    node: 'LEDGER_NOT_GRANTEE',
    registrar: 'LEDGER_NOT_GRANTEE',
    'unknown-grant': 'LEDGER_UNKNOWN_GRANT',
    'grant-is-request': 'LEDGER_UNKNOWN_GRANT',
    'old-body': 'LEDGER_TX_MALFORMED',
    'bad-format': 'LEDGER_TX_MALFORMED',
    'bundle-garbage': 'LEDGER_TX_MALFORMED',
  };
  const admitted: { hash: string; mutation: (typeof USAGE)[number] }[] = [];
  await property(
    t,
    'usage of the real grant, mutated (bundle, signer, grant, body)',
    fc.record({ mutation: fc.constantFrom(...USAGE), text: nastyString, n: fc.nat() }),
    async ({ mutation, text, n }) => {
      const format = (['json', 'csv', 'xml'] as const)[n % 3]!;
      let body: Record<string, unknown> = { grant: grantId, bundle: bundleId, format };
      let keys = bank;
      switch (mutation) {
        case 'random-bundle':
          body.bundle = hex(32);
          break;
        case 'bundle-of-other-grant':
          body.bundle = bundleDigest(chain, n % 2 === 0 ? requestId : hex(32), grantedDigests);
          break;
        case 'bundle-of-one-record':
          body.bundle = bundleDigest(chain, grantId, [grantedDigests[n % 2]!]);
          break;
        case 'bundle-of-other-chain':
          body.bundle = bundleDigest('datagrant-other', grantId, grantedDigests);
          break;
        case 'bundle-with-extra-record':
          body.bundle = bundleDigest(chain, grantId, [...grantedDigests, hex(32)]);
          break;
        case 'other-institution':
          keys = otherBank;
          break;
        case 'subject':
          keys = alice;
          break;
        case 'node':
          keys = nodeKey;
          break;
        case 'registrar':
          keys = registrar;
          break;
        case 'unknown-grant':
          body.grant = hex(32);
          break;
        case 'grant-is-request':
          body.grant = requestId;
          break;
        case 'old-body':
          body = { grant: grantId, document: hex(32), format };
          break;
        case 'bad-format':
          body.format = n % 2 === 0 ? text : 'pdf';
          break;
        case 'bundle-garbage':
          body.bundle = n % 2 === 0 ? `${text}!` : bundleId.toUpperCase();
          break;
        case 'none':
          break;
      }
      let tx: unknown;
      try {
        tx = signed('usage', body as TxBody<'usage'>, keys);
      } catch {
        // Not canonically encodable, so not signable: send it with the signature of the real one.
        tx = { ...usageTx, body };
      }
      const r = await post('usage', '/v1/txs', JSON.stringify(tx));
      const expected = USAGE_EXPECT[mutation];
      if (expected === 'LEDGER_TX_MALFORMED') {
        if (codeOf(r) !== expected)
          throw new Error(
            `usage/${mutation}: expected ${expected}, got ${r.statusCode} ${r.body.slice(0, 300)}`,
          );
        return;
      }
      // The rest is decided by the ledger, in a block: collected, and checked together below.
      if (r.statusCode !== 202)
        throw new Error(`usage/${mutation}: not admitted: ${r.statusCode} ${r.body.slice(0, 300)}`);
      admitted.push({ hash: (JSON.parse(r.body) as { hash: string }).hash, mutation });
    },
    runs(300),
  );
  const decided = await Promise.all(
    admitted.map(async ({ hash, mutation }) => ({
      hash,
      mutation,
      outcome: await outcome(hash),
    })),
  );
  t.same(
    decided.filter((d) => d.outcome !== USAGE_EXPECT[d.mutation]).map((d) => `${d.mutation} → ${d.outcome}`),
    [],
    `each of the ${decided.length} admitted usages was committed or refused by the ledger as expected`,
  );
  const committedUsages = decided.filter((d) => d.outcome === 'committed').map((d) => d.hash);
  const refusedUsages = decided.filter((d) => d.outcome !== 'committed').map((d) => d.hash);
  t.ok(committedUsages.length > 0 && refusedUsages.length > 0, 'both committed and refused usages were made');
  const afterUsage = JSON.parse(
    (await send('setup', { method: 'GET', url: `/v1/requests/${requestId}` })).body,
  ) as RequestView;
  t.equal(afterUsage.grant?.used, 1 + committedUsages.length, 'only the committed usages spent a use');

  // ---- signed calls: the bundle route and the routes only a bank's own gateway serves
  const SIGNED = [
    'none',
    'missing',
    'bad-hex',
    'short-sig',
    'unknown-institution',
    'bad-caller',
    'subject-caller',
    'other-institution',
    'wrong-audience',
    'audience-garbage',
    'wrong-chain',
    'skew-past',
    'skew-future',
    'timestamp-garbage',
    'nonce-reuse',
    'shared-nonce',
    'nonce-garbage',
    'replay',
    'body-changed',
    'path-changed',
    'method-changed',
    'other-key',
    'header-garbage',
    'header-array',
    'schema',
  ] as const;
  type SignedMutation = (typeof SIGNED)[number];
  const AUTH = [...AUTH_ERROR_CODES] as string[];
  const SIGNED_EXPECT: Partial<Record<SignedMutation, string[]>> = {
    missing: ['API_UNAUTHENTICATED'],
    'bad-hex': ['API_UNAUTHENTICATED'],
    'short-sig': ['API_UNAUTHENTICATED'],
    'unknown-institution': ['API_UNAUTHENTICATED'],
    'bad-caller': ['API_UNAUTHENTICATED'],
    'subject-caller': ['API_UNAUTHENTICATED'],
    'wrong-audience': ['API_WRONG_AUDIENCE'],
    'audience-garbage': ['API_UNAUTHENTICATED', 'API_WRONG_AUDIENCE'],
    'wrong-chain': ['API_WRONG_CHAIN'],
    'skew-past': ['API_STALE_CALL'],
    'skew-future': ['API_STALE_CALL'],
    'timestamp-garbage': AUTH,
    'nonce-reuse': ['API_REPLAYED'],
    'nonce-garbage': ['API_UNAUTHENTICATED'],
    replay: ['API_REPLAYED'],
    'body-changed': ['API_BAD_SIGNATURE'],
    'path-changed': ['API_BAD_SIGNATURE'],
    'method-changed': ['API_BAD_SIGNATURE'],
    'other-key': ['API_BAD_SIGNATURE'],
    'header-garbage': AUTH,
    'header-array': AUTH,
  };
  const SIGNED_ROUTES = [
    'bundle',
    'bundle-unknown',
    'bundle-refused-usage',
    'document',
    'open-plain',
  ] as const;
  type SignedRoute = (typeof SIGNED_ROUTES)[number];
  /** What a well-signed call answers: by the bank, and by another (valid) institution. */
  const ANSWER: Record<SignedRoute, { bank: [number, string]; other: [number, string] }> = {
    bundle: { bank: [200, ''], other: [403, 'PLATFORM_NOT_GRANTEE'] },
    'bundle-unknown': {
      bank: [404, 'PLATFORM_REQUEST_NOT_FOUND'],
      other: [404, 'PLATFORM_REQUEST_NOT_FOUND'],
    },
    'bundle-refused-usage': { bank: [403, 'PLATFORM_USAGE_REQUIRED'], other: [403, 'PLATFORM_NOT_GRANTEE'] },
    document: {
      bank: [403, 'PLATFORM_INSTITUTION_NOT_SERVED'],
      other: [403, 'PLATFORM_INSTITUTION_NOT_SERVED'],
    },
    'open-plain': {
      bank: [403, 'PLATFORM_INSTITUTION_NOT_SERVED'],
      other: [403, 'PLATFORM_INSTITUTION_NOT_SERVED'],
    },
  };
  const usages = [usageId, ...committedUsages];
  const answered = (r: LightMyRequestResponse, [status, code]: [number, string], what: string) => {
    if (r.statusCode === 0) return;
    if (r.statusCode !== status || codeOf(r) !== code)
      throw new Error(`${what}: expected ${status} ${code}, got ${r.statusCode} ${r.body.slice(0, 300)}`);
    if (status === 200) {
      const b = JSON.parse(r.body) as { digest?: string; request?: string };
      if (b.digest !== bundleId || b.request !== requestId)
        throw new Error(`${what}: not the granted bundle`);
    }
  };
  await property(
    t,
    'signed calls: bundle, document and plain request routes',
    fc.record({
      mutation: fc.constantFrom(...SIGNED),
      route: fc.constantFrom(...SIGNED_ROUTES),
      text: nastyString,
      junk: jsonish,
      n: fc.nat(),
    }),
    async ({ mutation, route, text, junk, n }) => {
      const method = route === 'open-plain' ? 'POST' : 'GET';
      const otherHash = hex(32);
      const url =
        route === 'open-plain'
          ? '/v1/requests'
          : route === 'document'
            ? `/v1/requests/${requestId}/document`
            : route === 'bundle'
              ? bundlePath(requestId, usages[n % usages.length]!)
              : route === 'bundle-unknown'
                ? bundlePath(otherHash, usageId)
                : bundlePath(requestId, refusedUsages[n % refusedUsages.length] ?? hex(32));
      let body: unknown =
        route === 'open-plain' ? { ...requestBody, purpose: `fuzz ${n % 1000}` } : undefined;
      let sent = url;
      if (mutation === 'schema') {
        if (body !== undefined) body = junk;
        else
          sent = `${url}${route === 'document' ? '?format=' : '&x='}${encodeURIComponent(text.toWellFormed())}`;
      }
      const text0 = body === undefined ? '' : (JSON.stringify(body) ?? 'null');
      const o: CallOptions = {};
      if (mutation === 'unknown-institution') o.caller = institutionCaller('nobody-bank');
      if (mutation === 'subject-caller') Object.assign(o, { caller: `subject:${subject}`, keys: alice });
      if (mutation === 'other-institution' || mutation === 'shared-nonce')
        Object.assign(o, { caller: institutionCaller(otherBankId), keys: otherBank });
      if (mutation === 'other-key') o.keys = generateKeySet();
      if (mutation === 'wrong-audience')
        o.audience = [hex(32), inst.signKey, bytesToHex(registrar.signing.publicKey)][n % 3]!;
      if (mutation === 'wrong-chain')
        o.chain = ['datagrant-other', `${chain}x`, 'datagrant-fuzz-p2p'][n % 3]!;
      if (mutation === 'skew-past') o.timestamp = Date.now() - 5 * 60 * 1000 - 1000 - (n % 100_000);
      if (mutation === 'skew-future') o.timestamp = Date.now() + 5 * 60 * 1000 + 1000 + (n % 100_000);
      if (mutation === 'nonce-garbage')
        o.nonce = ['abc', 'A'.repeat(32), '0'.repeat(65), `${hex(8)}g`][n % 4]!;
      if (mutation === 'nonce-reuse' || mutation === 'shared-nonce') o.nonce = hex(16);
      let signMethod: string = method;
      let signPath = sent;
      let signBody = text0;
      if (mutation === 'method-changed') signMethod = method === 'GET' ? 'POST' : 'GET';
      if (mutation === 'path-changed') {
        signPath = [
          `${sent}x`,
          `${sent}${sent.includes('?') ? '&' : '?'}x=1`,
          /[0-9a-f]{64}/.test(sent) ? sent.replace(/[0-9a-f]{64}/, hex(32)) : `${sent}/`,
        ][n % 3]!;
      }
      if (mutation === 'body-changed' && body === undefined) signBody = 'x';
      const header = (h: Record<string, string>): Record<string, string | string[]> => {
        const headers: Record<string, string | string[]> = { ...h };
        const names = Object.values(SIGNED_CALL_HEADERS);
        if (mutation === 'missing') {
          if (n % 2 === 0) delete headers[names[n % names.length]!];
          else for (const name of names) delete headers[name];
        }
        if (mutation === 'bad-hex')
          headers[SIGNED_CALL_HEADERS.signature] = `zz${h[SIGNED_CALL_HEADERS.signature]!.slice(2)}`;
        if (mutation === 'short-sig')
          headers[SIGNED_CALL_HEADERS.signature] = h[SIGNED_CALL_HEADERS.signature]!.slice(0, 64);
        if (mutation === 'timestamp-garbage') headers[SIGNED_CALL_HEADERS.timestamp] = text;
        // Garbage a signer could not even encode: signed properly, then the header replaced.
        if (mutation === 'bad-caller') headers[SIGNED_CALL_HEADERS.caller] = text;
        if (mutation === 'audience-garbage') headers[SIGNED_CALL_HEADERS.audience] = text;
        if (mutation === 'header-garbage') headers[names[n % names.length]!] = text;
        if (mutation === 'header-array') {
          const name = names[n % names.length]!;
          headers[name] = [h[name]!, h[name]!];
        }
        return headers;
      };
      const payload =
        mutation === 'body-changed' && body !== undefined
          ? JSON.stringify({ ...(body as object), purpose: 'changed' })
          : text0;
      const inject = (h: Record<string, string>): InjectOptions => ({
        method,
        url: sent,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...header(h) },
        ...(body === undefined ? {} : { payload }),
      });
      if (mutation === 'shared-nonce') {
        // Another institution used this nonce first: nonces are per caller, so the bank's is fresh.
        answered(
          await send('signed', inject(signedHeaders(method, sent, text0, o))),
          ANSWER[route].other,
          route,
        );
        delete o.caller;
        delete o.keys;
      }
      const options = inject(signedHeaders(signMethod, signPath, signBody, o));
      let r = await send('signed', options);
      if (r.statusCode === 0) return;
      const what = `${mutation} on ${route}`;
      if (mutation === 'replay' || mutation === 'nonce-reuse') {
        answered(r, ANSWER[route].bank, `${what} (first call)`);
        r = await send(
          'signed',
          mutation === 'replay'
            ? options
            : inject(signedHeaders(method, sent, text0, { ...o, timestamp: Date.now() + 1 })),
        );
      }
      if (mutation === 'none' || mutation === 'shared-nonce') return answered(r, ANSWER[route].bank, what);
      if (mutation === 'other-institution') return answered(r, ANSWER[route].other, what);
      if (mutation === 'schema') {
        if (r.statusCode !== 400)
          throw new Error(`${what}: expected 400, got ${r.statusCode} ${r.body.slice(0, 300)}`);
        return;
      }
      const expected = SIGNED_EXPECT[mutation]!;
      if (r.statusCode !== 401 || !expected.includes(codeOf(r)))
        throw new Error(
          `${what}: expected 401 ${expected.join('/')}, got ${r.statusCode} ${r.body.slice(0, 300)}`,
        );
    },
    runs(1500),
  );

  const total = Object.entries(inputs)
    .filter(([k]) => k !== 'setup')
    .reduce((s, [, n]) => s + n, 0);
  t.ok(clientRefused < total * 0.05, `${clientRefused} inputs could not be sent at all (< 5%)`);
  t.same(
    errors.filter((l) => /"level":(50|60)/.test(l)),
    [],
    'no error was logged while fuzzing',
  );
  t.comment(`HTTP inputs: ${JSON.stringify(inputs)} (total ${total})`);
  t.comment(`HTTP outcomes: ${JSON.stringify(outcomes)}`);
  if (SCALE >= 1) t.ok(total >= 10_000, `${total} HTTP inputs (at least 10,000)`);
  const status = await send('setup', { method: 'GET', url: '/v1/status' });
  t.equal(status.statusCode, 200, 'the node still answers after the fuzzing');
});

// ------------------------------------------------------------------ p2p

/** A network that records handlers, so the test can feed them directly. */
class CaptureNetwork implements Network {
  readonly topics = new Map<Topic, MessageHandler[]>();
  readonly protocols = new Map<ProtocolName, RequestHandler>();
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async publish(): Promise<void> {}
  subscribe(topic: Topic, handler: MessageHandler): void {
    this.topics.set(topic, [...(this.topics.get(topic) ?? []), handler]);
  }
  handle(protocol: ProtocolName, handler: RequestHandler): void {
    this.protocols.set(protocol, handler);
  }
  async request(): Promise<Uint8Array> {
    throw new DatagrantError('P2P_PEER_UNREACHABLE', 'no peers in this test');
  }
  peers(): string[] {
    return [];
  }
  topicPeers(): string[] {
    return [];
  }
  listenAddresses(): string[] {
    return [];
  }
  setAllowedKeys(): void {}
  stats(): NetworkStats {
    return emptyStats();
  }
}

t.test('fuzzing the libp2p entry points of a validator', async (t) => {
  const dir = await makeTempDir(t, 'datagrant-fuzz-p2p-');
  const net = await initTestnet({ dir, validators: 4, chain: 'datagrant-fuzz-p2p', basePort: 0 });
  const config = await loadNodeConfig(net.nodes[0]!.configPath);
  const capture = new CaptureNetwork();
  const node = new DatagrantNode({ ...config, api: { ...config.api, port: 0 } }, silentLogger, {
    createNetwork: () => capture,
  });
  await node.start();
  t.teardown(() => node.stop());
  const chain = net.genesis.chain;
  const from = net.nodes[1]!.key;
  const peerKeys = await Promise.all(net.nodes.map((n) => readKeyFile(join(n.home, 'node-key.json'))));
  const admin = await readKeyFile(net.keys.admin);

  const dropped = async (): Promise<number> => {
    const text = (await node.api.inject({ method: 'GET', url: '/metrics' })).body;
    let sum = 0;
    for (const m of text.matchAll(/^datagrant_consensus_messages_dropped_total\{reason="[^"]+"\} (\d+)/gm))
      sum += Number(m[1]);
    return sum;
  };
  const waitFor = async (what: string, fn: () => Promise<boolean> | boolean) => {
    for (let i = 0; i < 400; i++) {
      if (await fn()) return true;
      await new Promise((r) => setTimeout(r, 25));
    }
    t.fail(`timed out waiting for ${what}`);
    return false;
  };

  await t.test('decodeMessage never throws', async (t) => {
    const header = {
      chain,
      height: 1,
      prev: '0'.repeat(64),
      txRoot: '0'.repeat(64),
      txCount: 0,
      stateRoot: '0'.repeat(64),
      proposer: from,
      view: 0,
      time: 1,
    };
    const proposal = signProposal(chain, 1, 0, { header, txs: [] }, from, (b) =>
      signFast(b, peerKeys[1]!.signing.secretKey),
    );
    const structured = fc.record({
      base: fc.constantFrom<Record<string, unknown>>(
        proposal as unknown as Record<string, unknown>,
        signVote('prepare', chain, 1, 0, '0'.repeat(64), from, (b) =>
          signFast(b, peerKeys[1]!.signing.secretKey),
        ) as unknown as Record<string, unknown>,
      ),
      key: fc.constantFrom('type', 'chain', 'height', 'view', 'sender', 'sig', 'block', 'extra', '__proto__'),
      value: jsonish,
    });
    await property(
      t,
      'decodeMessage on bytes, JSON and mutated messages',
      fc.oneof(
        fc.uint8Array({ maxLength: 2000 }).map((b) => b as unknown),
        jsonish,
        brokenJson.map((s) => utf8ToBytes(s) as unknown),
        structured.map(({ base, key, value }) => ({ ...base, [key]: value }) as unknown),
      ),
      async (input) => {
        tally('decodeMessage', 'decoded');
        const r = decodeMessage(input);
        if (typeof r.ok !== 'boolean') throw new Error('no verdict');
      },
      runs(3000),
    );
    const big = new Uint8Array(65 * 1024 * 1024);
    t.notOk(decodeMessage(big).ok, 'a message over the size limit is refused');
  });

  await t.test('consensus topic: every garbage message is dropped and counted', async (t) => {
    const handler = capture.topics.get('consensus')![0]!;
    const before = await dropped();
    let fed = 0;
    await property(
      t,
      'consensus gossip garbage',
      fc.oneof(
        fc.uint8Array({ maxLength: 2000 }),
        jsonish.map((v) => utf8ToBytes(JSON.stringify({ r: 1, m: v }) ?? 'null')),
        // Compact proposals: garbage messages and garbage transaction refs.
        fc
          .tuple(jsonish, jsonish)
          .map(([m, refs]) => utf8ToBytes(JSON.stringify({ r: 1, m, t: refs ?? null }) ?? 'null')),
        brokenJson.map((s) => utf8ToBytes(s)),
        fc.nat({ max: 20_000 }).map((d) => utf8ToBytes(`{"r":1,"m":${deep(d, '[', ']')}}`)),
      ),
      async (bytes) => {
        fed++;
        tally('consensus-topic', 'fed');
        handler(bytes, from);
      },
      runs(1500),
    );
    const ok = await waitFor('every consensus input counted', async () => (await dropped()) - before >= fed);
    if (ok) t.equal((await dropped()) - before, fed, `all ${fed} garbage messages dropped and counted`);
    // Well-formed, properly signed messages from a peer are processed, not crashed on.
    for (let h = 1; h <= 50; h++) {
      const vote = signVote(
        h % 2 ? 'prepare' : 'commit',
        chain,
        1 + (h % 3),
        h % 4,
        bytesToHex(crypto.getRandomValues(new Uint8Array(32))),
        net.nodes[h % 4]!.key,
        (b) => signFast(b, peerKeys[h % 4]!.signing.secretKey),
      );
      handler(utf8ToBytes(JSON.stringify({ r: h, m: vote })), from);
      tally('consensus-topic', 'signed-vote');
    }
    t.equal(
      (await node.api.inject({ method: 'GET', url: '/v1/status' })).statusCode,
      200,
      'the node still runs',
    );
  });

  await t.test('transaction gossip: every input admitted or dropped and counted', async (t) => {
    const handlers = [...(capture.topics.get('txs') ?? []), ...(capture.topics.get('requests') ?? [])];
    t.equal(handlers.length, 2, 'the node listens on txs and requests');
    const counted = () => node.gossipDropped['tx-malformed'] + node.gossipDropped['tx-refused'];
    const before = counted();
    const mempoolBefore = node.mempool.size;
    let fed = 0;
    const validTx = (i: number) =>
      signTx(
        {
          chain,
          kind: 'institution.add',
          body: {
            institution: `g-${i}-${bytesToHex(crypto.getRandomValues(new Uint8Array(4)))}`,
            name: 'G',
            signKey: '1'.repeat(64),
            encKey: '2'.repeat(64),
          },
        },
        admin.signing.publicKey,
        admin.signing.secretKey,
        Date.now(),
        signFast,
      );
    await property(
      t,
      'tx gossip inputs',
      fc.record({
        which: fc.nat({ max: 1 }),
        input: fc.oneof(
          fc.uint8Array({ maxLength: 1000 }),
          jsonish.map((v) => utf8ToBytes(JSON.stringify(v) ?? 'null')),
          brokenJson.map((s) => utf8ToBytes(s)),
          fc
            .tuple(fc.nat(), fc.constantFrom('sig', 'chain', 'expires', 'body', 'kind', 'extra'))
            .map(([i, key]) => {
              const tx = validTx(i) as unknown as Record<string, unknown>;
              return utf8ToBytes(JSON.stringify({ ...tx, [key]: key === 'expires' ? 1 : 'bad' }));
            }),
          fc.nat().map((i) => utf8ToBytes(JSON.stringify(validTx(i)))),
        ),
      }),
      async ({ which, input }) => {
        fed++;
        tally('tx-gossip', 'fed');
        handlers[which]!(input, from);
      },
      runs(1500),
    );
    await waitFor(
      'every gossiped tx admitted or counted',
      () => counted() - before + (node.mempool.size - mempoolBefore) >= fed,
    );
    t.equal(
      counted() - before + (node.mempool.size - mempoolBefore),
      fed,
      `all ${fed} inputs admitted (${node.mempool.size - mempoolBefore}) or dropped and counted (${counted() - before})`,
    );
  });

  for (const protocol of ['sync', 'txs', 'payload'] as const) {
    await t.test(`${protocol} request handler: answers or a coded refusal, never a hang`, async (t) => {
      const handler = capture.protocols.get(protocol)!;
      t.ok(handler, `${protocol} is served`);
      await property(
        t,
        `${protocol} requests`,
        fc.oneof(
          fc.uint8Array({ maxLength: 500 }),
          jsonish.map((v) => utf8ToBytes(JSON.stringify(v) ?? 'null')),
          jsonish.map((v) => utf8ToBytes(JSON.stringify({ from: v }))),
          jsonish.map((v) => utf8ToBytes(JSON.stringify({ hashes: v }))),
          fc
            .array(fc.oneof(hexString(64, 64), hexString(0, 70)), { maxLength: 3000 })
            .map((hashes) => utf8ToBytes(JSON.stringify({ hashes }))),
          fc
            .oneof(fc.integer(), fc.double(), fc.constantFrom(0, 1, 2 ** 53, -1, 1e308))
            .map((f) => utf8ToBytes(JSON.stringify({ from: f }))),
          hexString(60, 70).map((s) => utf8ToBytes(s)),
          brokenJson.map((s) => utf8ToBytes(s)),
        ),
        async (req) => {
          try {
            const res = await withTimeout(handler(req, from), 10_000, protocol);
            if (!(res instanceof Uint8Array)) throw new Error('not bytes');
            tally(`${protocol}-protocol`, 'answered');
          } catch (err) {
            if ((err as Error).message.startsWith('HANG')) throw err;
            if (!(err instanceof DatagrantError) || !CODE.test(err.code))
              throw new Error(`uncoded failure: ${(err as Error).stack}`);
            tally(`${protocol}-protocol`, err.code);
          }
        },
        runs(700),
      );
    });
  }

  const p2p = [
    'decodeMessage',
    'consensus-topic',
    'tx-gossip',
    'sync-protocol',
    'txs-protocol',
    'payload-protocol',
  ];
  t.comment(`p2p inputs: ${JSON.stringify(Object.fromEntries(p2p.map((k) => [k, inputs[k] ?? 0])))}`);
  t.equal(
    (await node.api.inject({ method: 'GET', url: '/v1/status' })).statusCode,
    200,
    'the validator still runs',
  );
});
