/**
 * One lying node in front of a real one (a dev chain with the synthetic data platform): it forges
 * the bank's encryption key, a pending request's content, and a revoked grant as live, in its views
 * and in its state proofs alike (the proofs kept). Against it the portal in chromium names the node
 * as lying and offers no grant button, the bank client refuses a use (CLIENT_NODE_LIED), and the
 * CLI refuses to grant and to list the requests (CLI_NODE_LIED); nothing is submitted through it.
 * Against the honest node the same steps go through, every fact marked verified.
 */
import '../../src/common/polyfill.js';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import t from 'tap';
import { DatagrantClient } from '../../src/client/index.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { isDatagrantError } from '../../src/common/errors.js';
import { generateKeySet } from '../../src/common/keyfile.js';
import { readKeyFile, writeKeyFile } from '../../src/common/keyfile-fs.js';
import { attestSubject, buildGrantTx, buildRegisterTx, buildSubjectTx } from '../../src/platform/consent.js';
import type { RequestView } from '../../src/platform/views.js';
import { cli } from '../helpers/cli.js';
import { FORGED_PURPOSE, forgeFacts, lyingNode } from '../helpers/lying-node.js';
import {
  browserSkipReason,
  type DevChain,
  ensureWebBuilt,
  launchBrowser,
  SCREENSHOTS,
  startDevChain,
} from './fixtures/browser-harness.js';

const ALICE = 'alice-liar';

/** The refusal code of a promise, or 'accepted'. */
const refusal = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'accepted',
    (err: unknown) => (isDatagrantError(err) ? err.code : String(err)),
  );

const skipBrowser = browserSkipReason();

t.test('one lying node: the portal, the bank client and the CLI believe only proofs', async (t) => {
  const dev: DevChain = await startDevChain('datagrant-liar');
  t.teardown(() => dev.stop());
  const { api, net } = dev;
  const chain = net.genesis.chain;
  const bank = await readKeyFile(net.keys.institution);
  const registrar = await readKeyFile(net.keys.registrar);
  const client = new DatagrantClient({
    api,
    institution: net.institutionId,
    keys: bank,
    genesis: net.genesis,
  });
  const grantee = { institution: net.institutionId, encKey: bytesToHex(bank.encryption.publicKey) };
  const ctx = () => ({ chain, now: Date.now() });

  // Alice, registered, with an unsealed key file for the page and the CLI.
  const alice = generateKeySet('alice');
  const aliceFile = join(dev.dir, 'alice.json');
  await writeKeyFile(aliceFile, alice);
  await client.submit(
    buildRegisterTx(
      ctx(),
      ALICE,
      alice,
      bytesToHex(registrar.signing.publicKey),
      attestSubject(
        chain,
        ALICE,
        { signKey: bytesToHex(alice.signing.publicKey), encKey: bytesToHex(alice.encryption.publicKey) },
        registrar,
      ),
    ),
  );

  // Three requests: one pending (her decision to come), one granted then revoked, one granted live.
  const open = (purpose: string) =>
    client
      .openRequest({ subject: ALICE, types: ['tax'], purpose, format: 'csv', fields: {} })
      .then((r) => client.waitFor(r.id, ['waiting-for-consent'], { intervalMs: 50 }));
  const [pending, revoked, live] = await Promise.all([
    open('mortgage application 2025-201'),
    open('card limit review 2025-202'),
    open('overdraft review 2025-203'),
  ]);
  const revokedGrant = await client.submit(
    buildGrantTx(ctx(), revoked, alice, grantee, { expiresInMs: 3_600_000, uses: 3, retainDays: 1 }),
  );
  await client.submit(buildSubjectTx(ctx(), 'revoke', { grant: revokedGrant.hash }, alice));
  await client.submit(
    buildGrantTx(ctx(), live, alice, grantee, { expiresInMs: 3_600_000, uses: 3, retainDays: 1 }),
  );
  t.equal((await client.request(revoked.id)).status, 'revoked', 'the second request’s grant is revoked');

  // The one lying node: the bank's key, the pending request's content (and the live one's), the
  // revoked grant shown live.
  const liar = await lyingNode(
    api,
    forgeFacts({
      institutionKey: [net.institutionId],
      requestContent: [pending.id, live.id],
      grantStatus: [revoked.id],
    }),
  );
  t.teardown(() => liar.close());
  const submittedThroughLiar = () => liar.calls.filter((c) => c.startsWith('POST /v1/txs')).length;

  await t.test(
    'the portal in chromium names the node as lying and offers no grant',
    { skip: skipBrowser },
    async (t) => {
      await ensureWebBuilt();
      let browser: Browser | undefined;
      t.teardown(() => browser?.close());
      browser = await launchBrowser();
      const pageErrors: string[] = [];
      const open = async (node: string): Promise<Page> => {
        const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
        page.setDefaultTimeout(20_000);
        page.on('pageerror', (err) => pageErrors.push(err.message));
        await page.goto(`${node}/portal/`);
        await page.getByLabel('Subject id').fill(ALICE);
        await page.getByLabel('Key file').setInputFiles(aliceFile);
        await page.getByRole('button', { name: 'Open key' }).click();
        return page;
      };
      const text = async (l: ReturnType<Page['locator']>) => (await l.textContent()) ?? '';
      const fact = (card: ReturnType<Page['locator']>, name: string, state: string) =>
        card.locator(`[data-fact="${name}"][data-proof="${state}"]`);

      // Through the liar.
      const page = await open(liar.url);
      const card = page.locator(`#pending-list article[data-request="${pending.id}"]`);
      await card.waitFor();
      const keyLie = fact(card, 'institution', 'lied');
      await keyLie.waitFor();
      t.match(
        await text(keyLie),
        new RegExp(
          `validator node0 \\(${liar.url}/\\) gave facts about demo-bank that do not verify.*PORTAL_NODE_LIED`,
          's',
        ),
        'the forged key: the node is named as lying, by name and address, with a code',
      );
      const contentLie = fact(card, 'request', 'lied');
      t.equal(await contentLie.count(), 1, 'the forged request content: lying too');
      t.match(await text(contentLie), new RegExp(`request ${pending.id}.*PORTAL_NODE_LIED`, 's'));
      t.equal(await card.getByRole('button', { name: 'Grant access' }).count(), 0, 'no grant button');
      t.equal(await card.getByRole('button', { name: 'Deny request' }).count(), 0, 'nothing else to sign');
      const revokedCard = page.locator(`#grants-list article[data-request="${revoked.id}"]`);
      const statusLie = fact(revokedCard, 'grant', 'lied');
      await statusLie.waitFor();
      t.match(
        await text(statusLie),
        new RegExp(`the grant of request ${revoked.id} .*PORTAL_NODE_LIED`, 's'),
        'the forged grant status: lying',
      );
      t.equal(
        await revokedCard.getByRole('button', { name: /Pause grant|Revoke grant|Erase/ }).count(),
        0,
        'no action on the forged grant',
      );
      t.match(
        await text(page.locator('#pending-notice [data-node-lied="true"]')),
        /validator node0 .* is lying/,
        'the page says the node lies',
      );
      const liveCard = page.locator(`#grants-list article[data-request="${live.id}"]`);
      await fact(liveCard, 'request', 'lied').waitFor();
      t.pass('the other forged request is caught as well');
      t.equal(await fact(liveCard, 'request', 'verified').count(), 0, 'and not shown as verified');
      await card.scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(SCREENSHOTS, 'portal-lying-node.png'), fullPage: true });
      await page.close();
      t.equal(submittedThroughLiar(), 0, 'the page submitted nothing through the liar');

      // Through the honest node: every fact verified, the grant button live.
      const honest = await open(api);
      const good = honest.locator(`#pending-list article[data-request="${pending.id}"]`);
      await fact(good, 'institution', 'verified').waitFor();
      t.equal(await fact(good, 'request', 'verified').count(), 1, 'what is asked is verified');
      t.match(await text(good), /mortgage application 2025-201/, 'the real purpose is shown');
      await honest.waitForFunction(
        (id) =>
          !(
            document.querySelector(
              `#pending-list article[data-request="${id}"] button[type="submit"]`,
            ) as HTMLButtonElement
          ).disabled,
        pending.id,
      );
      t.pass('the grant button is live');
      const goodRevoked = honest.locator(
        `#grants-list article[data-request="${revoked.id}"][data-status="revoked"]`,
      );
      await fact(goodRevoked, 'grant', 'verified').waitFor();
      t.pass('the revoked grant’s status is verified');
      t.equal(await honest.locator('[data-proof="lied"]').count(), 0, 'nothing is called a lie');
      await honest.close();
      t.same(pageErrors, [], 'no script errors');
    },
  );

  await t.test('the bank client refuses a use on the liar’s word', async (t) => {
    const fooled = new DatagrantClient({
      api: liar.url,
      institution: net.institutionId,
      keys: bank,
      genesis: net.genesis,
    });
    t.equal((await fooled.request(revoked.id)).status, 'granted', 'the liar shows the revoked grant live');
    t.equal(
      await refusal(fooled.document(revoked.id)),
      'CLIENT_NODE_LIED',
      'forged grant status: CLIENT_NODE_LIED',
    );
    t.equal(await refusal(fooled.document(live.id)), 'CLIENT_NODE_LIED', 'forged request: CLIENT_NODE_LIED');
    const err = await fooled.document(live.id).catch((e: unknown) => e);
    t.match((err as Error).message, liar.url, 'the error names the node');
    t.equal(submittedThroughLiar(), 0, 'no use was submitted through the liar');
    // The honest node: the live grant gives its document; the revoked one is refused as revoked.
    const doc = await client.document(live.id);
    t.match(doc.body, /\r?\n/, 'the live grant’s document, verified and opened');
    t.equal(await refusal(client.document(revoked.id)), 'CLIENT_NOT_GRANTED', 'the honest node: revoked');
  });

  await t.test('the CLI refuses to grant or to list on the liar’s word', async (t) => {
    const me = ['--key', aliceFile, '--subject', ALICE, '--genesis', net.genesisPath];
    const grantVia = (node: string) =>
      cli(['grant', ...me, '--request', pending.id, '--api', node, '--json']);
    const listVia = (node: string) => cli(['requests', ...me, '--all', '--api', node, '--json']);

    const refused = await grantVia(liar.url);
    t.not(refused.code, 0, 'grant through the liar fails');
    t.match(refused.stderr, /CLI_NODE_LIED/, 'with CLI_NODE_LIED');
    t.match(refused.stderr, liar.url, 'naming the node');
    t.match(refused.stderr, `/v1/state/requests/${pending.id}`, 'the forged request is caught');
    t.match(refused.stderr, '/v1/state/institutions/demo-bank', 'the forged key is caught');
    const listed = await listVia(liar.url);
    t.not(listed.code, 0, 'requests through the liar fails');
    t.match(listed.stderr, /CLI_NODE_LIED/);
    t.match(listed.stderr, `/v1/state/grants/${revokedGrant.hash}`, 'the forged grant status is caught');
    t.equal(submittedThroughLiar(), 0, 'nothing was submitted through the liar');
    t.equal((await client.request(pending.id)).status, 'waiting-for-consent', 'no grant was made');

    const granted = await grantVia(api);
    t.equal(granted.code, 0, `the honest node: granted (${granted.stderr.trim()})`);
    const list = await listVia(api);
    t.equal(list.code, 0, `the honest node: listed (${list.stderr.trim()})`);
    const shown = JSON.parse(list.stdout) as { verified: boolean; requests: RequestView[] };
    t.equal(shown.verified, true, 'every request shown was proven');
    const status = Object.fromEntries(shown.requests.map((r) => [r.id, r.status]));
    t.same(
      [status[pending.id], status[revoked.id], status[live.id]],
      ['granted', 'revoked', 'delivered'],
      'with the chain’s statuses',
    );
    t.notOk(
      shown.requests.some((r) => r.purpose === FORGED_PURPOSE),
      'and the chain’s purposes',
    );
  });
});
