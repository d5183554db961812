/**
 * The `datagrant` command as a user runs it: keygen writes a 0600 key file, `node start --dev`
 * commits blocks, `status` shows the height growing, a submitted tx is committed and its proof
 * verifies offline, forged and replayed txs are refused with codes, and the business flow runs
 * from the command line down to `audit --verify`; a subject's pending requests and audit trail
 * are read with her own key file (no key: a usage error; another subject's trail: refused).
 */
import '../../src/common/polyfill.js';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { startSyntheticDataPlatform, syntheticSourceConfig } from '../../scripts/synthetic-data-platform.js';
import { signedApiCall, submitAndWait } from '../../src/cli/client.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { generateKeySet } from '../../src/common/keyfile.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { signTx } from '../../src/ledger/index.js';
import { findFreeBasePort } from '../../src/node/local-testnet.js';
import { attestSubject, buildRegisterTx } from '../../src/platform/consent.js';
import { until } from '../helpers/until.js';

const run = promisify(execFile);
const BIN = resolve('bin/datagrant.js');

async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

t.test('datagrant CLI on a dev chain', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-cli-'));
  const source = await startSyntheticDataPlatform({ port: 0, host: '127.0.0.1' });
  let node: ChildProcess | undefined;
  t.teardown(async () => {
    node?.kill('SIGTERM');
    await source.close();
    await rm(dir, { recursive: true, force: true });
  });

  // The dev node boots while keygen runs.
  const port = await findFreeBasePort(1);
  const home = join(dir, 'dev');
  node = spawn(
    process.execPath,
    [BIN, 'node', 'start', '--dev', '--home', home, '--api-port', String(port)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DATAGRANT_LOG_LEVEL: 'warn' },
    },
  );

  const keygen = await cli(['keygen', '--out', join(dir, 'k.json')]);
  t.equal(keygen.code, 0, 'keygen exits 0');
  t.equal((await stat(join(dir, 'k.json'))).mode & 0o777, 0o600, 'key file is written 0600');
  const again = await cli(['keygen', '--out', join(dir, 'k.json')]);
  t.match(again.stderr, /KEYFILE_EXISTS/, 'keygen refuses to overwrite');

  const api = `http://127.0.0.1:${port}`;
  const opts = ['--api', api];
  await apiUp(api);
  const first = await cli(['status', ...opts, '--json']);
  t.equal(first.code, 0, `status answers: ${first.stderr}`);
  const h1 = (JSON.parse(first.stdout) as { height: number }).height;
  await until('a block past the first status', async () => ((await height(api)) > h1 ? true : undefined));
  const h2 = (JSON.parse((await cli(['status', ...opts, '--json'])).stdout) as { height: number }).height;
  t.ok(h2 > h1, `height grows (${h1} → ${h2})`);

  // Configure the dev node's extractor with the synthetic source for the flow below, via a restart.
  const configPath = join(home, 'node0', 'config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8')) as { extractor: { sources: unknown[] } };
  config.extractor.sources = [syntheticSourceConfig(source.url)];
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const stopped = new Promise((r) => node!.once('exit', r));
  node.kill('SIGTERM');
  await stopped;
  node = spawn(
    process.execPath,
    [BIN, 'node', 'start', '--dev', '--home', home, '--api-port', String(port)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DATAGRANT_LOG_LEVEL: 'warn' },
    },
  );
  await apiUp(api);
  const h3 = (JSON.parse((await cli(['status', ...opts, '--json'])).stdout) as { height: number }).height;
  t.ok(h3 >= h2, `restarted node keeps its chain (height ${h3})`);

  // A tx through the API, into a block, with a proof that verifies offline.
  // A council member's proposal (any signed transaction would do).
  const admin = await readKeyFile(join(home, 'keys', 'council-1.json'));
  const bank = generateKeySet();
  const tx = signTx(
    {
      chain: 'datagrant-dev',
      kind: 'gov.propose',
      body: {
        change: {
          type: 'institution.add',
          institution: 'cli-bank',
          name: 'CLI Bank',
          signKey: bytesToHex(bank.signing.publicKey),
          encKey: bytesToHex(bank.encryption.publicKey),
        },
        deadline: Date.now() + 3600_000,
      },
    },
    admin.signing.publicKey,
    admin.signing.secretKey,
  );
  await writeFile(join(dir, 'tx.json'), JSON.stringify(tx));
  const submitted = await cli(['tx', 'submit', join(dir, 'tx.json'), '--wait', ...opts]);
  t.equal(submitted.code, 0, `tx submit --wait: ${submitted.stderr}`);
  const hash = /committed ([0-9a-f]{64})/.exec(submitted.stdout)?.[1];
  t.ok(hash, 'tx committed');
  const proofRes = await fetch(`${api}/v1/txs/${hash}/proof`);
  const proof = (await proofRes.json()) as { path: string[]; index: number };
  proof.index += 1;
  await writeFile(join(dir, 'bad-proof.json'), JSON.stringify(proof));
  await writeFile(
    join(dir, 'forged.json'),
    JSON.stringify({ ...tx, body: { ...tx.body, deadline: tx.body.deadline + 1 } }),
  );
  // Independent calls, run at once (each pays a process start).
  const [verified, tampered, replayed, forged] = await Promise.all([
    cli(['verify', '--tx', hash!, '--genesis', join(home, 'genesis.json'), ...opts]),
    cli(['verify', '--proof', join(dir, 'bad-proof.json'), '--genesis', join(home, 'genesis.json')]),
    cli(['tx', 'submit', join(dir, 'tx.json'), ...opts]),
    cli(['tx', 'submit', join(dir, 'forged.json'), ...opts]),
  ]);
  t.equal(verified.code, 0, `verify: ${verified.stderr}`);
  t.match(verified.stdout, /verified/);
  t.not(tampered.code, 0, 'a tampered proof fails verification');
  t.match(tampered.stderr, /PROOF_/);
  t.match(replayed.stderr, /LEDGER_TX_REPLAYED/, 'replayed tx refused with a code');
  t.match(forged.stderr, /LEDGER_BAD_SIGNATURE/, 'forged tx refused with a code');
  t.equal((await cli(['status', ...opts])).code, 0, 'node still running');

  // The business flow from the command line.
  const keys = join(home, 'keys');
  const passFile = join(dir, 'pass.txt');
  await writeFile(passFile, 'alice passphrase\n', { mode: 0o600 });
  t.equal((await cli(['keygen', '--out', join(dir, 'alice.json'), '--passphrase-file', passFile])).code, 0);
  const [reg, wrongPass] = await Promise.all([
    cli([
      'register',
      '--key',
      join(dir, 'alice.json'),
      '--passphrase-file',
      passFile,
      '--subject',
      'alice-cli',
      '--registrar-key',
      join(keys, 'registrar.json'),
      ...opts,
    ]),
    cli(
      [
        'register',
        '--key',
        join(dir, 'alice.json'),
        '--subject',
        'alice-cli2',
        '--registrar-key',
        join(keys, 'registrar.json'),
        ...opts,
      ],
      {
        DATAGRANT_PASSPHRASE: 'wrong',
      },
    ),
  ]);
  t.equal(reg.code, 0, `register: ${reg.stderr}`);
  t.match(wrongPass.stderr, /KEYFILE_BAD_PASSPHRASE/, 'wrong passphrase refused');
  const req = await cli([
    'request',
    '--key',
    join(home, 'institutions', 'demo-bank', 'key.json'),
    '--institution',
    'demo-bank',
    '--genesis',
    join(home, 'genesis.json'),
    '--subject',
    'alice-cli',
    '--types',
    'tax,housing-fund',
    '--purpose',
    'loan',
    '--format',
    'csv',
    '--field',
    'income=tax.annualIncome',
    '--field',
    'fund=housing-fund.balance',
    '--json',
    ...opts,
  ]);
  t.equal(req.code, 0, `request: ${req.stderr}`);
  const requestId = (JSON.parse(req.stdout) as { id: string }).id;
  const alice = ['--key', join(dir, 'alice.json'), '--passphrase-file', passFile, '--subject', 'alice-cli'];
  // Polled over HTTP (a CLI call per poll costs a process start), then read once with the CLI.
  const aliceKeys = await readKeyFile(join(dir, 'alice.json'), 'alice passphrase');
  await until('the request to wait for consent', async () => {
    const views = await signedApiCall<{ requests: { status: string }[] }>(
      api,
      'GET',
      '/v1/subjects/alice-cli/requests',
      'subject:alice-cli',
      aliceKeys.signing.secretKey,
    );
    return views.requests.some((v) => v.status === 'waiting-for-consent') || undefined;
  });
  const [{ stdout: pending }, keyless, keylessAudit, helpText] = await Promise.all([
    cli(['requests', ...alice, ...opts]),
    cli(['requests', '--subject', 'alice-cli', ...opts]),
    cli(['audit', '--subject', 'alice-cli', ...opts]),
    cli(['grant', '--help']),
  ]);
  t.match(pending, requestId, 'the subject sees the pending request, read with her key');
  t.not(keyless.code, 0, '`requests` without --key fails');
  t.match(
    keyless.stderr,
    /required option '--key <file>' not specified/,
    'commander refuses it: a usage error',
  );
  // A lying node in front of this one is refused by `grant` and `requests --genesis`: test/e2e/lying-node.test.ts.
  const grant = await cli([
    'grant',
    '--key',
    join(dir, 'alice.json'),
    '--passphrase-file',
    passFile,
    '--subject',
    'alice-cli',
    '--request',
    requestId,
    '--types',
    'tax',
    '--expires',
    '1d',
    '--uses',
    '1',
    '--genesis',
    join(home, 'genesis.json'),
    ...opts,
  ]);
  t.equal(grant.code, 0, `grant: ${grant.stderr}`);
  const doc = await cli([
    'document',
    '--key',
    join(home, 'institutions', 'demo-bank', 'key.json'),
    '--institution',
    'demo-bank',
    '--genesis',
    join(home, 'genesis.json'),
    '--request',
    requestId,
    '--bundle-out',
    join(dir, 'bundle.json'),
    ...opts,
  ]);
  t.equal(doc.code, 0, `document: ${doc.stderr}`);
  t.match(doc.stdout, /^income\r?\n\d+/, 'CSV with the granted column only, assembled by the CLI');
  t.match(doc.stderr, /verified against genesis/, 'the bundle was verified against genesis');
  const sealed = await readFile(join(dir, 'bundle.json'), 'utf8');
  const income = doc.stdout.split(/\r?\n/)[1]!;
  t.notOk(sealed.includes(income), 'the sealed bundle kept as evidence holds no plaintext value');
  const audit = await cli(['audit', ...alice, '--verify', '--genesis', join(home, 'genesis.json'), ...opts]);
  t.equal(audit.code, 0, `audit --verify: ${audit.stderr}`);
  t.match(
    audit.stdout,
    /6\/6 entries verified against genesis/,
    'register, request, two records, grant, usage',
  );
  t.not(keylessAudit.code, 0, '`audit` without --key fails');
  t.match(
    keylessAudit.stderr,
    /required option '--key <file>' not specified/,
    'commander refuses it: a usage error',
  );

  // Another registered subject: her trail is not alice's to read.
  const bob = generateKeySet();
  const registrar = await readKeyFile(join(keys, 'registrar.json'));
  const bobPub = { signKey: bytesToHex(bob.signing.publicKey), encKey: bytesToHex(bob.encryption.publicKey) };
  await submitAndWait(
    api,
    buildRegisterTx(
      { chain: 'datagrant-dev', now: Date.now() },
      'bob-cli',
      bob,
      bytesToHex(registrar.signing.publicKey),
      attestSubject('datagrant-dev', 'bob-cli', bobPub, registrar),
    ),
  );
  // The CLI signs as the --subject it reads, so with alice's key the node cannot verify the call.
  // Revoking her own request does not touch bob's trail: both calls at once.
  const [otherTrail, revoke] = await Promise.all([
    cli(['audit', ...alice.slice(0, 4), '--subject', 'bob-cli', ...opts]),
    cli([
      'revoke',
      '--key',
      join(dir, 'alice.json'),
      '--passphrase-file',
      passFile,
      '--request',
      requestId,
      '--subject',
      'alice-cli',
      ...opts,
    ]),
  ]);
  t.not(otherTrail.code, 0, "reading bob's audit trail with alice's key fails");
  t.match(otherTrail.stderr, /API_BAD_SIGNATURE/, 'the call signed with her key is not valid as bob');
  await t.rejects(
    signedApiCall(
      api,
      'GET',
      '/v1/subjects/bob-cli/audit',
      'subject:alice-cli',
      (await readKeyFile(join(dir, 'alice.json'), 'alice passphrase')).signing.secretKey,
    ),
    { code: 'PLATFORM_NOT_YOURS' },
    "alice, proving who she is, is refused bob's trail: PLATFORM_NOT_YOURS",
  );
  t.equal(revoke.code, 0, `revoke: ${revoke.stderr}`);
  t.match(helpText.stdout, /--uses/, 'every command has --help');
});

t.test('datagrant init: institutions keep their keys outside every validator home', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-init-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [init, sealed] = await Promise.all([
    cli(['init', '--validators', '4', '--gateways', '1', '--dir', join(dir, 'plain')]),
    cli(['init', '--validators', '4', '--gateways', '1', '--dir', join(dir, 'sealed')], {
      DATAGRANT_PASSPHRASE: 'bank passphrase',
    }),
  ]);
  t.equal(init.code, 0, `init: ${init.stderr}`);
  t.match(init.stdout, /gateway0 .*holds demo-bank's key/, "the first gateway is the bank's own");
  const root = join(dir, 'plain');
  const bank = await readKeyFile(join(root, 'institutions', 'demo-bank', 'key.json'));
  const secrets = [bank.signing.secretKey, bank.encryption.secretKey].flatMap((k) => [
    bytesToHex(k),
    Buffer.from(k).toString('base64'),
    Buffer.from(k).toString('base64url'),
  ]);
  const holders = await filesHolding(root, secrets);
  t.same(
    holders
      .map((f) =>
        f
          .slice(root.length + 1)
          .split('/')
          .slice(0, 2)
          .join('/'),
      )
      .sort(),
    ['gateway0/institutions', 'institutions/demo-bank'],
    "the bank's secret keys are only in institutions/ and the bank's gateway",
  );
  for (const v of ['node0', 'node1', 'node2', 'node3']) {
    const config = JSON.parse(await readFile(join(root, v, 'config.json'), 'utf8')) as {
      platform?: { institutions: unknown[] };
    };
    t.same(config.platform?.institutions ?? [], [], `${v}'s config names no institution key`);
  }
  const genesis = JSON.parse(await readFile(join(root, 'genesis.json'), 'utf8')) as {
    gateways: { name: string; roles: string[] }[];
  };
  t.same(
    genesis.gateways.map((g) => [g.name, g.roles]),
    [['gateway0', ['platform']]],
    'the gateway is in genesis',
  );

  // With a passphrase the institution's files are sealed: its secret bytes appear nowhere.
  t.equal(sealed.code, 0, `sealed init: ${sealed.stderr}`);
  const sealedRoot = join(dir, 'sealed');
  const keyPath = join(sealedRoot, 'institutions', 'demo-bank', 'key.json');
  t.ok(JSON.parse(await readFile(keyPath, 'utf8')).sealed, 'the key file is sealed');
  const sealedBank = await readKeyFile(keyPath, 'bank passphrase');
  const sealedSecrets = [sealedBank.encryption.secretKey].flatMap((k) => [
    bytesToHex(k),
    Buffer.from(k).toString('base64url'),
  ]);
  t.same(await filesHolding(sealedRoot, sealedSecrets), [], 'no file holds the sealed key in the clear');
});

/** Waits until a node's API answers (polled over HTTP: a CLI call per poll costs a process start). */
async function apiUp(api: string): Promise<void> {
  await until(
    `${api} to answer`,
    async () => {
      const r = await fetch(`${api}/v1/status`, { signal: AbortSignal.timeout(2000) });
      return r.ok || undefined;
    },
    30_000,
    100,
  );
}

/** The height a node's API reports. */
async function height(api: string): Promise<number> {
  const r = await fetch(`${api}/v1/status`, { signal: AbortSignal.timeout(2000) });
  return ((await r.json()) as { height: number }).height;
}

/** Files under `dir` whose bytes contain any of `needles`. */
async function filesHolding(dir: string, needles: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const text = (await readFile(path)).toString('latin1');
    if (needles.some((n) => text.includes(n))) out.push(path);
  }
  return out;
}
