/**
 * `npm run demo`: a local testnet (4 validators by default: 2 platform + 2 extractor nodes, as
 * separate processes over libp2p; `--dev` for the one-validator dev chain), the SYNTHETIC public
 * data platform, and the patent's flow narrated step by step — bank request → multicast →
 * extraction → grant signed with a key file → document in CSV → usage on the ledger → the
 * subject's audit trail verified offline. Exits 0 only if every step was checked.
 */
import '../src/common/polyfill.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { apiCall, institutionCall, submitAndWait, waitForRequest } from '../src/cli/client.js';
import { bytesToHex } from '../src/common/bytes.js';
import { generateKeySet } from '../src/common/keyfile.js';
import { readKeyFile, writeKeyFile } from '../src/common/keyfile-fs.js';
import { type TxProof, verifyTxProof } from '../src/ledger/index.js';
import { LocalTestnet } from '../src/node/local-testnet.js';
import { readGenesis } from '../src/node/node.js';
import { attestSubject, buildGrantTx, buildRegisterTx } from '../src/platform/consent.js';
import type { AuditEntry, RequestView } from '../src/platform/platform.js';
import { startSyntheticDataPlatform, syntheticSourceConfig } from './synthetic-data-platform.js';

const { values: args } = parseArgs({
  options: {
    dev: { type: 'boolean', default: false },
    validators: { type: 'string', default: '4' },
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

async function main(): Promise<void> {
  const n = args.dev ? 1 : Number(args.validators);
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-demo-'));
  const source = await startSyntheticDataPlatform({ port: 0, host: '127.0.0.1' });
  const testnet = new LocalTestnet({
    dir,
    validators: n,
    chain: 'datagrant-demo',
    blockIntervalMs: 500,
    minBlockIntervalMs: 10,
    sources: [syntheticSourceConfig(source.url) as unknown as Record<string, unknown>],
    logLevel: 'info',
  });
  try {
    title(
      `A local testnet: ${n} validator${n > 1 ? 's' : ''} as separate processes, and the SYNTHETIC public data platform`,
    );
    const net = await testnet.init();
    testnet.startAll();
    await testnet.waitAllReady(90_000);
    say(`  synthetic data platform (generated citizens, not real data): ${source.url}`);
    for (const node of net.nodes) say(`  ${node.name}  ${node.roles.join('+').padEnd(18)} ${node.apiUrl}`);
    const platformNode = net.nodes.findIndex((x) => x.roles.includes('platform'));
    const api = testnet.api(platformNode);
    const s1 = await apiCall<{ height: number }>(api, 'GET', '/v1/status');
    await new Promise((r) => setTimeout(r, 1500));
    const s2 = await apiCall<{ height: number; validators: number }>(api, 'GET', '/v1/status');
    check(s2.height > s1.height, `blocks are being committed (height ${s1.height} → ${s2.height})`);
    const genesis = await readGenesis(net.genesisPath);

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

    title('The bank asks the platform for her tax and social-insurance records (a signed API call)');
    const bank = await readKeyFile(net.keys.institution);
    const request = await institutionCall<RequestView>(
      api,
      'POST',
      '/v1/requests',
      'demo-bank',
      bank.signing.secretKey,
      {
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
      },
    );
    check(
      request.status === 'waiting-for-data' || request.status === 'waiting-for-consent',
      `request ${short(request.id)} opened on chain at height ${request.height}`,
    );

    title('The platform multicasts it; every node sees the committed request');
    for (let i = 0; i < testnet.size; i++) {
      const tx = await apiCall<{ status: string }>(testnet.api(i), 'GET', `/v1/txs/${request.id}`);
      check(tx.status === 'committed', `${net.nodes[i]!.name} has the request`);
    }

    title('Extractors run their plugins against the data platform, encrypt to her key, and record it');
    const ready = await waitForRequest<RequestView>(api, request.id, ['waiting-for-consent'], 60_000);
    for (const r of ready.records) {
      const who = net.nodes.find((x) => x.key === r.extractor)?.name ?? short(r.extractor);
      check(
        true,
        `${r.type}: ${r.size} encrypted bytes, digest ${short(r.digest)}, extracted by ${who} from ${r.source}`,
      );
    }
    check(ready.records.length === 2, 'both records are on chain, only as digests and wrapped keys');

    title('She grants with her key file: tax and social insurance, one fetch, valid 7 days');
    const inst = await apiCall<{ encKey: string }>(api, 'GET', '/v1/institutions/demo-bank');
    const grantTx = buildGrantTx({ chain: genesis.chain, now: Date.now() }, ready, alice, inst.encKey, {
      expiresInMs: 7 * 24 * 3600 * 1000,
      uses: 1,
      retainDays: 30,
    });
    const grant = await submitAndWait(api, grantTx);
    check(
      true,
      `grant ${short(grant.hash)} committed at height ${grant.height}; keys re-wrapped to the bank`,
    );

    title('The platform assembles the document in the format the bank asked for (CSV)');
    const path = `/v1/requests/${request.id}/document`;
    const { signHttpRequest } = await import('../src/platform/http-auth.js');
    const response = await fetch(`${api}${path}`, {
      headers: signHttpRequest('GET', path, '', 'demo-bank', bank.signing.secretKey),
    });
    const csv = await response.text();
    check(
      response.ok && csv.startsWith('annual_income,tax_paid,tax_year,insured_months,monthly_base'),
      'document delivered as CSV:',
    );
    for (const line of csv.trim().split('\r\n')) say(`      ${line}`);
    const usageHash = response.headers.get('x-datagrant-usage-tx')!;

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
    const second = await fetch(`${api}${path}`, {
      headers: signHttpRequest('GET', path, '', 'demo-bank', bank.signing.secretKey),
    });
    const refusal = (await second.json()) as { error: { code: string } };
    check(
      second.status === 403,
      `a second fetch is refused (${refusal.error.code}): the grant allowed one use`,
    );

    title('Her audit trail, every entry verified offline against genesis.json alone');
    const audit = await apiCall<{ entries: AuditEntry[] }>(api, 'GET', `/v1/subjects/${subject}/audit`);
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
