/**
 * Bad input, fuzzed: every HTTP route (from the node's own OpenAPI document, plus targeted
 * generators for transaction submission, every tx kind, the bank's own `request.open` relayed
 * through POST /v1/requests {tx}, the bank's `usage` of a real grant) and every libp2p entry point
 * (consensus decoding and the consensus topic, the transaction gossip topics, the sync and payload
 * request handlers). Every input must end in a coded 4xx (`{error: {code, message}}`) or an
 * accepted answer, or be dropped and counted — never a 5xx, a crash or a hang.
 *
 * Every route whose OpenAPI summary says it takes a signed call is fuzzed with correctly signed
 * calls (a fresh nonce each, this node as audience, this chain) by the bank, another bank, a bank
 * that owns nothing, the subject and another subject, so that the inputs get past authentication
 * into the handler: the owner of a resource gets it, everyone else the authorization refusal the
 * route documents. Those inputs are counted per route. Badly signed and unsigned calls to the same
 * routes must get the exact 401 code. JSON bodies carry lone and reversed surrogates, strings not in
 * NFC, numbers outside the safe range, floats, -0, exponent forms and deep nesting: a body canonical
 * JSON cannot encode is 400 API_UNENCODABLE, exactly; one it can is never refused as such.
 *
 * The node under test is a validator: it holds no institution's key, so the banks and subjects sign
 * here, as their clients would. In-process nodes with `app.inject()` keep it fast; FUZZ_SEED
 * replays a run, FUZZ_SCALE scales it.
 */
import '../../src/common/polyfill.js';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import t, { type Test } from 'tap';
import { startSyntheticDataPlatform, syntheticSourceConfig } from '../../scripts/synthetic-data-platform.js';
import { AUTH_ERROR_CODES } from '../../src/api/http-auth.js';
import { DatagrantClient, openBundle, verifyBundle } from '../../src/client/index.js';
import { bytesToHex, utf8ToBytes } from '../../src/common/bytes.js';
import { signFast, verifyFast } from '../../src/common/crypto-node.js';
import { DatagrantError } from '../../src/common/errors.js';
import { institutionCaller, SIGNED_CALL_HEADERS, signCall } from '../../src/common/http-signature.js';
import { generateKeySet, type KeySet } from '../../src/common/keyfile.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { createLogger, silentLogger } from '../../src/common/logger.js';
import { decodeMessage, signProposal, signVote } from '../../src/consensus/index.js';
import {
  type AnyTx,
  bundleDigest,
  DATA_TYPES,
  type StateValueProof,
  signTx,
  stateKey,
  TX_KINDS,
  type TxBody,
  type TxKind,
  type TxProof,
  txHash,
  verifyStateValueProof,
  verifyTxProof,
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
import type { RequestInput, RequestView } from '../../src/platform/views.js';
import { addInstitutionChange, councilKeys } from '../helpers/council.js';
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
/** Signed inputs that got past authentication (into authorization and the handler), by route. */
const pastAuth: Record<string, number> = {};

const CODE = /^[A-Z][A-Z0-9_]{2,63}$/;
/** Codes of refusals made before a route's handler runs (so before any signature is checked). */
const EARLY_CODES = new Set([
  'API_BAD_REQUEST',
  'API_BAD_URL',
  'API_URI_TOO_LONG',
  'API_UNENCODABLE',
  'API_BAD_JSON',
  'API_UNSUPPORTED_MEDIA_TYPE',
  'API_BODY_TOO_LARGE',
  'API_NOT_FOUND',
]);
const AUTH = [...AUTH_ERROR_CODES] as string[];

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

/** Whether a response was refused before the route's handler ran. */
const early = (res: LightMyRequestResponse) => res.statusCode >= 400 && EARLY_CODES.has(codeOf(res));

/**
 * Whether canonical JSON can encode a parsed JSON value, from the rules themselves (not the node's
 * code): safe integers only (so no floats, and -0 is 0), well-formed strings and keys (no lone or
 * reversed surrogates), at most 32 levels of nesting below the top value.
 */
function encodable(value: unknown, depth = 0): boolean {
  if (depth > 32) return false;
  if (value === null || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isSafeInteger(value);
  if (typeof value === 'string') return value.isWellFormed();
  if (Array.isArray(value)) return value.every((v) => encodable(v, depth + 1));
  return Object.entries(value as object).every(([k, v]) => k.isWellFormed() && encodable(v, depth + 1));
}

/** `encodable` of a JSON text; undefined when the text is not JSON (or empty). */
function encodableText(text: string): boolean | undefined {
  if (text.length === 0) return undefined;
  try {
    return encodable(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/**
 * Failure text safe to report: every character outside printable ASCII escaped. (Tap cuts a test
 * point at a U+2028 and loses the rest, so a fuzzed string in a failure would hide the failure.)
 */
const printable = (text: string) =>
  text.replace(/[^\x20-\x7e\n]/gu, (c) =>
    [...c].map((u) => `\\u{${u.codePointAt(0)!.toString(16)}}`).join(''),
  );

/** Runs a fast-check property as one tap assertion (the counterexample and seed in the failure). */
async function property<T>(
  t: Test,
  name: string,
  arb: fc.Arbitrary<T>,
  check: (value: T) => Promise<void>,
  numRuns: number,
): Promise<void> {
  const started = performance.now();
  try {
    await fc.assert(fc.asyncProperty(arb, check), { numRuns, seed: SEED, endOnFailure: true });
    t.pass(`${name}: ${numRuns} inputs (${Math.round(performance.now() - started)} ms)`);
  } catch (err) {
    const message = (err as Error).message;
    const cause = (err as Error).cause as Error | undefined;
    t.fail(
      printable(
        `${name}: ${message.slice(0, 600)}${message.length > 600 ? ` … ${message.slice(-1400)}` : ''}\n${cause?.message?.slice(0, 2000) ?? ''}`,
      ),
    );
  }
}

// ------------------------------------------------------------------ generators

/** Lower-case hex strings of a length in [min, max]. */
const hexString = (minLength: number, maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength, maxLength });

/** Strings that are not in Unicode normalization form C: each differs from its own NFC form. */
const NON_NFC = [
  'cafe\u0301',
  'A\u030a',
  '\u212b',
  '\u2126',
  '\u1100\u1161\u11a8',
  'e\u0301\u0301',
  'o\u0308\u0304',
  'C\u0327\u0301',
  '\u0958',
  'n\u0303',
  'Zu\u0308rich',
];
/** Lone high and low surrogates, and pairs in the wrong order. */
const BAD_SURROGATES = [
  '\ud800',
  '\udbff',
  '\udc00',
  '\udfff',
  '\ude00\ud83d',
  '\udc00\ud800',
  'a\ud83d',
  '\ude00z',
];

/** Strings with the edge cases: control characters, surrogates, non-NFC, BOM, RTL marks, emoji, long runs. */
const nastyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({
    unit: fc.constantFrom(
      '\u0000',
      '\ud800',
      '\udfff',
      '\udc00\ud800',
      '\ufeff',
      '\u202e',
      '\u2028',
      '😀',
      'e\u0301',
      '\u212b',
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
    '-0',
    '1e308',
    'NaN',
    'null',
    '__proto__',
    'constructor',
    '..',
    '%00',
    'a'.repeat(200),
    ...NON_NFC,
    ...BAD_SURROGATES,
  ),
  hexString(63, 65),
);

/**
 * Number texts as JSON may write them: safe integers, exponent forms (some of them integers), -0,
 * floats, and integers outside ±(2^53 - 1), up to ones that parse to Infinity.
 */
const NUMBER_TEXTS = [
  '0',
  '-0',
  '1',
  '-1',
  '1e3',
  '1E3',
  '1e+3',
  '10e-1',
  '1.0',
  '-0.0',
  '0e5',
  '1.5',
  '0.1',
  '-2.5',
  '1e-7',
  '3.14e2',
  '5e-1',
  '9007199254740991',
  '-9007199254740991',
  '9007199254740992',
  '-9007199254740992',
  '9007199254740993',
  '9.007199254740993e15',
  '1e16',
  '1e21',
  '1e308',
  '2e308',
  '-2e308',
  '123456789012345678901234567890',
  '4.9e-324',
];
const numberText = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NUMBER_TEXTS) },
  { weight: 1, arbitrary: fc.integer().map(String) },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: -999, max: 999 }), fc.integer({ min: -20, max: 20 }))
      .map(([m, e]) => `${m}e${e}`),
  },
);

/** A piece of JSON text kept as written (a number form, or nesting built as text). */
class Raw {
  constructor(readonly text: string) {}
}
/** JSON text of a value that may hold `Raw` pieces. */
function toJson(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

const deep = (depth: number, open: string, close: string) => open.repeat(depth) + close.repeat(depth);

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

/** Values for JSON text with the canonical-JSON edge cases: number forms, surrogates, nesting around the limit. */
const edgeValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', maxDepth: 3 },
    numberText.map((s) => new Raw(s)),
    fc.constantFrom(...BAD_SURROGATES, ...NON_NFC, 'plain'),
    nastyString,
    fc
      .tuple(fc.integer({ min: 28, max: 40 }), fc.constantFrom<[string, string]>(['[', ']'], ['{"a":', '}']))
      .map(
        ([n, [open, close]]) =>
          new Raw(open === '[' ? deep(n, '[', ']') : `${open.repeat(n)}1${close.repeat(n)}`),
      ),
    fc.constantFrom(100, 1000).map((n) => new Raw(deep(n, '[', ']'))),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(nastyString, fc.constantFrom(...BAD_SURROGATES)), tie('v'), { maxKeys: 4 }),
  ),
})).v;
/** JSON text (always valid JSON) built from `edgeValue`. */
const edgeJson = edgeValue.map(toJson);

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
    '{"a":-}',
    '{"a":1e}',
    '{"a":01}',
    '{"a":.5}',
    '{"a":+1}',
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

/**
 * Percent-encodes every character; a lone surrogate becomes the three bytes it would have in
 * WTF-8 (`%ED%A0%80`), which are not UTF-8: the URL stays signable (it is ASCII) yet decodes to
 * nothing valid.
 */
function looseEncode(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c >= 0xd800 && c <= 0xdfff)
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('');
    else out += encodeURIComponent(ch);
  }
  return out;
}

/** A query string for routes that have no query schema (so it is ignored, yet signed over). */
const signableQuery = fc.oneof(
  { weight: 2, arbitrary: fc.constant('') },
  {
    weight: 3,
    arbitrary: fc
      .array(
        fc.tuple(
          fc.constantFrom('x', 'q', '__proto__', 'all', 'usage', 'format', 'before', 'limit', ''),
          fc.oneof(
            nastyString.map(looseEncode),
            numberText.map(encodeURIComponent),
            fc.constantFrom(...NON_NFC).map(encodeURIComponent),
          ),
        ),
        { minLength: 1, maxLength: 3 },
      )
      .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
  },
);

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
  // The per-institution rate limit would turn a fast machine's fuzzing into 429s (which says
  // nothing about input handling, and would make the counts depend on speed): raised here.
  const node = new DatagrantNode(
    {
      ...config,
      api: {
        ...config.api,
        port: 0,
        rateLimit: {
          ...config.api.rateLimit,
          perInstitution: { ratePerSecond: 1_000_000, burst: 10_000_000 },
        },
      },
    },
    logger,
  );
  await node.start();
  t.teardown(() => node.stop());
  const app: FastifyInstance = node.api;
  const bank = await readKeyFile(net.keys.institution);
  // A second bank, valid on chain, with a request of its own about another subject.
  const otherBankId = net.institutions[1]!.id;
  const otherBank = await readKeyFile(net.institutions[1]!.key);
  const council = await councilKeys(net.keys.council);
  const admin = council[0]!;
  const registrar = await readKeyFile(net.keys.registrar);
  const nodeKey = await readKeyFile(config.key);
  const alice = generateKeySet('alice');
  const subject = 'alice-fuzz';
  const bob = generateKeySet('bob');
  const bobId = 'bob-fuzz';
  // A third bank, added on chain during the setup, that owns nothing.
  const third = generateKeySet('third');
  const thirdId = 'third-fuzz-bank';

  let clientRefused = 0;
  /**
   * Sends one request; fails the property on a 5xx, an uncoded 4xx or a hang. `json`: the body is
   * JSON, so it must be refused with API_UNENCODABLE exactly when canonical JSON cannot encode it.
   * `route`: a well-signed call to that authenticated route, counted when it gets past authentication.
   */
  const send = async (
    where: string,
    options: InjectOptions,
    meta: { json?: boolean; route?: string } = {},
  ): Promise<LightMyRequestResponse> => {
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
    const what = `${options.method} ${String(options.url).slice(0, 200)}`;
    const bad = verdict(res, options.method);
    tally(where, `${res.statusCode} ${codeOf(res)}`.trim());
    if (bad) throw new Error(`${what} → ${bad}`);
    if (meta.json && typeof options.payload === 'string') {
      const ok = encodableText(options.payload);
      const code = codeOf(res);
      // (A body over the size limit is refused before it is read: 413.)
      if (ok === false && res.statusCode !== 413 && (res.statusCode !== 400 || code !== 'API_UNENCODABLE'))
        throw new Error(
          `${what}: a body canonical JSON cannot encode got ${res.statusCode} ${code}, not 400 API_UNENCODABLE: ${options.payload.slice(0, 200)}`,
        );
      if (ok === true && code === 'API_UNENCODABLE')
        throw new Error(
          `${what}: an encodable body was refused as unencodable: ${options.payload.slice(0, 200)}`,
        );
    }
    if (meta.route && res.statusCode !== 401 && !early(res))
      pastAuth[meta.route] = (pastAuth[meta.route] ?? 0) + 1;
    return res;
  };
  const post = (where: string, url: string, body: string, headers: Record<string, string> = {}) =>
    send(
      where,
      { method: 'POST', url, payload: body, headers: { 'content-type': 'application/json', ...headers } },
      { json: true },
    );

  const hex = (n: number) => bytesToHex(crypto.getRandomValues(new Uint8Array(n)));
  const status0 = JSON.parse((await send('setup', { method: 'GET', url: '/v1/status' })).body) as {
    self: string;
  };
  const self = status0.self;
  t.equal(self, bytesToHex(nodeKey.signing.publicKey), 'the node names its own key as the audience');

  /** Who signs calls: an institution or a subject, with its keys. */
  interface Party {
    name: string;
    kind: 'institution' | 'subject';
    id: string;
    caller: string;
    keys: KeySet;
  }
  const party = (name: string, kind: Party['kind'], id: string, keys: KeySet): Party => ({
    name,
    kind,
    id,
    caller: `${kind}:${id}`,
    keys,
  });
  const P = {
    bank: party('bank', 'institution', 'demo-bank', bank),
    other: party('other-bank', 'institution', otherBankId, otherBank),
    third: party('third-bank', 'institution', thirdId, third),
    alice: party('alice', 'subject', subject, alice),
    bob: party('bob', 'subject', bobId, bob),
  };
  const PARTIES = Object.values(P);
  t.equal(institutionCaller('demo-bank'), P.bank.caller, 'caller names as the library writes them');

  /** What a signed call may be made with, beyond its method, path and body (defaults: the bank, here). */
  interface CallOptions {
    keys?: KeySet;
    caller?: string;
    audience?: string;
    chain?: string;
    nonce?: string;
    timestamp?: number;
  }
  const as = (p: Party): CallOptions => ({ caller: p.caller, keys: p.keys });
  const signedHeaders = (method: string, path: string, body: string, o: CallOptions = {}) =>
    signCall(
      {
        method,
        path,
        body,
        caller: o.caller ?? P.bank.caller,
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
    return send(
      'setup',
      {
        method,
        url,
        ...(body === undefined ? {} : { payload: text }),
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...signedHeaders(method, url, text, o),
        },
      },
      { json: body !== undefined },
    );
  };
  const json = <T>(r: LightMyRequestResponse) => JSON.parse(r.body) as T;
  /** A transaction signed now by `keys`. */
  const signed = <K extends TxKind>(kind: K, body: TxBody<K>, keys: KeySet, txChain = chain) =>
    signTx(
      { chain: txChain, kind, body },
      keys.signing.publicKey,
      keys.signing.secretKey,
      Date.now(),
      signFast,
    );

  // Two subjects, a request the bank signed itself about the first, her grant to the bank and the
  // bank's own usage with the sealed bundle released against it; a request of the other bank about
  // the second subject; a third bank; so that routes have real things to find and refuse.
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
  const register = async (id: string, keys: KeySet) => {
    const attestation = attestSubject(
      chain,
      id,
      { signKey: bytesToHex(keys.signing.publicKey), encKey: bytesToHex(keys.encryption.publicKey) },
      registrar,
    );
    const tx = buildRegisterTx(
      { chain, now: Date.now() },
      id,
      keys,
      bytesToHex(registrar.signing.publicKey),
      attestation,
    );
    await submit(tx);
    return txHash(tx);
  };
  const aliceReg = await register(subject, alice);
  const bobReg = await register(bobId, bob);
  // The third bank's name is not in NFC: kept as signed, byte for byte.
  const thirdName = `Thi\u0301rd ${NON_NFC[0]} Bank`;
  // Added by the council: a proposal, then the second member's approval.
  const thirdAdd = signed(
    'gov.propose',
    { change: addInstitutionChange(thirdId, thirdName, third), deadline: Date.now() + 3600_000 },
    admin,
  );
  await submit(thirdAdd);
  const thirdApprove = signed('gov.approve', { proposal: txHash(thirdAdd) }, council[1]!);
  await submit(thirdApprove);
  const requestBody: RequestInput = {
    subject,
    types: ['tax', 'social-insurance'],
    purpose: 'fuzzing',
    format: 'json',
    fields: { income: 'tax.annualIncome' },
  };
  /** Relays a request.open signed by `keys`; the relay answers only its id, height and status. */
  const relay = async (tx: AnyTx, what: string, tt: Test = t) => {
    const r = await post('setup', '/v1/requests', JSON.stringify({ tx }));
    tt.equal(r.statusCode, 201, `${what} relayed and committed: ${r.body.slice(0, 200)}`);
    const answer = json<Record<string, unknown>>(r);
    tt.same(Object.keys(answer).sort(), ['height', 'id', 'request', 'status'], 'the relay answers no view');
    tt.equal(answer.id, txHash(tx), "the request is the bank's transaction, nothing the node signed");
    return answer.id as string;
  };
  /** Polls a request (a signed read by `reader`) until it waits for consent. */
  const waitForConsent = async (id: string, reader: Party) => {
    let view: RequestView | undefined;
    for (let i = 0; i < 400 && view?.status !== 'waiting-for-consent'; i++) {
      view = json<RequestView>(await signedInject('GET', `/v1/requests/${id}`, undefined, as(reader)));
      if (view.status !== 'waiting-for-consent') await new Promise((r) => setTimeout(r, 50));
    }
    t.equal(view?.status, 'waiting-for-consent', `records extracted for ${id.slice(0, 8)}`);
    return view!;
  };
  const openTx = signed('request.open', { ...requestBody, consentBy: Date.now() + 3_600_000 }, bank);
  const requestId = await relay(openTx, "the bank's own request.open");
  const view = await waitForConsent(requestId, P.bank);
  const bobOpen = signed(
    'request.open',
    {
      subject: bobId,
      types: ['tax'],
      purpose: 'the other bank',
      format: 'csv',
      fields: {},
      consentBy: Date.now() + 3_600_000,
    },
    otherBank,
  );
  const bobRequest = await relay(bobOpen, "the other bank's request.open about bob");
  const bobView = await waitForConsent(bobRequest, P.other);
  const inst = net.genesis.institutions.find((i) => i.institution === 'demo-bank')!;
  const grantee = { institution: 'demo-bank', signKey: inst.signKey, encKey: inst.encKey };
  const grantTx = buildGrantTx(
    { chain, now: Date.now() },
    view,
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
  // The other bank's usage of a grant that is not its own: refused by the ledger.
  const refusedUsageTx = signed('usage', { grant: grantId, bundle: bundleId, format: 'json' }, otherBank);
  t.equal(
    (await post('setup', '/v1/txs', JSON.stringify(refusedUsageTx))).statusCode,
    202,
    'a usage by another bank is admitted to the mempool',
  );
  const refusedUsage = txHash(refusedUsageTx);
  t.equal(await outcome(refusedUsage), 'LEDGER_NOT_GRANTEE', 'and refused by the ledger');
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

  // Every transaction on chain so far, with who it concerns and its signer's role, as the test
  // knows them from having made them (the record.put hashes from the requests' own views).
  interface About {
    kind: TxKind;
    role: string;
    subject?: string;
    institution?: string;
  }
  const about = new Map<string, About>();
  const aliceParty = { subject, institution: 'demo-bank' };
  const bobParty = { subject: bobId, institution: otherBankId };
  about.set(aliceReg, { kind: 'subject.register', role: 'subject', subject });
  about.set(bobReg, { kind: 'subject.register', role: 'subject', subject: bobId });
  about.set(txHash(thirdAdd), { kind: 'gov.propose', role: 'governance' });
  about.set(txHash(thirdApprove), { kind: 'gov.approve', role: 'governance' });
  about.set(requestId, { kind: 'request.open', role: 'institution', ...aliceParty });
  about.set(bobRequest, { kind: 'request.open', role: 'institution', ...bobParty });
  about.set(grantId, { kind: 'grant', role: 'subject', ...aliceParty });
  about.set(usageId, { kind: 'usage', role: 'institution', ...aliceParty });
  for (const r of view.records) about.set(r.tx, { kind: 'record.put', role: 'validator', ...aliceParty });
  for (const r of bobView.records) about.set(r.tx, { kind: 'record.put', role: 'validator', ...bobParty });
  /** Whether `p` may read the body of a transaction: one about no subject, or p is a party to it. */
  const sees = (p: Party | undefined, a: About) =>
    a.subject === undefined ||
    (p?.kind === 'subject' && p.id === a.subject) ||
    (p?.kind === 'institution' && p.id === a.institution);
  const REDACTED_KEYS = ['chain', 'expires', 'kind', 'redacted', 'signer', 'v'];
  /** Why a transaction as shown to `p` is wrong, or undefined. */
  const txViewFault = (
    p: Party | undefined,
    hash: string,
    tx: unknown,
    role: unknown,
  ): string | undefined => {
    const a = about.get(hash);
    if (!a) return `a transaction the test did not make: ${hash}`;
    if (role !== a.role) return `signer role ${String(role)}, not ${a.role}`;
    const shown = tx as Record<string, unknown>;
    if (sees(p, a)) {
      if (shown.redacted !== undefined || txHash(shown as unknown as AnyTx) !== hash)
        return `${p?.name ?? 'anyone'} should see the whole ${a.kind}`;
    } else if (
      Object.keys(shown).sort().join() !== REDACTED_KEYS.join() ||
      shown.redacted !== true ||
      shown.kind !== a.kind
    )
      return `${p?.name ?? 'an anonymous reader'} was shown the body of a ${a.kind} about ${a.subject}: ${JSON.stringify(shown).slice(0, 200)}`;
    return undefined;
  };
  const tip0 = json<{ height: number }>(await send('setup', { method: 'GET', url: '/v1/status' })).height;
  const blockHashes: string[] = [];
  const txHeights = new Map<string, number>();
  const unknownTxs: string[] = [];
  for (let h = 1; h <= tip0; h++) {
    const b = json<{ hash: string; txHashes: string[] }>(
      await send('setup', { method: 'GET', url: `/v1/blocks/${h}` }),
    );
    blockHashes.push(b.hash);
    for (const hash of b.txHashes) {
      txHeights.set(hash, h);
      if (!about.has(hash)) unknownTxs.push(hash);
    }
  }
  t.same(unknownTxs, [], `the test knows every transaction in blocks 1..${tip0}`);
  t.equal(txHeights.size, about.size, 'and every one it made is in them');

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

  await t.test(
    'explorer: bodies and proofs of a subject’s transactions only for her and the bank concerned',
    async (t) => {
      const read = (url: string, p?: Party) =>
        p ? signedInject('GET', url, undefined, as(p)) : send('setup', { method: 'GET', url });
      const height = txHeights.get(grantId)!;
      const anon = json<{ status: string; height: number; tx: Record<string, unknown>; signerRole: string }>(
        await read(`/v1/txs/${grantId}`),
      );
      t.equal(anon.status, 'committed', 'anyone sees that the grant committed');
      t.equal(anon.height, height, 'and where');
      t.same(Object.keys(anon.tx).sort(), REDACTED_KEYS, 'but an anonymous reader sees no body');
      t.equal(anon.tx.redacted, true, 'marked redacted');
      t.equal(anon.tx.kind, 'grant', 'only its kind');
      t.equal(anon.signerRole, 'subject', "and its signer's role");
      const anonProof = await read(`/v1/txs/${grantId}/proof`);
      t.equal(anonProof.statusCode, 403, 'its proof is refused to an anonymous reader');
      t.equal(codeOf(anonProof), 'API_FORBIDDEN', 'with API_FORBIDDEN');
      const anonBlock = await read(`/v1/blocks/${height}`);
      const block = json<{
        block: { txs: Record<string, unknown>[] };
        txHashes: string[];
        signerRoles: string[];
      }>(anonBlock);
      const i = block.txHashes.indexOf(grantId);
      t.ok(i >= 0, 'the block lists the grant by hash');
      t.same(
        Object.keys(block.block.txs[i]!).sort(),
        REDACTED_KEYS,
        'an anonymous block shows no body of it',
      );
      t.equal(block.signerRoles[i], 'subject', 'only the role of its signer');
      t.notOk(anonBlock.body.includes(grantTx.sig), 'the signature is not in the anonymous block');
      t.notOk(anonBlock.body.includes(grantTx.body.keys[0]!.key.ct), 'nor the wrapped key the grant carries');
      for (const [p, sees] of [
        [P.alice, true],
        [P.bank, true],
        [P.bob, false],
        [P.other, false],
        [P.third, false],
      ] as const) {
        const tx = json<{ tx: unknown }>(await read(`/v1/txs/${grantId}`, p)).tx;
        const inBlock = json<{ block: { txs: unknown[] } }>(await read(`/v1/blocks/${height}`, p)).block.txs[
          i
        ];
        const proof = await read(`/v1/txs/${grantId}/proof`, p);
        if (sees) {
          t.same(tx, grantTx, `${p.name}'s signed read of the grant shows it whole`);
          t.same(inBlock, grantTx, `and so does her signed read of its block`);
          t.equal(proof.statusCode, 200, `${p.name} gets the proof`);
          const checked = verifyTxProof(net.genesis, json<TxProof>(proof), verifyFast);
          t.ok(checked.ok && checked.hash === grantId, 'which verifies against genesis alone');
        } else {
          t.same(Object.keys(tx as object).sort(), REDACTED_KEYS, `${p.name}'s signed read shows no body`);
          t.same(Object.keys(inBlock as object).sort(), REDACTED_KEYS, 'nor does the block');
          t.equal(proof.statusCode, 403, `${p.name} gets no proof`);
          t.equal(codeOf(proof), 'API_FORBIDDEN', 'API_FORBIDDEN');
        }
      }
      // Alice's registration concerns her and no institution; bob's, bob.
      t.equal(
        json<{ tx: Record<string, unknown> }>(await read(`/v1/txs/${aliceReg}`, P.alice)).tx.redacted,
        undefined,
        'alice sees her registration',
      );
      t.equal(
        json<{ tx: Record<string, unknown> }>(await read(`/v1/txs/${aliceReg}`, P.bob)).tx.redacted,
        true,
        'bob does not',
      );
      // Governance concerns no subject: public, body and proof.
      const add = json<{ tx: unknown }>(await read(`/v1/txs/${txHash(thirdAdd)}`));
      t.same(add.tx, thirdAdd, 'a council proposal is public');
      t.equal((await read(`/v1/txs/${txHash(thirdAdd)}/proof`)).statusCode, 200, 'and so is its proof');
      const rejected = json<{ status: string; tx?: unknown }>(await read(`/v1/txs/${refusedUsage}`));
      t.equal(rejected.status, 'rejected', 'a refused transaction is shown as refused');
      t.notOk('tx' in rejected, 'without its body');
    },
  );

  await t.test('over real HTTP: server-sent events, and the bank client opening the bundle', async (t) => {
    const stream = async (path: string, p?: Party) => {
      const controller = new AbortController();
      const headers = p ? signedHeaders('GET', path, '', as(p)) : {};
      const r = await fetch(`${node.apiUrl}${path}`, { signal: controller.signal, headers });
      if (r.status !== 200) {
        const body = (await r.json()) as { error?: { code?: string } };
        return { status: r.status, code: body.error?.code };
      }
      t.match(r.headers.get('content-type') ?? '', /text\/event-stream/);
      const reader = r.body!.getReader();
      const first = await reader.read();
      controller.abort();
      await reader.cancel().catch(() => {});
      return { status: 200, first: new TextDecoder().decode(first.value ?? new Uint8Array()) };
    };
    const events = 'GET /v1/requests/{id}/events';
    const count = (s: { status: number; code?: string | undefined }) => {
      if (s.status !== 401 && !EARLY_CODES.has(s.code ?? '')) pastAuth[events] = (pastAuth[events] ?? 0) + 1;
    };
    const all = await stream('/v1/events');
    t.equal(all.status, 200, 'the public block stream is open to anyone');
    for (const p of [P.bank, P.alice]) {
      const s = await stream(`/v1/requests/${requestId}/events`, p);
      count(s);
      t.equal(s.status, 200, `${p.name}'s signed call streams the request`);
      t.match(s.first ?? '', requestId, 'its first event is the request');
    }
    for (const p of [P.bob, P.other, P.third]) {
      const s = await stream(`/v1/requests/${requestId}/events`, p);
      count(s);
      t.same(s, { status: 403, code: 'PLATFORM_NOT_YOURS' }, `${p.name} cannot follow it`);
    }
    t.same(
      await stream(`/v1/requests/${requestId}/events`),
      { status: 401, code: 'API_UNAUTHENTICATED' },
      'nor can an unsigned call',
    );
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

  // ---- the routes of the OpenAPI document; those whose summary says "signed call" authenticate
  const openapi = JSON.parse((await send('setup', { method: 'GET', url: '/openapi.json' })).body) as {
    paths: Record<string, Record<string, { summary?: string }>>;
  };
  const routes = Object.entries(openapi.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      path,
      method: method.toUpperCase(),
      key: `${method.toUpperCase()} ${path}`,
      sse: /server-sent events/i.test(op.summary ?? ''),
      signed: /signed call/i.test(op.summary ?? ''),
      explorer: method === 'get' && /^\/v1\/(blocks|txs)\/\{/.test(path),
    })),
  );
  t.ok(routes.length >= 15, `${routes.length} routes in the OpenAPI document`);
  const authRoutes = routes.filter((r) => r.signed).map((r) => r.key);
  t.ok(authRoutes.length >= 10, `${authRoutes.length} of them take signed calls: ${authRoutes.join(', ')}`);

  // ---- every authenticated route, with correctly signed calls and fuzzed params, queries and bodies
  /** One signed call to make, and what it must answer. */
  interface Plan {
    method: 'GET' | 'POST';
    url: string;
    body?: string;
    by: Party;
    /** Status and code ('' for a success); 'early': refused before the handler (a malformed input). */
    expect: [number, string] | 'early';
    /** Why a successful answer is wrong, or undefined. */
    check?: (body: unknown) => string | undefined;
  }
  const pick = <T>(xs: readonly T[], n: number): T => xs[n % xs.length]!;
  /** Who may read a request (its institution and its subject), and whose bundle it is. */
  const OWNERS = new Map<string, Party[]>([
    [requestId, [P.bank, P.alice]],
    [bobRequest, [P.other, P.bob]],
  ]);
  const INSTITUTION_OF = new Map<string, Party>([
    [requestId, P.bank],
    [bobRequest, P.other],
  ]);
  const BAD_NON_NFC = NON_NFC.map(encodeURIComponent);
  const BAD_SUBJECTS = [
    '123456789012345',
    '110101199003074512',
    '11010119900307451x',
    'Alice-Fuzz',
    'al',
    '-alice',
    'a'.repeat(65),
    '%ED%A0%80',
    '%ED%B0%80%ED%A0%80',
    ...BAD_NON_NFC,
  ];
  const BAD_HEIGHTS = [
    '-1',
    '1e3',
    '1.0',
    '9007199254740993',
    '1234567890123456',
    'LATEST',
    '0x1',
    'a'.repeat(63),
    '%ED%A0%80',
    ...BAD_NON_NFC,
  ];
  const REQUEST_MUTATIONS = [
    'extra-key',
    'long-purpose',
    'no-types',
    'bad-type',
    'bad-format',
    'national-id',
    'bad-field',
    'negative-consent',
    'deep',
  ] as const;
  /** A plain request body (as a bank's own gateway takes it), as JSON text, and whether its schema holds. */
  const requestInput = fc
    .record({
      subject: fc.constantFrom(subject, bobId, 'nobody-fuzz', '0123456789abcdef'),
      types: fc.subarray([...DATA_TYPES], { minLength: 1 }),
      purpose: fc
        .oneof(nastyString, fc.constantFrom(...NON_NFC), fc.constantFrom(...NON_NFC))
        .map((s) => `p${s}`),
      format: fc.constantFrom('json', 'csv', 'xml'),
      fields: fc.constantFrom<Record<string, string>>(
        {},
        { income: 'tax.annualIncome' },
        { a_1: 'social-insurance.monthly', 'x.y-z': 'tax.t' },
      ),
      consentBy: fc.option(numberText, { nil: undefined, freq: 2 }),
      dates: fc.boolean(),
      mutation: fc.oneof(
        { weight: 6, arbitrary: fc.constant('none' as const) },
        { weight: 4, arbitrary: fc.constantFrom(...REQUEST_MUTATIONS) },
      ),
      junk: edgeValue,
      n: fc.integer({ min: 1, max: 60 }),
    })
    .map((i) => {
      const body: Record<string, unknown> = {
        subject: i.subject,
        types: i.types,
        purpose: i.purpose,
        format: i.format,
        fields: i.fields,
      };
      if (i.consentBy !== undefined) body.consentBy = new Raw(i.consentBy);
      if (i.dates) Object.assign(body, { dataFrom: '2024-01-01', dataTo: '2024-12-31' });
      switch (i.mutation) {
        case 'extra-key':
          body[`x${i.purpose}`] = i.junk;
          break;
        case 'long-purpose':
          body.purpose = 'p'.repeat(201);
          break;
        case 'no-types':
          body.types = [];
          break;
        case 'bad-type':
          body.types = ['tax', 'passport'];
          break;
        case 'bad-format':
          body.format = 'pdf';
          break;
        case 'national-id':
          body.subject = pick(['123456789012345', '110101199003074512', '11010119900307451x'], i.n);
          break;
        case 'bad-field':
          body.fields = { income: 'not a path' };
          break;
        case 'negative-consent':
          body.consentBy = new Raw('-1');
          break;
        case 'deep':
          body.x = new Raw(deep(i.n, '[', ']'));
          break;
        case 'none':
          break;
      }
      const consent = i.consentBy === undefined ? 0 : (JSON.parse(i.consentBy) as number);
      const valid =
        i.mutation === 'none' &&
        [...i.purpose].length <= 200 &&
        Number.isSafeInteger(consent) &&
        consent >= 0;
      return { text: toJson(body), valid };
    });
  const common = {
    /** 0-2: the owner of the resource (when it has one) makes the call; 3-4: anyone. */
    owner: fc.nat({ max: 4 }),
    who: fc.nat(),
    target: fc.nat({ max: 9 }),
    /** 19: a malformed parameter or query, refused before the handler. */
    malformed: fc.nat({ max: 19 }),
    pick: fc.nat(),
    text: nastyString,
    query: signableQuery,
  };
  interface Choice {
    route: string;
    owner: number;
    who: number;
    target: number;
    malformed: number;
    pick: number;
    text: string;
    query: string;
    /** A body (POST only). */
    input?: { text: string; valid: boolean };
  }
  const choice: fc.Arbitrary<Choice> = fc.oneof(
    ...authRoutes.map((route) =>
      route.startsWith('POST ')
        ? fc.record({ route: fc.constant(route), ...common, input: requestInput })
        : fc.record({ route: fc.constant(route), ...common }),
    ),
  );
  const partyFor = (c: Choice, owners: readonly Party[]) =>
    c.owner < 3 && owners.length > 0 ? pick(owners, c.who) : pick(PARTIES, c.who);
  const requestTarget = (c: Choice) => (c.target < 4 ? requestId : c.target < 7 ? bobRequest : hex(32));
  const badHash = (c: Choice, h: string) =>
    pick(
      [
        h.toUpperCase(),
        `${h}0`,
        h.slice(2),
        'zz',
        `${h.slice(1)}g`,
        '%ED%A0%80',
        '%',
        pick(BAD_NON_NFC, c.who),
      ],
      c.pick,
    );
  const malformed = (c: Choice) => c.malformed >= 19;
  const subjectOwner = (id: string) => PARTIES.find((p) => p.kind === 'subject' && p.id === id);
  const viewFault = (id: string) => (b: unknown) => {
    const v = b as RequestView;
    const a = about.get(id)!;
    if (v.id !== id || v.subject !== a.subject || v.institution !== a.institution)
      return 'not the request asked for';
    if (v.grant && 'keys' in v.grant) return 'the view carries the keys of the grant';
    return undefined;
  };
  const blockFault = (by: Party, height: number | undefined) => (b: unknown) => {
    const blk = b as {
      hash: string;
      block: { header: { height: number }; txs: unknown[] };
      txHashes: string[];
      signerRoles: unknown[];
    };
    if (height !== undefined && (blk.block.header.height !== height || blk.hash !== blockHashes[height - 1]))
      return 'not the block asked for';
    if (blk.txHashes.length !== blk.block.txs.length || blk.signerRoles.length !== blk.block.txs.length)
      return 'hashes, roles and transactions do not line up';
    for (let i = 0; i < blk.block.txs.length; i++) {
      const fault = txViewFault(by, blk.txHashes[i]!, blk.block.txs[i], blk.signerRoles[i]);
      if (fault) return `tx ${i}: ${fault}`;
    }
    return undefined;
  };
  const knownTxs = [...about.keys()];
  /** The transaction a fuzzed explorer call asks for: known, refused by the ledger, or unknown. */
  const txTarget = (c: Choice) =>
    c.target === 7 ? refusedUsage : c.target === 8 ? hex(32) : pick(knownTxs, c.pick + c.target);
  /** A state answer's fault: its proof fails against genesis, or it is present when it should not be. */
  const provenFault = (key: string, present: boolean) => (b: unknown) => {
    const r = verifyStateValueProof(net.genesis, b as StateValueProof, key, verifyFast);
    if (!r.ok) return `the state proof does not verify: ${r.code}`;
    return (r.value !== null) === present ? undefined : `the entry is ${present ? 'absent' : 'present'}`;
  };
  const PLANNERS: Record<string, (c: Choice) => Plan> = {
    'GET /v1/requests/{id}': (c) => {
      const id = requestTarget(c);
      const owners = OWNERS.get(id) ?? [];
      const by = partyFor(c, owners);
      if (malformed(c))
        return { method: 'GET', url: `/v1/requests/${badHash(c, id)}${c.query}`, by, expect: 'early' };
      const plan = { method: 'GET', url: `/v1/requests/${id}${c.query}`, by } as const;
      if (!OWNERS.has(id)) return { ...plan, expect: [404, 'PLATFORM_REQUEST_NOT_FOUND'] };
      if (!owners.includes(by)) return { ...plan, expect: [403, 'PLATFORM_NOT_YOURS'] };
      return { ...plan, expect: [200, ''], check: viewFault(id) };
    },
    'GET /v1/requests/{id}/events': (c) => {
      const id = requestTarget(c);
      const owners = OWNERS.get(id) ?? [];
      let by = partyFor(c, owners);
      // An owner's stream does not end: those are followed over real HTTP above.
      if (owners.includes(by))
        by = pick(
          PARTIES.filter((p) => !owners.includes(p)),
          c.who,
        );
      if (malformed(c))
        return { method: 'GET', url: `/v1/requests/${badHash(c, id)}/events${c.query}`, by, expect: 'early' };
      const plan = { method: 'GET', url: `/v1/requests/${id}/events${c.query}`, by } as const;
      if (!OWNERS.has(id)) return { ...plan, expect: [404, 'PLATFORM_REQUEST_NOT_FOUND'] };
      return { ...plan, expect: [403, 'PLATFORM_NOT_YOURS'] };
    },
    'GET /v1/requests/{id}/bundle': (c) => {
      const id = requestTarget(c);
      const grantee = INSTITUTION_OF.get(id);
      const by = partyFor(c, grantee ? [grantee] : []);
      const usage = pick([usageId, usageId, refusedUsage, hex(32), requestId, grantId], c.pick);
      if (malformed(c)) {
        const base = `/v1/requests/${id}/bundle`;
        const url = pick(
          [
            bundlePath(badHash(c, id), usage),
            base,
            `${base}?usage=${usage.toUpperCase()}`,
            `${base}?usage=${usage}&x=1`,
            `${base}?usage=`,
            `${base}?usage=${usage}0`,
            `${base}?usage=${pick(BAD_NON_NFC, c.who)}`,
          ],
          c.target,
        );
        return { method: 'GET', url, by, expect: 'early' };
      }
      const plan = { method: 'GET', url: bundlePath(id, usage), by } as const;
      if (by.kind === 'subject') return { ...plan, expect: [403, 'API_FORBIDDEN'] };
      if (!grantee) return { ...plan, expect: [404, 'PLATFORM_REQUEST_NOT_FOUND'] };
      if (by !== grantee) return { ...plan, expect: [403, 'PLATFORM_NOT_GRANTEE'] };
      if (id === bobRequest) return { ...plan, expect: [403, 'PLATFORM_GRANT_REQUIRED'] };
      if (usage !== usageId) return { ...plan, expect: [403, 'PLATFORM_USAGE_REQUIRED'] };
      return {
        ...plan,
        expect: [200, ''],
        check: (b) => {
          const s = b as { digest?: string; request?: string; usage?: string };
          return s.digest === bundleId && s.request === requestId && s.usage === usageId
            ? undefined
            : 'not the granted bundle';
        },
      };
    },
    'GET /v1/requests/{id}/document': (c) => {
      const id = requestTarget(c);
      const i = INSTITUTION_OF.get(id);
      const by = partyFor(c, i ? [i] : [P.bank]);
      const q = pick(['', '?format=json', '?format=csv', '?format=xml'], c.pick);
      if (malformed(c)) {
        const base = `/v1/requests/${id}/document`;
        const url = pick(
          [
            `/v1/requests/${badHash(c, id)}/document${q}`,
            `${base}?format=pdf`,
            `${base}?format=JSON`,
            `${base}?x=1`,
            `${base}?format=${pick(BAD_NON_NFC, c.who)}`,
          ],
          c.target,
        );
        return { method: 'GET', url, by, expect: 'early' };
      }
      return {
        method: 'GET',
        url: `/v1/requests/${id}/document${q}`,
        by,
        expect: by.kind === 'subject' ? [403, 'API_FORBIDDEN'] : [403, 'PLATFORM_INSTITUTION_NOT_SERVED'],
      };
    },
    'POST /v1/requests': (c) => {
      const by = partyFor(c, [P.bank, P.other, P.third]);
      const input = c.input!;
      const plan = { method: 'POST', url: '/v1/requests', body: input.text, by } as const;
      if (encodableText(input.text) === false) return { ...plan, expect: [400, 'API_UNENCODABLE'] };
      if (!input.valid) return { ...plan, expect: [400, 'API_BAD_REQUEST'] };
      return {
        ...plan,
        expect: by.kind === 'subject' ? [403, 'API_FORBIDDEN'] : [403, 'PLATFORM_INSTITUTION_NOT_SERVED'],
      };
    },
    'GET /v1/subjects/{id}/requests': (c) => {
      const id = pick([subject, subject, bobId, bobId, 'nobody-fuzz'], c.target);
      const owner = subjectOwner(id);
      const by = partyFor(c, owner ? [owner] : []);
      const q = pick(['', '?all=true', '?all=false'], c.pick);
      if (malformed(c)) {
        const base = `/v1/subjects/${id}/requests`;
        const url = pick(
          [
            `/v1/subjects/${pick(BAD_SUBJECTS, c.who)}/requests${q}`,
            `${base}?all=maybe`,
            `${base}?x=1`,
            `${base}?all=true&x=${looseEncode(c.text)}`,
          ],
          c.target,
        );
        return { method: 'GET', url, by, expect: 'early' };
      }
      const plan = { method: 'GET', url: `/v1/subjects/${id}/requests${q}`, by } as const;
      if (by !== owner) return { ...plan, expect: [403, 'PLATFORM_NOT_YOURS'] };
      return {
        ...plan,
        expect: [200, ''],
        check: (b) => {
          const list = (b as { requests: RequestView[] }).requests;
          if (list.some((r) => r.subject !== id)) return "another subject's request is listed";
          // Alice's request is granted (listed only with all=true); bob's still waits for him.
          const mine = id === subject ? requestId : bobRequest;
          const listed = list.some((r) => r.id === mine);
          return listed === (q === '?all=true' || id === bobId) ? undefined : `${mine} listed: ${listed}`;
        },
      };
    },
    'GET /v1/subjects/{id}/audit': (c) => {
      const id = pick([subject, subject, bobId, bobId, 'nobody-fuzz'], c.target);
      const owner = subjectOwner(id);
      const by = partyFor(c, owner ? [owner] : []);
      const base = `/v1/subjects/${id}/audit`;
      if (malformed(c)) {
        const url = pick(
          [
            `/v1/subjects/${pick(BAD_SUBJECTS, c.who)}/audit`,
            `${base}?limit=0`,
            `${base}?limit=1001`,
            `${base}?limit=1.5`,
            `${base}?after=-1`,
            `${base}?limit=${looseEncode(c.text)}x`,
            `${base}?x=1`,
          ],
          c.target,
        );
        return { method: 'GET', url, by, expect: 'early' };
      }
      // A page: at most `limit` entries after height `after`, but never half a block.
      const limit = pick([undefined, undefined, 1, 2, 3, 1000], c.pick);
      const after = pick([undefined, undefined, 0, 1 + (c.who % tip0)], c.target);
      const q = [limit === undefined ? '' : `limit=${limit}`, after === undefined ? '' : `after=${after}`]
        .filter(Boolean)
        .join('&');
      const plan = { method: 'GET', url: `${base}${q ? `?${q}` : ''}`, by } as const;
      if (by !== owner) return { ...plan, expect: [403, 'PLATFORM_NOT_YOURS'] };
      const hers = knownTxs
        .filter((h) => about.get(h)!.subject === id && txHeights.get(h)! > (after ?? -1))
        .sort((a, b) => txHeights.get(a)! - txHeights.get(b)!);
      const last = hers.length === 0 ? 0 : txHeights.get(hers[Math.min(limit ?? 500, hers.length) - 1]!)!;
      const page = hers.filter((h) => txHeights.get(h)! <= last).sort();
      const next = page.length < hers.length ? last : undefined;
      return {
        ...plan,
        expect: [200, ''],
        check: (b) => {
          const a = b as { subject: string; entries: { hash: string }[]; next?: number };
          const got = a.entries.map((e) => e.hash).sort();
          if (a.subject !== id) return 'the audit of another subject';
          if (got.join() !== page.join())
            return `the page lists ${got.length} transactions, not her ${page.length}`;
          return a.next === next ? undefined : `next ${a.next}, not ${next}`;
        },
      };
    },
    'GET /v1/blocks/{height}': (c) => {
      const by = pick(PARTIES, c.who);
      const h = 1 + (c.pick % tip0);
      if (malformed(c))
        return {
          method: 'GET',
          url: `/v1/blocks/${pick(BAD_HEIGHTS, c.pick)}${c.query}`,
          by,
          expect: 'early',
        };
      const [param, height]: [string, number | undefined | null] =
        c.target < 6
          ? [String(h), h]
          : c.target === 6
            ? ['latest', undefined]
            : c.target === 7
              ? [blockHashes[h - 1]!, h]
              : c.target === 8
                ? [pick([String(tip0 + 1_000_000 + (c.pick % 1000)), '999999999999999'], c.who), null]
                : [hex(32), null];
      const plan = { method: 'GET', url: `/v1/blocks/${param}${c.query}`, by } as const;
      if (height === null) return { ...plan, expect: [404, 'LEDGER_BLOCK_NOT_FOUND'] };
      return { ...plan, expect: [200, ''], check: blockFault(by, height) };
    },
    'GET /v1/txs/{hash}': (c) => {
      const by = pick(PARTIES, c.who);
      const hash = txTarget(c);
      if (malformed(c))
        return { method: 'GET', url: `/v1/txs/${badHash(c, hash)}${c.query}`, by, expect: 'early' };
      const plan = { method: 'GET', url: `/v1/txs/${hash}${c.query}`, by } as const;
      if (hash === refusedUsage)
        return {
          ...plan,
          expect: [200, ''],
          check: (b) => {
            const s = b as { status: string; error?: { code: string }; tx?: unknown };
            return s.status === 'rejected' && s.error?.code === 'LEDGER_NOT_GRANTEE' && s.tx === undefined
              ? undefined
              : 'not shown as refused';
          },
        };
      if (!about.has(hash)) return { ...plan, expect: [404, 'LEDGER_TX_NOT_FOUND'] };
      return {
        ...plan,
        expect: [200, ''],
        check: (b) => {
          const s = b as { status: string; hash: string; height: number; tx: unknown; signerRole: unknown };
          if (s.status !== 'committed' || s.hash !== hash || s.height !== txHeights.get(hash))
            return 'not where the transaction committed';
          return txViewFault(by, hash, s.tx, s.signerRole);
        },
      };
    },
    'GET /v1/state/requests/{id}': (c) => {
      const id = requestTarget(c);
      const owners = OWNERS.get(id) ?? [];
      const by = partyFor(c, owners);
      if (malformed(c))
        return { method: 'GET', url: `/v1/state/requests/${badHash(c, id)}${c.query}`, by, expect: 'early' };
      const plan = { method: 'GET', url: `/v1/state/requests/${id}${c.query}`, by } as const;
      if (OWNERS.has(id) && !owners.includes(by)) return { ...plan, expect: [403, 'API_FORBIDDEN'] };
      return { ...plan, expect: [200, ''], check: provenFault(stateKey.request(id), OWNERS.has(id)) };
    },
    'GET /v1/state/grants/{id}': (c) => {
      const id = c.target < 6 ? grantId : hex(32);
      const owners = id === grantId ? [P.bank, P.alice] : [];
      const by = partyFor(c, owners);
      if (malformed(c))
        return { method: 'GET', url: `/v1/state/grants/${badHash(c, id)}${c.query}`, by, expect: 'early' };
      const plan = { method: 'GET', url: `/v1/state/grants/${id}${c.query}`, by } as const;
      if (id === grantId && !owners.includes(by)) return { ...plan, expect: [403, 'API_FORBIDDEN'] };
      return { ...plan, expect: [200, ''], check: provenFault(stateKey.grant(id), id === grantId) };
    },
    // Only the node's own key may take a backup or a snapshot: every party is refused after authentication.
    ...Object.fromEntries(
      (['backup', 'snapshot'] as const).map((name) => [
        `GET /v1/admin/${name}`,
        (c: Choice): Plan => {
          const by = pick(PARTIES, c.who);
          if (malformed(c))
            return { method: 'GET', url: `/v1/admin/${name}?since=${c.pick}`, by, expect: 'early' };
          return {
            method: 'GET',
            url: `/v1/admin/${name}${c.query}`,
            by,
            expect: c.query === '' ? [403, 'API_FORBIDDEN'] : 'early',
          };
        },
      ]),
    ),
    'GET /v1/txs/{hash}/proof': (c) => {
      const by = pick(PARTIES, c.who);
      const hash = txTarget(c);
      if (malformed(c))
        return { method: 'GET', url: `/v1/txs/${badHash(c, hash)}/proof${c.query}`, by, expect: 'early' };
      const plan = { method: 'GET', url: `/v1/txs/${hash}/proof${c.query}`, by } as const;
      const a = about.get(hash);
      if (!a) return { ...plan, expect: [404, 'LEDGER_TX_NOT_FOUND'] };
      if (!sees(by, a)) return { ...plan, expect: [403, 'API_FORBIDDEN'] };
      return {
        ...plan,
        expect: [200, ''],
        check: (b) => {
          const r = verifyTxProof(net.genesis, b as TxProof, verifyFast);
          return r.ok && r.hash === hash ? undefined : `the proof does not verify: ${JSON.stringify(r)}`;
        },
      };
    },
  };
  t.same(
    authRoutes.filter((k) => !PLANNERS[k]),
    [],
    'the fuzz has a planner for every route that takes signed calls',
  );
  /** Answers to the fuzzed signed calls, by route, status and code. */
  const signedOutcomes: Record<string, number> = {};
  /** Makes a planned signed call and checks its answer. */
  const runPlan = async (plan: Plan, route: string, where = 'signed-routes') => {
    const body = plan.body;
    const r = await send(
      where,
      {
        method: plan.method,
        url: plan.url,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...signedHeaders(plan.method, plan.url, body ?? '', as(plan.by)),
        },
        ...(body === undefined ? {} : { payload: body }),
      },
      { json: body !== undefined, route },
    );
    const what = `${plan.by.name}: ${plan.method} ${plan.url.slice(0, 160)}`;
    if (r.statusCode === 0) throw new Error(`${what}: a signed call could not be sent`);
    const seen = `${route} → ${r.statusCode} ${r.statusCode >= 400 ? codeOf(r) : ''}`.trim();
    signedOutcomes[seen] = (signedOutcomes[seen] ?? 0) + 1;
    if (plan.expect === 'early') {
      if (!early(r))
        throw new Error(
          `${what}: expected a refusal before the handler, got ${r.statusCode} ${r.body.slice(0, 300)}`,
        );
      return;
    }
    const [status, code] = plan.expect;
    if (r.statusCode !== status || (status >= 400 ? codeOf(r) : '') !== code)
      throw new Error(`${what}: expected ${status} ${code}, got ${r.statusCode} ${r.body.slice(0, 300)}`);
    const fault = status === 200 ? plan.check?.(JSON.parse(r.body)) : undefined;
    if (fault) throw new Error(`${what}: ${fault}`);
  };
  const BATCH = 64;
  await property(
    t,
    `every authenticated route, signed, with fuzzed params, queries and bodies (${BATCH} calls at a time)`,
    fc.array(choice, { minLength: BATCH, maxLength: BATCH }),
    async (batch) => {
      await Promise.all(batch.map((c) => runPlan(PLANNERS[c.route]!(c), c.route)));
    },
    runs(200),
  );
  t.comment(
    `signed route fuzz answers: ${JSON.stringify(Object.fromEntries(Object.entries(signedOutcomes).sort()))}`,
  );

  await t.test('strings not in NFC are kept as signed, never a 5xx', async (t) => {
    t.same(
      NON_NFC.filter((s) => s === s.normalize('NFC')),
      [],
      'every sample differs from its NFC form',
    );
    const added = json<{ name: string }>(
      await send('setup', { method: 'GET', url: `/v1/institutions/${thirdId}` }),
    );
    t.equal(added.name, thirdName, 'an institution name not in NFC is stored as signed');
    for (const [i, s] of NON_NFC.slice(0, 3).entries()) {
      const tx = signed(
        'request.open',
        { ...requestBody, fields: {}, types: ['tax'], purpose: `nfc ${s}`, consentBy: Date.now() + 600_000 },
        bank,
      );
      const id = await relay(tx, `a request.open whose purpose is not in NFC (${i})`, t);
      const v = json<RequestView>(await signedInject('GET', `/v1/requests/${id}`, undefined, as(P.alice)));
      t.equal(v.purpose, `nfc ${s}`, 'its purpose reads back unchanged, not normalized');
    }
    for (const s of NON_NFC) {
      const r = await signedInject('POST', '/v1/requests', { ...requestBody, purpose: s });
      t.equal(
        codeOf(r),
        'PLATFORM_INSTITUTION_NOT_SERVED',
        `a signed plain request with purpose ${JSON.stringify(s)} reaches the handler`,
      );
      const q = await signedInject(
        'GET',
        `/v1/txs/${grantId}?q=${encodeURIComponent(s)}`,
        undefined,
        as(P.alice),
      );
      t.equal(q.statusCode, 200, 'a signed read with it in the query string is served');
      const p = await send('setup', { method: 'GET', url: `/v1/subjects/${encodeURIComponent(s)}` });
      t.equal(codeOf(p), 'API_BAD_REQUEST', 'as a subject id it is refused by the schema');
    }
  });

  await t.test('bodies canonical JSON cannot encode: 400 API_UNENCODABLE on every JSON route', async (t) => {
    const jsonRoutes = routes.filter((r) => r.method === 'POST').map((r) => r.path);
    t.ok(jsonRoutes.length >= 3, `POST routes: ${jsonRoutes.join(', ')}`);
    const cases: [string, boolean][] = [
      ...NUMBER_TEXTS.map((n): [string, boolean] => [`{"v":${n}}`, Number.isSafeInteger(JSON.parse(n))]),
      ...BAD_SURROGATES.map((s): [string, boolean] => [JSON.stringify({ v: s }), false]),
      ...BAD_SURROGATES.map((s): [string, boolean] => [JSON.stringify({ [s]: 1 }), false]),
      ...NON_NFC.map((s): [string, boolean] => [JSON.stringify({ v: s, [s]: s }), true]),
      ['"\\ud83d\\ude00"', true],
      ['"\\ude00\\ud83d"', false],
      [`{"v":${deep(32, '[', ']')}}`, true],
      [`{"v":${deep(33, '[', ']')}}`, false],
      [`${'{"a":'.repeat(32)}1${'}'.repeat(32)}`, true],
      [`${'{"a":'.repeat(33)}1${'}'.repeat(33)}`, false],
      [`[${deep(40, '[', ']')}]`, false],
    ];
    for (const path of jsonRoutes) {
      for (const [text, ok] of cases) {
        t.equal(encodableText(text), ok, `the test's own rule agrees on ${text.slice(0, 40)}`);
        for (const signedBy of [undefined, P.bank]) {
          const headers = signedBy ? signedHeaders('POST', path, text, as(signedBy)) : {};
          const r = await post('unencodable', path, text, headers);
          if (!ok)
            t.equal(codeOf(r), 'API_UNENCODABLE', `${path} ${signedBy ? 'signed ' : ''}${text.slice(0, 40)}`);
          else t.not(codeOf(r), 'API_UNENCODABLE', `${path} ${text.slice(0, 40)}: encodable`);
        }
      }
    }
  });

  // ---- every route in the OpenAPI document, unsigned, with fuzzed parameters, query strings and bodies
  const known = [
    requestId,
    bobRequest,
    grantId,
    usageId,
    subject,
    bobId,
    'demo-bank',
    thirdId,
    '1',
    'latest',
  ];
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
          fc.constantFrom('before', 'limit', 'all', 'format', 'usage', 'txs', 'x', '__proto__', ''),
          fc.oneof(paramValue, numberText.map(encodeURIComponent)),
        ),
        { maxLength: 4 },
      )
      .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
  );
  const JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8']);
  const routeInput = fc.record({
    route: fc.constantFrom(...routes),
    params: fc.array(paramValue, { minLength: 4, maxLength: 4 }),
    query,
    body: fc.oneof(
      jsonish.map((v) => JSON.stringify(v) ?? 'null'),
      brokenJson,
      edgeJson,
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
  const hasTx = (text: string) => {
    try {
      const v = JSON.parse(text) as unknown;
      return v !== null && typeof v === 'object' && Object.hasOwn(v, 'tx');
    } catch {
      return false;
    }
  };
  await property(
    t,
    'every route, unsigned, with fuzzed params, query and body',
    routeInput,
    async ({ route, params, query, body, contentType, method }) => {
      let k = 0;
      const path = route.path.replace(/\{[^}]+\}/g, () => params[k++ % params.length]!);
      // A dot or empty segment makes the URL another route's (/v1/requests/../events is
      // /v1/events once resolved).
      const elsewhere = params.slice(0, k).some((p) => p === '' || /^(\.|%2e){1,2}$/i.test(p));
      // The public block stream never ends; it is checked over HTTP above. A request's stream
      // refuses an unsigned call before it opens.
      if (route.sse && (!route.signed || elsewhere)) return;
      const m = method ?? route.method;
      const withBody = m !== 'GET' && m !== 'HEAD';
      const r = await send(
        'routes',
        {
          method: m as InjectOptions['method'],
          url: path + query,
          ...(withBody ? { payload: body, headers: contentType ? { 'content-type': contentType } : {} } : {}),
        },
        { json: withBody && m === route.method && JSON_TYPES.has(contentType) },
      );
      // An unsigned call to a route that authenticates never gets past it (the relay of a bank's
      // own signed transaction needs no signed call; the explorer serves anonymous readers).
      if (
        route.signed &&
        !route.explorer &&
        m === route.method &&
        !elsewhere &&
        r.statusCode !== 0 &&
        !early(r) &&
        !(route.key === 'POST /v1/requests' && hasTx(body)) &&
        (r.statusCode !== 401 || codeOf(r) !== 'API_UNAUTHENTICATED')
      )
        throw new Error(
          `unsigned ${route.key} (${path + query}) answered ${r.statusCode} ${r.body.slice(0, 200)}`,
        );
    },
    runs(2500),
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
    for (const depth of [40, 1000, 5000, 20_000]) {
      for (const [open, close] of [
        ['[', ']'],
        ['{"a":', '}'],
      ] as const) {
        const nested =
          open === '[' ? deep(depth, open, close) : `${open.repeat(depth)}1${close.repeat(depth)}`;
        for (const wrap of [(s: string) => s, (s: string) => `{"v":1,"body":${s}}`]) {
          const body = wrap(nested);
          const r = await post('sizes', '/v1/txs', body);
          t.ok(
            r.statusCode >= 400 && r.statusCode < 500,
            `depth ${depth} ${open}: ${r.statusCode} ${codeOf(r)}`,
          );
          t.equal(
            codeOf(r),
            body.length > 64 * 1024 ? 'API_BODY_TOO_LARGE' : 'API_UNENCODABLE',
            'nested past the limit: too large to read, or unencodable',
          );
        }
      }
    }
    const deepRelay = await post('sizes', '/v1/requests', `{"tx":${deep(3000, '[', ']')}}`);
    t.equal(deepRelay.statusCode, 400, 'deep nesting in a relayed request: 400');
    t.equal(codeOf(deepRelay), 'API_UNENCODABLE', 'as unencodable');
    const deepSigned = await signedInject(
      'POST',
      '/v1/requests',
      JSON.parse(`{"a":${deep(3000, '[', ']')}}`),
    );
    t.equal(deepSigned.statusCode, 400, 'deep nesting in a signed request: 400');
    t.equal(codeOf(deepSigned), 'API_UNENCODABLE', 'refused as unencodable before the signature is checked');
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
    'institution.rotate': bank,
    'subject.recover': alice,
    'gov.propose': admin,
    'gov.approve': admin,
    'record.refresh': alice,
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
          receipts: [{ validator: hex(32), digest: hex(32), size: 10, chain, height: 0, sig: hex(64) }],
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
      case 'institution.rotate':
        return { institution: `i-${hex(4)}`, encKey: hex(32) };
      case 'subject.recover':
        return {
          subject: `s-${hex(4)}`,
          encKey: hex(32),
          registrar: bytesToHex(registrar.signing.publicKey),
          attestation: hex(64),
          issued: Date.now() - 1000,
        };
      case 'gov.propose':
        return { change: { type: 'registrar.add', key: hex(32) }, deadline: Date.now() + 60_000 };
      case 'gov.approve':
        return { proposal: hex(32) };
      // An unknown request: a fuzzed refresh must not reopen the request the other cases use.
      case 'record.refresh':
        return { request: hex(32), types: ['tax'] };
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
          // Optional fields: the body stays valid without them.
          if (kind === 'deny' && field === 'reason') return;
          if (kind === 'institution.rotate' && field !== 'institution') return;
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
      // A payload canonical JSON cannot encode was refused as such (checked in send).
      const expected = EXPECT[mutation];
      if (expected && encodableText(payload) !== false && !expected.includes(codeOf(r)))
        throw new Error(
          `${kind}/${mutation}: expected ${expected.join(' or ')}, got ${r.statusCode} ${r.body.slice(0, 300)}`,
        );
    },
    runs(1500),
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
      if (expected && encodableText(payload) !== false && !expected.includes(codeOf(r)))
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
    runs(400),
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
      const payload = JSON.stringify(tx);
      const r = await post('usage', '/v1/txs', payload);
      if (encodableText(payload) === false) return;
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
    (await signedInject('GET', `/v1/requests/${requestId}`, undefined)).body,
  ) as RequestView;
  t.equal(afterUsage.grant?.used, 1 + committedUsages.length, 'only the committed usages spent a use');

  // ---- badly signed calls to every authenticated route: each refused with its exact 401 code
  const SIGNED = [
    'none',
    'missing',
    'bad-hex',
    'short-sig',
    'unknown-institution',
    'unknown-subject',
    'bad-caller',
    'subject-caller',
    'other-subject',
    'subject-with-bank-key',
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
  const SIGNED_EXPECT: Partial<Record<SignedMutation, string[]>> = {
    missing: ['API_UNAUTHENTICATED'],
    'bad-hex': ['API_UNAUTHENTICATED'],
    'short-sig': ['API_UNAUTHENTICATED'],
    'unknown-institution': ['API_UNAUTHENTICATED'],
    'unknown-subject': ['API_UNAUTHENTICATED'],
    'bad-caller': ['API_UNAUTHENTICATED'],
    'subject-with-bank-key': ['API_BAD_SIGNATURE'],
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
  type Answer = [number, string];
  /** A route to call, and what a well-signed call by each caller (and an anonymous one) answers. */
  interface Target {
    route: string;
    method: 'GET' | 'POST';
    url: (n: number) => string;
    body?: (n: number) => unknown;
    /** The same call with a parameter or query its schema refuses. */
    malformed: (n: number, text: string) => string;
    answer: { bank: Answer; other: Answer; alice: Answer; bob: Answer; anonymous?: Answer };
    check?: (body: unknown) => string | undefined;
  }
  const usages = [usageId, ...committedUsages];
  const grantHeight = txHeights.get(grantId)!;
  const enc = (s: string) => encodeURIComponent(s.toWellFormed());
  const FORBIDDEN: Answer = [403, 'API_FORBIDDEN'];
  const NOT_YOURS: Answer = [403, 'PLATFORM_NOT_YOURS'];
  const NOT_SERVED: Answer = [403, 'PLATFORM_INSTITUTION_NOT_SERVED'];
  const OK: Answer = [200, ''];
  const TARGETS: Record<string, Target> = {
    bundle: {
      route: 'GET /v1/requests/{id}/bundle',
      method: 'GET',
      url: (n) => bundlePath(requestId, pick(usages, n)),
      malformed: (n, text) => `${bundlePath(requestId, pick(usages, n))}&x=${enc(text)}`,
      answer: { bank: OK, other: [403, 'PLATFORM_NOT_GRANTEE'], alice: FORBIDDEN, bob: FORBIDDEN },
      check: (b) => {
        const s = b as { digest?: string; request?: string };
        return s.digest === bundleId && s.request === requestId ? undefined : 'not the granted bundle';
      },
    },
    'bundle-unknown': {
      route: 'GET /v1/requests/{id}/bundle',
      method: 'GET',
      url: () => bundlePath(hex(32), usageId),
      malformed: () => bundlePath(hex(31), usageId),
      answer: {
        bank: [404, 'PLATFORM_REQUEST_NOT_FOUND'],
        other: [404, 'PLATFORM_REQUEST_NOT_FOUND'],
        alice: FORBIDDEN,
        bob: FORBIDDEN,
      },
    },
    'bundle-refused-usage': {
      route: 'GET /v1/requests/{id}/bundle',
      method: 'GET',
      url: (n) => bundlePath(requestId, refusedUsages[n % refusedUsages.length] ?? refusedUsage),
      malformed: () => `/v1/requests/${requestId}/bundle`,
      answer: {
        bank: [403, 'PLATFORM_USAGE_REQUIRED'],
        other: [403, 'PLATFORM_NOT_GRANTEE'],
        alice: FORBIDDEN,
        bob: FORBIDDEN,
      },
    },
    document: {
      route: 'GET /v1/requests/{id}/document',
      method: 'GET',
      url: () => `/v1/requests/${requestId}/document`,
      malformed: (_n, text) => `/v1/requests/${requestId}/document?format=${enc(text)}`,
      answer: { bank: NOT_SERVED, other: NOT_SERVED, alice: FORBIDDEN, bob: FORBIDDEN },
    },
    'open-plain': {
      route: 'POST /v1/requests',
      method: 'POST',
      url: () => '/v1/requests',
      body: (n) => ({ ...requestBody, purpose: `fuzz ${n % 1000}` }),
      malformed: () => '/v1/requests',
      answer: { bank: NOT_SERVED, other: NOT_SERVED, alice: FORBIDDEN, bob: FORBIDDEN },
    },
    request: {
      route: 'GET /v1/requests/{id}',
      method: 'GET',
      url: () => `/v1/requests/${requestId}`,
      malformed: () => `/v1/requests/${requestId.toUpperCase()}`,
      answer: { bank: OK, other: NOT_YOURS, alice: OK, bob: NOT_YOURS },
      check: (b) => ((b as RequestView).id === requestId ? undefined : 'not the request'),
    },
    'events-unknown': {
      route: 'GET /v1/requests/{id}/events',
      method: 'GET',
      url: () => `/v1/requests/${hex(32)}/events`,
      malformed: () => `/v1/requests/${hex(31)}g/events`,
      answer: {
        bank: [404, 'PLATFORM_REQUEST_NOT_FOUND'],
        other: [404, 'PLATFORM_REQUEST_NOT_FOUND'],
        alice: [404, 'PLATFORM_REQUEST_NOT_FOUND'],
        bob: [404, 'PLATFORM_REQUEST_NOT_FOUND'],
      },
    },
    'subject-requests': {
      route: 'GET /v1/subjects/{id}/requests',
      method: 'GET',
      url: () => `/v1/subjects/${subject}/requests?all=true`,
      malformed: (_n, text) => `/v1/subjects/${subject}/requests?all=${enc(text)}x`,
      answer: { bank: NOT_YOURS, other: NOT_YOURS, alice: OK, bob: NOT_YOURS },
      check: (b) =>
        (b as { requests: RequestView[] }).requests.some((r) => r.id === requestId)
          ? undefined
          : 'her request is not listed',
    },
    'subject-audit': {
      route: 'GET /v1/subjects/{id}/audit',
      method: 'GET',
      url: () => `/v1/subjects/${subject}/audit`,
      malformed: (n) => `/v1/subjects/${pick(BAD_SUBJECTS, n)}/audit`,
      answer: { bank: NOT_YOURS, other: NOT_YOURS, alice: OK, bob: NOT_YOURS },
      check: (b) => ((b as { subject: string }).subject === subject ? undefined : 'not her audit'),
    },
    block: {
      route: 'GET /v1/blocks/{height}',
      method: 'GET',
      url: () => `/v1/blocks/${grantHeight}`,
      malformed: (n) => `/v1/blocks/${pick(BAD_HEIGHTS, n)}`,
      answer: { bank: OK, other: OK, alice: OK, bob: OK, anonymous: OK },
    },
    tx: {
      route: 'GET /v1/txs/{hash}',
      method: 'GET',
      url: () => `/v1/txs/${grantId}`,
      malformed: () => `/v1/txs/${grantId.toUpperCase()}`,
      answer: { bank: OK, other: OK, alice: OK, bob: OK, anonymous: OK },
    },
    'state-request': {
      route: 'GET /v1/state/requests/{id}',
      method: 'GET',
      url: () => `/v1/state/requests/${requestId}`,
      malformed: () => `/v1/state/requests/${requestId.toUpperCase()}`,
      answer: { bank: OK, other: FORBIDDEN, alice: OK, bob: FORBIDDEN },
    },
    'state-grant': {
      route: 'GET /v1/state/grants/{id}',
      method: 'GET',
      url: () => `/v1/state/grants/${grantId}`,
      malformed: () => `/v1/state/grants/${grantId}0`,
      answer: { bank: OK, other: FORBIDDEN, alice: OK, bob: FORBIDDEN },
    },
    backup: {
      route: 'GET /v1/admin/backup',
      method: 'GET',
      url: () => '/v1/admin/backup',
      malformed: (_n, text) => `/v1/admin/backup?since=${enc(text)}`,
      answer: {
        bank: FORBIDDEN,
        other: FORBIDDEN,
        alice: FORBIDDEN,
        bob: FORBIDDEN,
      },
    },
    snapshot: {
      route: 'GET /v1/admin/snapshot',
      method: 'GET',
      url: () => '/v1/admin/snapshot',
      malformed: (_n, text) => `/v1/admin/snapshot?since=${enc(text)}`,
      answer: {
        bank: FORBIDDEN,
        other: FORBIDDEN,
        alice: FORBIDDEN,
        bob: FORBIDDEN,
      },
    },
    proof: {
      route: 'GET /v1/txs/{hash}/proof',
      method: 'GET',
      url: () => `/v1/txs/${grantId}/proof`,
      malformed: () => `/v1/txs/${grantId}0/proof`,
      answer: { bank: OK, other: FORBIDDEN, alice: OK, bob: FORBIDDEN, anonymous: FORBIDDEN },
    },
  };
  t.same(
    authRoutes.filter((k) => !Object.values(TARGETS).some((x) => x.route === k)),
    [],
    'badly signed calls go to every route that takes signed calls',
  );
  const readerOf = { bank: P.bank, other: P.other, alice: P.alice, bob: P.bob, anonymous: undefined };
  /** Checks a well-signed call's answer (by `who`, or anonymous) against the target's. */
  const answered = (r: LightMyRequestResponse, target: Target, who: keyof Target['answer'], what: string) => {
    if (r.statusCode === 0) return;
    const [status, code] = target.answer[who]!;
    if (r.statusCode !== status || (status >= 400 ? codeOf(r) : '') !== code)
      throw new Error(`${what}: expected ${status} ${code}, got ${r.statusCode} ${r.body.slice(0, 300)}`);
    if (status !== 200) return;
    const body = JSON.parse(r.body) as Record<string, unknown>;
    const fault =
      target.check?.(body) ??
      (target.route === 'GET /v1/txs/{hash}'
        ? txViewFault(readerOf[who], grantId, body.tx, body.signerRole)
        : target.route === 'GET /v1/blocks/{height}'
          ? blockFault(readerOf[who] as Party, grantHeight)(body)
          : undefined);
    if (fault) throw new Error(`${what}: ${fault}`);
  };
  const signedCase = fc.record({
    mutation: fc.constantFrom(...SIGNED),
    target: fc.constantFrom(...Object.keys(TARGETS)),
    text: nastyString,
    junk: jsonish,
    n: fc.nat(),
  });
  const badlySigned = async ({
    mutation,
    target: name,
    text,
    junk,
    n,
  }: typeof signedCase extends fc.Arbitrary<infer C> ? C : never) => {
    const target = TARGETS[name]!;
    const { method, route } = target;
    const url = target.url(n);
    let body: unknown = target.body?.(n);
    let sent = url;
    if (mutation === 'schema') {
      if (body !== undefined) body = junk;
      else sent = target.malformed(n, text);
    }
    const text0 = body === undefined ? '' : (JSON.stringify(body) ?? 'null');
    const o: CallOptions = {};
    if (mutation === 'unknown-institution') o.caller = institutionCaller('nobody-bank');
    if (mutation === 'unknown-subject')
      Object.assign(o, { caller: 'subject:nobody-fuzz', keys: generateKeySet() });
    if (mutation === 'subject-caller') Object.assign(o, as(P.alice));
    if (mutation === 'other-subject') Object.assign(o, as(P.bob));
    if (mutation === 'subject-with-bank-key') o.caller = P.alice.caller;
    if (mutation === 'other-institution' || mutation === 'shared-nonce') Object.assign(o, as(P.other));
    if (mutation === 'other-key') o.keys = generateKeySet();
    if (mutation === 'wrong-audience')
      o.audience = [hex(32), inst.signKey, bytesToHex(registrar.signing.publicKey)][n % 3]!;
    if (mutation === 'wrong-chain') o.chain = ['datagrant-other', `${chain}x`, 'datagrant-fuzz-p2p'][n % 3]!;
    if (mutation === 'skew-past') o.timestamp = Date.now() - 5 * 60 * 1000 - 1000 - (n % 100_000);
    if (mutation === 'skew-future') o.timestamp = Date.now() + 5 * 60 * 1000 + 1000 + (n % 100_000);
    if (mutation === 'nonce-garbage') o.nonce = ['abc', 'A'.repeat(32), '0'.repeat(65), `${hex(8)}g`][n % 4]!;
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
    const names = Object.values(SIGNED_CALL_HEADERS);
    // Which headers 'missing' drops: one of them, or all.
    const dropped = n % 2 === 0 ? [names[n % names.length]!] : names;
    const header = (h: Record<string, string>): Record<string, string | string[]> => {
      const headers: Record<string, string | string[]> = { ...h };
      if (mutation === 'missing') for (const name of dropped) delete headers[name];
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
    // Counted past authentication only when the verifier accepted the call (a signed call).
    const meta = (wellSigned: boolean) => ({ json: body !== undefined, ...(wellSigned ? { route } : {}) });
    const what = `${mutation} on ${name}`;
    if (mutation === 'shared-nonce') {
      // Another institution used this nonce first: nonces are per caller, so the bank's is fresh.
      answered(
        await send('signed', inject(signedHeaders(method, sent, text0, o)), meta(true)),
        target,
        'other',
        what,
      );
      delete o.caller;
      delete o.keys;
    }
    const wellSigned = [
      'none',
      'shared-nonce',
      'subject-caller',
      'other-subject',
      'other-institution',
    ].includes(mutation);
    const options = inject(signedHeaders(signMethod, signPath, signBody, o));
    let r = await send(
      'signed',
      options,
      meta(wellSigned || mutation === 'replay' || mutation === 'nonce-reuse'),
    );
    if (r.statusCode === 0) return;
    if (mutation === 'replay' || mutation === 'nonce-reuse') {
      answered(r, target, 'bank', `${what} (first call)`);
      r = await send(
        'signed',
        mutation === 'replay'
          ? options
          : inject(signedHeaders(method, sent, text0, { ...o, timestamp: Date.now() + 1 })),
        meta(false),
      );
    }
    if (mutation === 'none' || mutation === 'shared-nonce') return answered(r, target, 'bank', what);
    if (mutation === 'other-institution') return answered(r, target, 'other', what);
    if (mutation === 'subject-caller') return answered(r, target, 'alice', what);
    if (mutation === 'other-subject') return answered(r, target, 'bob', what);
    if (mutation === 'schema') {
      if (r.statusCode !== 400)
        throw new Error(`${what}: expected 400, got ${r.statusCode} ${r.body.slice(0, 300)}`);
      return;
    }
    // The explorer serves a call without a signature as an anonymous reader.
    if (mutation === 'missing' && target.answer.anonymous && dropped.includes(SIGNED_CALL_HEADERS.signature))
      return answered(r, target, 'anonymous', `${what} (no signature: anonymous)`);
    const expected = SIGNED_EXPECT[mutation]!;
    if (r.statusCode !== 401 || !expected.includes(codeOf(r)))
      throw new Error(
        `${what}: expected 401 ${expected.join('/')}, got ${r.statusCode} ${r.body.slice(0, 300)}`,
      );
  };
  await property(
    t,
    'badly signed calls to every authenticated route (10 at a time)',
    fc.array(signedCase, { minLength: 10, maxLength: 10 }),
    async (batch) => {
      await Promise.all(batch.map(badlySigned));
    },
    runs(160),
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
  const reached = authRoutes.reduce((s, k) => s + (pastAuth[k] ?? 0), 0);
  t.comment(`signed inputs past authentication, by route: ${JSON.stringify(pastAuth)} (total ${reached})`);
  if (SCALE >= 1) {
    t.ok(total >= 10_000, `${total} HTTP inputs (at least 10,000)`);
    t.ok(reached >= 10_000, `${reached} signed inputs got past authentication (at least 10,000)`);
    for (const k of authRoutes)
      t.ok(
        (pastAuth[k] ?? 0) >= 200,
        `${k}: ${pastAuth[k] ?? 0} signed inputs past authentication (at least 200)`,
      );
  }
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
  const [admin] = await councilKeys(net.keys.council);

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
          kind: 'gov.propose',
          body: {
            change: {
              type: 'institution.add',
              institution: `g-${i}-${bytesToHex(crypto.getRandomValues(new Uint8Array(4)))}`,
              name: 'G',
              signKey: '1'.repeat(64),
              encKey: '2'.repeat(64),
            },
            deadline: Date.now() + 3600_000,
          },
        },
        admin!.signing.publicKey,
        admin!.signing.secretKey,
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

  for (const protocol of ['sync', 'txs', 'payload', 'store'] as const) {
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
