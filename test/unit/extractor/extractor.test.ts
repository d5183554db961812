import fc from 'fast-check';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import {
  type SyntheticDataPlatform,
  startSyntheticDataPlatform,
  syntheticRecord,
  syntheticSensitiveValues,
  syntheticSourceConfig,
} from '../../../scripts/synthetic-data-platform.js';
import { bytesToHex, utf8ToBytes } from '../../../src/common/bytes.js';
import { generateEncryptionKeyPair, generateSigningKeyPair, sha256Hex } from '../../../src/common/crypto.js';
import { DatagrantError } from '../../../src/common/errors.js';
import {
  assignedExtractor,
  type DataRequest,
  Extractor,
  type ExtractorOptions,
  rankExtractors,
} from '../../../src/extractor/extractor.js';
import { type AnyTx, DATA_TYPES, type DataType, type Tx } from '../../../src/ledger/tx.js';
import { decodeTx, txHash, verifyTxSignature } from '../../../src/ledger/tx-codec.js';
import { createDataSource } from '../../../src/plugins/create-data-source.js';
import type { DataQuery, DataSource, FetchContext, FetchResult } from '../../../src/plugins/data-source.js';
import { MemoryPayloadStore, type PayloadStore } from '../../../src/records/payload-store.js';
import { openRecordAs, recordContext } from '../../../src/records/record-crypto.js';
import { type StorageReceipt, signStorageReceipt } from '../../../src/records/storage-receipt.js';

const CHAIN = 'dg-test';

/** The receipt a validator with `key` signs for a ciphertext it stored. */
function ownReceipt(
  key: ReturnType<typeof generateSigningKeyPair>,
  digest: string,
  size: number,
  height = 0,
): StorageReceipt {
  return signStorageReceipt(
    { validator: bytesToHex(key.publicKey), digest, size, chain: CHAIN, height },
    key.secretKey,
  );
}
const NOW = 1_750_000_000_000;
const SUBJECT = 'alice-001';

let platform: SyntheticDataPlatform;
t.before(async () => {
  platform = await startSyntheticDataPlatform({ port: 0, host: '127.0.0.1' });
});
t.teardown(() => platform.close());
t.afterEach(() => platform.setFaults({}));

let requestCounter = 0;
/** A fresh request id per call, so platform counters and dedup never mix tests. */
function requestId(): string {
  return sha256Hex(utf8ToBytes(`request-${requestCounter++}`));
}

interface Harness {
  extractor: Extractor;
  submitted: AnyTx[];
  logs: string[];
  payloads: PayloadStore;
  nodeKey: ReturnType<typeof generateSigningKeyPair>;
  subject: ReturnType<typeof generateEncryptionKeyPair>;
  /** What `replicate` was asked to store, in order. */
  replicated: { digest: string; bytes: Uint8Array }[];
  request(types: DataType[], extra?: Partial<DataRequest>): DataRequest;
}

async function harness(
  t: Test,
  options: Partial<ExtractorOptions> = {},
  modules: {
    sources?: DataSource[];
    submit?: (tx: AnyTx) => Promise<void>;
    payloads?: PayloadStore;
    replicate?: (digest: string, bytes: Uint8Array, signal: AbortSignal) => Promise<StorageReceipt[]>;
  } = {},
): Promise<Harness> {
  const nodeKey = generateSigningKeyPair();
  const subject = generateEncryptionKeyPair();
  const submitted: AnyTx[] = [];
  const replicated: { digest: string; bytes: Uint8Array }[] = [];
  const logs: string[] = [];
  const payloads = modules.payloads ?? new MemoryPayloadStore();
  const extractor = new Extractor(
    { chain: CHAIN, nodeKey, timeoutMs: 1_000, retries: 2, backoffMs: 5, maxBackoffMs: 20, ...options },
    {
      sources: modules.sources ?? [createDataSource(syntheticSourceConfig(platform.url))],
      payloads,
      submit:
        modules.submit ??
        (async (tx) => {
          submitted.push(tx);
        }),
      // By default the extractor is the lone validator: its own receipt is the f + 1.
      replicate: async (digest, bytes, signal) => {
        replicated.push({ digest, bytes });
        if (modules.replicate) return modules.replicate(digest, bytes, signal);
        return [ownReceipt(nodeKey, digest, bytes.length)];
      },
      logger: pino({ level: 'debug' }, { write: (line: string) => logs.push(line) }),
      now: () => NOW,
      random: () => 0.5,
    },
  );
  await extractor.start();
  t.teardown(() => extractor.stop());
  return {
    extractor,
    submitted,
    logs,
    payloads,
    nodeKey,
    subject,
    replicated,
    request: (types, extra = {}) => ({
      id: requestId(),
      subject: SUBJECT,
      subjectEncKey: bytesToHex(subject.publicKey),
      types,
      ...extra,
    }),
  };
}

/** A data source whose fetch the test controls. */
function fakeSource(
  name: string,
  types: DataType[],
  fetch: (q: DataQuery, ctx: FetchContext) => Promise<FetchResult>,
): DataSource {
  return { name, dataTypes: types, fetch, health: async () => ({ ok: true }) };
}

const never = () => new Promise<FetchResult>(() => {});

function checkTx(t: Test, tx: AnyTx, h: Harness, label: string): void {
  const decoded = decodeTx(JSON.parse(JSON.stringify(tx)));
  t.equal(decoded.kind, tx.kind, `${label}: decodes`);
  t.ok(verifyTxSignature(tx), `${label}: signature verifies`);
  t.equal(tx.signer, bytesToHex(h.nodeKey.publicKey), `${label}: signed by the node key`);
  t.equal(tx.chain, CHAIN, `${label}: chain`);
}

function checkNoPersonalData(t: Test, h: Harness, subject = SUBJECT): void {
  const haystack = JSON.stringify(h.submitted) + h.logs.join('');
  const secrets = [
    ...syntheticSensitiveValues(subject),
    bytesToHex(h.subject.secretKey),
    bytesToHex(h.nodeKey.secretKey),
  ];
  for (const value of secrets)
    t.notOk(haystack.includes(value), `no ${value.length}-char sensitive value in txs or logs`);
}

t.test('success: one record.put per type that verifies and opens with the subject key', async (t) => {
  const h = await harness(t);
  const request = h.request([...DATA_TYPES], { dataFrom: '2024-01-01', dataTo: '2024-12-31' });
  const outcomes = await h.extractor.handleRequest(request);
  t.same(
    outcomes.map((o) => [o.type, o.status]),
    DATA_TYPES.map((type) => [type, 'put']),
  );
  t.equal(h.submitted.length, 4);
  for (const tx of h.submitted) {
    if (tx.kind !== 'record.put') {
      t.fail(`unexpected ${tx.kind}`);
      continue;
    }
    const put = tx as Tx<'record.put'>;
    const { type } = put.body;
    checkTx(t, put, h, type);
    t.equal(put.body.request, request.id, `${type}: request`);
    t.equal(put.body.fetchedAt, NOW, `${type}: fetchedAt`);
    t.equal(put.expires > NOW, true, `${type}: expires later`);
    t.equal(put.body.source, `${platform.url}/v1/${type}/${SUBJECT}`, `${type}: source`);
    const outcome = outcomes.find((o) => o.type === type);
    t.same(
      outcome,
      { type, status: 'put', tx: txHash(put), digest: put.body.digest, attempts: 1 },
      `${type}: outcome`,
    );

    const ciphertext = await h.payloads.get(put.body.digest);
    t.ok(ciphertext, `${type}: ciphertext stored`);
    t.equal(sha256Hex(ciphertext!), put.body.digest, `${type}: digest`);
    t.equal(ciphertext!.length, put.body.size, `${type}: size`);
    const opened = openRecordAs(
      ciphertext!,
      put.body.key,
      h.subject.secretKey,
      recordContext(CHAIN, request.id, type),
      { sourceCommitment: put.body.sourceCommitment },
    );
    t.same(
      opened.fields,
      syntheticRecord(SUBJECT, type, { from: '2024-01-01', to: '2024-12-31' }),
      `${type}: the source's values`,
    );
    t.same(
      [opened.type, opened.subject, opened.source, opened.fetchedAt],
      [type, SUBJECT, put.body.source, NOW],
    );

    const response = await fetch(`${platform.url}/v1/${type}/${SUBJECT}?from=2024-01-01&to=2024-12-31`);
    const raw = new Uint8Array(await response.arrayBuffer());
    t.equal(opened.sourceDigest, sha256Hex(raw), `${type}: the sealed record holds the digest of the answer`);
    t.not(
      put.body.sourceCommitment,
      sha256Hex(raw),
      `${type}: the chain holds only a keyed commitment to it`,
    );
    t.notOk(
      JSON.stringify(put).includes(sha256Hex(raw)),
      `${type}: no digest of the answer anywhere in the record.put`,
    );
  }
  checkNoPersonalData(t, h);
  t.match(h.logs.join(''), /record.put submitted/);
});

t.test('source down: record.fail PLUGIN_UNAVAILABLE after bounded retries', async (t) => {
  const h = await harness(t, { retries: 2 });
  platform.setFaults({ tax: { down: true } });
  const before = platform.requestCount('tax');
  const [outcome] = await h.extractor.handleRequest(h.request(['tax']));
  t.match(outcome, { type: 'tax', status: 'fail', reason: 'PLUGIN_UNAVAILABLE', attempts: 3 });
  t.equal(platform.requestCount('tax') - before, 3, 'first attempt + 2 retries');
  t.equal(h.submitted.length, 1);
  const fail = h.submitted[0] as Tx<'record.fail'>;
  checkTx(t, fail, h, 'record.fail');
  t.equal(fail.kind, 'record.fail');
  t.equal(fail.body.reason, 'PLUGIN_UNAVAILABLE');
  t.equal(fail.body.detail, 'the data source was unavailable (source synthetic-platform, 3 attempts)');
  checkNoPersonalData(t, h);
});

t.test('a flaky source succeeds on retry', async (t) => {
  const h = await harness(t);
  platform.setFaults({ property: { flaky: platform.requestCount('property') + 1 } });
  const [outcome] = await h.extractor.handleRequest(h.request(['property']));
  t.match(outcome, { status: 'put', attempts: 2 });
});

t.test('slow source: PLUGIN_TIMEOUT, promptly', async (t) => {
  const h = await harness(t, { timeoutMs: 100, retries: 1 });
  platform.setFaults({ 'housing-fund': { slowMs: 20_000 } });
  const started = Date.now();
  const [outcome] = await h.extractor.handleRequest(h.request(['housing-fund']));
  t.match(outcome, { status: 'fail', reason: 'PLUGIN_TIMEOUT', attempts: 2 });
  t.ok(Date.now() - started < 10_000, 'did not wait for the slow source');
  t.equal((h.submitted[0] as Tx<'record.fail'>).body.reason, 'PLUGIN_TIMEOUT');
});

t.test('garbage and not-found are final: no retries', async (t) => {
  const h = await harness(t, { retries: 3 });
  for (const garbage of ['not-json', 'wrong-shape'] as const) {
    platform.setFaults({ 'social-insurance': { garbage } });
    const before = platform.requestCount('social-insurance');
    const [outcome] = await h.extractor.handleRequest(h.request(['social-insurance']));
    t.match(outcome, { status: 'fail', reason: 'PLUGIN_BAD_RESPONSE', attempts: 1 }, garbage);
    t.equal(platform.requestCount('social-insurance') - before, 1, `${garbage}: one attempt`);
  }
  platform.setFaults({});
  const [missing] = await h.extractor.handleRequest(h.request(['tax'], { subject: 'unknown-9' }));
  t.match(missing, { status: 'fail', reason: 'PLUGIN_NOT_FOUND', attempts: 1 });
  t.equal(
    (h.submitted.at(-1) as Tx<'record.fail'>).body.detail,
    'the data source has no record of this type for the subject (source synthetic-platform, 1 attempt)',
  );
});

t.test('a plugin that ignores its abort signal still cannot hang the extractor', async (t) => {
  const calls: AbortSignal[] = [];
  const stuck = fakeSource('stuck', ['tax'], (_q, ctx) => {
    calls.push(ctx.signal);
    return never();
  });
  const h = await harness(
    t,
    { timeoutMs: 50, retries: 2, backoffMs: 5, maxBackoffMs: 10 },
    { sources: [stuck] },
  );
  const started = Date.now();
  const [outcome] = await h.extractor.handleRequest(h.request(['tax']));
  t.match(outcome, { status: 'fail', reason: 'PLUGIN_TIMEOUT', attempts: 3 });
  t.equal(calls.length, 3);
  t.ok(
    calls.every((s) => s.aborted),
    'each attempt signal was aborted',
  );
  t.ok(Date.now() - started < 5_000);
});

t.test('stop() aborts in-flight work without submitting; later requests are skipped', async (t) => {
  let signal: AbortSignal | undefined;
  const stuck = fakeSource('stuck', ['tax', 'property'], (q, ctx) => {
    if (q.type === 'tax') signal = ctx.signal;
    return q.type === 'tax' ? never() : Promise.reject(new DatagrantError('PLUGIN_UNAVAILABLE', 'down'));
  });
  const h = await harness(
    t,
    { timeoutMs: 60_000, backoffMs: 60_000, maxBackoffMs: 60_000 },
    { sources: [stuck] },
  );
  const pending = h.extractor.handleRequest(h.request(['tax', 'property']));
  await new Promise((r) => setTimeout(r, 20));
  const started = Date.now();
  await h.extractor.stop();
  t.ok(Date.now() - started < 2_000, 'stop returned promptly');
  t.ok(signal?.aborted, 'the hanging plugin saw the abort');
  t.same(
    await pending,
    [
      { type: 'tax', status: 'skipped', why: 'stopped' },
      { type: 'property', status: 'skipped', why: 'stopped' },
    ],
    'both the fetch and the back-off were cut short',
  );
  t.equal(h.submitted.length, 0);
  t.same(await h.extractor.handleRequest(h.request(['tax'])), [
    { type: 'tax', status: 'skipped', why: 'stopped' },
  ]);
});

t.test('concurrent handling of the same request runs once; a repeat is a duplicate', async (t) => {
  const h = await harness(t);
  const request = h.request(['tax', 'property']);
  const before = platform.requestCount();
  const [a, b] = await Promise.all([
    h.extractor.handleRequest(request),
    h.extractor.handleRequest({ ...request, types: ['tax'] }),
  ]);
  t.equal(platform.requestCount() - before, 2, 'one fetch per type');
  t.equal(h.submitted.length, 2, 'one record.put per type');
  t.same(b, [a.find((o) => o.type === 'tax')], 'the second caller shares the first job');
  t.same(await h.extractor.handleRequest(request), [
    { type: 'tax', status: 'skipped', why: 'duplicate' },
    { type: 'property', status: 'skipped', why: 'duplicate' },
  ]);
});

t.test('types no source serves are skipped', async (t) => {
  const only = fakeSource('only-tax', ['tax'], async () => ({
    fields: { a: 1 },
    source: 'x',
    raw: new Uint8Array([1]),
  }));
  const h = await harness(t, {}, { sources: [only] });
  t.same(h.extractor.dataTypes, ['tax']);
  t.equal(h.extractor.serves('property'), false);
  const outcomes = await h.extractor.handleRequest(h.request(['property', 'tax']));
  t.same(
    outcomes.map((o) => o.status),
    ['skipped', 'put'],
  );
  t.same(await h.extractor.health(), { 'only-tax': { ok: true } });
});

t.test('plugin results are normalised or refused', async (t) => {
  let result: unknown;
  const odd = fakeSource('odd', ['tax'], async () => result as FetchResult);
  const h = await harness(t, {}, { sources: [odd] });
  result = { fields: { area: 89.5, name: 'x' }, source: '', raw: new Uint8Array([1]) };
  const [ok] = await h.extractor.handleRequest(h.request(['tax']));
  t.equal(ok?.status, 'put');
  const put = h.submitted.at(-1) as Tx<'record.put'>;
  t.equal(put.body.source, 'odd', 'an empty source falls back to the plugin name');
  const opened = openRecordAs(
    (await h.payloads.get(put.body.digest))!,
    put.body.key,
    h.subject.secretKey,
    recordContext(CHAIN, put.body.request, 'tax'),
  );
  t.same(opened.fields, { area: '89.5', name: 'x' }, 'decimals become text');
  const bad: [string, unknown][] = [
    ['nested value', { fields: { a: { b: 1 } }, source: 's', raw: new Uint8Array() }],
    ['bad field name', { fields: { 'a b': 1 }, source: 's', raw: new Uint8Array() }],
    ['no raw', { fields: { a: 1 }, source: 's' }],
    ['null', null],
  ];
  for (const [label, value] of bad) {
    result = value;
    const [outcome] = await h.extractor.handleRequest(h.request(['tax']));
    t.match(outcome, { status: 'fail', reason: 'PLUGIN_BAD_RESPONSE' }, label);
  }
  const thrower = fakeSource('thrower', ['tax'], async () => {
    throw new TypeError('boom with secret 310115197402248792');
  });
  const h2 = await harness(t, {}, { sources: [thrower] });
  const [outcome] = await h2.extractor.handleRequest(h2.request(['tax']));
  t.match(
    outcome,
    { status: 'fail', reason: 'PLUGIN_BAD_RESPONSE' },
    'an unexpected throw is a bad response',
  );
  t.notOk(
    (JSON.stringify(h2.submitted) + h2.logs.join('')).includes('310115197402248792'),
    'its message goes nowhere',
  );
});

t.test('submit failures and hangs are bounded; the work is not marked done', async (t) => {
  let mode: 'fail' | 'hang' | 'ok' = 'fail';
  const accepted: AnyTx[] = [];
  const h = await harness(
    t,
    { submitTimeoutMs: 50 },
    {
      submit: (tx) => {
        if (mode === 'fail') return Promise.reject(new DatagrantError('LEDGER_MEMPOOL_FULL', 'full'));
        if (mode === 'hang') return new Promise(() => {});
        accepted.push(tx);
        return Promise.resolve();
      },
    },
  );
  const request = h.request(['tax']);
  t.same(await h.extractor.handleRequest(request), [
    { type: 'tax', status: 'skipped', why: 'submit-failed' },
  ]);
  t.equal((h.payloads as MemoryPayloadStore).size, 0, 'the orphan ciphertext was deleted');
  mode = 'hang';
  t.same(await h.extractor.handleRequest(request), [
    { type: 'tax', status: 'skipped', why: 'submit-failed' },
  ]);
  mode = 'ok';
  const [outcome] = await h.extractor.handleRequest(request);
  t.equal(outcome?.status, 'put', 'a later call retries the work');
  t.equal(accepted.length, 1);
});

t.test('store failures become record.fail EXTRACTOR_STORE_FAILED', async (t) => {
  const broken: PayloadStore = {
    put: () => Promise.reject(new Error('disk full')),
    get: async () => undefined,
    has: async () => false,
    delete: async () => {},
    list: async function* () {},
    compact: async () => {},
  };
  const h = await harness(t, {}, { payloads: broken });
  const [outcome] = await h.extractor.handleRequest(h.request(['tax']));
  t.match(outcome, { status: 'fail', reason: 'EXTRACTOR_STORE_FAILED' });
});

t.test('a store failure that passes (a torn write) is retried before any record.fail', async (t) => {
  const inner = new MemoryPayloadStore();
  let failures = 2;
  let puts = 0;
  const flaky: PayloadStore = {
    put: (digest, bytes) => {
      puts++;
      if (failures-- > 0) return Promise.reject(new Error('EIO: torn write'));
      return inner.put(digest, bytes);
    },
    get: (d) => inner.get(d),
    has: (d) => inner.has(d),
    delete: (d) => inner.delete(d),
    list: () => inner.list(),
    compact: () => inner.compact(),
  };
  const h = await harness(t, {}, { payloads: flaky });
  const [outcome] = await h.extractor.handleRequest(h.request(['tax']));
  t.equal(outcome?.status, 'put', 'the record is put after two failed writes');
  t.equal(puts, 3, 'written three times');
  t.ok(outcome?.status === 'put' && (await inner.has(outcome.digest)), 'and the bytes are stored');
});

t.test(
  'replicate: the record.put carries the receipts, asked for only once the bytes are stored',
  async (t) => {
    const other = generateSigningKeyPair();
    let storedFirst = false;
    let payloads: PayloadStore | undefined;
    const h = await harness(
      t,
      {},
      {
        replicate: async (digest, bytes) => {
          storedFirst = (await payloads!.get(digest)) !== undefined;
          return [ownReceipt(other, digest, bytes.length, 7), ownReceipt(other, digest, bytes.length, 8)];
        },
      },
    );
    payloads = h.payloads;
    const [outcome] = await h.extractor.handleRequest(h.request(['tax']));
    t.match(outcome, { status: 'put' });
    const put = h.submitted[0] as Tx<'record.put'>;
    t.equal(h.replicated.length, 1, 'replicated once');
    const { digest, bytes } = h.replicated[0]!;
    t.equal(digest, put.body.digest, 'for the digest the record names');
    t.equal(sha256Hex(bytes), digest, 'with the ciphertext itself');
    t.equal(bytes.length, put.body.size, 'of the size the record names');
    t.ok(storedFirst, 'after the ciphertext was in the local payload store');
    t.same(
      put.body.receipts.map((r) => [r.validator, r.height]),
      [
        [bytesToHex(other.publicKey), 7],
        [bytesToHex(other.publicKey), 8],
      ],
      'the receipts replicate returned, as they came',
    );
    t.doesNotThrow(() => decodeTx(JSON.parse(JSON.stringify(put))), 'the record.put is well formed');
  },
);

t.test(
  'replication failures are retried, then end in record.fail EXTRACTOR_REPLICATION_FAILED',
  async (t) => {
    let calls = 0;
    const h = await harness(
      t,
      { retries: 2 },
      {
        replicate: async () => {
          calls++;
          throw new DatagrantError('EXTRACTOR_REPLICATION_FAILED', '1 of the 2 validators needed stored it');
        },
      },
    );
    const [outcome] = await h.extractor.handleRequest(h.request(['tax']));
    t.match(outcome, { status: 'fail', reason: 'EXTRACTOR_REPLICATION_FAILED', attempts: 1 });
    t.equal(calls, 3, 'one attempt and two retries');
    t.same(
      h.submitted.map((tx) => tx.kind),
      ['record.fail'],
      'no record.put without receipts',
    );
    const fail = h.submitted[0] as Tx<'record.fail'>;
    t.match(
      fail.body.detail,
      /could not be stored on enough validators/,
      'a detail the institution can read',
    );
    t.equal((h.payloads as MemoryPayloadStore).size, 0, 'the local copy no record will name is gone');
  },
);

t.test('replication recovers on a retry; an empty answer counts as a failure', async (t) => {
  let calls = 0;
  const h = await harness(
    t,
    { retries: 2 },
    {
      replicate: async (digest, bytes) => {
        calls++;
        return calls === 1 ? [] : [ownReceipt(generateSigningKeyPair(), digest, bytes.length)];
      },
    },
  );
  const [outcome] = await h.extractor.handleRequest(h.request(['tax']));
  t.match(outcome, { status: 'put' });
  t.equal(calls, 2, 'the empty answer was retried');
  t.equal((h.submitted[0] as Tx<'record.put'>).body.receipts.length, 1);
});

t.test('a replicate that hangs is cut at replicateTimeoutMs, and its signal fires', async (t) => {
  const signals: AbortSignal[] = [];
  const h = await harness(
    t,
    { retries: 0, replicateTimeoutMs: 30 },
    {
      replicate: (_d, _b, signal) => {
        signals.push(signal);
        return new Promise<StorageReceipt[]>(() => {});
      },
    },
  );
  const [outcome] = await h.extractor.handleRequest(h.request(['tax']));
  t.match(outcome, { status: 'fail', reason: 'EXTRACTOR_REPLICATION_FAILED' });
  t.equal(signals.length, 1);
  t.ok(signals[0]!.aborted, 'the abandoned attempt was told');
});

t.test('stop() during replication: skipped, nothing submitted', async (t) => {
  let entered!: () => void;
  const inside = new Promise<void>((r) => {
    entered = r;
  });
  const h = await harness(
    t,
    { replicateTimeoutMs: 60_000 },
    {
      replicate: () => {
        entered();
        return new Promise<StorageReceipt[]>(() => {});
      },
    },
  );
  const pending = h.extractor.handleRequest(h.request(['tax']));
  await inside;
  await h.extractor.stop();
  t.same(await pending, [{ type: 'tax', status: 'skipped', why: 'stopped' }]);
  t.equal(h.submitted.length, 0);
});

t.test('an unusable subject key becomes record.fail EXTRACTOR_SEAL_FAILED', async (t) => {
  const h = await harness(t);
  const [outcome] = await h.extractor.handleRequest(h.request(['tax'], { subjectEncKey: '00'.repeat(32) }));
  t.match(outcome, { status: 'fail', reason: 'EXTRACTOR_SEAL_FAILED' });
});

t.test('the concurrency limit holds', async (t) => {
  let running = 0;
  let peak = 0;
  const slow = fakeSource('slow', ['tax'], async () => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 20));
    running--;
    return { fields: { a: 1 }, source: 's', raw: new Uint8Array([1]) };
  });
  const h = await harness(t, { concurrency: 2 }, { sources: [slow] });
  const outcomes = await Promise.all(
    Array.from({ length: 6 }, () => h.extractor.handleRequest(h.request(['tax']))),
  );
  t.ok(outcomes.flat().every((o) => o.status === 'put'));
  t.equal(peak, 2);
});

t.test('the job bound holds: past maxJobs a job is refused, not queued', async (t) => {
  let release = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const held = fakeSource('held', ['tax'], async () => {
    await gate;
    return { fields: { a: 1 }, source: 's', raw: new Uint8Array([1]) };
  });
  const h = await harness(t, { concurrency: 1, maxJobs: 2 }, { sources: [held] });
  const running = [
    h.extractor.handleRequest(h.request(['tax'])),
    h.extractor.handleRequest(h.request(['tax'])),
  ];
  const refused = await h.extractor.handleRequest(h.request(['tax']));
  t.same(
    refused,
    [{ type: 'tax', status: 'skipped', why: 'overloaded' }],
    'the third job is refused at once',
  );
  release();
  t.ok(
    (await Promise.all(running)).flat().every((o) => o.status === 'put'),
    'the held ones complete',
  );
  const later = await h.extractor.handleRequest(h.request(['tax']));
  t.equal(later[0]!.status, 'put', 'and once they are done new jobs are taken again');
});

t.test('malformed requests and options are refused, naming the field', async (t) => {
  const h = await harness(t);
  const good = h.request(['tax']);
  const cases: [string, DataRequest, RegExp][] = [
    ['id', { ...good, id: 'nope' }, /id/],
    ['subject', { ...good, subject: '310115197402248792X' }, /subject/],
    ['key', { ...good, subjectEncKey: 'zz' }, /subjectEncKey/],
    ['types', { ...good, types: ['salary' as DataType] }, /types/],
    ['dataFrom', { ...good, dataFrom: 'yesterday' }, /dataFrom/],
  ];
  for (const [label, request, message] of cases) {
    await t.rejects(h.extractor.handleRequest(request), { code: 'EXTRACTOR_BAD_REQUEST', message }, label);
  }
  const base = {
    chain: CHAIN,
    nodeKey: generateSigningKeyPair(),
    timeoutMs: 10,
    retries: 0,
    backoffMs: 0,
    maxBackoffMs: 0,
  };
  const modules = {
    sources: [],
    payloads: new MemoryPayloadStore(),
    submit: async () => {},
    replicate: async () => [],
    logger: pino({ level: 'silent' }),
    now: () => 0,
  };
  const bad: [Partial<ExtractorOptions>, string][] = [
    [{ chain: 'X' }, 'chain'],
    [{ timeoutMs: 0 }, 'timeoutMs'],
    [{ retries: -1 }, 'retries'],
    [{ backoffMs: 100, maxBackoffMs: 10 }, 'maxBackoffMs'],
    [{ concurrency: 0 }, 'concurrency'],
    [{ replicateTimeoutMs: 0 }, 'replicateTimeoutMs'],
    [{ nodeKey: { publicKey: new Uint8Array(3), secretKey: new Uint8Array(32) } }, 'nodeKey'],
  ];
  for (const [override, field] of bad) {
    t.throws(
      () => new Extractor({ ...base, ...override }, modules),
      { code: 'EXTRACTOR_CONFIG_INVALID', meta: { field } },
      field,
    );
  }
  const twin = fakeSource('twin', ['tax'], never);
  t.throws(
    () => new Extractor(base, { ...modules, sources: [twin, twin] }),
    { code: 'EXTRACTOR_CONFIG_INVALID', meta: { field: 'sources' } },
    'two sources with one name',
  );
});

t.test('assignment: rendezvous hashing over the serving keys', async (t) => {
  const keys = Array.from({ length: 5 }, (_, i) => sha256Hex(utf8ToBytes(`key-${i}`)));
  const id = sha256Hex(utf8ToBytes('request'));
  const chosen = assignedExtractor(id, 'tax', keys);
  t.ok(keys.includes(chosen));
  t.equal(assignedExtractor(id, 'tax', [...keys].reverse()), chosen, 'independent of key order');
  t.equal(assignedExtractor(id, 'tax', [...keys, chosen]), chosen, 'duplicates do not matter');
  t.throws(() => assignedExtractor(id, 'tax', []), { code: 'EXTRACTOR_NONE_SERVING' });
  const wins = new Map<string, number>();
  for (let i = 0; i < 500; i++) {
    const k = assignedExtractor(sha256Hex(utf8ToBytes(`r${i}`)), 'property', keys);
    wins.set(k, (wins.get(k) ?? 0) + 1);
  }
  t.equal(wins.size, 5, 'every extractor gets work');
  t.ok(
    [...wins.values()].every((n) => n > 50),
    `load is spread: ${[...wins.values()]}`,
  );

  const hex = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(bytesToHex);
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(
        hex,
        fc.uniqueArray(hex, { minLength: 2, maxLength: 8 }),
        fc.constantFrom(...DATA_TYPES),
        (rid, ks, type) => {
          const ranked = rankExtractors(rid, type, ks);
          if ([...ranked].sort().join() !== [...ks].sort().join()) return false;
          const winner = ranked[0]!;
          // Removing any key other than the winner keeps the winner; removing the winner promotes the runner-up.
          const loser = ks.find((k) => k !== winner)!;
          if (
            assignedExtractor(
              rid,
              type,
              ks.filter((k) => k !== loser),
            ) !== winner
          )
            return false;
          return (
            assignedExtractor(
              rid,
              type,
              ks.filter((k) => k !== winner),
            ) === ranked[1]
          );
        },
      ),
      { numRuns: 200 },
    ),
  );
});
