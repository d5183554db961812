/**
 * No secrets and no personal data in logs. The whole business flow runs on a dev chain with the
 * node logging at `trace` (everything), the subject's consent signed through the CLI with a
 * sealed key file, and refusals provoked along the way; then every log line and every line the
 * CLI printed is searched for the subject's plaintext values (synthetic), every secret key (hex,
 * base64, base64url) and the passphrase. Also: key files readable by group or others are refused,
 * by the CLI and by `node start`, and a wrong passphrase is never echoed.
 */
import '../../src/common/polyfill.js';
import { execFile } from 'node:child_process';
import { chmod } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import t from 'tap';
import { containsToken } from '../../scripts/faults.js';
import {
  startSyntheticDataPlatform,
  syntheticSensitiveValues,
  syntheticSourceConfig,
} from '../../scripts/synthetic-data-platform.js';
import { bytesToHex, toBase64url } from '../../src/common/bytes.js';
import { generateKeySet, type KeySet } from '../../src/common/keyfile.js';
import { readKeyFile, writeKeyFile } from '../../src/common/keyfile-fs.js';
import { createLogger } from '../../src/common/logger.js';
import { loadNodeConfig } from '../../src/node/config.js';
import { initTestnet } from '../../src/node/init.js';
import { DatagrantNode } from '../../src/node/node.js';
import { attestSubject, buildRegisterTx } from '../../src/platform/consent.js';
import { signHttpRequest } from '../../src/platform/http-auth.js';
import type { RequestView } from '../../src/platform/platform.js';
import { makeTempDir } from '../helpers/tmp.js';

const run = promisify(execFile);
const BIN = resolve('bin/datagrant.js');
const SUBJECT = 'carol-0042';
const PASSPHRASE = 'tr0ub4dor & 3 purple staples';

async function cli(args: string[], env: Record<string, string> = {}) {
  try {
    const r = await run(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      timeout: 120_000,
    });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

/** Every way a secret key could be written out. */
function encodings(secret: Uint8Array): string[] {
  return [
    bytesToHex(secret),
    bytesToHex(secret).toUpperCase(),
    toBase64url(secret),
    Buffer.from(secret).toString('base64'),
  ];
}

t.test('no secret or personal value in any log line, through the whole flow', async (t) => {
  const dir = await makeTempDir(t, 'datagrant-logscan-');
  const source = await startSyntheticDataPlatform({ port: 0, host: '127.0.0.1' });
  t.teardown(() => source.close());
  const net = await initTestnet({
    dir,
    validators: 1,
    chain: 'datagrant-logscan',
    basePort: 0,
    blockIntervalMs: 200,
    minBlockIntervalMs: 5,
    sources: [syntheticSourceConfig(source.url) as unknown as Record<string, unknown>],
  });
  const chain = net.genesis.chain;
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const config = await loadNodeConfig(net.nodes[0]!.configPath);
  const node = new DatagrantNode(
    { ...config, api: { ...config.api, port: 0 } },
    createLogger({ level: 'trace', destination: sink }),
  );
  await node.start();
  t.teardown(() => node.stop());
  const api = node.apiUrl;

  const carolPath = join(dir, 'carol.json');
  await writeKeyFile(carolPath, generateKeySet('carol'), { passphrase: PASSPHRASE });
  const carol = await readKeyFile(carolPath, PASSPHRASE);
  const bank = await readKeyFile(net.keys.institution);
  const registrar = await readKeyFile(net.keys.registrar);
  const admin = await readKeyFile(net.keys.admin);
  const nodeKey = await readKeyFile(config.key);

  const call = async (
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const r = await fetch(`${api}${path}`, {
      method,
      headers: text === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(text === undefined ? {} : { body: text }),
    });
    return { status: r.status, text: await r.text(), headers: r.headers };
  };
  const signed = (method: 'GET' | 'POST', path: string, body?: unknown, keys: KeySet = bank) =>
    call(
      method,
      path,
      body,
      signHttpRequest(
        method,
        path,
        body === undefined ? '' : JSON.stringify(body),
        'demo-bank',
        keys.signing.secretKey,
      ),
    );

  const attestation = attestSubject(
    chain,
    SUBJECT,
    { signKey: bytesToHex(carol.signing.publicKey), encKey: bytesToHex(carol.encryption.publicKey) },
    registrar,
  );
  const reg = buildRegisterTx(
    { chain, now: Date.now() },
    SUBJECT,
    carol,
    bytesToHex(registrar.signing.publicKey),
    attestation,
  );
  t.equal((await call('POST', '/v1/txs', reg)).status, 202, 'registration submitted');
  const opened = await signed('POST', '/v1/requests', {
    subject: SUBJECT,
    types: ['tax', 'social-insurance', 'housing-fund', 'property'],
    purpose: 'mortgage application',
    format: 'json',
    fields: {},
  });
  t.equal(opened.status, 201, `request opened: ${opened.text.slice(0, 200)}`);
  const requestId = (JSON.parse(opened.text) as { id: string }).id;
  let view: RequestView | undefined;
  for (let i = 0; i < 400 && view?.status !== 'waiting-for-consent'; i++) {
    view = JSON.parse((await call('GET', `/v1/requests/${requestId}`)).text) as RequestView;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(view?.status, 'waiting-for-consent', 'all four records extracted');

  // Refusals on the way: no grant yet, a forged call, a wrong-passphrase CLI run.
  t.equal(
    (await signed('GET', `/v1/requests/${requestId}/document`)).status,
    403,
    'no document before consent',
  );
  t.equal(
    (await signed('GET', `/v1/requests/${requestId}/document`, undefined, generateKeySet())).status,
    401,
    'forged call refused',
  );
  const wrong = await cli(['grant', '--key', carolPath, '--request', requestId, '--api', api], {
    DATAGRANT_PASSPHRASE: 'not the passphrase',
  });
  t.not(wrong.code, 0, `a wrong passphrase is refused: ${wrong.out.trim().slice(0, 120)}`);
  t.notOk(wrong.out.includes('not the passphrase'), 'the wrong passphrase is not echoed');

  // Consent through the CLI with the sealed key file, then the document.
  const granted = await cli(
    ['grant', '--key', carolPath, '--request', requestId, '--uses', '2', '--api', api, '--json'],
    { DATAGRANT_PASSPHRASE: PASSPHRASE },
  );
  t.equal(granted.code, 0, `granted with the CLI: ${granted.out.trim().slice(0, 200)}`);
  const doc = await signed('GET', `/v1/requests/${requestId}/document`);
  t.equal(doc.status, 200, 'document delivered');
  const values = syntheticSensitiveValues(SUBJECT);
  t.ok(values.length >= 5, `${values.length} personal values to look for`);
  t.ok(
    values.some((v) => doc.text.includes(v)),
    'the document does carry personal values (so the scan looks for the right ones)',
  );
  const audit = await call('GET', `/v1/subjects/${SUBJECT}/audit`);
  t.equal(audit.status, 200, 'audit trail read');
  await node.stop();

  const secrets: [string, string][] = [];
  for (const [who, keys] of [
    ['carol', carol],
    ['bank', bank],
    ['registrar', registrar],
    ['admin', admin],
    ['node', nodeKey],
  ] as const)
    for (const secret of [keys.signing.secretKey, keys.encryption.secretKey])
      for (const e of encodings(secret)) secrets.push([`${who} secret key`, e]);
  const logs = lines.join('');
  const outputs = `${wrong.out}\n${granted.out}`;
  t.ok(lines.length > 10, `${lines.length} log lines captured at trace level`);
  t.ok(logs.includes(requestId), 'the scan reads real log lines (they name the request)');
  const found: string[] = [];
  for (const value of values)
    if (containsToken(logs, value) || containsToken(outputs, value)) found.push(`personal value ${value}`);
  for (const [what, value] of secrets) if (logs.includes(value) || outputs.includes(value)) found.push(what);
  if (logs.includes(PASSPHRASE) || outputs.includes(PASSPHRASE)) found.push('the passphrase');
  t.same(found, [], 'no personal value, secret key or passphrase in any log line or CLI output');
});

t.test('key files readable by group or others are refused, by the CLI and by node start', async (t) => {
  const dir = await makeTempDir(t, 'datagrant-keyperm-');
  const keyPath = join(dir, 'k.json');
  await writeKeyFile(keyPath, generateKeySet('k'));
  const net = await initTestnet({
    dir: join(dir, 'net'),
    validators: 1,
    chain: 'datagrant-keyperm',
    basePort: 0,
  });
  const nodeKey = join(net.nodes[0]!.home, 'node-key.json');
  await chmod(nodeKey, 0o644);
  const copies: [string, number][] = [
    [join(dir, 'group.json'), 0o640],
    [join(dir, 'world.json'), 0o604],
  ];
  for (const [path, mode] of copies) {
    await writeKeyFile(path, generateKeySet('copy'));
    await chmod(path, mode);
  }
  const [ok, group, world, start] = await Promise.all([
    cli(['key', keyPath]),
    cli(['key', copies[0]![0]]),
    cli(['key', copies[1]![0]]),
    cli(['node', 'start', '--config', net.nodes[0]!.configPath]),
  ]);
  t.equal(ok.code, 0, `a 0600 key file is read: ${ok.out.trim().slice(0, 80)}`);
  for (const [label, r] of [
    ['0640 (group-readable)', group],
    ['0604 (world-readable)', world],
    ['node start with a 0644 node key', start],
  ] as const) {
    t.not(r.code, 0, `${label}: refused`);
    t.match(r.out, /KEYFILE_INSECURE/, `${label}: KEYFILE_INSECURE`);
  }
});
