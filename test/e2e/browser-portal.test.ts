/**
 * The portal and the explorer in a real browser (Debian's chromium through playwright-core)
 * against a dev chain with the synthetic data platform: a person opens a sealed key file in the
 * page, sees a bank's request, grants part of it (signed in the browser), the bank fetches the
 * document, and the history shows the use with a mark verified in the browser; the explorer
 * follows new blocks live. Also: wrong passphrase, another subject's key file, tampered proofs,
 * pause/resume/revoke/erase/deny from the page, the key never leaving the page, and a grant
 * signed in the browser byte for byte equal to the CLI code's.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import t from 'tap';
import { bytesToHex } from '../../src/common/bytes.js';
import { canonicalize } from '../../src/common/canonical.js';
import { wrapKey } from '../../src/common/crypto.js';
import { generateKeySet, type KeySet } from '../../src/common/keyfile.js';
import { readKeyFile, writeKeyFile } from '../../src/common/keyfile-fs.js';
import { recordContext } from '../../src/records/record-crypto.js';
import { decodeTx, txBytes, txHash, verifyTxSignature } from '../../src/ledger/tx-codec.js';
import {
  attestSubject,
  buildGrantTx,
  buildRegisterTx,
  type GrantableRequest,
} from '../../src/platform/consent.js';
import { signHttpRequest } from '../../src/platform/http-auth.js';
import type { RequestView } from '../../src/platform/platform.js';
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
const ALICE = 'alice-0001';
const BOB = 'bob-0002';
const PASSPHRASE = 'correct horse battery staple';

interface Json {
  status: number;
  body: Record<string, unknown>;
  text: string;
  headers: Headers;
}

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
  const { api, net } = dev;

  const call = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Json> => {
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
  const bank = await readKeyFile(net.keys.institution);
  const registrar = await readKeyFile(net.keys.registrar);
  const bankCall = (method: 'GET' | 'POST', path: string, body?: unknown) =>
    call(
      method,
      path,
      body,
      signHttpRequest(
        method,
        path,
        body === undefined ? '' : JSON.stringify(body),
        'demo-bank',
        bank.signing.secretKey,
      ),
    );
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
  const register = async (id: string, keys: KeySet) => {
    const attestation = attestSubject(
      CHAIN,
      id,
      { signKey: bytesToHex(keys.signing.publicKey), encKey: bytesToHex(keys.encryption.publicKey) },
      registrar,
    );
    await submit(
      buildRegisterTx(
        { chain: CHAIN, now: Date.now() },
        id,
        keys,
        bytesToHex(registrar.signing.publicKey),
        attestation,
      ),
    );
  };
  const openRequest = async (body: Record<string, unknown>): Promise<string> => {
    const r = await bankCall('POST', '/v1/requests', { subject: ALICE, format: 'csv', fields: {}, ...body });
    if (r.status !== 201) throw new Error(`request refused: ${r.text}`);
    return r.body.id as string;
  };
  const view = async (id: string) => (await call('GET', `/v1/requests/${id}`)).body as unknown as RequestView;

  // The people: Alice's key file is sealed with a passphrase; Bob's is not.
  const alice = generateKeySet('alice');
  const bob = generateKeySet('bob');
  const aliceFile = join(dev.dir, 'alice.json');
  const bobFile = join(dev.dir, 'bob.json');
  await writeKeyFile(aliceFile, alice, { passphrase: PASSPHRASE });
  await writeKeyFile(bobFile, bob);
  await register(ALICE, alice);
  await register(BOB, bob);

  // The bank asks (signed HTTP request) for tax and social insurance.
  const requestId = await openRequest({
    types: ['tax', 'social-insurance'],
    purpose: 'mortgage application 2025-117',
    fields: { income: 'tax.annualIncome', taxPaid: 'tax.taxPaid', base: 'social-insurance.monthlyBase' },
  });

  const pageErrors: string[] = [];
  const newPage = async (width = 1280, height = 900): Promise<Page> => {
    const page = await browser!.newPage({ viewport: { width, height } });
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
  let grantHash = '';

  await t.test('a person grants a request in the portal; the use is verified in the browser', async (t) => {
    const page = await newPage();
    const sent: string[] = [];
    page.on('request', (r) => sent.push(`${r.method()} ${r.url()}\n${r.postData() ?? ''}`));

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

    // The bank fetches the document: the browser's re-wrapped key opens the tax record only.
    const doc = await bankCall('GET', `/v1/requests/${requestId}/document`);
    t.equal(doc.status, 200, `document delivered: ${doc.text.slice(0, 120)}`);
    t.same(doc.text.trim().split('\r\n')[0]!.split(','), ['income', 'taxPaid'], 'tax columns only');

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
    const denyId = await openRequest({ types: ['property'], purpose: 'collateral check' });
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
    const paused = await bankCall('GET', `/v1/requests/${requestId}/document`);
    t.equal(paused.status, 403, 'a paused grant delivers nothing');
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
    await page.locator('#key-notice [data-code="PLATFORM_SUBJECT_NOT_FOUND"]').waitFor();
    t.match(
      await alert.innerText(),
      /No subject with this id is registered/,
      'an unknown subject is explained',
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
      usage.proof.tx.body.document = '0'.repeat(64);
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
    const liveId = await openRequest({ types: ['housing-fund'], purpose: 'card limit review' });
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

    // Search a transaction: decoded, with its proof verified in the browser.
    await page.getByLabel('Find a transaction hash or block height').fill(grantHash);
    await page.keyboard.press('Enter');
    const txCard = page.locator(`section[data-tx="${grantHash}"]`);
    await txCard.waitFor();
    const txText = await txCard.innerText();
    t.match(txText, /grant/, 'the kind is shown');
    t.match(txText, /✓ verified/, 'the proof verifies in the browser');
    t.match(txText, /"types": \[\s*"tax"\s*\]/, 'the body is decoded');
    await page.screenshot({ path: join(SCREENSHOTS, 'explorer-tx.png'), fullPage: true });

    // Its block page lists it.
    await txCard.getByRole('link', { name: /^\d+$/ }).first().click();
    await page.locator(`tr[data-tx="${grantHash}"]`).waitFor();
    t.pass('the block page lists the transaction');
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
    const wrapRandom = seededRandom('records');
    const records = (['tax', 'social-insurance'] as const).map((type, i) => ({
      type,
      digest: `${i}`.repeat(64),
      key: wrapKey(
        wrapRandom(32),
        alice.encryption.publicKey,
        recordContext(CHAIN, requestIdFixed, type),
        wrapRandom,
      ),
    }));
    const request: GrantableRequest = {
      id: requestIdFixed,
      subject: ALICE,
      types: ['tax', 'social-insurance'],
      purpose: 'mortgage — 按揭 application ✓',
      records,
    };
    const granteeEncKey = bytesToHex(bank.encryption.publicKey);
    const cases = [
      {
        name: 'narrowed grant, sealed key file',
        keyFile: JSON.parse(await readFile(aliceFile, 'utf8')),
        passphrase: PASSPHRASE,
        choice: {
          types: ['tax' as const],
          expiresInMs: 86_400_000,
          uses: 3,
          retainDays: 10,
          dataFrom: '2024-01-01',
        },
        ctx: { chain: CHAIN, now: 1_750_000_000_000, nonce: '0123456789abcdef0123456789abcdef' },
      },
      {
        name: 'every type, unsealed key file, explicit ttl',
        keyFile: { ...JSON.parse(await readFile(bobFile, 'utf8')) },
        passphrase: '',
        choice: { expiresInMs: 7 * 86_400_000, uses: 1, retainDays: 30 },
        ctx: { chain: CHAIN, now: 1_760_000_000_123, nonce: 'fedcba9876543210', ttlMs: 120_000 },
      },
    ];
    // Bob's case needs records wrapped to Bob.
    const bobRecords = records.map((r) => ({
      ...r,
      key: wrapKey(
        wrapRandom(32),
        bob.encryption.publicKey,
        recordContext(CHAIN, requestIdFixed, r.type),
        wrapRandom,
      ),
    }));
    for (const [i, c] of cases.entries()) {
      const keys = i === 0 ? alice : bob;
      const req = i === 0 ? request : { ...request, records: bobRecords };
      const seed = `grant-${i}`;
      const nodeTx = buildGrantTx(c.ctx, req, keys, granteeEncKey, c.choice, seededRandom(seed));
      const browserOut = await page.evaluate((input) => window.__datagrantSignGrant!(input), {
        keyFile: c.keyFile,
        passphrase: c.passphrase,
        ctx: c.ctx,
        request: req,
        granteeEncKey,
        choice: c.choice,
        randomSeed: seed,
      });
      t.equal(
        JSON.stringify(browserOut.bytes),
        JSON.stringify(Array.from(txBytes(nodeTx))),
        `${c.name}: canonical bytes are identical`,
      );
      t.equal(browserOut.canonical, canonicalize(nodeTx), `${c.name}: canonical JSON is identical`);
      t.equal(browserOut.hash, txHash(nodeTx), `${c.name}: same tx hash`);
      t.ok(
        verifyTxSignature(decodeTx(browserOut.tx)),
        `${c.name}: the browser's tx decodes and its signature verifies`,
      );
    }
    const other = await page.evaluate((input) => window.__datagrantSignGrant!(input), {
      keyFile: cases[0]!.keyFile,
      passphrase: PASSPHRASE,
      ctx: cases[0]!.ctx,
      request,
      granteeEncKey,
      choice: cases[0]!.choice,
      randomSeed: 'another seed',
    });
    t.not(
      other.hash,
      txHash(
        buildGrantTx(cases[0]!.ctx, request, alice, granteeEncKey, cases[0]!.choice, seededRandom('grant-0')),
      ),
      'the comparison is sensitive to the key-wrap randomness',
    );
    await page.close();
  });

  t.same(pageErrors, [], 'no script errors in any page');
  t.comment(`browser tests took ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
