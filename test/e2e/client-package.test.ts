/**
 * `datagrant/client` as a bank's system uses it: the compiled package (`npm run build:client`,
 * `dist/`), imported by name from plain Node with no TypeScript loader. It follows a request on a
 * live node over HTTP, and verifies, opens and assembles a sealed bundle exactly as the in-process
 * client does.
 */
import '../../src/common/polyfill.js';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { startSyntheticDataPlatform, syntheticSourceConfig } from '../../scripts/synthetic-data-platform.js';
import { submitAndWait } from '../../src/cli/client.js';
import { DatagrantClient } from '../../src/client/index.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { generateKeySet } from '../../src/common/keyfile.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { silentLogger } from '../../src/common/logger.js';
import { loadNodeConfig } from '../../src/node/config.js';
import { initTestnet } from '../../src/node/init.js';
import { DatagrantNode } from '../../src/node/node.js';
import { attestSubject, buildGrantTx, buildRegisterTx } from '../../src/platform/consent.js';

const run = promisify(execFile);
const ROOT = resolve('.');

t.test('the compiled datagrant/client verifies and opens a bundle in plain Node', async (t) => {
  const build = await run('npm', ['run', 'build:client'], { cwd: ROOT });
  t.match(build.stdout, /tsc -p tsconfig.client.json/, 'the package builds');

  const dir = await mkdtemp(join(tmpdir(), 'datagrant-pkg-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const source = await startSyntheticDataPlatform({ port: 0, host: '127.0.0.1' });
  t.teardown(() => source.close());
  const chain = 'datagrant-pkg';
  const net = await initTestnet({
    dir,
    validators: 1,
    chain,
    basePort: 0,
    blockIntervalMs: 200,
    minBlockIntervalMs: 5,
    sources: [syntheticSourceConfig(source.url) as unknown as Record<string, unknown>],
  });
  const config = await loadNodeConfig(net.nodes[0]!.configPath);
  const node = new DatagrantNode({ ...config, api: { ...config.api, port: 0 } }, silentLogger);
  await node.start();
  t.teardown(() => node.stop());

  const bank = await readKeyFile(net.keys.institution);
  const registrar = await readKeyFile(net.keys.registrar);
  const alice = generateKeySet('alice');
  const att = attestSubject(
    chain,
    'alice-pkg',
    { signKey: bytesToHex(alice.signing.publicKey), encKey: bytesToHex(alice.encryption.publicKey) },
    registrar,
  );
  await submitAndWait(
    node.apiUrl,
    buildRegisterTx(
      { chain, now: Date.now() },
      'alice-pkg',
      alice,
      bytesToHex(registrar.signing.publicKey),
      att,
    ),
  );
  const client = new DatagrantClient({
    api: node.apiUrl,
    institution: 'demo-bank',
    keys: bank,
    genesis: net.genesis,
  });
  const opened = await client.openRequest({
    subject: 'alice-pkg',
    types: ['tax'],
    purpose: 'loan',
    format: 'csv',
    fields: { income: 'tax.annualIncome' },
  });
  const ready = await client.waitFor(opened.id, ['waiting-for-consent']);
  await client.submit(
    buildGrantTx(
      { chain, now: Date.now() },
      ready,
      alice,
      { institution: 'demo-bank', encKey: bytesToHex(bank.encryption.publicKey) },
      { expiresInMs: 3_600_000, uses: 1, retainDays: 1 },
    ),
  );
  const doc = await client.document(opened.id);
  await writeFile(join(dir, 'bundle.json'), JSON.stringify(doc.bundle.sealed));

  const script = `
    import { readFile } from 'node:fs/promises';
    import { DatagrantClient, decodeKeyFile, documentOf, openBundle, parseGenesis, verifyBundle } from 'datagrant/client';
    const [dir, genesisPath, keyPath, api, request] = process.argv.slice(1);
    const genesis = parseGenesis(JSON.parse(await readFile(genesisPath, 'utf8')));
    const keys = decodeKeyFile(JSON.parse(await readFile(keyPath, 'utf8')));
    const bundle = verifyBundle(JSON.parse(await readFile(dir + '/bundle.json', 'utf8')), genesis, {
      institution: 'demo-bank',
      signKey: Buffer.from(keys.signing.publicKey).toString('hex'),
      encKey: Buffer.from(keys.encryption.publicKey).toString('hex'),
    });
    const doc = documentOf(bundle, openBundle(bundle, keys.encryption.secretKey));
    const view = await new DatagrantClient({ api, institution: 'demo-bank', keys, genesis }).request(request);
    let tampered = 'accepted';
    try {
      const raw = JSON.parse(await readFile(dir + '/bundle.json', 'utf8'));
      const c = raw.records[0].ciphertext;
      raw.records[0].ciphertext = c.slice(0, 10) + (c[10] === 'A' ? 'B' : 'A') + c.slice(11);
      verifyBundle(raw, genesis, {
        institution: 'demo-bank',
        signKey: Buffer.from(keys.signing.publicKey).toString('hex'),
        encKey: Buffer.from(keys.encryption.publicKey).toString('hex'),
      });
    } catch (err) {
      tampered = err.code;
    }
    console.log(JSON.stringify({ body: doc.body, status: view.status, tampered }));
  `;
  const child = await run(
    process.execPath,
    ['--input-type=module', '-e', script, dir, net.genesisPath, net.keys.institution, node.apiUrl, opened.id],
    { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } },
  );
  const out = JSON.parse(child.stdout) as { body: string; status: string; tampered: string };
  t.equal(out.body, doc.body, 'plain Node assembles the same CSV from the bundle');
  t.equal(out.status, 'used-up', 'and reads the request state from the node over HTTP');
  t.equal(out.tampered, 'CLIENT_DIGEST_MISMATCH', 'a tampered ciphertext is refused with a code');
  const dts = await readFile(join(ROOT, 'dist', 'client', 'index.d.ts'), 'utf8');
  t.match(dts, /DatagrantClient/, 'with its type declarations');
});
