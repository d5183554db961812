/**
 * The business flow end to end on a one-validator dev chain with the synthetic data platform:
 * registration, a bank's own signed request, extraction, consent by key file naming the bank and
 * its key, the bank's own usage, the sealed bundle verified and decrypted by the bank client, the
 * audit trail verified offline — and the privacy properties, each able to fail. A second test runs
 * the flow under the `on-consent` extraction policy.
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
import { DatagrantClient } from '../../src/client/index.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { sha256, unwrapKey } from '../../src/common/crypto.js';
import { isDatagrantError } from '../../src/common/errors.js';
import { institutionCaller, signCall } from '../../src/common/http-signature.js';
import { generateKeySet, type KeySet } from '../../src/common/keyfile.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { createLogger } from '../../src/common/logger.js';
import { bundleDigest, DATA_TYPES, signTx, type TxProof, verifyTxProof } from '../../src/ledger/index.js';
import { loadNodeConfig } from '../../src/node/config.js';
import { initTestnet } from '../../src/node/init.js';
import { DatagrantNode } from '../../src/node/node.js';
import { attestSubject, buildGrantTx, buildRegisterTx, buildSubjectTx } from '../../src/platform/consent.js';
import type { AuditEntry, RequestView } from '../../src/platform/views.js';
import { recordContext } from '../../src/records/index.js';
import { addInstitutionByCouncil } from '../helpers/council.js';
import { registerSubject, startDevNode } from '../helpers/dev-node.js';
import { lyingNode } from '../helpers/lying-node.js';

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
    sources: [syntheticSourceConfig(source) as unknown as Record<string, unknown>],
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
    caller = institutionCaller(institution),
  ) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const headers = signCall(
      {
        method,
        path,
        body: text,
        caller,
        audience: net.nodes[0]!.key,
        chain: CHAIN,
      },
      keys.signing.secretKey,
    );
    return call(method, path, body, headers);
  };
  /** A read signed by the bank, and one signed by Alice. */
  const asBank = (path: string) => signed('GET', path, undefined, bank);
  const asAlice = (path: string) => signed('GET', path, undefined, alice, '', `subject:${SUBJECT}`);
  const bankClient = () =>
    new DatagrantClient({ api, institution: 'demo-bank', keys: bank, genesis: net.genesis });
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (err: unknown) => (isDatagrantError(err) ? err.code : String(err)),
    );
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
      const v = (await asBank(`/v1/requests/${id}`)).body as unknown as RequestView;
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

  // 2. The bank signs its own request.open; the node only relays it (and could not sign it).
  const requestBody = {
    subject: SUBJECT,
    types: ['tax', 'social-insurance'] as ('tax' | 'social-insurance')[],
    purpose: 'mortgage application 2025-117',
    format: 'csv' as const,
    fields: { income: 'tax.annualIncome', taxPaid: 'tax.taxPaid', base: 'social-insurance.monthlyBase' },
  };
  const unsigned = await call('POST', '/v1/requests', requestBody);
  t.equal(unsigned.status, 401, 'a plain request body without a signed call is refused');
  const nodeSigns = await signed('POST', '/v1/requests', requestBody, bank);
  t.equal(nodeSigns.status, 403, 'a validator will not sign a request for the bank: it holds no bank key');
  t.equal(code(nodeSigns), 'PLATFORM_INSTITUTION_NOT_SERVED');
  const forgedTx = signTx(
    { chain: CHAIN, kind: 'request.open', body: { ...requestBody, consentBy: Date.now() + 3_600_000 } },
    mallory.signing.publicKey,
    mallory.signing.secretKey,
  );
  const forged = await call('POST', '/v1/requests', { tx: forgedTx });
  t.equal(
    code(forged),
    'LEDGER_NOT_INSTITUTION',
    'a request.open signed by another key is refused by the ledger',
  );
  const notARequest = await call('POST', '/v1/requests', {
    tx: buildSubjectTx(ctx(), 'deny', { request: 'ab'.repeat(32) }, alice),
  });
  t.equal(code(notARequest), 'PLATFORM_NOT_A_TX', 'only request.open is relayed by this route');

  const client = bankClient();
  const opened = await client.openRequest(requestBody);
  t.ok(
    ['waiting-for-data', 'waiting-for-consent'].includes(opened.status),
    `request opened: ${opened.status}`,
  );
  const requestId = opened.id;
  const openTx = (await asBank(`/v1/txs/${requestId}`)).body as { tx: { signer: string } };
  t.equal(
    openTx.tx.signer,
    bytesToHex(bank.signing.publicKey),
    "the request is signed by the bank's own key",
  );
  const replayedOpen = await call('POST', '/v1/requests', { tx: openTx.tx });
  t.equal(replayedOpen.status, 409, 'the same request.open relayed again is refused');

  // 3. Extraction: the extractor fetches both types, encrypts to Alice, commits record.put.
  const ready = await waitStatus(requestId, ['waiting-for-consent']);
  t.equal(ready.records.length, 2, 'two records extracted');
  t.equal(source.requestCount('tax'), 1, 'the data source was asked once for tax');

  // No grant yet: no use can be recorded and no bundle is released.
  t.equal(await failure(client.document(requestId)), 'CLIENT_NOT_GRANTED', 'no document without a grant');
  const early = await signed(
    'GET',
    `/v1/requests/${requestId}/bundle?usage=${'cd'.repeat(32)}`,
    undefined,
    bank,
  );
  t.equal(early.status, 403, 'no bundle without a grant');
  t.equal(code(early), 'PLATFORM_GRANT_REQUIRED');

  // Cryptographic consent: without a grant the bank's key cannot open Alice's data keys.
  const siRecord = ready.records.find((r) => r.type === 'social-insurance')!;
  t.throws(
    () =>
      unwrapKey(siRecord.key, bank.encryption.secretKey, recordContext(CHAIN, requestId, 'social-insurance')),
    { code: 'CRYPTO_UNWRAP_FAILED' },
    'the bank cannot decrypt without the subject re-wrapping the key',
  );

  // Someone other than Alice cannot grant.
  const inst = (await call('GET', '/v1/institutions/demo-bank')).body as { encKey: string };
  const grantee = { institution: 'demo-bank', encKey: inst.encKey };
  t.throws(
    () =>
      buildGrantTx(ctx(), ready, mallory, grantee, {
        types: ['tax'],
        expiresInMs: 3_600_000,
        uses: 1,
        retainDays: 30,
      }),
    { code: 'CRYPTO_UNWRAP_FAILED' },
    "another key file cannot open the subject's data keys",
  );
  // A grant wrapped to a key that is not the bank's registered one is refused by the ledger.
  const wrongKey = buildGrantTx(
    ctx(),
    ready,
    alice,
    { institution: 'demo-bank', encKey: bytesToHex(mallory.encryption.publicKey) },
    {
      types: ['tax'],
      expiresInMs: 3_600_000,
      uses: 1,
      retainDays: 30,
    },
  );
  t.equal(
    await failure(bankClient().submit(wrongKey)),
    'LEDGER_GRANTEE_KEY_MISMATCH',
    "a grant to a key that is not the bank's is refused",
  );

  // 4. Alice grants tax only, one use.
  const grantTx = buildGrantTx(ctx(), ready, alice, grantee, {
    types: ['tax'],
    expiresInMs: 3_600_000,
    uses: 1,
    retainDays: 30,
  });
  t.equal(grantTx.body.institution, 'demo-bank', 'the grant names the bank');
  t.equal(grantTx.body.granteeKey, inst.encKey, "and the bank's registered key");
  await submit(grantTx);
  const replayGrant = await call('POST', '/v1/txs', grantTx);
  t.equal(replayGrant.status, 409, 'replayed grant refused');
  t.equal(code(replayGrant), 'LEDGER_TX_REPLAYED');

  // 5. Another institution can neither record a use nor fetch the bundle.
  const other = generateKeySet('other-bank');
  await addInstitutionByCouncil(submit, CHAIN, net.keys.council, 'other-bank', 'Other Bank', other);
  const grantId =
    grantTx.body.request === requestId ? (await waitStatus(requestId, ['granted'])).grant!.id : '';
  const bundle = bundleDigest(CHAIN, grantId, [ready.records.find((r) => r.type === 'tax')!.digest]);
  const strangerUsage = signTx(
    { chain: CHAIN, kind: 'usage', body: { grant: grantId, bundle, format: 'csv' } },
    other.signing.publicKey,
    other.signing.secretKey,
  );
  t.equal(
    await failure(bankClient().submit(strangerUsage)),
    'LEDGER_NOT_GRANTEE',
    'another institution cannot record a use of the grant',
  );
  const nodeUsage = signTx(
    { chain: CHAIN, kind: 'usage', body: { grant: grantId, bundle, format: 'csv' } },
    node.keys.signing.publicKey,
    node.keys.signing.secretKey,
  );
  t.equal(
    await failure(bankClient().submit(nodeUsage)),
    'LEDGER_NOT_GRANTEE',
    'nor can the platform node itself',
  );
  const stranger = await signed(
    'GET',
    `/v1/requests/${requestId}/bundle?usage=${'cd'.repeat(32)}`,
    undefined,
    other,
    'other-bank',
  );
  t.equal(stranger.status, 403, 'another institution cannot fetch the bundle');
  t.equal(code(stranger), 'PLATFORM_NOT_GRANTEE');

  // 6. The bank records its use, gets the sealed bundle and assembles the CSV itself.
  const doc = await client.document(requestId);
  t.match(doc.contentType, /text\/csv/);
  const [header, row] = doc.body.trim().split('\r\n');
  t.same(header!.split(','), ['income', 'taxPaid'], 'a grant for tax does not open social-insurance');
  const values = syntheticSensitiveValues(SUBJECT);
  t.ok(
    values.some((v) => row!.includes(v)),
    'the document carries the real tax values',
  );
  t.equal(doc.bundle.records.length, 1, 'the bundle holds only the granted record');
  t.same(
    net.genesis.sources,
    [{ id: 'synthetic-platform', key: source.source.key, types: [...DATA_TYPES] }],
    'genesis registers the synthetic platform as the signing source of every type',
  );
  t.equal(
    doc.records[0]!.statement?.statement.source,
    'synthetic-platform',
    'the record carries the statement the platform signed, checked by the bank client',
  );
  t.equal(
    typeof doc.bundle.records[0]!.tx.body.sourceStatement,
    'string',
    'its record.put commits to the statement',
  );
  const usageTx = doc.usageTx;
  t.equal((await call('GET', `/v1/txs/${usageTx}`)).body.status, 'committed', 'usage is on the ledger');
  const sealedText = JSON.stringify(doc.bundle.sealed);
  t.notOk(
    values.some((v) => sealedText.includes(v)),
    'what the node handed out holds no plaintext value',
  );
  const raw = await signed('GET', `/v1/requests/${requestId}/bundle?usage=${usageTx}`, undefined, bank);
  t.equal(raw.status, 200, 'the bundle of a committed use can be fetched again');
  t.same(raw.body, doc.bundle.sealed, 'the same sealed bytes, and no further use is spent');
  t.equal(((await asBank(`/v1/requests/${requestId}`)).body.grant as { used: number }).used, 1);

  // A used-up grant is refused: by the client, and by the ledger for a usage signed anyway.
  t.equal(
    await failure(client.document(requestId)),
    'CLIENT_NOT_GRANTED',
    'used-up grant: no further document',
  );
  const extraUse = signTx(
    { chain: CHAIN, kind: 'usage', body: { grant: grantId, bundle, format: 'csv' } },
    bank.signing.publicKey,
    bank.signing.secretKey,
  );
  t.equal(
    await failure(client.submit(extraUse)),
    'LEDGER_GRANT_USED_UP',
    'a further usage signed anyway is refused by the ledger',
  );

  // 7. The audit trail, every entry verified offline against genesis.
  const audit = (await asAlice(`/v1/subjects/${SUBJECT}/audit`)).body.entries as AuditEntry[];
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

  // 8. Revocation is enforced by the ledger and by the platform: a second request, used, then revoked.
  const body2 = {
    ...requestBody,
    types: ['housing-fund' as const],
    fields: {},
    purpose: 'card limit review',
  };
  const opened2 = await client.openRequest(body2 as never);
  const ready2 = await waitStatus(opened2.id, ['waiting-for-consent']);
  const g2 = await submit(
    buildGrantTx(ctx(), ready2, alice, grantee, { expiresInMs: 3_600_000, uses: 5, retainDays: 1 }),
  );
  const used2 = await client.document(ready2.id);
  await submit(buildSubjectTx(ctx(), 'revoke', { grant: g2.hash }, alice));
  t.equal((await asBank(`/v1/requests/${ready2.id}`)).body.status, 'revoked');
  t.equal(await failure(client.document(ready2.id)), 'CLIENT_NOT_GRANTED', 'revoked grant: no new use');
  t.equal(
    await failure(client.fetchBundle(ready2.id, { usage: used2.usageTx })),
    'PLATFORM_GRANT_REQUIRED',
    'and not even the bundle of an earlier use once revoked',
  );

  // 8b. A lying node that shows the revoked grant as live in its view only (its proofs honest):
  // the bank client proves the grant against genesis before it signs a use. (A node that forges
  // the proven state as well: test/e2e/lying-node.test.ts.)
  for (const [lie, forge] of [
    [
      'the revoked grant shown as granted',
      (path: string, body: Record<string, unknown>) => {
        if (path === `/v1/requests/${ready2.id}`) body.status = 'granted';
      },
    ],
  ] as const) {
    const liar = await lyingNode(api, forge);
    const fooled = new DatagrantClient({
      api: liar.url,
      institution: 'demo-bank',
      keys: bank,
      genesis: net.genesis,
    });
    const usesBefore = ((await asBank(`/v1/requests/${ready2.id}`)).body as unknown as RequestView).grant
      ?.used;
    t.equal(await failure(fooled.document(ready2.id)), 'CLIENT_NODE_LIED', `${lie}: CLIENT_NODE_LIED`);
    await liar.close();
    t.equal(
      ((await asBank(`/v1/requests/${ready2.id}`)).body as unknown as RequestView).grant?.used,
      usesBefore,
      `${lie}: no use was signed`,
    );
  }

  // 9. A tampered payload is detected by digest; the use already recorded is not lost.
  const taxDigest = ready.records.find((r) => r.type === 'tax')!.digest;
  const body3 = { ...requestBody, types: ['property' as const], fields: {}, purpose: 'collateral check' };
  const opened3 = await client.openRequest(body3 as never);
  const ready3 = await waitStatus(opened3.id, ['waiting-for-consent']);
  await submit(
    buildGrantTx(ctx(), ready3, alice, grantee, { expiresInMs: 3_600_000, uses: 2, retainDays: 1 }),
  );
  const propDigest = ready3.records[0]!.digest;
  // Corrupt the stored ciphertext behind the store's digest check, as a bad disk would, then restart.
  await node.stop();
  const payloadPath = join(net.nodes[0]!.home, 'data', 'payloads');
  const original = await rawPayload(payloadPath, propDigest);
  const forgedPayload = Uint8Array.from(original);
  forgedPayload[forgedPayload.length - 1]! ^= 1;
  await rawPayload(payloadPath, propDigest, forgedPayload);
  node = new DatagrantNode({ ...config, api: { ...config.api, port: 0 } }, logger);
  await node.start();
  api = node.apiUrl;
  const afterRestart = bankClient();
  t.equal(
    await failure(afterRestart.document(ready3.id)),
    'PLATFORM_PAYLOAD_TAMPERED',
    'tampered payload refused',
  );
  const used3 = ((await asBank(`/v1/requests/${ready3.id}`)).body as unknown as RequestView).grant!;
  t.equal(used3.used, 1, 'the use was recorded before the bundle was asked for');
  const audit3 = (await asAlice(`/v1/subjects/${SUBJECT}/audit`)).body.entries as AuditEntry[];
  const usage3 = audit3.filter((e) => e.kind === 'usage' && e.grant === used3.id).at(-1)!;
  await node.stop();
  await rawPayload(payloadPath, propDigest, original);
  node = new DatagrantNode({ ...config, api: { ...config.api, port: 0 } }, logger);
  await node.start();
  api = node.apiUrl;
  const repaired = await bankClient().fetchBundle(ready3.id, { usage: usage3.hash });
  t.equal(repaired.records.length, 1, 'once the payload is whole again the same use delivers it');
  t.equal(
    ((await asBank(`/v1/requests/${ready3.id}`)).body.grant as { used: number }).used,
    1,
    'no second use spent',
  );

  // 10. Erasure deletes the payloads, the ledger keeps the digest.
  t.ok(await node.payloads.has(taxDigest), 'payload stored before erasure');
  await submit(buildSubjectTx(ctx(), 'erase', { request: requestId }, alice));
  for (let i = 0; i < 100 && (await node.payloads.has(taxDigest)); i++)
    await new Promise((r) => setTimeout(r, 50));
  t.notOk(await node.payloads.has(taxDigest), 'erasure deleted the ciphertext');
  const afterErase = (await asBank(`/v1/requests/${requestId}`)).body as unknown as RequestView;
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

  // No on-chain value is a hash of anything the data source served, nor of any personal value:
  // such a digest would confirm a guess of her data from the ledger alone.
  const answers = source.servedAnswers();
  t.ok(answers.length >= 4, `${answers.length} answers of the data source to check`);
  const digestsOf = (bytes: Uint8Array) => {
    const d = Buffer.from(sha256(bytes));
    return [d.toString('hex'), d.toString('base64'), d.toString('base64url')];
  };
  const forbidden = [
    ...answers.flatMap(digestsOf),
    ...values.flatMap((v) => digestsOf(new TextEncoder().encode(v))),
  ];
  const found = forbidden.filter((d) => ledgerText.includes(d));
  t.same(found, [], 'no digest of a source answer or personal value is anywhere in the ledger files');
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

t.test(
  'on-consent extraction: nothing is fetched before the grant, then only the granted types',
  async (t) => {
    const chain = 'datagrant-consent';
    const dev = await startDevNode(t, { chain, extraction: 'on-consent' });
    const { net, bank, source } = dev;
    t.equal(net.genesis.params.extraction, 'on-consent');
    const alice = await registerSubject(dev.api, net.genesis, dev.registrar, SUBJECT);
    const client = dev.client();
    const ctx = { chain, now: Date.now(), extraction: 'on-consent' as const };

    const opened = await client.openRequest({
      subject: SUBJECT,
      types: ['tax', 'social-insurance'],
      purpose: 'mortgage application',
      format: 'json',
      fields: {},
    });
    t.equal(opened.status, 'waiting-for-consent', 'the subject is asked first');
    await new Promise((r) => setTimeout(r, 600));
    t.equal(source.requestCount(), 0, 'no data source was asked before consent');
    t.equal((await client.request(opened.id)).records.length, 0, 'no record exists before consent');

    const grantee = { institution: 'demo-bank', encKey: bytesToHex(bank.encryption.publicKey) };
    const grant = buildGrantTx(ctx, opened, alice, grantee, {
      types: ['tax'],
      expiresInMs: 3_600_000,
      uses: 1,
      retainDays: 1,
    });
    t.same(grant.body.keys, [], 'the grant carries no keys: nothing is extracted yet');
    await client.submit(grant);
    const granted = await client.waitFor(opened.id, ['granted']);
    t.same(
      granted.records.map((r) => r.type),
      ['tax'],
      'only the granted type was extracted',
    );
    t.ok(granted.records[0]!.granteeKey, 'its data key is wrapped to the bank as well');
    t.equal(source.requestCount('tax'), 1, 'the data source was asked once for tax');
    t.equal(source.requestCount('social-insurance'), 0, 'and never for the type she did not grant');
    // The subject still holds her own wrap of the record.
    const record = granted.records[0]!;
    t.doesNotThrow(
      () => unwrapKey(record.key, alice.encryption.secretKey, recordContext(chain, opened.id, 'tax')),
      'the record opens with her key',
    );
    const doc = await client.document(opened.id);
    const fields = (JSON.parse(doc.body) as { fields: Record<string, unknown> }).fields;
    t.ok(Object.keys(fields).length > 0, 'the document has fields');
    t.ok(
      Object.keys(fields).every((f) => f.startsWith('tax.')),
      'and only tax fields',
    );
  },
);
