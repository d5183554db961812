/**
 * Registering in the portal, in a real browser: the registrar enrolls a subject id
 * (`datagrant registrar enroll`) and runs `datagrant registrar serve` as its own process; a
 * person with nothing but her key file opens it in the portal of a node (another origin than the
 * registrar's: the service answers CORS), types the registrar's address and her one-time code,
 * and the page gets the attestation, checks it, signs `subject.register` and shows her requests.
 * A wrong code is shown with its REGISTRAR_ code, and a registrar address that relays someone
 * else's keys (an attestation that does not cover hers) is refused before anything is signed.
 */
import '../../src/common/polyfill.js';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import t from 'tap';
import { startSyntheticDataPlatform, syntheticSourceConfig } from '../../scripts/synthetic-data-platform.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { generateKeySet } from '../../src/common/keyfile.js';
import { readKeyFile, writeKeyFile } from '../../src/common/keyfile-fs.js';
import { silentLogger } from '../../src/common/logger.js';
import { loadNodeConfig } from '../../src/node/config.js';
import { type InitResult, initTestnet } from '../../src/node/init.js';
import { DatagrantNode } from '../../src/node/node.js';
import { browserSkipReason, ensureWebBuilt, launchBrowser } from './fixtures/browser-harness.js';

const run = promisify(execFile);
const BIN = resolve('bin/datagrant.js');

async function enroll(enrollments: string, subject: string): Promise<string> {
  const r = await run(
    process.execPath,
    [BIN, 'registrar', 'enroll', '--enrollments', enrollments, '--subject', subject, '--json'],
    { timeout: 60_000 },
  );
  return (JSON.parse(r.stdout) as { code: string }).code;
}

/** `datagrant registrar serve` as a process; resolves with its URL once it listens. */
async function serveRegistrar(
  net: InitResult,
  enrollments: string,
): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(
    process.execPath,
    [
      BIN,
      'registrar',
      'serve',
      '--key',
      net.keys.registrar,
      '--genesis',
      net.genesisPath,
      '--enrollments',
      enrollments,
      '--port',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise<string>((done, fail) => {
    const lines = createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      try {
        const record = JSON.parse(line) as { msg?: string; url?: string };
        if (record.msg === 'started' && record.url) done(record.url);
      } catch {
        // Not a log record.
      }
    });
    proc.once('exit', (c) => fail(new Error(`registrar serve exited ${c}`)));
  });
  return { url, proc };
}

/**
 * A registrar address that relays to the real service but swaps the keys in the request for
 * `keys`: the registrar then attests those, not the person's.
 */
async function swappingProxy(target: string, keys: { signKey: string; encKey: string }): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        let body: string | undefined;
        if (req.method === 'POST') {
          body = JSON.stringify({ ...JSON.parse(Buffer.concat(chunks).toString('utf8')), ...keys });
        }
        const headers: Record<string, string> = {};
        for (const name of [
          'content-type',
          'origin',
          'access-control-request-method',
          'access-control-request-headers',
        ]) {
          const v = req.headers[name];
          if (typeof v === 'string') headers[name] = v;
        }
        const r = await fetch(`${target}${req.url}`, {
          method: req.method!,
          headers,
          ...(body === undefined ? {} : { body }),
        });
        const out: Record<string, string> = {};
        r.headers.forEach((v, k) => {
          if (k === 'content-type' || k.startsWith('access-control-')) out[k] = v;
        });
        res.writeHead(r.status, out).end(Buffer.from(await r.arrayBuffer()));
      })().catch(() => res.writeHead(502).end());
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return server;
}

const skip = browserSkipReason();

t.test('a person registers in the portal with her registrar code', { skip }, async (t) => {
  await ensureWebBuilt();
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-browser-register-'));
  let browser: Browser | undefined;
  let proxy: Server | undefined;
  let serve: ChildProcess | undefined;
  let node: DatagrantNode | undefined;
  const source = await startSyntheticDataPlatform({ port: 0, host: '127.0.0.1' });
  t.teardown(async () => {
    await browser?.close();
    serve?.kill('SIGTERM');
    await new Promise((done) => (proxy ? proxy.close(done) : done(undefined)));
    await node?.stop();
    await source.close();
    await rm(dir, { recursive: true, force: true });
  });
  const net = await initTestnet({
    dir,
    validators: 1,
    chain: 'datagrant-browser-register',
    basePort: 0,
    blockIntervalMs: 1000,
    minBlockIntervalMs: 5,
    sources: [syntheticSourceConfig(source.url) as unknown as Record<string, unknown>],
  });
  const registrarKey = bytesToHex((await readKeyFile(net.keys.registrar)).signing.publicKey);

  // The registrar: enrolls two people, then serves attestations on its own machine and origin.
  const enrollments = join(dir, 'enrollments.json');
  const aliceCode = await enroll(enrollments, 'alice-reg');
  const carolCode = await enroll(enrollments, 'carol-reg');
  const started = await serveRegistrar(net, enrollments);
  serve = started.proc;
  const registrarUrl = started.url;

  // The people: key files only; nobody is on the chain yet.
  const alice = generateKeySet('alice');
  const carol = generateKeySet('carol');
  const mallory = generateKeySet('mallory');
  const aliceFile = join(dir, 'alice.json');
  const carolFile = join(dir, 'carol.json');
  await writeKeyFile(aliceFile, alice);
  await writeKeyFile(carolFile, carol);
  proxy = await swappingProxy(registrarUrl, {
    signKey: bytesToHex(mallory.signing.publicKey),
    encKey: bytesToHex(mallory.encryption.publicKey),
  });
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/`;

  // The node whose portal she opens: its pages may connect to these registrar services.
  const config = await loadNodeConfig(net.nodes[0]!.configPath);
  node = new DatagrantNode(
    {
      ...config,
      api: {
        ...config.api,
        port: 0,
        registrarOrigins: [new URL(registrarUrl).origin, new URL(proxyUrl).origin],
      },
    },
    silentLogger,
  );
  await node.start();
  const api = node.apiUrl;
  const csp = (await fetch(`${api}/portal/`)).headers.get('content-security-policy') ?? '';
  t.ok(
    csp.includes(`connect-src 'self' ${new URL(registrarUrl).origin}`),
    "the portal's CSP lets it reach the configured registrar",
  );

  const preflight = await fetch(`${registrarUrl}/v1/attest`, {
    method: 'OPTIONS',
    headers: {
      origin: api,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type',
    },
  });
  t.equal(preflight.status, 204, 'the service answers the CORS preflight');
  t.equal(preflight.headers.get('access-control-allow-origin'), '*', 'any origin by default');
  t.match(preflight.headers.get('access-control-allow-headers') ?? '', /content-type/);

  const subjectOnChain = async (id: string) => {
    const r = await fetch(`${api}/v1/subjects/${id}`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  browser = await launchBrowser();
  const pageErrors: string[] = [];
  /** Transactions the page submitted (POST /v1/txs). */
  const submitted: string[] = [];
  const newPage = async (): Promise<Page> => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(20_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      // Coded refusals (the registrar's 403) are shown in the page and asserted there.
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource'))
        pageErrors.push(msg.text());
    });
    page.on('request', (req) => {
      if (req.method() === 'POST' && new URL(req.url()).pathname === '/v1/txs') submitted.push(req.url());
    });
    return page;
  };
  const openUnregistered = async (page: Page, subject: string, file: string) => {
    await page.goto(`${api}/portal/`);
    await page.getByLabel('Subject id').fill(subject);
    await page.getByLabel('Key file').setInputFiles(file);
    await page.getByRole('button', { name: 'Open key' }).click();
    await page.getByRole('button', { name: 'Register' }).waitFor();
  };
  const tryRegister = async (page: Page, url: string, code: string) => {
    await page.getByLabel('Registrar service').fill(url);
    await page.getByLabel('One-time code').fill(code);
    await page.getByRole('button', { name: 'Register' }).click();
  };

  await t.test('a wrong code shows the registrar refusal and registers nothing', async (t) => {
    const page = await newPage();
    await openUnregistered(page, 'alice-reg', aliceFile);
    t.equal(
      await page.locator('#key-notice [data-code="PLATFORM_SUBJECT_NOT_FOUND"]').count(),
      1,
      'the page says she is not registered and offers the register step',
    );
    await tryRegister(page, registrarUrl, 'wrong-code-wrong-code');
    const refused = page.locator('#key-notice [data-code="REGISTRAR_CODE_INVALID"]');
    await refused.waitFor();
    t.match(await refused.textContent(), /REGISTRAR_CODE_INVALID/, 'the code is shown');
    t.same(submitted, [], 'nothing was submitted to the node');
    t.equal((await subjectOnChain('alice-reg')).status, 404, 'she is not on the chain');
    t.ok(await page.getByRole('button', { name: 'Register' }).isEnabled(), 'she can try again');
    await page.close();
  });

  await t.test("an attestation of someone else's keys is refused before signing", async (t) => {
    const page = await newPage();
    await openUnregistered(page, 'carol-reg', carolFile);
    await tryRegister(page, proxyUrl, carolCode);
    const refused = page.locator('#key-notice [data-code="PORTAL_BAD_ATTESTATION"]');
    await refused.waitFor();
    t.match(await refused.textContent(), /does not verify for your keys/, 'the reason is shown');
    t.same(submitted, [], 'nothing was signed or submitted');
    t.equal((await subjectOnChain('carol-reg')).status, 404, 'carol is not on the chain');
    t.equal(await page.locator('#pending-section').isVisible(), false, 'no requests view');
    await page.close();
  });

  await t.test('the right code registers her with her keys and shows her requests', async (t) => {
    const page = await newPage();
    await openUnregistered(page, 'alice-reg', aliceFile);
    await tryRegister(page, registrarUrl, aliceCode);
    const ok = page.locator('#key-notice .notice.ok');
    await ok.waitFor();
    t.match(await ok.textContent(), /Registered: alice-reg is on the chain with your keys/);
    await page.locator('#pending-section').waitFor({ state: 'visible' });
    t.equal(
      await page.locator('#key-summary [data-subject]').getAttribute('data-subject'),
      'alice-reg',
      'her requests view is open',
    );
    t.equal(await page.locator('#register-form').isVisible(), false, 'the register step is gone');
    t.equal(submitted.length, 1, 'one transaction was submitted');
    const entry = await subjectOnChain('alice-reg');
    t.equal(entry.status, 200, 'the chain holds her subject entry');
    t.equal(entry.body.signKey, bytesToHex(alice.signing.publicKey), 'with her signing key');
    t.equal(entry.body.encKey, bytesToHex(alice.encryption.publicKey), 'and her encryption key');
    t.equal(entry.body.registrar, registrarKey, 'attested by the registrar');

    await page.close();
  });

  await t.test('a used code is refused with its code', async (t) => {
    // The relayed attempt used carol's code: asked again, with her own keys, the registrar refuses.
    const page = await newPage();
    await openUnregistered(page, 'carol-reg', carolFile);
    await tryRegister(page, registrarUrl, carolCode);
    const refused = page.locator('#key-notice [data-code="REGISTRAR_CODE_USED"]');
    await refused.waitFor();
    t.match(await refused.textContent(), /REGISTRAR_CODE_USED/, 'the code is shown');
    t.equal(submitted.length, 1, 'nothing more was submitted');
    t.equal((await subjectOnChain('carol-reg')).status, 404, 'carol is not on the chain');
    await page.close();
  });

  t.same(pageErrors, [], 'no script errors');
});
