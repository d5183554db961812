/**
 * Who may read what, over HTTP on a dev chain after one complete flow: a subject's pending
 * requests, audit trail and request events only for her (a read signed with her key); a request's
 * state only for its institution and its subject; the explorer routes show an anonymous reader
 * kinds, hashes, heights and signers' roles but no body or proof of a transaction about a subject;
 * a subject id shaped like a national ID number is refused.
 */
import '../../src/common/polyfill.js';
import t from 'tap';
import { syntheticSensitiveValues } from '../../scripts/synthetic-data-platform.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { institutionCaller, signCall } from '../../src/common/http-signature.js';
import { generateKeySet, type KeySet } from '../../src/common/keyfile.js';
import { attestSubject, buildGrantTx, buildRegisterTx } from '../../src/platform/consent.js';
import { addInstitutionChange, councilChange, councilKeys } from '../helpers/council.js';
import { registerSubject, startDevNode } from '../helpers/dev-node.js';

t.test('signed reads of personal metadata, and what the explorer shows anyone', async (t) => {
  const chain = 'datagrant-reads';
  const dev = await startDevNode(t, { chain });
  const { api, net, bank } = dev;
  const alice = await registerSubject(api, net.genesis, dev.registrar, 'alice-0007');
  const bob = await registerSubject(api, net.genesis, dev.registrar, 'bob-0008');
  const client = dev.client();
  const opened = await client.openRequest({
    subject: 'alice-0007',
    types: ['tax'],
    purpose: 'a purpose only the parties read',
    format: 'json',
    fields: {},
  });
  const ready = await client.waitFor(opened.id, ['waiting-for-consent']);
  const grant = buildGrantTx(
    { chain, now: Date.now() },
    ready,
    alice,
    { institution: 'demo-bank', encKey: bytesToHex(bank.encryption.publicKey) },
    { expiresInMs: 3_600_000, uses: 1, retainDays: 1 },
  );
  const granted = await client.submit(grant);
  const doc = await client.document(opened.id);

  // Another institution, to read as.
  const other = generateKeySet('other-bank');
  const [first, second] = await councilKeys(net.keys.council);
  const add = councilChange(chain, addInstitutionChange('other-bank', 'Other Bank', other), first!, second!);
  const added = await client.submit(add.propose);
  await client.submit(add.approve);

  const get = async (
    path: string,
    as?: { caller: string; keys: KeySet; chain?: string; audience?: string },
  ) => {
    const headers = as
      ? signCall(
          {
            method: 'GET',
            path,
            body: '',
            caller: as.caller,
            audience: as.audience ?? net.nodes[0]!.key,
            chain: as.chain ?? chain,
          },
          as.keys.signing.secretKey,
        )
      : {};
    const r = await fetch(`${api}${path}`, { headers });
    const text = await r.text();
    const body = JSON.parse(text) as Record<string, unknown> & { error?: { code: string } };
    return { status: r.status, code: body.error?.code, body, text };
  };
  const asAlice = { caller: 'subject:alice-0007', keys: alice };
  const asBob = { caller: 'subject:bob-0008', keys: bob };
  const asBank = { caller: institutionCaller('demo-bank'), keys: bank };
  const asOther = { caller: institutionCaller('other-bank'), keys: other };

  // A subject's pending requests and audit trail: hers alone.
  for (const path of ['/v1/subjects/alice-0007/requests?all=true', '/v1/subjects/alice-0007/audit']) {
    t.equal((await get(path, asAlice)).status, 200, `${path}: served to her`);
    const anonymous = await get(path);
    t.same([anonymous.status, anonymous.code], [401, 'API_UNAUTHENTICATED'], `${path}: unsigned, refused`);
    const bobReads = await get(path, asBob);
    t.same(
      [bobReads.status, bobReads.code],
      [403, 'PLATFORM_NOT_YOURS'],
      `${path}: another subject, refused`,
    );
    const bankReads = await get(path, asBank);
    t.same([bankReads.status, bankReads.code], [403, 'PLATFORM_NOT_YOURS'], `${path}: the bank, refused`);
    const forged = await get(path, { caller: 'subject:alice-0007', keys: bob });
    t.same(
      [forged.status, forged.code],
      [401, 'API_BAD_SIGNATURE'],
      `${path}: her name, another key: refused`,
    );
    const otherChain = await get(path, { ...asAlice, chain: 'other-chain' });
    t.same(
      [otherChain.status, otherChain.code],
      [401, 'API_WRONG_CHAIN'],
      `${path}: signed for another chain`,
    );
    const otherNode = await get(path, { ...asAlice, audience: 'ab'.repeat(32) });
    t.same(
      [otherNode.status, otherNode.code],
      [401, 'API_WRONG_AUDIENCE'],
      `${path}: signed for another node`,
    );
  }

  // The audit trail comes in pages that end at block boundaries: nothing lost, nothing twice.
  const full = (await get('/v1/subjects/alice-0007/audit', asAlice)).body as {
    entries: { hash: string; height: number }[];
    next?: number;
  };
  t.equal(full.next, undefined, 'a short trail is one page');
  const paged: { hash: string; height: number }[] = [];
  let pages = 0;
  for (let after: number | undefined; ; pages++) {
    const page = (
      await get(
        `/v1/subjects/alice-0007/audit?limit=1${after === undefined ? '' : `&after=${after}`}`,
        asAlice,
      )
    ).body as { entries: { hash: string; height: number }[]; next?: number };
    paged.push(...page.entries);
    if (page.next === undefined) break;
    t.ok(
      page.entries.every((e) => e.height <= page.next!),
      'a page ends at its next height',
    );
    after = page.next;
  }
  t.ok(pages >= 3, `the trail came in ${pages + 1} pages of about one entry`);
  t.same(
    paged.map((e) => e.hash),
    full.entries.map((e) => e.hash),
    'the pages together are the whole trail, in order',
  );
  const tooMany = await get('/v1/subjects/alice-0007/audit?limit=100000', asAlice);
  t.equal(tooMany.status, 400, 'a page larger than the bound is refused');

  // A request's state and event stream: its institution and its subject only.
  const requestPath = `/v1/requests/${opened.id}`;
  t.equal((await get(requestPath, asBank)).status, 200, 'the bank reads its request');
  t.equal((await get(requestPath, asAlice)).status, 200, 'she reads the request about her');
  for (const [name, as] of [
    ['unsigned', undefined],
    ['another institution', asOther],
    ['another subject', asBob],
  ] as const) {
    const r = await get(requestPath, as);
    t.ok(r.status === 401 || r.status === 403, `${name}: refused (${r.status} ${r.code})`);
    t.notOk(r.text.includes('a purpose only the parties read'), `${name}: learns nothing of it`);
  }
  const events = await fetch(`${api}${requestPath}/events`);
  t.equal(events.status, 401, 'the event stream: unsigned, refused');
  const otherEvents = await fetch(`${api}${requestPath}/events`, {
    headers: signCall(
      {
        method: 'GET',
        path: `${requestPath}/events`,
        body: '',
        caller: asOther.caller,
        audience: net.nodes[0]!.key,
        chain,
      },
      other.signing.secretKey,
    ),
  });
  t.equal(otherEvents.status, 403, 'the event stream: another institution, refused');
  await otherEvents.body?.cancel();

  // The explorer: kinds and hashes for anyone; bodies of subject transactions for the parties.
  const values = syntheticSensitiveValues('alice-0007');
  for (const [kind, hash] of [
    ['request.open', opened.id],
    ['grant', granted.hash],
    ['usage', doc.usageTx],
  ] as const) {
    const anon = await get(`/v1/txs/${hash}`);
    const tx = anon.body.tx as { kind: string; redacted?: boolean; body?: unknown };
    t.same(
      [anon.status, tx.kind, tx.redacted, tx.body],
      [200, kind, true, undefined],
      `${kind}: no body for anyone`,
    );
    t.ok(
      typeof anon.body.signerRole === 'string',
      `${kind}: the signer's role is shown (${anon.body.signerRole})`,
    );
    t.notOk(anon.text.includes('a purpose only the parties read'), `${kind}: not the purpose`);
    const proof = await get(`/v1/txs/${hash}/proof`);
    t.same([proof.status, proof.code], [403, 'API_FORBIDDEN'], `${kind}: no proof for anyone`);
    const mine = await get(`/v1/txs/${hash}`, asAlice);
    t.ok((mine.body.tx as { body?: unknown }).body, `${kind}: the body, for her`);
    t.equal((await get(`/v1/txs/${hash}/proof`, asBank)).status, 200, `${kind}: the proof, for the bank`);
    t.equal((await get(`/v1/txs/${hash}/proof`, asOther)).status, 403, `${kind}: not for another bank`);
  }
  const height = ((await get(`/v1/txs/${granted.hash}`)).body.height as number) ?? 0;
  const block = await get(`/v1/blocks/${height}`);
  const blockTxs = (block.body.block as { txs: { redacted?: boolean; body?: unknown }[] }).txs;
  t.ok(
    blockTxs.length > 0 && blockTxs.every((x) => x.redacted === true),
    'a block shows its subject txs redacted',
  );
  t.ok(Array.isArray(block.body.signerRoles), 'with the signers roles');
  t.notOk(
    values.some((v) => block.text.includes(v)) || block.text.includes('granteeKey'),
    'and nothing of them',
  );
  const governance = await get(`/v1/txs/${added.hash}`);
  t.ok((governance.body.tx as { body?: unknown }).body, 'a governance transaction is public, body and all');
  t.equal((await get(`/v1/txs/${added.hash}/proof`)).status, 200, 'with its proof');

  // A subject id shaped like a national ID number never reaches the ledger.
  for (const id of ['110101199003074578', '11010119900307457x']) {
    const keys = generateKeySet('id-shaped');
    const attestation = attestSubject(
      chain,
      id,
      { signKey: bytesToHex(keys.signing.publicKey), encKey: bytesToHex(keys.encryption.publicKey) },
      dev.registrar,
    );
    const tx = buildRegisterTx(
      { chain, now: Date.now() },
      id,
      keys,
      bytesToHex(dev.registrar.signing.publicKey),
      attestation,
    );
    const r = await fetch(`${api}/v1/txs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(tx),
    });
    const body = (await r.json()) as { error?: { code: string } };
    t.same([r.status, body.error?.code], [400, 'LEDGER_TX_MALFORMED'], `subject id ${id}: refused`);
    const route = await get(`/v1/subjects/${id}`);
    t.equal(route.status, 400, `subject id ${id}: refused by the subject routes too`);
  }
});
