/**
 * No secrets and no personal data in logs. The whole business flow runs on two validators (a
 * platform node and an extractor) and the bank's own gateway, each logging at `trace`
 * (everything): the bank client signs its request in this process, the subject lists her
 * requests, consents and reads her audit trail through the CLI with a sealed key file (reads are
 * signed calls), and the records are delivered both ways — as a sealed bundle the bank client
 * opens here, and as a document the bank's gateway assembles with the key it holds — with
 * refusals provoked along the way. Then every node's log lines and every line the CLI printed are
 * searched for the subject's plaintext values (synthetic, and checked to be in both documents),
 * every secret key (hex, base64, base64url) and the passphrase. Also: key files readable by group
 * or others are refused, by the CLI and by `node start`, and a wrong passphrase is never echoed.
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
import { DatagrantClient, type RequestView } from '../../src/client/index.js';
import { bytesToHex, toBase64url } from '../../src/common/bytes.js';
import { institutionCaller, signCall } from '../../src/common/http-signature.js';
import { generateKeySet, type KeySet } from '../../src/common/keyfile.js';
import { readKeyFile, writeKeyFile } from '../../src/common/keyfile-fs.js';
import { createLogger } from '../../src/common/logger.js';
import { loadNodeConfig } from '../../src/node/config.js';
import { initTestnet } from '../../src/node/init.js';
import { findFreeBasePort } from '../../src/node/local-testnet.js';
import { DatagrantNode } from '../../src/node/node.js';
import { attestSubject, buildRegisterTx } from '../../src/platform/consent.js';
import { councilKeys } from '../helpers/council.js';
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
  // Two validators (a platform node and an extractor) and the bank's own gateway, all over real
  // libp2p on loopback: a lone dev validator runs no network, so a gateway could not follow it.
  const net = await initTestnet({
    dir,
    validators: 2,
    gateways: 1,
    chain: 'datagrant-logscan',
    basePort: await findFreeBasePort(3),
    blockIntervalMs: 300,
    minBlockIntervalMs: 20,
    sources: [syntheticSourceConfig(source.url) as unknown as Record<string, unknown>],
  });
  const chain = net.genesis.chain;
  const logs = new Map<string, string[]>();
  const nodes: DatagrantNode[] = [];
  t.teardown(async () => {
    for (const node of [...nodes].reverse()) await node.stop();
  });
  for (const n of net.nodes) {
    const lines: string[] = [];
    logs.set(n.name, lines);
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const config = await loadNodeConfig(n.configPath);
    const node = new DatagrantNode(
      { ...config, api: { ...config.api, port: 0 } },
      createLogger({ level: 'trace', destination: sink }),
    );
    await node.start();
    nodes.push(node);
  }
  const [validator, extractor, gateway] = net.nodes.map((n, i) => ({ ...n, api: nodes[i]!.apiUrl }));
  t.equal(validator!.kind, 'validator', 'node0 is a validator');
  t.same(extractor!.roles, ['extractor'], 'node1 extracts');
  t.equal(gateway!.institution, net.institutionId, "gateway0 holds the bank's key");
  const api = validator!.api;

  const carolPath = join(dir, 'carol.json');
  await writeKeyFile(carolPath, generateKeySet('carol'), { passphrase: PASSPHRASE });
  const carol = await readKeyFile(carolPath, PASSPHRASE);
  const bank = await readKeyFile(net.keys.institution);
  const registrar = await readKeyFile(net.keys.registrar);
  const council = await councilKeys(net.keys.council);
  const nodeKeys = await Promise.all(
    net.nodes.map(async (n) => [n.name, await readKeyFile(join(n.home, 'node-key.json'))] as const),
  );

  const call = async (
    base: string,
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const r = await fetch(`${base}${path}`, {
      method,
      headers: text === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(text === undefined ? {} : { body: text }),
    });
    return { status: r.status, text: await r.text(), headers: r.headers };
  };
  const selfOf = async (base: string) =>
    (JSON.parse((await call(base, 'GET', '/v1/status')).text) as { self: string }).self;
  /** A call signed by the bank (or `keys`, as `caller`), addressed to the node at `base`. */
  const signed = async (
    base: string,
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    keys: KeySet = bank,
    caller = institutionCaller(net.institutionId),
  ) =>
    call(
      base,
      method,
      path,
      body,
      signCall(
        {
          method,
          path,
          body: body === undefined ? '' : JSON.stringify(body),
          caller,
          audience: await selfOf(base),
          chain,
        },
        keys.signing.secretKey,
      ),
    );
  const waitUntil = async (what: string, ok: () => Promise<boolean>) => {
    for (let i = 0; i < 600; i++) {
      if (await ok()) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    t.fail(`timed out waiting for ${what}`);
    return false;
  };
  const height = async (base: string) =>
    (JSON.parse((await call(base, 'GET', '/v1/status')).text) as { height: number }).height;
  await waitUntil('every node to follow the chain', async () => {
    for (const n of [validator, extractor, gateway]) if ((await height(n!.api)) < 2) return false;
    return true;
  });

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
  t.equal((await call(api, 'POST', '/v1/txs', reg)).status, 202, 'registration submitted');
  await waitUntil(
    'the registration',
    async () => (await call(api, 'GET', `/v1/subjects/${SUBJECT}`)).status === 200,
  );

  // The bank signs its own request in this process; the validator only relays it.
  const client = new DatagrantClient({
    api,
    institution: net.institutionId,
    keys: bank,
    genesis: net.genesis,
  });
  const opened = await client.openRequest({
    subject: SUBJECT,
    types: ['tax', 'social-insurance', 'housing-fund', 'property'],
    purpose: 'mortgage application',
    format: 'json',
    fields: {},
  });
  const requestId = opened.id;
  const view = await client.waitFor(requestId, ['waiting-for-consent'], {
    timeoutMs: 30_000,
    intervalMs: 50,
  });
  t.equal(view.records.length, 4, 'all four records extracted');

  // Refusals on the way: no grant yet, a forged call, a validator asked to assemble, a wrong-passphrase CLI run.
  const early = await signed(gateway!.api, 'GET', `/v1/requests/${requestId}/document`);
  t.equal(early.status, 403, `no document before consent: ${early.text.slice(0, 120)}`);
  const forged = await signed(
    gateway!.api,
    'GET',
    `/v1/requests/${requestId}/document`,
    undefined,
    generateKeySet(),
  );
  t.equal(forged.status, 401, 'forged call refused');
  const notServed = await signed(api, 'GET', `/v1/requests/${requestId}/document`);
  t.match(
    notServed.text,
    /PLATFORM_INSTITUTION_NOT_SERVED/,
    'a validator holds no bank key and assembles nothing',
  );
  const wrong = await cli(
    ['grant', '--key', carolPath, '--subject', SUBJECT, '--request', requestId, '--api', api],
    { DATAGRANT_PASSPHRASE: 'not the passphrase' },
  );
  t.not(wrong.code, 0, `a wrong passphrase is refused: ${wrong.out.trim().slice(0, 120)}`);
  t.notOk(wrong.out.includes('not the passphrase'), 'the wrong passphrase is not echoed');

  // Reads are signed: not by anyone else, and by the subject through the CLI with her sealed key file.
  const unsigned = await call(api, 'GET', `/v1/subjects/${SUBJECT}/requests`);
  t.equal(unsigned.status, 401, "an unsigned read of the subject's requests is refused");
  const asBank = await signed(api, 'GET', `/v1/subjects/${SUBJECT}/requests`);
  t.equal(asBank.status, 403, 'so is the bank reading them');
  const hers = await signed(
    api,
    'GET',
    `/v1/subjects/${SUBJECT}/requests`,
    undefined,
    carol,
    `subject:${SUBJECT}`,
  );
  t.equal(hers.status, 200, 'her own signed read is served');
  const pending = await cli(['requests', '--key', carolPath, '--subject', SUBJECT, '--api', api], {
    DATAGRANT_PASSPHRASE: PASSPHRASE,
  });
  t.equal(
    pending.code,
    0,
    `the subject lists her requests with the CLI: ${pending.out.trim().slice(0, 200)}`,
  );
  t.match(pending.out, requestId, 'the request awaits her decision');

  // Consent through the CLI with the sealed key file: two uses, one per delivery path.
  const granted = await cli(
    [
      'grant',
      '--key',
      carolPath,
      '--subject',
      SUBJECT,
      '--request',
      requestId,
      '--uses',
      '2',
      '--api',
      api,
      '--genesis',
      net.genesisPath,
      '--json',
    ],
    { DATAGRANT_PASSPHRASE: PASSPHRASE },
  );
  t.equal(granted.code, 0, `granted with the CLI: ${granted.out.trim().slice(0, 200)}`);

  // Path 1: the bank's usage, the validator's sealed bundle, decrypted and assembled in this process.
  const doc = await client.document(requestId);
  t.equal(doc.records.length, 4, 'the bank client opened all four records');
  // Path 2: the bank's own gateway, holding its key, records the use and assembles the document.
  const statusAt = async (base: string) =>
    (JSON.parse((await signed(base, 'GET', `/v1/requests/${requestId}`)).text) as RequestView).status;
  await waitUntil(
    'the gateway to see the first use',
    async () => (await statusAt(gateway!.api)) === 'delivered',
  );
  const fromGateway = await signed(gateway!.api, 'GET', `/v1/requests/${requestId}/document`);
  t.equal(
    fromGateway.status,
    200,
    `document assembled by the bank's gateway: ${fromGateway.text.slice(0, 120)}`,
  );
  t.not(fromGateway.headers.get('x-datagrant-usage-tx'), doc.usageTx, 'a second use of its own');

  const values = syntheticSensitiveValues(SUBJECT);
  t.ok(values.length >= 5, `${values.length} personal values to look for`);
  for (const [path, body] of [
    ['the bank client', doc.body],
    ['the gateway', fromGateway.text],
  ] as const)
    t.same(
      values.filter((v) => !containsToken(body, v)),
      [],
      `the document from ${path} carries every personal value (so the scan looks for the right ones)`,
    );
  const planted = `{"level":30,"msg":"x","v":${JSON.stringify(values[0])}}`;
  t.ok(containsToken(planted, values[0]!), 'the scan finds a value planted in a log line');
  const audit = await cli(
    [
      'audit',
      '--key',
      carolPath,
      '--subject',
      SUBJECT,
      '--api',
      api,
      '--verify',
      '--genesis',
      net.genesisPath,
    ],
    { DATAGRANT_PASSPHRASE: PASSPHRASE },
  );
  t.equal(audit.code, 0, `audit trail read with the CLI: ${audit.out.trim().split('\n').at(-1)}`);
  t.match(audit.out, /entries verified against genesis/, 'and every entry verified offline');
  const anonymousAudit = await call(api, 'GET', `/v1/subjects/${SUBJECT}/audit`);
  t.equal(anonymousAudit.status, 401, 'an unsigned read of the audit trail is refused');
  for (const node of [...nodes].reverse()) await node.stop();

  const secrets: [string, string][] = [];
  for (const [who, keys] of [
    ['carol', carol],
    ['bank', bank],
    ['registrar', registrar],
    ...council.map((k, i) => [`council member ${i + 1}`, k] as const),
    ...nodeKeys.map(([name, k]) => [`${name}'s node`, k] as const),
  ] as const)
    for (const secret of [keys.signing.secretKey, keys.encryption.secretKey])
      for (const e of encodings(secret)) secrets.push([`${who} secret key`, e]);
  const outputs = [wrong.out, pending.out, granted.out, audit.out].join('\n');
  const found: string[] = [];
  for (const [name, lines] of logs) {
    const text = lines.join('');
    t.ok(lines.length >= 5, `${name}: ${lines.length} log lines captured at trace level`);
    t.ok(text.includes(requestId), `${name}: the scan reads real log lines (they name the request)`);
    for (const value of values)
      if (containsToken(text, value)) found.push(`${name}: personal value ${value}`);
    for (const [what, value] of secrets) if (text.includes(value)) found.push(`${name}: ${what}`);
    if (text.includes(PASSPHRASE)) found.push(`${name}: the passphrase`);
  }
  for (const value of values) if (containsToken(outputs, value)) found.push(`CLI: personal value ${value}`);
  for (const [what, value] of secrets) if (outputs.includes(value)) found.push(`CLI: ${what}`);
  if (outputs.includes(PASSPHRASE)) found.push('CLI: the passphrase');
  t.ok(
    [...logs.values()].flat().some((l) => l.includes('"level":20')),
    'debug lines are captured too (the nodes log below info)',
  );
  t.same(found, [], 'no personal value, secret key or passphrase in any node log line or CLI output');
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
