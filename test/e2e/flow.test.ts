/**
 * The business flow end to end on a one-validator dev chain with the synthetic data platform:
 * registration, a bank's request, extraction, consent by key file, document delivery with a
 * usage record, the audit trail verified offline — and the privacy properties, each able to fail.
 */
import '../../src/common/polyfill.js';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import {
  startSyntheticDataPlatform,
  syntheticSensitiveValues,
  syntheticSourceConfig,
} from '../../scripts/synthetic-data-platform.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { unwrapKey } from '../../src/common/crypto.js';
import { generateKeySet, type KeySet } from '../../src/common/keyfile.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { createLogger } from '../../src/common/logger.js';
import { recordContext } from '../../src/records/index.js';
import { type TxProof, verifyTxProof } from '../../src/ledger/index.js';
import { loadNodeConfig } from '../../src/node/config.js';
import { initTestnet } from '../../src/node/init.js';
import { DatagrantNode } from '../../src/node/node.js';
import { attestSubject, buildGrantTx, buildRegisterTx, buildSubjectTx } from '../../src/platform/consent.js';
import { signHttpRequest } from '../../src/platform/http-auth.js';
import type { AuditEntry, RequestView } from '../../src/platform/platform.js';

const CHAIN = 'datagrant-flow';
const SUBJECT = 'alice-0001';

interface Api {
  status: number;
  body: Record<string, unknown>;
  text: string;
  headers: Headers;
}

t.test('business flow and privacy properties on the dev chain', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-flow-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const source = await startSyntheticDataPlatform({ port: 0, host: '127.0.0.1' });
  t.teardown(() => source.close());

  const net = await initTestnet({
    dir,
    validators: 1,
    chain: CHAIN,
    basePort: 0,
    blockIntervalMs: 200,
    minBlockIntervalMs: 5,
    sources: [syntheticSourceConfig(source.url) as unknown as Record<string, unknown>],
  });
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  const config = await loadNodeConfig(net.nodes[0]!.configPath);
  const logger = createLogger({ level: 'debug', destination: sink });
  let node = new DatagrantNode({ ...config, api: { ...config.api, port: 0 } }, logger);
  await node.start();
  t.teardown(() => node.stop());
  let api = node.apiUrl;
  const bank = await readKeyFile(net.keys.institution);
  const registrar = await readKeyFile(net.keys.registrar);
  const alice = generateKeySet('alice');
  const mallory = generateKeySet('mallory');

  const call = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Api> => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const r = await fetch(`${api}${path}`, {
      method,
      headers: text === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(text === undefined ? {} : { body: text }),
    });
    const raw = await r.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      parsed = {};
    }
    return { status: r.status, body: parsed, text: raw, headers: r.headers };
  };
  const signed = (
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    keys: KeySet,
    institution = 'demo-bank',
  ) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    return call(method, path, body, signHttpRequest(method, path, text, institution, keys.signing.secretKey));
  };
  const code = (r: Api) => (r.body.error as { code?: string } | undefined)?.code;
  const submit = async (tx: unknown): Promise<{ hash: string; height: number }> => {
    const r = await call('POST', '/v1/txs', tx);
    t.equal(r.status, 202, `tx accepted: ${r.text}`);
    const hash = r.body.hash as string;
    for (let i = 0; i < 400; i++) {
      const s = await call('GET', `/v1/txs/${hash}`);
      if (s.body.status === 'committed') return { hash, height: s.body.height as number };
      if (s.body.status === 'rejected') throw new Error(`rejected: ${JSON.stringify(s.body.error)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error('not committed');
  };
  const waitStatus = async (id: string, wanted: string[]): Promise<RequestView> => {
    for (let i = 0; i < 400; i++) {
      const v = (await call('GET', `/v1/requests/${id}`)).body as unknown as RequestView;
      if (wanted.includes(v.status)) return v;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error(`request ${id} never reached ${wanted.join('/')}`);
  };
  const ctx = () => ({ chain: CHAIN, now: Date.now() });

  // 1. Identity: the registrar attests Alice's keys to a pseudonymous id.
  const attestation = attestSubject(
    CHAIN,
    SUBJECT,
    { signKey: bytesToHex(alice.signing.publicKey), encKey: bytesToHex(alice.encryption.publicKey) },
    registrar,
  );
  await submit(buildRegisterTx(ctx(), SUBJECT, alice, bytesToHex(registrar.signing.publicKey), attestation));

  // 2. The bank asks (signed HTTP request); the request is committed and multicast.
  const requestBody = {
    subject: SUBJECT,
    types: ['tax', 'social-insurance'],
    purpose: 'mortgage application 2025-117',
    format: 'csv',
    fields: { income: 'tax.annualIncome', taxPaid: 'tax.taxPaid', base: 'social-insurance.monthlyBase' },
  };
  const unsigned = await call('POST', '/v1/requests', requestBody);
  t.equal(unsigned.status, 401, 'unsigned request refused');
  t.equal(code(unsigned), 'API_UNAUTHENTICATED');
  const forgedInst = await signed('POST', '/v1/requests', requestBody, mallory);
  t.equal(forgedInst.status, 401, 'request signed by another key refused');

  const headers = signHttpRequest(
    'POST',
    '/v1/requests',
    JSON.stringify(requestBody),
    'demo-bank',
    bank.signing.secretKey,
  );
  const opened = await call('POST', '/v1/requests', requestBody, headers);
  t.equal(opened.status, 201, `request opened: ${opened.text}`);
  const requestId = opened.body.id as string;
  const replayed = await call('POST', '/v1/requests', requestBody, headers);
  t.equal(replayed.status, 401, 'replayed signed request refused');

  // 3. Extraction: the extractor fetches both types, encrypts to Alice, commits record.put.
  const ready = await waitStatus(requestId, ['waiting-for-consent']);
  t.equal(ready.records.length, 2, 'two records extracted');
  t.equal(source.requestCount('tax'), 1, 'the data source was asked once for tax');

  // No grant yet: the document is refused.
  const early = await signed('GET', `/v1/requests/${requestId}/document`, undefined, bank);
  t.equal(early.status, 403, 'no document without a grant');
  t.equal(code(early), 'PLATFORM_GRANT_REQUIRED');

  // Cryptographic consent: without a grant the bank's key cannot open Alice's data keys.
  const siRecord = ready.records.find((r) => r.type === 'social-insurance')!;
  t.throws(
    () =>
      unwrapKey(siRecord.key, bank.encryption.secretKey, recordContext(CHAIN, requestId, 'social-insurance')),
    { code: 'CRYPTO_UNWRAP_FAILED' },
    'the platform cannot decrypt without the subject re-wrapping the key',
  );

  // Someone other than Alice cannot grant.
  const inst = (await call('GET', '/v1/institutions/demo-bank')).body as { encKey: string };
  t.throws(
    () =>
      buildGrantTx(ctx(), ready, mallory, inst.encKey, {
        types: ['tax'],
        expiresInMs: 3_600_000,
        uses: 1,
        retainDays: 30,
      }),
    { code: 'CRYPTO_UNWRAP_FAILED' },
    "another key file cannot open the subject's data keys",
  );

  // 4. Alice grants tax only, one use.
  const grantTx = buildGrantTx(ctx(), ready, alice, inst.encKey, {
    types: ['tax'],
    expiresInMs: 3_600_000,
    uses: 1,
    retainDays: 30,
  });
  await submit(grantTx);
  const replayGrant = await call('POST', '/v1/txs', grantTx);
  t.equal(replayGrant.status, 409, 'replayed grant refused');
  t.equal(code(replayGrant), 'LEDGER_TX_REPLAYED');

  // 5. Another institution cannot fetch the document.
  const other = generateKeySet('other-bank');
  const admin = await readKeyFile(net.keys.admin);
  const { signTx } = await import('../../src/ledger/index.js');
  await submit(
    signTx(
      {
        chain: CHAIN,
        kind: 'institution.add',
        body: {
          institution: 'other-bank',
          name: 'Other Bank',
          signKey: bytesToHex(other.signing.publicKey),
          encKey: bytesToHex(other.encryption.publicKey),
        },
      },
      admin.signing.publicKey,
      admin.signing.secretKey,
    ),
  );
  const stranger = await signed('GET', `/v1/requests/${requestId}/document`, undefined, other, 'other-bank');
  t.equal(stranger.status, 403, 'another institution cannot fetch the document');
  t.equal(code(stranger), 'PLATFORM_NOT_GRANTEE');

  // 6. The bank fetches the document: CSV with the tax columns only; usage on the ledger.
  const doc = await signed('GET', `/v1/requests/${requestId}/document`, undefined, bank);
  t.equal(doc.status, 200, `document delivered: ${doc.text.slice(0, 200)}`);
  t.match(doc.headers.get('content-type') ?? '', /text\/csv/);
  const [header, row] = doc.text.trim().split('\r\n');
  t.same(header!.split(','), ['income', 'taxPaid'], 'a grant for tax does not open social-insurance');
  const values = syntheticSensitiveValues(SUBJECT);
  t.ok(
    values.some((v) => row!.includes(v)),
    'the document carries the real tax values',
  );
  const usageTx = doc.headers.get('x-datagrant-usage-tx')!;
  t.equal((await call('GET', `/v1/txs/${usageTx}`)).body.status, 'committed', 'usage is on the ledger');

  // A used-up grant is refused.
  const again = await signed('GET', `/v1/requests/${requestId}/document`, undefined, bank);
  t.equal(again.status, 403, 'used-up grant refused');
  t.equal(code(again), 'PLATFORM_GRANT_REQUIRED');

  // 7. The audit trail, every entry verified offline against genesis.
  const audit = (await call('GET', `/v1/subjects/${SUBJECT}/audit`)).body.entries as AuditEntry[];
  const kinds = audit.map((e) => e.kind);
  for (const kind of ['subject.register', 'request.open', 'record.put', 'grant', 'usage']) {
    t.ok(kinds.includes(kind), `audit lists ${kind}`);
  }
  for (const entry of audit) {
    const r = verifyTxProof(net.genesis, entry.proof as TxProof);
    t.ok(r.ok && r.hash === entry.hash, `audit entry ${entry.kind} ${entry.hash} verifies`);
  }
  const tampered = structuredClone(audit.find((e) => e.kind === 'usage')!.proof) as TxProof;
  tampered.tx = { ...tampered.tx, nonce: '00'.repeat(16) };
  t.notOk(verifyTxProof(net.genesis, tampered).ok, 'a tampered audit proof fails');

  // 8. Revocation and expiry are enforced by the ledger: a second request, granted then revoked.
  const body2 = { ...requestBody, types: ['housing-fund'], fields: {}, purpose: 'card limit review' };
  const opened2 = await signed('POST', '/v1/requests', body2, bank);
  const ready2 = await waitStatus(opened2.body.id as string, ['waiting-for-consent']);
  const g2 = await submit(
    buildGrantTx(ctx(), ready2, alice, inst.encKey, { expiresInMs: 3_600_000, uses: 5, retainDays: 1 }),
  );
  await submit(buildSubjectTx(ctx(), 'revoke', { grant: g2.hash }, alice));
  const revoked = await signed('GET', `/v1/requests/${ready2.id}/document`, undefined, bank);
  t.equal(revoked.status, 403, 'revoked grant refused');
  t.equal((await call('GET', `/v1/requests/${ready2.id}`)).body.status, 'revoked');

  // 9. Tampered payload detected by digest.
  const taxDigest = ready.records.find((r) => r.type === 'tax')!.digest;
  const body3 = { ...requestBody, types: ['property'], fields: {}, purpose: 'collateral check' };
  const opened3 = await signed('POST', '/v1/requests', body3, bank);
  const ready3 = await waitStatus(opened3.body.id as string, ['waiting-for-consent']);
  await submit(
    buildGrantTx(ctx(), ready3, alice, inst.encKey, { expiresInMs: 3_600_000, uses: 2, retainDays: 1 }),
  );
  const propDigest = ready3.records[0]!.digest;
  // Corrupt the stored ciphertext behind the store's digest check, as a bad disk would, then restart.
  await node.stop();
  const payloadPath = join(net.nodes[0]!.home, 'data', 'payloads');
  const original = await rawPayload(payloadPath, propDigest);
  const forged = Uint8Array.from(original);
  forged[forged.length - 1]! ^= 1;
  await rawPayload(payloadPath, propDigest, forged);
  node = new DatagrantNode({ ...config, api: { ...config.api, port: 0 } }, logger);
  await node.start();
  api = node.apiUrl;
  const tamperedDoc = await signed('GET', `/v1/requests/${ready3.id}/document`, undefined, bank);
  t.equal(tamperedDoc.status, 502, 'tampered payload refused');
  t.equal(code(tamperedDoc), 'PLATFORM_PAYLOAD_TAMPERED');
  t.equal(
    (await call('GET', `/v1/requests/${ready3.id}`)).body.status,
    'granted',
    'the failed delivery used no grant',
  );

  // 10. Erasure deletes the payloads, the ledger keeps the digest.
  t.ok(await node.payloads.has(taxDigest), 'payload stored before erasure');
  await submit(buildSubjectTx(ctx(), 'erase', { request: requestId }, alice));
  for (let i = 0; i < 100 && (await node.payloads.has(taxDigest)); i++)
    await new Promise((r) => setTimeout(r, 50));
  t.notOk(await node.payloads.has(taxDigest), 'erasure deleted the ciphertext');
  const afterErase = (await call('GET', `/v1/requests/${requestId}`)).body as unknown as RequestView;
  t.equal(afterErase.status, 'erased');
  t.ok(
    afterErase.records.some((r) => r.digest === taxDigest),
    'the ledger keeps the digest',
  );

  // 11. Neither the ledger nor the logs hold a plaintext field or the ID number.
  await node.stop();
  const ledgerText = await dumpDir(join(net.nodes[0]!.home, 'data', 'chain'));
  const logs = logLines.join('');
  t.ok(logLines.length > 10, 'logs were captured');
  for (const value of values) {
    t.notOk(ledgerText.includes(value), `ledger does not contain ${value}`);
    t.notOk(logs.includes(value), `logs do not contain ${value}`);
  }
  t.ok(ledgerText.includes(taxDigest), 'the scan reads the ledger files (it finds the digest)');
});

/** Reads (or, with `bytes`, overwrites) one payload directly in a closed payload store. */
async function rawPayload(path: string, digest: string, bytes?: Uint8Array): Promise<Uint8Array> {
  const { Level } = await import('level');
  const db = new Level<string, Uint8Array>(path, { valueEncoding: 'view' });
  await db.open();
  try {
    if (bytes) await db.put(digest, bytes);
    const value = await db.get(digest);
    if (!value) throw new Error('payload missing');
    return value;
  } finally {
    await db.close();
  }
}

async function dumpDir(dir: string): Promise<string> {
  let out = '';
  for (const name of await readdir(dir)) {
    const buf = await readFile(join(dir, name));
    out += buf.toString('utf8');
  }
  return out;
}
