/**
 * The explorer in a real browser (Debian's chromium through playwright-core) as an anonymous
 * reader of a dev chain with one complete flow: a person registered, the bank's request, the
 * extraction, her grant and the bank's use of it, and a governance transaction (institution.add
 * signed with the admin key). The block pages list every transaction's kind, hash and signer role,
 * marking those about the person "body hidden"; the page of each of her transactions shows kind,
 * signer role and height and the redacted notice instead of body and proof, and nothing of what
 * the body holds (purpose, keys, digests, her id) or of her records' values reaches the page or
 * the browser. The governance transaction shows its full body and a proof verified in the page.
 * The governance view lists the council and the proposals (enacted and open) with their approvers;
 * a proposal's page proves its entry and refuses an altered one; the validators view shows the set at heights either side of
 * a council change of the validator's data types, proven against the schedule and each height's
 * certified header, with the change in the history, and refuses a tampered schedule; the block
 * before the change says the set changes after it. A canary run feeds the page an unredacted
 * grant and checks the same scan catches it.
 */
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import t from 'tap';
import { signedApiCall, submitAndWait } from '../../src/cli/client.js';
import { DatagrantClient } from '../../src/client/index.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { institutionCaller } from '../../src/common/http-signature.js';
import { generateKeySet, type KeySet } from '../../src/common/keyfile.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import type { Tx } from '../../src/ledger/tx.js';
import { VALIDATOR_SET_DELAY, validatorSetHash } from '../../src/ledger/validator-set.js';
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
  const added = await submitAndWait(api, change.approve);

  // A validator-set change: the lone validator no longer extracts one data type the flow does not
  // use (the council's second and third keys), in force VALIDATOR_SET_DELAY blocks after it is enacted.
  const node0 = net.genesis.validators[0]!;
  const dropped = node0.types.find((ty) => ty !== 'tax' && ty !== 'social-insurance');
  t.ok(dropped, `the validator has a data type the flow does not use (${dropped})`);
  const newTypes = node0.types.filter((ty) => ty !== dropped);
  const update = councilChange(
    CHAIN,
    { type: 'validator.update', key: node0.key, roles: [...node0.roles], types: newTypes },
    council[1]!,
    council[2]!,
  );
  await submitAndWait(api, update.propose);
  const enacted = await submitAndWait(api, update.approve);
  const from = enacted.height + VALIDATOR_SET_DELAY;
  const newSet = [{ ...node0, types: newTypes }];
  for (let height = 0; height < from; await new Promise((r) => setTimeout(r, 100)))
    height = ((await (await fetch(`${api}/v1/status`)).json()) as { height: number }).height;
  // An open proposal (one approval of two), committed under the new set.
  const open = councilChange(
    CHAIN,
    { type: 'registrar.add', key: bytesToHex(generateKeySet('registrar-2').signing.publicKey) },
    council[2]!,
    council[0]!,
  );
  const opened2 = await submitAndWait(api, open.propose);

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
    await page.locator(selector).first().waitFor();
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

  const member = (k: KeySet) =>
    `council ${net.genesis.council!.members.indexOf(bytesToHex(k.signing.publicKey)) + 1}`;

  await t.test('the governance view lists the council and the proposals', async (t) => {
    await goto('gov', 'tr[data-proposal]');
    const councilGenesis = net.genesis.council!;
    t.equal(
      await page.locator('tr[data-member]').count(),
      councilGenesis.members.length,
      'every council member is listed',
    );
    t.match(
      await page.locator('[data-fact="threshold"]').innerText(),
      new RegExp(`^${councilGenesis.threshold} of ${councilGenesis.members.length} members approve`),
      'with the threshold',
    );
    const rows = await page.locator('tr[data-proposal]').evaluateAll((els) =>
      els.map((e) => ({
        id: e.getAttribute('data-proposal'),
        cells: Array.from(e.querySelectorAll('td'), (td) => td.textContent?.trim() ?? ''),
        status: e.querySelector('[data-status]')?.getAttribute('data-status'),
        href: e.querySelector('a')?.getAttribute('href'),
      })),
    );
    const listed = (await (await fetch(`${api}/v1/gov/proposals`)).json()) as { proposals: { id: string }[] };
    t.same(
      rows.map((r) => r.id),
      [open.proposal, update.proposal, change.proposal],
      'the open proposal, the validator change and the institution, newest first',
    );
    t.same(
      rows.map((r) => r.id),
      listed.proposals.map((p) => p.id),
      'as the node lists them',
    );
    const [openRow, updateRow, addRow] = rows;
    t.equal(
      addRow?.cells[0],
      `Add institution ${NEW_BANK.name} (${NEW_BANK.institution})`,
      'the change in words',
    );
    t.equal(addRow?.cells[1], `2/2: ${member(council[0]!)}, ${member(council[1]!)}`, 'approvals by member');
    t.equal(addRow?.status, 'enacted', 'enacted');
    t.equal(addRow?.cells[4], String(governance.height), 'proposed in its block');
    t.equal(addRow?.cells[5], String(added.height), 'decided where the approval committed');
    t.match(
      updateRow?.cells[0],
      new RegExp(`^Update validator ${node0.name}: roles .+; data types .+$`),
      'the validator change names the validator',
    );
    t.equal(updateRow?.cells[1], `2/2: ${member(council[1]!)}, ${member(council[2]!)}`, 'its approvers');
    t.equal(updateRow?.cells[5], String(enacted.height), 'decided where it was enacted');
    t.equal(openRow?.cells[1], `1/2: ${member(council[2]!)}`, 'the open proposal has its proposer only');
    t.equal(openRow?.status, 'open', 'and is open');
    t.equal(openRow?.cells[5], '—', 'undecided');
    t.equal(updateRow?.href, `#/proposal/${update.proposal}`, 'each row links its proposal');
    await page.screenshot({ path: join(SCREENSHOTS, 'explorer-governance.png'), fullPage: true });

    // Paging back: the proposals before the third (the first two), newest first. Only a hash
    // changes, so the newest page's rows are still there until the older page replaces them: wait
    // for what only the older page has.
    await goto('gov/before/2', 'a:text-is("← Newest proposals")');
    t.same(
      await page
        .locator('tr[data-proposal]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-proposal'))),
      [update.proposal, change.proposal],
      'an older page holds the proposals before it',
    );
    t.equal(
      await page.getByRole('link', { name: '← Newest proposals' }).count(),
      1,
      'and links back to the newest',
    );
    await goto('gov', `tr[data-proposal="${open.proposal}"]`);

    await page.click(`tr[data-proposal="${update.proposal}"] a`);
    const card = page.locator(`section[data-proposal="${update.proposal}"]`);
    await card.locator('[data-proof="proposal"]').waitFor();
    t.equal(
      await card.locator('[data-proof="proposal"]').getAttribute('data-verified'),
      'true',
      "the proposal's entry is proven in the browser",
    );
    t.equal(await card.locator('[data-fact="status"]').innerText(), 'enacted', 'status');
    t.equal(
      await card.locator('[data-fact="approvals"]').innerText(),
      `2/2: ${member(council[1]!)}, ${member(council[2]!)}`,
      'approvals',
    );
    t.equal(
      await card.locator('[data-fact="decided"]').innerText(),
      String(enacted.height),
      'decided height',
    );
    t.equal(
      await card.locator('[data-fact="in-force"] a').getAttribute('href'),
      `#/validators/${from}`,
      'links the validators from the height the change is in force',
    );
    // A proposal entry whose approvals were altered does not verify.
    const stateUrl = `**/v1/state/proposals/${change.proposal}`;
    const real = (await (await fetch(`${api}/v1/state/proposals/${change.proposal}`)).json()) as {
      value: { approvals: string[] };
    };
    real.value.approvals.reverse();
    await page.route(stateUrl, (route) => route.fulfill({ json: real }));
    await goto(`proposal/${change.proposal}`, `section[data-proposal="${change.proposal}"] [data-proof]`);
    t.equal(
      await page.locator('[data-proof="proposal"]').getAttribute('data-verified'),
      'false',
      'a tampered proposal entry is refused',
    );
    await page.unroute(stateUrl);
    await goto(`proposal/${update.proposal}`, '[data-fact="in-force"] a');
  });

  await t.test('the validators view shows the set at any height and its history', async (t) => {
    await page.click('[data-fact="in-force"] a');
    const at = page.locator(`section[data-validators-at="${from}"]`);
    await at.locator('[data-proof="header"]').waitFor();
    t.equal(
      await at.locator('[data-proof="schedule"]').getAttribute('data-verified'),
      'true',
      'the schedule is proven against a certified state root',
    );
    t.equal(
      await at.locator('[data-proof="header"]').getAttribute('data-verified'),
      'true',
      `block ${from}'s certified header names the set shown`,
    );
    const row = at.locator(`tr[data-validator="${node0.name}"]`);
    t.equal(await row.getAttribute('data-key'), node0.key, `${node0.name} with its key`);
    t.equal(
      await row.locator('[data-types]').getAttribute('data-types'),
      newTypes.join(','),
      'its new data types',
    );
    t.equal(await row.locator('[data-roles]').getAttribute('data-roles'), node0.roles.join(','), 'its roles');
    t.equal(
      await at.locator('[data-fact="size"]').innerText(),
      '1 (quorum 1, tolerates 0 faulty)',
      'size and quorum',
    );
    t.equal(
      await at.locator('[data-fact="set-hash"] code').getAttribute('title'),
      validatorSetHash(newSet),
      'the hash of the new set',
    );
    const epochs = await page
      .locator('tr[data-epoch]')
      .evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-epoch'))));
    t.same(epochs, [1, from], 'history: the genesis set, then the set from the change');
    const changes = page.locator(`tr[data-epoch="${from}"] li[data-change]`);
    t.equal(await changes.count(), 1, 'one change');
    t.equal(await changes.getAttribute('data-change'), 'updated', 'an update');
    t.match(
      await changes.innerText(),
      new RegExp(`^updated ${node0.name}: data types .+ → .+$`),
      'of the data types',
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'explorer-validators.png'), fullPage: true });

    // The height box: the block before, still under genesis's set.
    await page.fill('#validators-height', String(from - 1));
    await page.click('#validators-form button[type="submit"]');
    const before = page.locator(`section[data-validators-at="${from - 1}"]`);
    await before.locator('[data-proof="header"]').waitFor();
    t.equal(
      await before.locator(`tr[data-validator="${node0.name}"] [data-types]`).getAttribute('data-types'),
      node0.types.join(','),
      `at ${from - 1} the genesis data types`,
    );
    t.match(await before.locator('[data-fact="set-hash"]').innerText(), /genesis set/, 'the genesis set');
    t.equal(
      await before.locator('[data-proof="header"]').getAttribute('data-verified'),
      'true',
      'proven by its header',
    );

    // A schedule whose entry was altered does not verify.
    const real = (await (await fetch(`${api}/v1/state/validator-sets`)).json()) as {
      value: { epochs: { validators: { types: string[] }[] }[] };
    };
    real.value.epochs[0]!.validators[0]!.types = [...node0.types];
    await page.route('**/v1/state/validator-sets', (route) => route.fulfill({ json: real }));
    await goto(`validators/${from}`, `section[data-validators-at="${from}"] [data-proof="schedule"]`);
    t.equal(
      await page.locator('[data-proof="schedule"]').getAttribute('data-verified'),
      'false',
      'a tampered schedule is refused',
    );
    await page.unroute('**/v1/state/validator-sets');
  });

  await t.test('block pages name the validator set and mark the change', async (t) => {
    await goto(`block/${from - 1}`, `section[data-block="${from - 1}"]`);
    t.equal(
      await page.locator('[data-set-change]').count(),
      1,
      `block ${from - 1}: the set changes after it`,
    );
    t.match(
      await page.locator('[data-fact="validators"]').innerText(),
      /the genesis set/,
      "certified by genesis's set",
    );
    t.equal(
      await page.locator('[data-fact="next-validators"] code').getAttribute('title'),
      validatorSetHash(newSet),
      'its header names the next set',
    );
    t.equal(
      await page.locator('[data-link="validators-at"]').getAttribute('href'),
      `#/validators/${from - 1}`,
      'and links the validators at its height',
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'explorer-set-change-block.png'), fullPage: true });
    await goto(`block/${from}`, `section[data-block="${from}"]`);
    t.equal(await page.locator('[data-set-change]').count(), 0, `block ${from}: no change after it`);
    t.equal(
      await page.locator('[data-fact="validators"] code').getAttribute('title'),
      validatorSetHash(newSet),
      'certified by the new set',
    );
    // A page loaded afresh follows the change before it verifies a proof past it.
    await page.goto(`${api}/explorer/?fresh#/tx/${open.proposal}`);
    await page.locator(`section[data-tx="${open.proposal}"] [data-verified]`).waitFor();
    const mark = page.locator(`section[data-tx="${open.proposal}"] [data-verified]`);
    t.equal(await mark.getAttribute('data-verified'), 'true', `a proof at height ${opened2.height} verifies`);
    t.match(await mark.innerText(), /of the 1 validator in force there/, 'against the set in force there');
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
