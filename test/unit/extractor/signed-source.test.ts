/**
 * A source that signs its answers, end to end through the extractor: the synthetic platform signs
 * each answer, the `http-json` plugin reads the signature header and rebuilds the statement, the
 * extractor seals statement and answer bytes inside the record and commits to the statement in
 * `record.put`. A missing or failing signature, or a statement about another answer, never
 * becomes a record.
 */
import { pino } from 'pino';
import t, { type Test } from 'tap';
import {
  type SyntheticDataPlatform,
  startSyntheticDataPlatform,
  syntheticRecord,
  syntheticSourceConfig,
} from '../../../scripts/synthetic-data-platform.js';
import { bytesToHex, fromBase64url, utf8ToBytes } from '../../../src/common/bytes.js';
import { generateEncryptionKeyPair, generateSigningKeyPair, sha256Hex } from '../../../src/common/crypto.js';
import { Extractor } from '../../../src/extractor/extractor.js';
import type { AnyTx, DataType, Tx } from '../../../src/ledger/tx.js';
import { registeredSourcesOf } from '../../../src/node/init.js';
import { createDataSource } from '../../../src/plugins/create-data-source.js';
import type { DataSource, FetchResult } from '../../../src/plugins/data-source.js';
import type { HttpJsonSourceConfig } from '../../../src/plugins/http-json-source.js';
import { MemoryPayloadStore } from '../../../src/records/payload-store.js';
import { openRecordAs, recordContext } from '../../../src/records/record-crypto.js';
import {
  signSourceStatement,
  sourceStatementCommitment,
  verifySourceStatement,
} from '../../../src/records/source-statement.js';
import { signStorageReceipt } from '../../../src/records/storage-receipt.js';

const CHAIN = 'dg-test';
const NOW = 1_750_000_000_000;
const SUBJECT = 'alice-001';
const PERIOD = { dataFrom: '2024-01-01', dataTo: '2024-12-31' };

let platform: SyntheticDataPlatform;
t.before(async () => {
  platform = await startSyntheticDataPlatform({ port: 0, host: '127.0.0.1', now: () => NOW - 5 });
});
t.teardown(() => platform.close());

let counter = 0;
async function extract(t: Test, source: DataSource, types: DataType[] = ['tax']) {
  const nodeKey = generateSigningKeyPair();
  const subject = generateEncryptionKeyPair();
  const payloads = new MemoryPayloadStore();
  const submitted: AnyTx[] = [];
  const extractor = new Extractor(
    { chain: CHAIN, nodeKey, timeoutMs: 2_000, retries: 0, backoffMs: 5, maxBackoffMs: 20 },
    {
      sources: [source],
      payloads,
      submit: async (tx) => {
        submitted.push(tx);
      },
      replicate: async (digest, bytes) => [
        signStorageReceipt(
          { validator: bytesToHex(nodeKey.publicKey), digest, size: bytes.length, chain: CHAIN, height: 0 },
          nodeKey.secretKey,
        ),
      ],
      logger: pino({ level: 'silent' }),
      now: () => NOW,
    },
  );
  await extractor.start();
  t.teardown(() => extractor.stop());
  const request = {
    id: sha256Hex(utf8ToBytes(`signed-request-${counter++}`)),
    subject: SUBJECT,
    subjectEncKey: bytesToHex(subject.publicKey),
    types,
    ...PERIOD,
  };
  const outcomes = await extractor.handleRequest(request);
  return { outcomes, submitted, payloads, subject, request };
}

t.test('the platform signs; the record seals statement and answer; record.put commits to it', async (t) => {
  const config = syntheticSourceConfig(platform);
  t.same(
    registeredSourcesOf([config as unknown as Record<string, unknown>]),
    [{ id: 'synthetic-platform', key: platform.source.key, types: config.dataTypes }],
    'init registers the platform in genesis for every type it serves',
  );
  const { outcomes, submitted, payloads, subject, request } = await extract(t, createDataSource(config));
  t.equal(outcomes[0]!.status, 'put');
  const put = submitted[0] as Tx<'record.put'>;
  t.equal(put.kind, 'record.put');
  const ciphertext = (await payloads.get(put.body.digest))!;
  const opened = openRecordAs(
    ciphertext,
    put.body.key,
    subject.secretKey,
    recordContext(CHAIN, request.id, 'tax'),
    {
      sourceCommitment: put.body.sourceCommitment,
    },
  );
  const signed = opened.statement!;
  t.ok(signed, 'the record holds the statement');
  t.ok(verifySourceStatement(signed, platform.source.key), "it verifies under the platform's key");
  t.same(signed.statement, {
    v: 1,
    source: 'synthetic-platform',
    subject: SUBJECT,
    type: 'tax',
    from: PERIOD.dataFrom,
    to: PERIOD.dataTo,
    digest: opened.sourceDigest,
    time: NOW - 5,
  });
  t.equal(put.body.sourceStatement, sourceStatementCommitment(signed), 'record.put commits to it');
  const content = fromBase64url(opened.content!);
  t.equal(sha256Hex(content), signed.statement.digest, 'the sealed content is what was signed');
  const answer = JSON.parse(new TextDecoder().decode(content)) as { data: unknown };
  t.same(answer.data, syntheticRecord(SUBJECT, 'tax', { from: PERIOD.dataFrom, to: PERIOD.dataTo }));
  t.notOk(JSON.stringify(put).includes(opened.content!), 'the chain never sees the answer');
});

t.test('a signature the plugin cannot read or verify is a record.fail, never a record', async (t) => {
  const other = generateSigningKeyPair();
  const cases: [string, HttpJsonSourceConfig][] = [
    [
      'the signature header is missing',
      {
        ...syntheticSourceConfig(platform),
        signature: { source: 'synthetic-platform', header: 'x-other' },
      },
    ],
    [
      'the signature fails under the configured key',
      syntheticSourceConfig({
        url: platform.url,
        source: { id: 'synthetic-platform', key: bytesToHex(other.publicKey) },
      }),
    ],
  ];
  for (const [label, config] of cases) {
    const { outcomes, submitted } = await extract(t, createDataSource(config));
    t.same(
      outcomes.map((o) => [o.status, o.status === 'fail' ? o.reason : '']),
      [['fail', 'PLUGIN_BAD_RESPONSE']],
      label,
    );
    t.equal(submitted[0]?.kind, 'record.fail', `${label}: record.fail`);
  }
  const { outcomes } = await extract(t, createDataSource(syntheticSourceConfig(platform.url)));
  t.equal(outcomes[0]!.status, 'put', 'a config without `signature` takes the answer unsigned');
});

t.test('a plugin statement about another answer is refused by the extractor', async (t) => {
  const key = generateSigningKeyPair();
  const raw = utf8ToBytes('{"amount":1}');
  const statementFor = (over: Record<string, unknown>) =>
    signSourceStatement(
      {
        v: 1,
        source: 'fake-source',
        subject: SUBJECT,
        type: 'tax',
        from: PERIOD.dataFrom,
        to: PERIOD.dataTo,
        digest: sha256Hex(raw),
        time: NOW,
        ...over,
      },
      key.secretKey,
    );
  const fake = (statement: FetchResult['statement']): DataSource => ({
    name: 'fake',
    dataTypes: ['tax'],
    fetch: async () => ({ fields: { amount: 1 }, source: 'fake', raw, ...(statement ? { statement } : {}) }),
    health: async () => ({ ok: true }),
  });
  const good = await extract(t, fake(statementFor({})));
  t.equal(good.outcomes[0]!.status, 'put', 'a statement about this answer is sealed');
  for (const [label, over] of [
    ['another digest', { digest: 'ab'.repeat(32) }],
    ['another subject', { subject: 'bob-002' }],
    ['another period', { from: '2023-01-01' }],
  ] as const) {
    const { outcomes } = await extract(t, fake(statementFor(over)));
    t.same(
      outcomes.map((o) => (o.status === 'fail' ? o.reason : o.status)),
      ['PLUGIN_BAD_RESPONSE'],
      label,
    );
  }
});
