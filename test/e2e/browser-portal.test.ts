/**
 * The portal and the explorer in a real browser (Debian's chromium through playwright-core)
 * against a dev chain with the synthetic data platform: the bank signs its own request with its
 * key file (`DatagrantClient`), a person opens a sealed key file in the page, sees the request,
 * grants part of it to the bank named by the grant (signed in the browser), the bank records its
 * use and opens the sealed bundle on its own side, and the history shows the use with a mark
 * verified in the browser; the explorer follows new blocks live. Also: wrong passphrase, another
 * subject's key file, tampered proofs, pause/resume/revoke/erase/deny from the page, the key
 * never leaving the page, a grant signed in the browser byte for byte equal to the CLI code's
 * (HPKE wraps from a seeded random source), and a chain under `on-consent` extraction where the
 * page offers every requested type before anything is fetched and only the granted type is.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import t from 'tap';
import { signedApiCall } from '../../src/cli/client.js';
import { DatagrantClient } from '../../src/client/index.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { canonicalize } from '../../src/common/canonical.js';
import { unwrapKey, wrapKey } from '../../src/common/crypto.js';
import { isDatagrantError } from '../../src/common/errors.js';
import { institutionCaller, SIGNED_CALL_HEADERS } from '../../src/common/http-signature.js';
import { generateKeySet, type KeySet } from '../../src/common/keyfile.js';
import { readKeyFile, writeKeyFile } from '../../src/common/keyfile-fs.js';
import { bundleDigest } from '../../src/ledger/records.js';
import type { DataType, Tx } from '../../src/ledger/tx.js';
import { decodeTx, signTx, txBytes, txHash, verifyTxSignature } from '../../src/ledger/tx-codec.js';
import {
  attestSubject,
  buildGrantTx,
  buildRegisterTx,
  type GrantableRequest,
  type GrantChoice,
  type Grantee,
  type SignContext,
} from '../../src/platform/consent.js';
import type { RequestInput, RequestView } from '../../src/platform/views.js';
import { recordContext } from '../../src/records/record-crypto.js';
import { seededRandom } from '../../web/src/seeded-random.js';
import {
  browserSkipReason,
  type DevChain,
  ensureWebBuilt,
  launchBrowser,
  SCREENSHOTS,
  startDevChain,
} from './fixtures/browser-harness.js';

const CHAIN = 'datagrant-browser';
const CHAIN_ON_CONSENT = 'datagrant-browser-consent';
const ALICE = 'alice-0001';
const BOB = 'bob-0002';
const PASSPHRASE = 'correct horse battery staple';

interface Json {
  status: number;
  body: Record<string, unknown>;
  text: string;
  headers: Headers;
}

/** The ledger-side helpers of one dev chain: plain calls, registration, and the bank's own client. */
interface ChainTools {
  call(method: string, path: string, body?: unknown): Promise<Json>;
  submit(tx: unknown): Promise<{ hash: string; height: number }>;
  register(id: string, keys: KeySet): Promise<void>;
  /** The bank's keys, from its own key file (no validator holds them). */
  bank: KeySet;
  /** The bank's application: signs its request and usage, opens the sealed bundle on its side. */
  client: DatagrantClient;
  /** Who the bank is on chain: what a grant names. */
  grantee: Grantee;
  openRequest(body: Partial<RequestInput>): Promise<RequestView>;
  /** The request as its institution reads it (a read signed by the bank). */
  view(id: string): Promise<RequestView>;
  /** The committed transaction `hash` with its body, as the bank reads it (signed GET /v1/txs/:hash). */
  committedTx(hash: string): Promise<Tx>;
}

async function chainTools(dev: DevChain): Promise<ChainTools> {
  const { api, net } = dev;
  const chain = net.genesis.chain;
  const call = async (method: string, path: string, body?: unknown): Promise<Json> => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const r = await fetch(`${api}${path}`, {
      method,
      headers: text === undefined ? {} : { 'content-type': 'application/json' },
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
  const bank = await readKeyFile(net.keys.institution);
  const registrar = await readKeyFile(net.keys.registrar);
  const client = new DatagrantClient({
    api,
    institution: net.institutionId,
    keys: bank,
    genesis: net.genesis,
  });
  const submit = async (tx: unknown): Promise<{ hash: string; height: number }> => {
    const r = await call('POST', '/v1/txs', tx);
    if (r.status !== 202) throw new Error(`tx refused: ${r.text}`);
    const hash = r.body.hash as string;
    for (let i = 0; i < 400; i++) {
      const s = await call('GET', `/v1/txs/${hash}`);
      if (s.body.status === 'committed') return { hash, height: s.body.height as number };
      if (s.body.status === 'rejected') throw new Error(`rejected: ${JSON.stringify(s.body.error)}`);
      await new Promise((res) => setTimeout(res, 25));
    }
    throw new Error('not committed');
  };
  return {
    call,
    submit,
    bank,
    client,
    grantee: { institution: net.institutionId, encKey: bytesToHex(bank.encryption.publicKey) },
    async register(id, keys) {
      const attestation = attestSubject(
        chain,
        id,
        { signKey: bytesToHex(keys.signing.publicKey), encKey: bytesToHex(keys.encryption.publicKey) },
        registrar,
      );
      await submit(
        buildRegisterTx(
          { chain, now: Date.now() },
          id,
          keys,
          bytesToHex(registrar.signing.publicKey),
          attestation,
        ),
      );
    },
    openRequest: (body) =>
      client.openRequest({
        subject: ALICE,
        types: ['tax'],
        purpose: 'unspecified',
        format: 'csv',
        fields: {},
        ...body,
      }),
    view: (id) => client.request(id),
    async committedTx(hash) {
      const r = await signedApiCall<{ status: string; tx: Tx }>(
        api,
        'GET',
        `/v1/txs/${hash}`,
        institutionCaller(net.institutionId),
        bank.signing.secretKey,
      );
      if (r.status !== 'committed') throw new Error(`tx ${hash} is not committed: ${JSON.stringify(r)}`);
      return r.tx;
    },
  };
}

/** Opening pages that record script errors, and unlocking a key file in the portal. */
function pageTools(browser: Browser, api: string, pageErrors: string[]) {
  const newPage = async (width = 1280, height = 900): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width, height } });
    page.setDefaultTimeout(20_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      // Coded API refusals (a search for an unknown hash) are shown in the page and asserted there.
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource'))
        pageErrors.push(msg.text());
    });
    return page;
  };
  const openKey = async (page: Page, subject: string, file: string, passphrase: string) => {
    await page.goto(`${api}/portal/`);
    await page.getByLabel('Subject id').fill(subject);
    await page.getByLabel('Key file').setInputFiles(file);
    await page.getByLabel('Passphrase').fill(passphrase);
    await page.getByRole('button', { name: 'Open key' }).click();
  };
  return { newPage, openKey };
}

/** The ledger's (or the platform's) refusal code of a promise, or 'accepted'. */
const refusal = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'accepted',
    (err: unknown) => (isDatagrantError(err) ? err.code : String(err)),
  );

const skip = browserSkipReason();

t.test('portal and explorer in a real browser', { skip }, async (t) => {
  const started = Date.now();
  await ensureWebBuilt();
  const dev: DevChain = await startDevChain(CHAIN);
  let browser: Browser | undefined;
  t.teardown(async () => {
    await browser?.close();
    await dev.stop();
  });
  browser = await launchBrowser();
  const { api } = dev;
  const { call, register, bank, client, grantee, openRequest, view, committedTx } = await chainTools(dev);

  // The people: Alice's key file is sealed with a passphrase; Bob's is not.
  const alice = generateKeySet('alice');
  const bob = generateKeySet('bob');
  const aliceFile = join(dev.dir, 'alice.json');
  const bobFile = join(dev.dir, 'bob.json');
  await writeKeyFile(aliceFile, alice, { passphrase: PASSPHRASE });
  await writeKeyFile(bobFile, bob);
  await register(ALICE, alice);
  await register(BOB, bob);

  // The bank signs its own request for tax and social insurance; the node only relays it.
  const opened = await openRequest({
    types: ['tax', 'social-insurance'],
    purpose: 'mortgage application 2025-117',
    fields: { income: 'tax.annualIncome', taxPaid: 'tax.taxPaid', base: 'social-insurance.monthlyBase' },
  });
  const requestId = opened.id;
  t.equal(
    (await committedTx(requestId)).signer,
    bytesToHex(bank.signing.publicKey),
    "the request.open on the ledger is signed with the bank's own key",
  );

  const pageErrors: string[] = [];
  const { newPage, openKey } = pageTools(browser, api, pageErrors);
  let grantHash = '';
  let firstUsage = '';

  // A lying node in front of this one: test/e2e/lying-node.test.ts.
  await t.test('a person grants a request in the portal; the use is verified in the browser', async (t) => {
    const page = await newPage();
    const sent: string[] = [];
    /** The page's reads of Alice's requests and audit trail, with their headers. */
    const reads: { path: string; headers: Record<string, string> }[] = [];
    page.on('request', (r) => {
      const headers = r.headers();
      sent.push(`${r.method()} ${r.url()}\n${JSON.stringify(headers)}\n${r.postData() ?? ''}`);
      const url = new URL(r.url());
      if (r.method() === 'GET' && /^\/v1\/subjects\/[^/]+\/(requests|audit)$/.test(url.pathname))
        reads.push({ path: `${url.pathname}${url.search}`, headers });
    });

    await page.goto(`${api}/`);
    t.match(page.url(), /\/portal\/$/, '/ leads to the portal');
    await openKey(page, ALICE, aliceFile, PASSPHRASE);
    await page.getByText('Key loaded: it matches the keys registered for alice-0001.').waitFor();
    t.pass('the sealed key file opens in the page and matches the registered keys');
    await page.screenshot({ path: join(SCREENSHOTS, 'portal-key-loaded.png') });

    const card = page.locator(`#pending-list article[data-request="${requestId}"]`);
    await card.and(page.locator('[data-status="waiting-for-consent"]')).waitFor();
    const cardText = await card.innerText();
    t.match(cardText, /Demo Bank/, 'the institution is named');
    t.match(cardText, /mortgage application 2025-117/, 'the purpose is shown');
    t.match(cardText, /Tax, Social insurance/, 'the data types are shown');
    t.match(cardText, /Decide by/, 'the consent deadline is shown');
    t.match(cardText, /waiting for your decision/, 'the status is shown');
    await card.locator('[data-fact="institution"][data-proof="verified"]').waitFor();
    t.equal(
      await card.locator('[data-fact="request"][data-proof="verified"]').count(),
      1,
      'what is asked is verified in the browser',
    );
    t.pass("the bank's key is verified in the browser before the grant button is live");
    await card.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SCREENSHOTS, 'portal-pending-request.png'), fullPage: true });

    // Narrow the grant to tax, two uses, one day.
    await card.getByLabel(/^Social insurance/).uncheck();
    await card.getByLabel('Number of uses').fill('2');
    await card.getByLabel('Access valid for').selectOption({ label: '1 day' });
    await card.getByRole('button', { name: 'Grant access' }).click();
    const outcome = page.locator('#pending-notice .notice.ok');
    await outcome.waitFor();
    t.match(await outcome.innerText(), /You granted Demo Bank access to Tax\. Committed in block \d+/);
    grantHash = (await outcome.getAttribute('data-tx')) ?? '';
    t.match(grantHash, /^[0-9a-f]{64}$/, 'the grant tx hash is shown');

    const granted = await view(requestId);
    t.equal(granted.status, 'granted', 'the ledger has the grant');
    t.same(granted.grant?.types, ['tax'], 'narrowed to tax');
    t.equal(granted.grant?.uses, 2, 'two uses');
    const day = granted.grant!.expires - granted.grant!.grantedAt;
    t.ok(day > 23 * 3600_000 && day <= 24 * 3600_000 + 60_000, 'valid for about one day');
    t.equal(granted.grant?.institution, grantee.institution, 'the grant names the bank');
    t.equal(granted.grant?.granteeKey, grantee.encKey, "and the bank's registered key");
    const grantTx = (await committedTx(grantHash)) as Tx<'grant'>;
    t.same(
      grantTx.body.keys.map((k) => k.record),
      granted.records.filter((r) => r.type === 'tax').map((r) => r.digest),
      'the browser re-wrapped the tax key only',
    );

    // The bank records its use and opens the sealed bundle on its own side: the browser's
    // re-wrap (HPKE to the bank's key) opens the tax record, and only that one is released.
    const doc = await client.document(requestId);
    firstUsage = doc.usageTx;
    t.equal(doc.contentType.split(';')[0], 'text/csv', 'a CSV document');
    t.same(doc.body.trim().split('\r\n')[0]!.split(','), ['income', 'taxPaid'], 'tax columns only');
    t.same(
      doc.records.map((r) => r.type),
      ['tax'],
      'the bundle held the tax record only',
    );
    t.same(
      doc.body.trim().split('\r\n')[1]!.split(','),
      [String(doc.records[0]!.fields.annualIncome), String(doc.records[0]!.fields.taxPaid)],
      "the values are the decrypted record's",
    );
    const usageTx = (await committedTx(doc.usageTx)) as Tx<'usage'>;
    t.equal(usageTx.signer, bytesToHex(bank.signing.publicKey), 'the usage is signed by the bank itself');
    t.equal(usageTx.body.bundle, doc.bundleDigest, 'naming the bundle it was handed');

    // The history shows the use, verified in the browser (the page refreshes on the block event).
    const usage = page.locator('#history-list li[data-kind="usage"]');
    await usage.waitFor();
    const usageText = await usage.innerText();
    t.match(usageText, /Demo Bank used your Tax data/, 'who used what');
    t.match(usageText, /CSV document/, 'in which form');
    t.match(usageText, /✓ verified/, 'the usage entry is verified');
    t.equal(await usage.getAttribute('data-verified'), 'true');
    const kinds = await page
      .locator('#history-list li')
      .evaluateAll((els) =>
        els.map((e) => `${e.getAttribute('data-kind')}:${e.getAttribute('data-verified')}`),
      );
    for (const kind of ['subject.register', 'request.open', 'record.put', 'grant', 'usage'])
      t.ok(kinds.includes(`${kind}:true`), `history lists ${kind}, verified`);
    t.notOk(
      kinds.some((k) => k.endsWith(':false')),
      'no entry fails verification',
    );
    const extracted = await page.locator('#history-list li[data-kind="record.put"]').first().innerText();
    t.match(
      extracted,
      /(Tax|Social insurance) data extracted from http:\/\/127\.0\.0\.1:\d+\/v1\/\S+\/alice-0001 by validator node0/,
      'what was extracted, from where, by whom',
    );
    t.match(await page.locator('#history-notice').innerText(), /All \d+ entries verified in this browser/);
    await page.locator('#history-section').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SCREENSHOTS, 'portal-history.png'), fullPage: true });

    // The page signed its reads of her requests and audit trail with her key, in the page.
    const { self } = (await call('GET', '/v1/status')).body as { self: string };
    const requestsRead = reads.find((r) => r.path.startsWith(`/v1/subjects/${ALICE}/requests`));
    const auditRead = reads.find((r) => r.path === `/v1/subjects/${ALICE}/audit`);
    t.ok(requestsRead, 'the page read her requests');
    t.ok(auditRead, 'the page read her audit trail');
    const taken = [...reads];
    t.same(
      [...new Set(taken.map((r) => r.headers[SIGNED_CALL_HEADERS.caller]))],
      [`subject:${ALICE}`],
      `every one of the page's ${taken.length} reads is signed as the subject`,
    );
    for (const read of [requestsRead!, auditRead!]) {
      const h = read.headers;
      t.equal(h[SIGNED_CALL_HEADERS.caller], `subject:${ALICE}`, `${read.path}: signed as the subject`);
      t.match(h[SIGNED_CALL_HEADERS.signature], /^[0-9a-f]{128}$/, `${read.path}: carries a signature`);
      t.equal(h[SIGNED_CALL_HEADERS.audience], self, `${read.path}: addressed to this node`);
      t.equal(h[SIGNED_CALL_HEADERS.chain], CHAIN, `${read.path}: on this chain`);
      t.match(h[SIGNED_CALL_HEADERS.nonce], /^[0-9a-f]{16,64}$/, `${read.path}: with a nonce`);
    }
    t.equal(
      new Set(taken.map((r) => r.headers[SIGNED_CALL_HEADERS.nonce])).size,
      taken.length,
      'each with its own nonce',
    );
    const signedHeaders = (h: Record<string, string>) =>
      Object.fromEntries(Object.values(SIGNED_CALL_HEADERS).map((name) => [name, h[name] ?? '']));
    const fetchWith = async (path: string, headers: Record<string, string> = {}) => {
      const r = await fetch(`${api}${path}`, { headers });
      return { status: r.status, code: ((await r.json()) as { error?: { code?: string } }).error?.code };
    };
    for (const read of [requestsRead!, auditRead!]) {
      t.same(
        await fetchWith(read.path),
        { status: 401, code: 'API_UNAUTHENTICATED' },
        `${read.path} fetched unsigned from the test: 401`,
      );
      t.same(
        await fetchWith(read.path, signedHeaders(read.headers)),
        { status: 401, code: 'API_REPLAYED' },
        `${read.path} with the page's own headers again: a replay, refused`,
      );
    }
    t.same(
      await fetchWith(`/v1/subjects/${BOB}/audit`, signedHeaders(auditRead!.headers)),
      { status: 401, code: 'API_BAD_SIGNATURE' },
      "the page's signature covers the path: it does not open Bob's audit trail",
    );
    t.equal(
      await refusal(
        signedApiCall(api, 'GET', `/v1/subjects/${ALICE}/audit`, `subject:${BOB}`, bob.signing.secretKey),
      ),
      'PLATFORM_NOT_YOURS',
      "Bob's own signature does not open Alice's audit trail",
    );
    const signedByAlice = await signedApiCall<{ requests: RequestView[] }>(
      api,
      'GET',
      requestsRead!.path,
      `subject:${ALICE}`,
      alice.signing.secretKey,
    );
    t.ok(
      signedByAlice.requests.some((r) => r.id === requestId),
      'the same read signed with her key from the test is answered',
    );

    // Readable on a phone: nothing wider than the screen.
    await page.setViewportSize({ width: 360, height: 780 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    t.ok(overflow <= 360, `no horizontal scrolling at 360px (${overflow})`);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(SCREENSHOTS, 'portal-phone.png') });
    await page.locator('#history-list li[data-kind="usage"]').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SCREENSHOTS, 'portal-phone-history.png') });

    // The key never left the page.
    const secrets = [
      bytesToHex(alice.signing.secretKey),
      bytesToHex(alice.encryption.secretKey),
      PASSPHRASE,
      JSON.parse(await readFile(aliceFile, 'utf8')).sealed.ciphertext as string,
    ];
    t.ok(
      sent.some((s) => s.startsWith('POST') && s.includes('"kind":"grant"')),
      'the signed grant was sent',
    );
    for (const [i, secret] of secrets.entries())
      t.notOk(
        sent.some((s) => s.includes(secret)),
        `secret ${i} is in no request`,
      );
    const stored = await page.evaluate(() => JSON.stringify({ ...window.localStorage }));
    t.notOk(
      secrets.some((s) => stored.includes(s)),
      'nothing secret in localStorage',
    );
    t.match(stored, /alice-0001/, 'the subject id is remembered');
    await page.close();
  });

  await t.test('pause, resume, revoke, erase and deny from the portal', async (t) => {
    const denyId = (await openRequest({ types: ['property'], purpose: 'collateral check' })).id;
    const page = await newPage();
    await openKey(page, ALICE, aliceFile, PASSPHRASE);
    const decided = page.locator(`#grants-list article[data-request="${requestId}"]`);
    const step = async (button: string, status: string) => {
      await decided.getByRole('button', { name: button }).click();
      await page
        .locator(`#grants-list article[data-request="${requestId}"][data-status="${status}"]`)
        .waitFor();
      t.equal((await view(requestId)).status, status, `${button} → ${status} on the ledger`);
    };
    await step('Pause grant', 'paused');
    t.equal(
      await refusal(client.fetchBundle(requestId, { usage: firstUsage })),
      'PLATFORM_GRANT_REQUIRED',
      'a paused grant releases nothing, not even the bundle of a use already recorded',
    );
    const pausedView = await view(requestId);
    const grantId = pausedView.grant!.id;
    const usage = signTx(
      {
        chain: CHAIN,
        kind: 'usage',
        body: {
          grant: grantId,
          bundle: bundleDigest(
            CHAIN,
            grantId,
            pausedView.records.filter((r) => r.type === 'tax').map((r) => r.digest),
          ),
          format: 'csv',
        },
      },
      bank.signing.publicKey,
      bank.signing.secretKey,
    );
    t.equal(
      await refusal(client.submit(usage)),
      'LEDGER_GRANT_PAUSED',
      'and the ledger refuses a new use of it',
    );
    await step('Resume grant', 'delivered');
    await step('Revoke grant', 'revoked');
    await decided.getByRole('button', { name: 'Erase data…' }).click();
    t.match(await decided.innerText(), /cannot be undone/, 'erasure asks for confirmation');
    await step('Erase now', 'erased');

    const card = page.locator(`#pending-list article[data-request="${denyId}"]`);
    await card.and(page.locator('[data-status="waiting-for-consent"]')).waitFor();
    await card.getByText('Deny this request').click();
    await card.getByLabel(/Reason/).fill('no longer needed');
    await card.getByRole('button', { name: 'Deny request' }).click();
    await page.locator(`#grants-list article[data-request="${denyId}"][data-status="denied"]`).waitFor();
    const denied = await view(denyId);
    t.equal(denied.status, 'denied', 'denied on the ledger');
    t.equal(denied.denyReason, 'no longer needed', 'with the reason');
    for (const kind of ['pause', 'resume', 'revoke', 'erase', 'deny'])
      await page.locator(`#history-list li[data-kind="${kind}"][data-verified="true"]`).waitFor();
    t.pass('every decision is in the history, verified');
    await page.close();
  });

  await t.test('a wrong passphrase gives a clear message', async (t) => {
    const page = await newPage();
    await openKey(page, ALICE, aliceFile, 'not the passphrase');
    const alert = page.locator('#key-notice [role="alert"]');
    await alert.waitFor();
    t.match(await alert.innerText(), /Wrong passphrase.*KEYFILE_BAD_PASSPHRASE/s);
    t.ok(await page.locator('#pending-section').isHidden(), 'nothing is shown without the key');
    await page.screenshot({ path: join(SCREENSHOTS, 'portal-wrong-passphrase.png') });
    await page.close();
  });

  await t.test("another subject's key file gives a clear message", async (t) => {
    const page = await newPage();
    await openKey(page, ALICE, bobFile, '');
    const alert = page.locator('#key-notice [role="alert"]');
    await alert.waitFor();
    t.match(
      await alert.innerText(),
      /This key file belongs to another subject.*registered for alice-0001.*PORTAL_KEY_MISMATCH/s,
    );
    t.ok(await page.locator('#history-section').isHidden(), "nothing of Alice's is shown");
    await page.screenshot({ path: join(SCREENSHOTS, 'portal-other-subject.png') });
    await openKey(page, 'nobody-0009', bobFile, '');
    const unknown = page.locator('#key-notice [data-code="PLATFORM_SUBJECT_NOT_FOUND"]');
    await unknown.waitFor();
    t.match(
      await unknown.innerText(),
      /nobody-0009 is not registered on this chain: register it/,
      'an unknown subject is explained, with the way to register it',
    );
    await page.close();
  });

  await t.test('a tampered proof shows NOT verified', async (t) => {
    const page = await newPage();
    await page.route('**/v1/subjects/*/audit', async (route) => {
      const response = await route.fetch();
      const json = (await response.json()) as {
        entries: {
          kind: string;
          proof: { tx: { body: Record<string, unknown> }; cert: { votes: { sig: string }[] } };
        }[];
      };
      // The server lies about which document was delivered, and forges a commit signature.
      const usage = json.entries.find((e) => e.kind === 'usage')!;
      usage.proof.tx.body.bundle = '0'.repeat(64);
      const grant = json.entries.find((e) => e.kind === 'grant')!;
      const sig = grant.proof.cert.votes[0]!.sig;
      grant.proof.cert.votes[0]!.sig = (sig[0] === '0' ? '1' : '0') + sig.slice(1);
      await route.fulfill({ response, json });
    });
    await openKey(page, ALICE, aliceFile, PASSPHRASE);
    const usage = page.locator('#history-list li[data-kind="usage"]');
    await usage.waitFor();
    t.match(await usage.innerText(), /✗ NOT verified: PROOF_BAD_TX_SIGNATURE/, 'altered tx is caught');
    t.equal(await usage.getAttribute('data-verified'), 'false');
    const grant = page.locator('#history-list li[data-kind="grant"]').first();
    t.match(
      await grant.innerText(),
      /✗ NOT verified: PROOF_CERT_BAD_SIGNATURE/,
      'forged certificate is caught',
    );
    const alert = page.locator('#history-notice [role="alert"]');
    t.match(await alert.innerText(), /2 of \d+ entries could NOT be verified.*PORTAL_PROOF_FAILED/s);
    t.equal(
      await page.locator('#history-list li[data-verified="true"]').count(),
      (await page.locator('#history-list li').count()) - 2,
      'the other entries still verify',
    );
    await usage.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SCREENSHOTS, 'portal-tampered-proof.png') });
    await page.close();
  });

  await t.test('the explorer shows status, validators and new blocks live', async (t) => {
    const page = await newPage();
    await page.goto(`${api}/explorer/`);
    await page.locator('#live.on').waitFor();
    await page.locator('[data-stat="height"]').waitFor();
    t.match(await page.locator('[data-stat="chain"]').innerText(), /datagrant-browser/, 'chain id');
    t.match(
      await page.locator('[data-validator="node0"]').innerText(),
      /primary/,
      'validator with its state',
    );
    // A new block with a transaction appears without reloading the page.
    const liveId = (await openRequest({ types: ['housing-fund'], purpose: 'card limit review' })).id;
    const committed = (await call('GET', `/v1/txs/${liveId}`)).body.height as number;
    await page.locator(`#blocks tr[data-height="${committed}"]`).waitFor();
    t.pass(`block ${committed} appeared live`);
    await page.waitForFunction(
      (h) => Number(document.querySelector('[data-stat="height"] dd')?.textContent) >= h,
      committed,
    );
    t.pass('the height follows');
    await page.screenshot({ path: join(SCREENSHOTS, 'explorer-home.png'), fullPage: true });
    await page.setViewportSize({ width: 360, height: 780 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    t.ok(overflow <= 360, `explorer: no horizontal scrolling at 360px (${overflow})`);
    await page.screenshot({ path: join(SCREENSHOTS, 'explorer-phone.png') });
    await page.setViewportSize({ width: 1280, height: 900 });

    // Search a transaction. The grant concerns Alice: an anonymous reader sees its kind and the
    // signer's role, not its body or proof (a governance transaction's decoded body and verified
    // proof are in browser-explorer.test.ts).
    await page.getByLabel('Find a transaction hash or block height').fill(grantHash);
    await page.keyboard.press('Enter');
    const txCard = page.locator(`section[data-tx="${grantHash}"]`);
    await txCard.waitFor();
    const txText = await txCard.innerText();
    t.match(txText, /Kind\s+grant/, 'the kind is shown');
    t.match(txText, /Signer role\s+subject/, "the signer's role is shown");
    t.equal(await txCard.locator('[data-redacted="true"]').count(), 2, 'body and proof are hidden');
    t.notMatch(txText, /"types"|mortgage application 2025-117/, 'no part of the body is shown');
    t.equal(await txCard.locator('[data-verified]').count(), 0, 'no proof is offered to verify');
    await page.screenshot({ path: join(SCREENSHOTS, 'explorer-tx.png'), fullPage: true });

    // Its block page lists it.
    await txCard.getByRole('link', { name: /^\d+$/ }).first().click();
    const row = page.locator(`tr[data-tx="${grantHash}"]`);
    await row.waitFor();
    t.match(await row.innerText(), /grant.*subject · body hidden/s, 'the block page lists the transaction');
    await page.screenshot({ path: join(SCREENSHOTS, 'explorer-block.png'), fullPage: true });

    await page.getByLabel('Find a transaction hash or block height').fill('1');
    await page.keyboard.press('Enter');
    await page.locator('section[data-block="1"]').waitFor();
    t.pass('search by height');
    await page.getByLabel('Find a transaction hash or block height').fill('not a hash');
    await page.keyboard.press('Enter');
    t.match(await page.locator('#search-notice').innerText(), /EXPLORER_BAD_QUERY/, 'bad query explained');
    await page.getByLabel('Find a transaction hash or block height').fill('ab'.repeat(32));
    await page.keyboard.press('Enter');
    await page.locator('#search-notice [data-code="LEDGER_TX_NOT_FOUND"]').waitFor();
    t.pass('unknown hash explained');
    await page.close();
  });

  await t.test('a grant signed in the browser is byte for byte the CLI code’s', async (t) => {
    const page = await newPage();
    await page.goto(`${api}/portal/`);
    await page.waitForFunction(() => typeof window.__datagrantSignGrant === 'function');
    const requestIdFixed = 'c0ffee'.repeat(10) + 'c0ff';
    const types = ['tax', 'social-insurance'] as const;
    // The extractor's side, reproducibly: one data key per record, wrapped (HPKE) to the subject
    // with ephemeral keys drawn from a seeded source.
    const wrapRandom = seededRandom('records');
    const dataKeys = new Map<string, Uint8Array>(types.map((type) => [type, wrapRandom(32)]));
    const recordsFor = (keys: KeySet): GrantableRequest['records'] =>
      types.map((type, i) => ({
        type,
        digest: `${i}`.repeat(64),
        key: wrapKey(
          dataKeys.get(type)!,
          keys.encryption.publicKey,
          recordContext(CHAIN, requestIdFixed, type),
          wrapRandom,
        ),
      }));
    const base = {
      id: requestIdFixed,
      subject: ALICE,
      types: [...types],
      purpose: 'mortgage — 按揭 application ✓',
    };
    const aliceKeyFile: unknown = JSON.parse(await readFile(aliceFile, 'utf8'));
    const bobKeyFile: unknown = JSON.parse(await readFile(bobFile, 'utf8'));
    interface GrantCase {
      name: string;
      keys: KeySet;
      keyFile: unknown;
      passphrase: string;
      request: GrantableRequest;
      choice: GrantChoice;
      ctx: SignContext;
      /** Data keys the grant re-wraps to the bank. */
      wraps: number;
    }
    const cases: GrantCase[] = [
      {
        name: 'narrowed grant, sealed key file',
        keys: alice,
        keyFile: aliceKeyFile,
        passphrase: PASSPHRASE,
        request: { ...base, records: recordsFor(alice) },
        choice: { types: ['tax'], expiresInMs: 86_400_000, uses: 3, retainDays: 10, dataFrom: '2024-01-01' },
        ctx: { chain: CHAIN, now: 1_750_000_000_000, nonce: '0123456789abcdef0123456789abcdef' },
        wraps: 1,
      },
      {
        name: 'every type, unsealed key file, explicit ttl',
        keys: bob,
        keyFile: bobKeyFile,
        passphrase: '',
        request: { ...base, records: recordsFor(bob) },
        choice: { expiresInMs: 7 * 86_400_000, uses: 1, retainDays: 30 },
        ctx: { chain: CHAIN, now: 1_760_000_000_123, nonce: 'fedcba9876543210', ttlMs: 120_000 },
        wraps: 2,
      },
      {
        name: 'on-consent: a type with no record yet, no keys',
        keys: alice,
        keyFile: aliceKeyFile,
        passphrase: PASSPHRASE,
        request: { ...base, records: [] },
        choice: { types: ['social-insurance'], expiresInMs: 3_600_000, uses: 2, retainDays: 0 },
        ctx: { chain: CHAIN, now: 1_770_000_000_000, nonce: '00ff00ff00ff00ff', extraction: 'on-consent' },
        wraps: 0,
      },
    ];
    const signInBrowser = (c: GrantCase, randomSeed: string) =>
      page.evaluate((input) => window.__datagrantSignGrant!(input), {
        keyFile: c.keyFile,
        passphrase: c.passphrase,
        ctx: c.ctx,
        request: c.request,
        grantee,
        choice: c.choice,
        randomSeed,
      });
    const hashes: string[] = [];
    for (const [i, c] of cases.entries()) {
      const seed = `grant-${i}`;
      const nodeTx = buildGrantTx(c.ctx, c.request, c.keys, grantee, c.choice, seededRandom(seed));
      const browserOut = await signInBrowser(c, seed);
      t.equal(
        JSON.stringify(browserOut.bytes),
        JSON.stringify(Array.from(txBytes(nodeTx))),
        `${c.name}: canonical bytes are identical`,
      );
      t.equal(browserOut.canonical, canonicalize(nodeTx), `${c.name}: canonical JSON is identical`);
      t.equal(browserOut.hash, txHash(nodeTx), `${c.name}: same tx hash`);
      hashes.push(browserOut.hash);
      t.ok(
        verifyTxSignature(decodeTx(browserOut.tx)),
        `${c.name}: the browser's tx decodes and its signature verifies`,
      );
      const body = browserOut.tx.body;
      t.same(
        { institution: body.institution, granteeKey: body.granteeKey },
        { institution: grantee.institution, granteeKey: grantee.encKey },
        `${c.name}: the grant names the bank and its key`,
      );
      t.equal(body.keys.length, c.wraps, `${c.name}: ${c.wraps} data keys re-wrapped`);
      t.equal(
        new Set(body.keys.map((k) => k.key.enc)).size,
        c.wraps,
        `${c.name}: each wrap has its own ephemeral key`,
      );
      for (const k of body.keys) {
        const type = c.request.records.find((r) => r.digest === k.record)!.type as DataType;
        t.same(
          unwrapKey(k.key, bank.encryption.secretKey, recordContext(CHAIN, requestIdFixed, type)),
          dataKeys.get(type),
          `${c.name}: the browser's HPKE wrap of ${type} opens with the bank's key to the data key`,
        );
      }
    }
    t.not(
      (await signInBrowser(cases[0]!, 'another seed')).hash,
      hashes[0],
      'the comparison is sensitive to the key-wrap randomness',
    );
    t.equal(
      (await signInBrowser(cases[2]!, 'another seed')).hash,
      hashes[2],
      'an on-consent grant wraps nothing, so it does not depend on the random source',
    );
    await page.close();
  });

  t.same(pageErrors, [], 'no script errors in any page');
  t.comment(`browser tests took ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

t.test(
  'on-consent extraction: the portal offers every type before anything is fetched',
  { skip },
  async (t) => {
    await ensureWebBuilt();
    const dev = await startDevChain(CHAIN_ON_CONSENT, {
      extraction: 'on-consent',
      extractor: { timeoutMs: 600_000, retries: 0 },
    });
    let browser: Browser | undefined;
    t.teardown(async () => {
      await browser?.close();
      await dev.stop();
    });
    browser = await launchBrowser();
    const { register, client, grantee, openRequest, view, committedTx } = await chainTools(dev);
    t.equal(dev.net.genesis.params.extraction, 'on-consent', 'the chain extracts only after consent');
    const alice = generateKeySet('alice');
    const aliceFile = join(dev.dir, 'alice.json');
    await writeKeyFile(aliceFile, alice, { passphrase: PASSPHRASE });
    await register(ALICE, alice);
    const pageErrors: string[] = [];
    const { newPage, openKey } = pageTools(browser, dev.api, pageErrors);

    const opened = await openRequest({
      types: ['tax', 'social-insurance'],
      purpose: 'credit line review 2025-311',
      fields: { income: 'tax.annualIncome', taxPaid: 'tax.taxPaid', base: 'social-insurance.monthlyBase' },
    });
    const id = opened.id;
    t.equal(opened.status, 'waiting-for-consent', 'the request waits for consent at once');
    t.same(opened.records, [], 'with no record');

    const page = await newPage();
    await openKey(page, ALICE, aliceFile, PASSPHRASE);
    const card = page.locator(`#pending-list article[data-request="${id}"]`);
    await card.and(page.locator('[data-status="waiting-for-consent"]')).waitFor();
    t.match(
      await card.innerText(),
      /Nothing has been fetched yet: the public data platforms are asked only for what you grant/,
      'the page says nothing is fetched before the decision',
    );
    for (const label of [/^Tax/, /^Social insurance/]) {
      const box = card.getByLabel(label);
      t.ok(await box.isEnabled(), `${label.source.slice(1)} can be chosen before any record exists`);
      t.ok(await box.isChecked(), `${label.source.slice(1)} is offered checked`);
    }
    t.equal(
      await card.getByText('fetched only if you grant it').count(),
      2,
      'each type says it is fetched only if granted',
    );
    t.ok(await card.getByRole('button', { name: 'Grant access' }).isEnabled(), 'the grant button is live');
    const before = await view(id);
    t.same(before.records, [], 'still no record while the person reads the request');
    t.equal(dev.source.requestCount(), 0, 'the data platform has not been asked for anything');
    await card.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SCREENSHOTS, 'portal-on-consent-pending.png'), fullPage: true });

    // She grants tax only.
    await card.getByLabel(/^Social insurance/).uncheck();
    await card.getByRole('button', { name: 'Grant access' }).click();
    const outcome = page.locator('#pending-notice .notice.ok');
    await outcome.waitFor();
    t.match(await outcome.innerText(), /You granted Demo Bank access to Tax\. Committed in block \d+/);
    const grantHash = (await outcome.getAttribute('data-tx')) ?? '';
    const grantTx = (await committedTx(grantHash)) as Tx<'grant'>;
    t.same(grantTx.body.types, ['tax'], 'the grant covers tax only');
    t.same(grantTx.body.keys, [], 'and carries no keys: nothing was extracted to re-wrap');
    t.equal(grantTx.body.institution, grantee.institution, 'it names the bank');
    t.equal(grantTx.body.granteeKey, grantee.encKey, "and the bank's key the extractor wraps to");

    // Now the extractor fetches what was granted, and only that.
    const ready = await client.waitFor(id, ['granted'], { timeoutMs: 60_000, intervalMs: 50 });
    t.same(
      ready.records.map((r) => r.type),
      ['tax'],
      'a tax record appeared',
    );
    t.notOk(
      ready.records.some((r) => r.type === 'social-insurance'),
      'the ungranted social insurance has no record',
    );
    t.same(ready.failures, [], 'and no failure either: it was never attempted');
    t.ok(ready.records[0]!.granteeKey, 'the extractor wrapped the tax key to the bank as well');
    t.ok(dev.source.requestCount('tax') >= 1, 'the data platform was asked for tax');
    t.equal(dev.source.requestCount('social-insurance'), 0, 'never for social insurance');

    // The page follows: the request is decided, and its extraction is in the verified history.
    await page.locator(`#grants-list article[data-request="${id}"][data-status="granted"]`).waitFor();
    const extracted = page.locator('#history-list li[data-kind="record.put"]');
    await extracted.and(page.locator('[data-verified="true"]')).waitFor();
    t.equal(await extracted.count(), 1, 'one extraction in the history');
    t.match(
      await extracted.innerText(),
      /Tax data extracted from http:\/\/127\.0\.0\.1:\d+\/v1\/tax\/alice-0001/,
    );

    // The bank opens what it was granted on its own side.
    const doc = await client.document(id);
    t.same(doc.body.trim().split('\r\n')[0]!.split(','), ['income', 'taxPaid'], 'tax columns only');
    t.same(
      doc.records.map((r) => r.type),
      ['tax'],
      'the bundle held the tax record only',
    );
    t.notOk(
      Object.keys(doc.records[0]!.fields).includes('monthlyBase'),
      'no social-insurance field reached the bank',
    );
    t.same(
      doc.body.trim().split('\r\n')[1]!.split(','),
      [String(doc.records[0]!.fields.annualIncome), String(doc.records[0]!.fields.taxPaid)],
      "the values are the decrypted record's",
    );
    const usage = page.locator('#history-list li[data-kind="usage"]');
    await usage.waitFor();
    t.match(await usage.innerText(), /Demo Bank used your Tax data/, 'the use shows in the history');
    t.equal(await usage.getAttribute('data-verified'), 'true', 'verified in the browser');
    await page.locator(`#grants-list article[data-request="${id}"][data-status="used-up"]`).waitFor();
    t.equal((await view(id)).status, 'used-up', 'its one use is spent');
    await page.screenshot({ path: join(SCREENSHOTS, 'portal-on-consent-used.png'), fullPage: true });

    // A granted type whose fetch is still under way: the data platform holds the answer (the
    // extractor waits up to 10 minutes), so the request stays granted-but-waiting while we look.
    dev.source.setFaults({ 'housing-fund': { slowMs: 600_000 } });
    const slowId = (await openRequest({ types: ['housing-fund'], purpose: 'deposit top-up' })).id;
    const slowCard = page.locator(`#pending-list article[data-request="${slowId}"]`);
    await slowCard.and(page.locator('[data-status="waiting-for-consent"]')).waitFor();
    await slowCard.getByRole('button', { name: 'Grant access' }).click();
    const anyCard = page.locator(`article[data-request="${slowId}"]`);
    await anyCard.and(page.locator(':not([data-status="waiting-for-consent"])')).waitFor();
    const fetching = await view(slowId);
    t.equal(fetching.status, 'waiting-for-data', 'granted, the housing-fund record is being fetched');
    t.ok(fetching.grant, 'the ledger holds the grant');
    t.equal(
      dev.source.requestCount('housing-fund'),
      1,
      'the data platform was asked once and holds the answer',
    );
    t.equal(
      await page.locator(`#pending-list article[data-request="${slowId}"]`).count(),
      0,
      'a granted request is not offered for a decision again',
    );
    t.equal(await anyCard.getByRole('button', { name: 'Grant access' }).count(), 0, 'no second grant form');
    t.equal(
      await page
        .locator(`#grants-list article[data-request="${slowId}"]`)
        .getByRole('button', { name: 'Revoke grant' })
        .count(),
      1,
      'it is listed with the decided ones, and can be revoked while its data is fetched',
    );
    await page.close();
    t.same(pageErrors, [], 'no script errors in the page');
  },
);
