/**
 * `npm run demo`: a local testnet (4 validators by default: 2 platform + 2 extractor nodes, plus
 * the bank's own gateway, as separate processes over libp2p; `--dev` for the one-validator dev
 * chain), the SYNTHETIC public data platform, and the patent's flow narrated step by step — the
 * bank signs its own request → multicast → extraction → grant signed with a key file, naming the
 * bank's key → the bank records its use, gets the sealed bundle, verifies and decrypts it and
 * assembles the CSV on its own side → usage on the ledger → the subject's audit trail verified
 * offline. No validator ever holds the bank's key. Exits 0 only if every step was checked.
 */
import '../src/common/polyfill.js';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { apiCall, signedApiCall, submitAndWait } from '../src/cli/client.js';
import { DatagrantClient } from '../src/client/index.js';
import { bytesToHex } from '../src/common/bytes.js';
import { isDatagrantError } from '../src/common/errors.js';
import { institutionCaller, signCall } from '../src/common/http-signature.js';
import { generateKeySet } from '../src/common/keyfile.js';
import { readKeyFile, writeKeyFile } from '../src/common/keyfile-fs.js';
import { signTx, type TxProof, verifyTxProof } from '../src/ledger/index.js';
import { LocalTestnet } from '../src/node/local-testnet.js';
import { readGenesis } from '../src/node/node.js';
import { attestSubject, buildGrantTx, buildRegisterTx } from '../src/platform/consent.js';
import type { AuditEntry, RequestView } from '../src/platform/views.js';
import { startSyntheticDataPlatform, syntheticSourceConfig } from './synthetic-data-platform.js';

const { values: args } = parseArgs({
  options: {
    dev: { type: 'boolean', default: false },
    validators: { type: 'string', default: '4' },
    extraction: { type: 'string', default: 'on-request' },
    keep: { type: 'boolean', default: false },
  },
});

const color = process.stdout.isTTY
  ? (c: number, s: string) => `\x1b[${c}m${s}\x1b[0m`
  : (_c: number, s: string) => s;
let step = 0;
let checked = 0;
const say = (text: string) => process.stdout.write(`${text}\n`);
function title(text: string): void {
  step++;
  say(`\n${color(1, `Step ${step}. ${text}`)}`);
}
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
  checked++;
  say(`  ${color(32, '✓')} ${what}`);
}
const short = (hex: string) => `${hex.slice(0, 12)}…`;

/** Every file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  return out;
}

async function main(): Promise<void> {
  const n = args.dev ? 1 : Number(args.validators);
  const gateways = args.dev ? 0 : 1;
  const extraction = args.extraction === 'on-consent' ? 'on-consent' : 'on-request';
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-demo-'));
  const source = await startSyntheticDataPlatform({ port: 0, host: '127.0.0.1' });
  const testnet = new LocalTestnet({
    dir,
    validators: n,
    gateways,
    extraction,
    chain: 'datagrant-demo',
    blockIntervalMs: 500,
    minBlockIntervalMs: 10,
    sources: [syntheticSourceConfig(source) as unknown as Record<string, unknown>],
    logLevel: 'info',
  });
  try {
    title(
      `A local testnet: ${n} validator${n > 1 ? 's' : ''}${gateways ? " and the bank's own gateway" : ''} as separate processes, and the SYNTHETIC public data platform`,
    );
    const net = await testnet.init();
    testnet.startAll();
    await testnet.waitAllReady(90_000);
    say(`  synthetic data platform (generated citizens, not real data): ${source.url}`);
    for (const node of net.nodes)
      say(
        `  ${node.name.padEnd(9)} ${node.kind.padEnd(9)} ${node.roles.join('+').padEnd(18)} ${node.apiUrl}${node.institution ? `  (holds ${node.institution}'s key)` : ''}`,
      );
    const validatorPlatform = net.nodes.findIndex(
      (x) => x.kind === 'validator' && x.roles.includes('platform'),
    );
    const bankGateway = net.nodes.findIndex((x) => x.institution === net.institutionId);
    const api = testnet.api(validatorPlatform);
    const bankApi = bankGateway >= 0 ? testnet.api(bankGateway) : api;
    const s1 = await apiCall<{ height: number }>(api, 'GET', '/v1/status');
    await new Promise((r) => setTimeout(r, 1500));
    const s2 = await apiCall<{ height: number; validators: number }>(api, 'GET', '/v1/status');
    check(s2.height > s1.height, `blocks are being committed (height ${s1.height} → ${s2.height})`);
    const genesis = await readGenesis(net.genesisPath);
    const bank = await readKeyFile(net.keys.institution);
    const secretHex = bytesToHex(bank.encryption.secretKey);
    const secretB64 = Buffer.from(bank.encryption.secretKey).toString('base64url');
    for (const node of net.nodes.filter((x) => x.kind === 'validator')) {
      for (const file of await filesUnder(node.home)) {
        const text = await readFile(file, 'latin1').catch(() => '');
        if (text.includes(secretHex) || text.includes(secretB64))
          throw new Error(`check failed: ${file} holds the bank's key`);
      }
    }
    check(
      true,
      `no validator's home holds the bank's key: it is only in ${net.keys.institution.replace(dir, '<testnet>')}${bankGateway >= 0 ? ` and the bank's gateway ${net.nodes[bankGateway]!.name}` : ''}`,
    );

    title('A person gets a key file; the registrar binds it to a pseudonymous subject id');
    const alicePath = join(dir, 'alice.json');
    const passphrase = 'correct horse battery staple';
    await writeKeyFile(alicePath, generateKeySet('alice'), { passphrase });
    const alice = await readKeyFile(alicePath, passphrase);
    const registrar = await readKeyFile(net.keys.registrar);
    const subject = 'alice-7f3a';
    const attestation = attestSubject(
      genesis.chain,
      subject,
      { signKey: bytesToHex(alice.signing.publicKey), encKey: bytesToHex(alice.encryption.publicKey) },
      registrar,
    );
    const reg = await submitAndWait(
      api,
      buildRegisterTx(
        { chain: genesis.chain, now: Date.now() },
        subject,
        alice,
        bytesToHex(registrar.signing.publicKey),
        attestation,
      ),
    );
    check(
      true,
      `sealed key file ${alicePath}; subject ${subject} registered at height ${reg.height} (no ID number on chain)`,
    );

    /** Her pending request `id`, as she reads it with her own key. */
    const pendingFor = async (id: string): Promise<RequestView> => {
      const { requests } = await signedApiCall<{ requests: RequestView[] }>(
        api,
        'GET',
        `/v1/subjects/${subject}/requests`,
        `subject:${subject}`,
        alice.signing.secretKey,
      );
      const found = requests.find((r) => r.id === id);
      if (!found) throw new Error(`check failed: request ${id} is not among her pending requests`);
      return found;
    };

    title("The bank's application signs its own request for her tax and social-insurance records");
    const client = new DatagrantClient({ api: bankApi, institution: net.institutionId, keys: bank, genesis });
    const request = await client.openRequest({
      subject,
      types: ['tax', 'social-insurance'],
      purpose: 'mortgage application',
      format: 'csv',
      fields: {
        annual_income: 'tax.annualIncome',
        tax_paid: 'tax.taxPaid',
        tax_year: 'tax.taxYear',
        insured_months: 'social-insurance.contributionMonths',
        monthly_base: 'social-insurance.monthlyBase',
      },
    });
    check(
      request.status === 'waiting-for-data' || request.status === 'waiting-for-consent',
      `request ${short(request.id)} signed with the bank's key (datagrant/client), relayed by ${bankGateway >= 0 ? "the bank's gateway" : 'the node'}, committed at height ${request.height}`,
    );

    title('The platform multicasts it; every node sees the committed request');
    for (let i = 0; i < testnet.size; i++) {
      let tx = { status: 'missing' };
      for (let k = 0; k < 50 && tx.status !== 'committed'; k++) {
        tx = await apiCall<{ status: string }>(testnet.api(i), 'GET', `/v1/txs/${request.id}`).catch(
          () => tx,
        );
        if (tx.status !== 'committed') await new Promise((r) => setTimeout(r, 100));
      }
      check(tx.status === 'committed', `${net.nodes[i]!.name} has the request`);
    }

    let view: RequestView = request;
    if (extraction === 'on-request') {
      title('Extractors run their plugins against the data platform, encrypt to her key, and record it');
      await client.waitFor(request.id, ['waiting-for-consent'], { timeoutMs: 60_000 });
      view = await pendingFor(request.id);
      for (const r of view.records) {
        const who = net.nodes.find((x) => x.key === r.extractor)?.name ?? short(r.extractor);
        check(
          true,
          `${r.type}: ${r.size} encrypted bytes, digest ${short(r.digest)}, extracted by ${who} from ${r.source}`,
        );
      }
      check(view.records.length === 2, 'both records are on chain, only as digests and wrapped keys');
    } else {
      title('Under on-consent extraction nothing is fetched before she decides');
      view = await pendingFor(request.id);
      check(view.records.length === 0, 'no record exists yet');
    }

    title("She grants with her key file: tax and social insurance, one use, valid 7 days, to the bank's key");
    const inst = await apiCall<{ encKey: string }>(api, 'GET', `/v1/institutions/${net.institutionId}`);
    const inGenesis = genesis.institutions.find((i) => i.institution === net.institutionId)!;
    check(inst.encKey === inGenesis.encKey, "the bank's key the node gives is the one genesis registers");
    const grantTx = buildGrantTx(
      { chain: genesis.chain, now: Date.now(), extraction },
      view,
      alice,
      { institution: net.institutionId, encKey: inGenesis.encKey },
      { expiresInMs: 7 * 24 * 3600 * 1000, uses: 1, retainDays: 30 },
    );
    const grant = await submitAndWait(api, grantTx);
    check(
      true,
      `grant ${short(grant.hash)} committed at height ${grant.height}, naming ${net.institutionId} and its key${extraction === 'on-request' ? '; data keys re-wrapped to that key' : ''}`,
    );
    if (extraction === 'on-consent') {
      const ready = await client.waitFor(request.id, ['granted'], { timeoutMs: 60_000 });
      check(
        ready.records.length === 2,
        'now the extractors fetched exactly the granted types, wrapping each key to her and to the bank',
      );
    }

    title('A validator cannot open it: it holds no key but its own');
    const overValidator = new DatagrantClient({ api, institution: net.institutionId, keys: bank, genesis });
    const path = `/v1/requests/${request.id}/document`;
    const self = (await apiCall<{ self: string }>(api, 'GET', '/v1/status')).self;
    const refused = await fetch(`${api}${path}`, {
      headers: signCall(
        {
          method: 'GET',
          path,
          body: '',
          caller: institutionCaller(net.institutionId),
          audience: self,
          chain: genesis.chain,
        },
        bank.signing.secretKey,
      ),
    });
    const refusedBody = (await refused.json()) as { error: { code: string } };
    check(
      refused.status === 403 && refusedBody.error.code === 'PLATFORM_INSTITUTION_NOT_SERVED',
      `${net.nodes[validatorPlatform]!.name} will not assemble a document for the bank (${refusedBody.error.code}): it can only hand over a sealed bundle`,
    );

    title(
      'The bank records its use, takes the sealed bundle, verifies it against genesis and decrypts it on its own side',
    );
    const doc = await overValidator.document(request.id);
    check(
      true,
      `usage ${short(doc.usageTx)} signed by the bank, committed at height ${doc.usageHeight} before anything was released`,
    );
    check(
      true,
      `sealed bundle ${short(doc.bundleDigest)} from ${net.nodes[validatorPlatform]!.name}: ${doc.bundle.records.length} ciphertexts, keys wrapped to the bank, ${doc.bundle.records.length + 3} inclusion proofs verified against genesis alone`,
    );
    check(
      doc.records.every(
        (r) =>
          r.statement?.statement.source === 'synthetic-platform' && r.statement.statement.type === r.type,
      ) && net.genesis.sources?.[0]?.key === source.source.key,
      `every record carries the answer the data platform signed; its signature verified under the key genesis registers for ${doc.records.length === 1 ? 'that type' : 'those types'}`,
    );
    check(
      doc.body.startsWith('annual_income,tax_paid,tax_year,insured_months,monthly_base'),
      'document assembled by the bank as CSV:',
    );
    for (const line of doc.body.trim().split('\r\n')) say(`      ${line}`);
    const usageHash = doc.usageTx;

    title('The use is on the ledger, identical on every node');
    const seen = new Set<string>();
    for (let i = 0; i < testnet.size; i++) {
      let tx = await apiCall<{ status: string; blockHash?: string }>(
        testnet.api(i),
        'GET',
        `/v1/txs/${usageHash}`,
      ).catch(() => ({ status: 'missing' }) as { status: string; blockHash?: string });
      for (let k = 0; k < 50 && tx.status !== 'committed'; k++) {
        await new Promise((r) => setTimeout(r, 100));
        tx = await apiCall<{ status: string; blockHash?: string }>(
          testnet.api(i),
          'GET',
          `/v1/txs/${usageHash}`,
        ).catch(() => tx);
      }
      check(
        tx.status === 'committed',
        `${net.nodes[i]!.name}: usage ${short(usageHash)} in block ${short(tx.blockHash ?? '')}`,
      );
      seen.add(tx.blockHash ?? '');
    }
    check(seen.size === 1, 'all nodes hold the same block');
    const usedUp = await overValidator.request(request.id);
    const again = await submitAndWait(
      api,
      signTx(
        {
          chain: genesis.chain,
          kind: 'usage',
          body: { grant: grant.hash, bundle: doc.bundleDigest, format: 'csv' },
        },
        bank.signing.publicKey,
        bank.signing.secretKey,
      ),
    ).then(
      () => 'committed',
      (err: unknown) => (isDatagrantError(err) ? err.code : String(err)),
    );
    check(
      usedUp.status === 'used-up' && again === 'LEDGER_GRANT_USED_UP',
      `the request is ${usedUp.status}; a second use is refused by the ledger (${again}): the grant allowed one`,
    );
    const replayed = await overValidator.fetchBundle(request.id, { usage: usageHash });
    check(
      replayed.digest === doc.bundleDigest,
      'asking for the bundle of the committed use again returns the same sealed bytes and spends nothing',
    );

    title('Who sees what: the explorer shows kinds and hashes; bodies only to the parties');
    const anonymous = await apiCall<{ tx: { kind: string; redacted?: boolean; body?: unknown } }>(
      api,
      'GET',
      `/v1/txs/${usageHash}`,
    );
    check(
      anonymous.tx.kind === 'usage' && anonymous.tx.redacted === true && anonymous.tx.body === undefined,
      'an anonymous reader of the explorer sees a usage, its hash and height, but not its body',
    );
    const unsigned = await apiCall(api, 'GET', `/v1/subjects/${subject}/audit`).then(
      () => 'served',
      (err: unknown) => (isDatagrantError(err) ? err.code : String(err)),
    );
    check(unsigned === 'API_UNAUTHENTICATED', `her audit trail is refused to an unsigned read (${unsigned})`);

    title('Her audit trail, read with her key, every entry verified offline against genesis.json alone');
    const audit = await signedApiCall<{ entries: AuditEntry[] }>(
      api,
      'GET',
      `/v1/subjects/${subject}/audit`,
      `subject:${subject}`,
      alice.signing.secretKey,
    );
    await writeFile(join(dir, 'audit.json'), JSON.stringify(audit, null, 2));
    for (const e of audit.entries) {
      const r = verifyTxProof(genesis, e.proof as TxProof);
      check(
        r.ok && r.hash === e.hash,
        `${new Date(e.time).toISOString()}  ${e.kind.padEnd(17)} ${short(e.hash)} height ${e.height}  verified`,
      );
    }
    const kinds = new Set(audit.entries.map((e) => e.kind));
    check(
      ['request.open', 'record.put', 'grant', 'usage'].every((k) => kinds.has(k)),
      'request, extraction, consent and use are all on the trail',
    );

    say(
      `\n${color(32, `All ${step} steps checked (${checked} checks).`)} Testnet files: ${dir}${args.keep ? '' : ' (removed)'}`,
    );
  } finally {
    await testnet.stopAll().catch(() => {});
    await source.close().catch(() => {});
    if (!args.keep) await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`\ndemo failed: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
