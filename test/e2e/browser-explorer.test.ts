/**
 * The explorer in a real browser (Debian's chromium through playwright-core) as an anonymous
 * reader of a dev chain with one complete flow: a person registered, the bank's request, the
 * extraction, her grant and the bank's use of it, and a governance transaction (institution.add
 * signed with the admin key). The block pages list every transaction's kind, hash and signer role,
 * marking those about the person "body hidden"; the page of each of her transactions shows kind,
 * signer role and height and the redacted notice instead of body and proof, and nothing of what
 * the body holds (purpose, keys, digests, her id) or of her records' values reaches the page or
 * the browser. The governance transaction shows its full body and a proof verified in the page.
 * A canary run feeds the page an unredacted grant and checks the same scan catches it.
 */
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import t from 'tap';
import { signedApiCall, submitAndWait } from '../../src/cli/client.js';
import { DatagrantClient } from '../../src/client/index.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { institutionCaller } from '../../src/common/http-signature.js';
import { generateKeySet } from '../../src/common/keyfile.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import type { Tx } from '../../src/ledger/tx.js';
import { attestSubject, buildGrantTx, buildRegisterTx } from '../../src/platform/consent.js';
import type { AuditEntry } from '../../src/platform/views.js';
import { addInstitutionChange, councilChange, councilKeys } from '../helpers/council.js';
import {
  browserSkipReason,
  type DevChain,
  ensureWebBuilt,
  launchBrowser,
  SCREENSHOTS,
  startDevChain,
} from './fixtures/browser-harness.js';

const CHAIN = 'datagrant-explorer';
const ALICE = 'alice-0001';
const PURPOSE = 'explorer redaction check 2025-404';
const NEW_BANK = { institution: 'second-bank', name: 'Second Bank of Explorers' };

/** The signer role the explorer shows for each kind in this flow. */
const ROLE: Record<string, string> = {
  'subject.register': 'subject',
  'request.open': 'institution',
  'record.put': 'validator',
  grant: 'subject',
  usage: 'institution',
  'institution.add': 'governance',
  'gov.propose': 'governance',
  'gov.approve': 'governance',
};

interface BlockAnswer {
  block: { txs: ({ kind: string; signer: string; redacted?: true } & Record<string, unknown>)[] };
  txHashes: string[];
  signerRoles: string[];
}

/** Every string leaf of a value (a transaction body), recursively. */
function stringLeaves(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) stringLeaves(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) stringLeaves(v, out);
  return out;
}

/** Every key name in a value, recursively. */
function keyNames(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) keyNames(v, out);
  else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) {
      out.add(k);
      keyNames(v, out);
    }
  return out;
}

/** `needle` in `hay` not as part of a longer word or number. */
function containsWord(hay: string, needle: string): boolean {
  const escaped = needle.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![0-9A-Za-z])${escaped}(?![0-9A-Za-z])`).test(hay);
}

/** What must not show for one transaction: its body's values and the JSON form of its keys. */
interface Secrets {
  /** Strings of at least 6 characters (hex digests, keys, purpose, ids, URLs): searched in the HTML. */
  values: string[];
  /** `"key":`-shaped names of the body's fields: searched in the page text. */
  fields: string[];
}

function secretsOf(body: unknown, publicStrings: Set<string>): Secrets {
  return {
    values: [...new Set(stringLeaves(body))].filter((s) => s.length >= 6 && !publicStrings.has(s)),
    fields: [...keyNames(body)].map((k) => `"${k}"`),
  };
}

/** What of `secrets` (and of the person's values, and her id) the page shows. */
async function leaksIn(page: Page, secrets: Secrets, personal: string[]): Promise<string[]> {
  const text = await page.locator('body').innerText();
  const html = await page.content();
  return [
    ...secrets.values.filter((v) => html.includes(v) || text.includes(v)),
    ...secrets.fields.filter((f) => text.includes(f)),
    ...personal.filter((v) => containsWord(text, v) || containsWord(html, v)),
    ...['granteeKey', ALICE, PURPOSE].filter((v) => text.includes(v) || html.includes(v)),
  ];
}

const skip = browserSkipReason();

t.test('the explorer hides the bodies of transactions about a person', { skip }, async (t) => {
  await ensureWebBuilt();
  const dev: DevChain = await startDevChain(CHAIN);
  let browser: Browser | undefined;
  t.teardown(async () => {
    await browser?.close();
    await dev.stop();
  });
  const { api, net } = dev;
  const bank = await readKeyFile(net.keys.institution);
  const registrar = await readKeyFile(net.keys.registrar);
  const council = await councilKeys(net.keys.council);
  const client = new DatagrantClient({
    api,
    institution: net.institutionId,
    keys: bank,
    genesis: net.genesis,
  });

  // One complete flow: she registers, the bank asks, the extractor records, she grants, the bank uses.
  const alice = generateKeySet('alice');
  const registered = await submitAndWait(
    api,
    buildRegisterTx(
      { chain: CHAIN, now: Date.now() },
      ALICE,
      alice,
      bytesToHex(registrar.signing.publicKey),
      attestSubject(
        CHAIN,
        ALICE,
        { signKey: bytesToHex(alice.signing.publicKey), encKey: bytesToHex(alice.encryption.publicKey) },
        registrar,
      ),
    ),
  );
  const opened = await client.openRequest({
    subject: ALICE,
    types: ['tax', 'social-insurance'],
    purpose: PURPOSE,
    format: 'csv',
    fields: { income: 'tax.annualIncome', taxPaid: 'tax.taxPaid' },
  });
  const ready = await client.waitFor(opened.id, ['waiting-for-consent'], {
    timeoutMs: 60_000,
    intervalMs: 50,
  });
  const grantee = { institution: net.institutionId, encKey: bytesToHex(bank.encryption.publicKey) };
  const grant = await submitAndWait(
    api,
    buildGrantTx({ chain: CHAIN, now: Date.now() }, ready, alice, grantee, {
      types: ['tax'],
      expiresInMs: 86_400_000,
      uses: 2,
      retainDays: 0,
    }),
  );
  const doc = await client.document(opened.id);
  t.equal(doc.records.length, 1, 'the bank opened the tax record it was granted');

  // Governance: two of the council's three keys add a second institution (a proposal, an approval).
  const newBankKeys = generateKeySet(NEW_BANK.institution);
  const change = councilChange(
    CHAIN,
    addInstitutionChange(NEW_BANK.institution, NEW_BANK.name, newBankKeys),
    council[0]!,
    council[1]!,
  );
  const govBody = change.propose.body;
  const governance = await submitAndWait(api, change.propose);
  await submitAndWait(api, change.approve);

  // What the ledger holds about her, as she reads it (a signed read): every transaction with body.
  const { entries } = await signedApiCall<{ entries: AuditEntry[] }>(
    api,
    'GET',
    `/v1/subjects/${ALICE}/audit`,
    `subject:${ALICE}`,
    alice.signing.secretKey,
  );
  const kinds = entries.map((e) => e.kind);
  for (const kind of ['subject.register', 'request.open', 'record.put', 'grant', 'usage'])
    t.ok(kinds.includes(kind), `her audit trail holds a ${kind}`);
  t.ok(
    entries.some((e) => e.hash === registered.hash) &&
      entries.some((e) => e.hash === opened.id) &&
      entries.some((e) => e.hash === grant.hash) &&
      entries.some((e) => e.hash === doc.usageTx),
    'including the registration, request, grant and usage of this flow',
  );
  const fullTx = new Map<string, Tx>(entries.map((e) => [e.hash, e.proof.tx as Tx]));
  const grantBody = (fullTx.get(grant.hash) as Tx<'grant'>).body;
  t.equal(
    grantBody.purpose,
    PURPOSE,
    'the grant body holds the purpose (so its absence below means something)',
  );
  t.equal(grantBody.granteeKey, grantee.encKey, "and the bank's key");
  const asBank = await signedApiCall<{ tx: Tx }>(
    api,
    'GET',
    `/v1/txs/${doc.usageTx}`,
    institutionCaller(net.institutionId),
    bank.signing.secretKey,
  );
  t.same(asBank.tx, fullTx.get(doc.usageTx), 'the bank, a party, reads the full usage too');

  // Her records' values: what must never reach an anonymous reader.
  const personal = [
    ...new Set(
      doc.records.flatMap((r) =>
        Object.values(r.fields)
          .map(String)
          .filter((v) => v.length >= 5),
      ),
    ),
  ];
  t.ok(personal.length >= 2, `her tax record has values to look for (${personal.length})`);

  // The anonymous API: kinds and signers, no body, no proof.
  for (const e of entries) {
    const tx = (await (await fetch(`${api}/v1/txs/${e.hash}`)).json()) as {
      tx: Record<string, unknown>;
      signerRole: string;
    };
    t.same(
      Object.keys(tx.tx).sort(),
      ['chain', 'expires', 'kind', 'redacted', 'signer', 'v'],
      `${e.kind} ${e.hash.slice(0, 8)}: anonymous readers get no body`,
    );
    const proof = await fetch(`${api}/v1/txs/${e.hash}/proof`);
    t.equal(proof.status, 403, `${e.kind} ${e.hash.slice(0, 8)}: nor its proof`);
  }
  const govAnon = (await (await fetch(`${api}/v1/txs/${governance.hash}`)).json()) as { tx: Tx };
  t.same(
    govAnon.tx.body,
    govBody,
    'a governance transaction concerns no one: anonymous readers get its body',
  );
  t.equal((await fetch(`${api}/v1/txs/${governance.hash}/proof`)).status, 200, 'and its proof');

  // Strings anyone may see: transaction hashes, the genesis (keys, names), the signers' keys.
  const blocks = new Map<number, BlockAnswer>();
  for (const height of new Set([...entries.map((e) => e.height), governance.height])) {
    blocks.set(height, (await (await fetch(`${api}/v1/blocks/${height}`)).json()) as BlockAnswer);
  }
  // Public anyway: hashes, signers and the chain id (every envelope names it; a record's storage
  // receipts repeat it inside the body).
  const publicStrings = new Set<string>([
    CHAIN,
    ...[...blocks.values()].flatMap((b) => [...b.txHashes, ...b.block.txs.map((tx) => tx.signer)]),
  ]);
  const genesisText = JSON.stringify(net.genesis);
  const secrets = new Map<string, Secrets>(
    entries.map((e) => {
      const s = secretsOf(fullTx.get(e.hash)!.body, publicStrings);
      return [e.hash, s];
    }),
  );

  browser = await launchBrowser();
  const pageErrors: string[] = [];
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource'))
      pageErrors.push(msg.text());
  });
  // Everything the node sent the page (the live event stream aside).
  const answers: Promise<{ url: string; text: string }>[] = [];
  let canary = false;
  page.on('response', (r) => {
    if (canary || !r.url().includes('/v1/') || r.url().includes('/v1/events')) return;
    answers.push(r.text().then((text) => ({ url: r.url(), text })));
  });
  const goto = async (fragment: string, selector: string) => {
    await page.goto(`${api}/explorer/#/${fragment}`);
    await page.locator(selector).waitFor();
  };

  await t.test('block pages list kinds, hashes and roles, and hide the bodies', async (t) => {
    const heights = [...new Set([grant.height, doc.usageHeight])];
    for (const height of heights) {
      await goto(`block/${height}`, `section[data-block="${height}"]`);
      const answer =
        blocks.get(height) ?? ((await (await fetch(`${api}/v1/blocks/${height}`)).json()) as BlockAnswer);
      const rows = await page.locator('tbody tr[data-tx]').evaluateAll((els) =>
        els.map((e) => ({
          hash: e.getAttribute('data-tx'),
          cells: Array.from(e.querySelectorAll('td'), (td) => td.textContent?.trim() ?? ''),
          href: e.querySelector('a')?.getAttribute('href'),
          title: e.querySelector('code')?.getAttribute('title'),
        })),
      );
      t.same(
        rows.map((r) => r.hash),
        answer.txHashes,
        `block ${height}: every transaction is listed by hash, in order`,
      );
      for (const [i, row] of rows.entries()) {
        const hash = answer.txHashes[i]!;
        const kind = answer.block.txs[i]!.kind;
        const mine = fullTx.has(hash);
        t.equal(row.cells[2], kind, `block ${height} #${i}: kind ${kind}`);
        t.equal(row.href, `#/tx/${hash}`, `block ${height} #${i}: links its transaction page`);
        t.equal(row.title, hash, `block ${height} #${i}: with its full hash`);
        t.equal(
          row.cells[4],
          mine ? `${ROLE[kind]} · body hidden` : ROLE[kind],
          `block ${height} #${i}: signer role${mine ? ', body hidden' : ''}`,
        );
      }
      for (const hash of [grant.hash, doc.usageTx].filter((h) => answer.txHashes.includes(h)))
        t.ok(
          rows.some((r) => r.hash === hash),
          `block ${height} holds ${hash === grant.hash ? 'the grant' : 'the usage'}`,
        );
      const inBlock = answer.txHashes.filter((h) => fullTx.has(h));
      t.same(
        await leaksIn(
          page,
          {
            values: inBlock.flatMap((h) => secrets.get(h)!.values),
            fields: inBlock.flatMap((h) => secrets.get(h)!.fields),
          },
          personal,
        ),
        [],
        `block ${height}: nothing of the hidden bodies or her values is on the page`,
      );
      await page.screenshot({
        path: join(SCREENSHOTS, `explorer-redacted-block-${height === grant.height ? 'grant' : 'usage'}.png`),
        fullPage: true,
      });
    }
  });

  await t.test("her transactions' pages show kind, role and height, not the body", async (t) => {
    for (const e of entries) {
      const label = `${e.kind} ${e.hash.slice(0, 8)}`;
      const card = page.locator(`section[data-tx="${e.hash}"]`);
      await goto(`tx/${e.hash}`, `section[data-tx="${e.hash}"]`);
      const text = await card.innerText();
      t.match(text, new RegExp(`Kind\\s+${e.kind.replace('.', '\\.')}\\n`), `${label}: kind`);
      t.match(text, new RegExp(`Signer role\\s+${ROLE[e.kind]}\\n`), `${label}: signer role`);
      t.match(text, new RegExp(`Block\\s+${e.height}\\n`), `${label}: height ${e.height}`);
      t.match(text, /Status\s+committed/, `${label}: committed`);
      t.equal(await card.locator('[data-redacted="true"]').count(), 2, `${label}: body and proof hidden`);
      t.match(
        await card.locator('[data-redacted="true"]').last().innerText(),
        /concerns a person/,
        `${label}: the notice says why`,
      );
      t.equal(await card.locator('pre').count(), 0, `${label}: no body`);
      t.equal(await card.locator('[data-verified]').count(), 0, `${label}: no proof`);
      t.same(
        await leaksIn(page, secrets.get(e.hash)!, personal),
        [],
        `${label}: nothing of the body on the page`,
      );
      if (e.hash === grant.hash || e.hash === doc.usageTx)
        await page.screenshot({
          path: join(SCREENSHOTS, `explorer-redacted-${e.kind}.png`),
          fullPage: true,
        });
    }
  });

  await t.test('a governance transaction shows its body and a verified proof', async (t) => {
    await goto(`tx/${governance.hash}`, `section[data-tx="${governance.hash}"] [data-verified]`);
    const card = page.locator(`section[data-tx="${governance.hash}"]`);
    const text = await card.innerText();
    t.match(text, /Kind\s+gov\.propose\n/, 'kind');
    t.match(text, /Signer role\s+governance\n/, 'signer role');
    t.match(text, new RegExp(`Block\\s+${governance.height}\\n`), 'height');
    t.equal(await card.locator('[data-redacted]').count(), 0, 'nothing hidden');
    const body = JSON.parse(await card.locator('pre').innerText()) as Record<string, unknown>;
    t.same(body, govBody, 'the full body, decoded: the change proposed (the institution, its name and keys)');
    const mark = card.locator('[data-verified]');
    t.equal(await mark.getAttribute('data-verified'), 'true', 'the proof is verified in the browser');
    t.match(
      await mark.innerText(),
      new RegExp(`✓ verified in this browser: included in block ${governance.height},`),
      'included in its block, checked against the genesis validators',
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'explorer-governance-tx.png'), fullPage: true });

    await goto(`block/${governance.height}`, `tr[data-tx="${governance.hash}"]`);
    const row = await page.locator(`tr[data-tx="${governance.hash}"]`).innerText();
    t.match(row, /gov\.propose/, 'its block lists it');
    t.match(row, /governance/, 'with the role');
    t.notMatch(row, /body hidden/, 'and its body is not hidden');
  });

  await t.test('nothing of her bodies or values reached the browser', async (t) => {
    const received = await Promise.all(answers);
    t.ok(received.length > entries.length, `the page read ${received.length} answers of the node`);
    const allValues = [...new Set([...secrets.values()].flatMap((s) => s.values))].filter(
      (v) => !genesisText.includes(v),
    );
    const leaked = received.flatMap(({ url, text }) => [
      ...allValues.filter((v) => text.includes(v)).map((v) => `${url}: ${v}`),
      ...personal.filter((v) => containsWord(text, v)).map((v) => `${url}: value ${v}`),
      ...[PURPOSE, ALICE, 'granteeKey', 'sourceCommitment']
        .filter((v) => text.includes(v))
        .map((v) => `${url}: ${v}`),
    ]);
    t.same(leaked, [], 'no answer to the page carried any of it');
  });

  await t.test('canary: a grant served unredacted is caught by the same scan', async (t) => {
    canary = true;
    const full = await signedApiCall<Record<string, unknown>>(
      api,
      'GET',
      `/v1/txs/${grant.hash}`,
      `subject:${ALICE}`,
      alice.signing.secretKey,
    );
    await page.route(`**/v1/txs/${grant.hash}`, (route) => route.fulfill({ json: full }));
    await goto(`tx/${grant.hash}`, `section[data-tx="${grant.hash}"] pre`);
    const leaks = await leaksIn(page, secrets.get(grant.hash)!, personal);
    t.ok(leaks.includes(PURPOSE), 'the purpose would be reported');
    t.ok(leaks.includes(grantee.encKey), "and the bank's key the grant names");
    t.ok(leaks.includes('"granteeKey"'), 'and the body fields');
    await page.unroute(`**/v1/txs/${grant.hash}`);
  });

  await page.close();
  t.same(pageErrors, [], 'no script errors in the page');
});
