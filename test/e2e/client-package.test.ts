/**
 * `datagrant/client` as a bank's system uses it: the compiled package (`npm run build:client`,
 * `dist/`), imported by name from plain Node with no TypeScript loader. It follows a request on a
 * live node over HTTP, and verifies, opens and assembles a sealed bundle exactly as the in-process
 * client does.
 */
import '../../src/common/polyfill.js';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { bytesToHex } from '../../src/common/bytes.js';
import { buildGrantTx } from '../../src/platform/consent.js';
import { registerSubject, startDevNode } from '../helpers/dev-node.js';

const run = promisify(execFile);
const ROOT = resolve('.');

t.test('the compiled datagrant/client verifies and opens a bundle in plain Node', async (t) => {
  const build = await run('npm', ['run', 'build:client'], { cwd: ROOT });
  t.match(build.stdout, /tsc -p tsconfig.client.json/, 'the package builds');

  const chain = 'datagrant-pkg';
  const dev = await startDevNode(t, { chain });
  const { dir, net, bank, node } = dev;
  const alice = await registerSubject(dev.api, net.genesis, dev.registrar, 'alice-pkg');
  const client = dev.client();
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
    import { DatagrantClient, decodeKeyFile, documentOf, LightClient, openBundle, parseGenesis, verifyBundle } from 'datagrant/client';
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
    const proven = await new LightClient(genesis).provenEntry(
      (path) => fetch(api + path).then((r) => r.json()),
      '/v1/state/institutions/demo-bank',
      'inst/demo-bank',
      { code: 'CLIENT_NODE_LIED', node: api },
    );
    console.log(JSON.stringify({ body: doc.body, status: view.status, tampered, institution: proven.value.name }));
  `;
  const child = await run(
    process.execPath,
    ['--input-type=module', '-e', script, dir, net.genesisPath, net.keys.institution, node.apiUrl, opened.id],
    { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } },
  );
  const out = JSON.parse(child.stdout) as {
    body: string;
    status: string;
    tampered: string;
    institution: string;
  };
  t.equal(out.body, doc.body, 'plain Node assembles the same CSV from the bundle');
  t.equal(out.status, 'used-up', 'and reads the request state from the node over HTTP');
  t.equal(out.tampered, 'CLIENT_DIGEST_MISMATCH', 'a tampered ciphertext is refused with a code');
  t.equal(
    out.institution,
    net.genesis.institutions.find((i) => i.institution === 'demo-bank')?.name,
    "the package's light client proves the institution against genesis",
  );
  const dts = await readFile(join(ROOT, 'dist', 'client', 'index.d.ts'), 'utf8');
  t.match(dts, /DatagrantClient/, 'with its type declarations');
});
