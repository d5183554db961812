/**
 * Erasure reaches a node that was down (real processes): the business flow runs to a committed
 * record on a 4-validator testnet, the extractor that stored its ciphertext is stopped, and the
 * subject erases the request while it is down. Restarted, the node catches up, deletes the payload
 * and compacts its store, so neither its payload store nor the bytes of its LevelDB files hold the
 * ciphertext, and a `payload` request for the digest is refused with PAYLOAD_ERASED. Then
 * restored (`datagrant restore`) from a backup taken by `datagrant backup` while it ran, before the
 * erasure, it catches up and deletes the payload again. Every node's store is checked at the end,
 * whichever nodes held a copy (the extractor, the platform node that served the bundle, any
 * replica); the same checks find the payload before the erasure.
 */
import '../../src/common/polyfill.js';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { startSyntheticDataPlatform, syntheticSourceConfig } from '../../scripts/synthetic-data-platform.js';
import { submitAndWait } from '../../src/cli/client.js';
import { DatagrantClient, type RequestView } from '../../src/client/index.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { sha256Hex } from '../../src/common/crypto.js';
import { isDatagrantError } from '../../src/common/errors.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { networkMembers } from '../../src/ledger/index.js';
import { loadNodeConfig } from '../../src/node/config.js';
import { LocalTestnet } from '../../src/node/local-testnet.js';
import { Libp2pNetwork, peerIdFromValidatorKey } from '../../src/p2p/index.js';
import { buildGrantTx, buildSubjectTx } from '../../src/platform/consent.js';
import { registerSubject } from '../helpers/dev-node.js';
import { until } from '../helpers/until.js';

const run = promisify(execFile);
const BIN = resolve('bin/datagrant.js');
const SUBJECT = 'erin-0007';
/** Length of the slices of the ciphertext looked for in the raw files. */
const WINDOW = 32;

/** What a closed payload store directory holds of one payload: its entries and its raw bytes. */
interface Holding {
  /** The value stored under the digest, if any. */
  value: Uint8Array | undefined;
  /** Whether its first-stored time (`~added/<digest>`) is there. */
  added: boolean;
  /** How many of the ciphertext's WINDOW-byte slices occur anywhere in the directory's files. */
  slicesInFiles: number;
  slices: number;
}

/** Opens the (closed) LevelDB payload store at `path` and reads every file in it byte by byte. */
async function inspectStore(path: string, digest: string, ciphertext: Uint8Array): Promise<Holding> {
  const { Level } = await import('level');
  const db = new Level<string, Uint8Array>(path, { valueEncoding: 'view' });
  await db.open();
  let value: Uint8Array | undefined;
  let added = false;
  try {
    value = await db.get(digest);
    added = (await db.get(`~added/${digest}`)) !== undefined;
  } finally {
    await db.close();
  }
  const files: Buffer[] = [];
  for (const name of await readdir(path)) files.push(await readFile(join(path, name)));
  let slices = 0;
  let slicesInFiles = 0;
  for (let at = 0; at + WINDOW <= ciphertext.length; at += WINDOW) {
    slices++;
    const slice = ciphertext.subarray(at, at + WINDOW);
    if (files.some((f) => f.indexOf(slice) >= 0)) slicesInFiles++;
  }
  return { value, added, slicesInFiles, slices };
}

t.test('a node down during erasure holds no erased payload after restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-erasure-'));
  const source = await startSyntheticDataPlatform({ port: 0, host: '127.0.0.1' });
  // Four validators (node0, node1 platform; node2, node3 extractors) and a gateway whose key this
  // process uses to ask the validators for payloads over libp2p, as a member of the network would.
  const testnet = new LocalTestnet({
    dir,
    validators: 4,
    gateways: 1,
    chain: 'datagrant-erasure',
    blockIntervalMs: 300,
    minBlockIntervalMs: 20,
    viewTimeoutMs: 1000,
    sources: [syntheticSourceConfig(source.url) as unknown as Record<string, unknown>],
  });
  const net = await testnet.init();
  const validators = [0, 1, 2, 3];
  let peer: Libp2pNetwork | undefined;
  t.teardown(async () => {
    await peer?.stop().catch(() => undefined);
    await testnet.stopAll();
    await source.close();
    await rm(dir, { recursive: true, force: true });
  });
  for (const i of validators) testnet.start(i);
  for (const i of validators) await testnet.waitReady(i, 90_000);
  const height = async (i: number) =>
    (await (await fetch(`${testnet.api(i)}/v1/status`)).json()) as { height: number };
  await until('every validator at height 2', async () => {
    for (const i of validators) if ((await height(i)).height < 2) return undefined;
    return true;
  });

  // The flow to a committed record: registration, the bank's request, extraction, consent, a use.
  const api = testnet.api(0);
  const registrar = await readKeyFile(net.keys.registrar);
  const bank = await readKeyFile(net.keys.institution);
  const erin = await registerSubject(api, net.genesis, registrar, SUBJECT);
  const client = new DatagrantClient({
    api,
    institution: net.institutionId,
    keys: bank,
    genesis: net.genesis,
  });
  const opened = await client.openRequest({
    subject: SUBJECT,
    types: ['tax'],
    purpose: 'loan review',
    format: 'json',
    fields: {},
  });
  const ready: RequestView = await client.waitFor(opened.id, ['waiting-for-consent'], {
    timeoutMs: 60_000,
    intervalMs: 100,
  });
  t.equal(ready.records.length, 1, 'one record extracted and committed');
  const record = ready.records[0]!;
  const digest = record.digest;
  const extractor = net.nodes.findIndex((n) => n.key === record.extractor);
  t.ok(extractor === 2 || extractor === 3, `node${extractor}, an extractor, stored the ciphertext`);
  const grantee = { institution: net.institutionId, encKey: bytesToHex(bank.encryption.publicKey) };
  const ctx = () => ({ chain: net.genesis.chain, now: Date.now() });
  await submitAndWait(
    api,
    buildGrantTx(ctx(), ready, erin, grantee, { expiresInMs: 3_600_000, uses: 1, retainDays: 1 }),
  );
  const doc = await client.document(opened.id);
  t.equal(doc.records.length, 1, 'the bank got its document through node0');

  // This process joins the network with the gateway's key and asks each validator for the payload.
  const gateway = net.nodes.find((n) => n.kind === 'gateway')!;
  const gatewayKeys = await readKeyFile(join(gateway.home, 'node-key.json'));
  const bootstrap: string[] = [];
  for (const i of validators) {
    const config = await loadNodeConfig(net.nodes[i]!.configPath);
    bootstrap.push(`${config.p2p.listen[0]}/p2p/${peerIdFromValidatorKey(net.nodes[i]!.key)}`);
  }
  peer = new Libp2pNetwork({
    secretKey: gatewayKeys.signing.secretKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    allowedKeys: networkMembers(net.genesis),
    protocolPrefix: `/datagrant/${net.genesis.chain}`,
    redialMinMs: 100,
    redialMaxMs: 500,
  });
  await peer.start();
  const ask = async (i: number): Promise<Uint8Array | string> => {
    const key = net.nodes[i]!.key;
    await until(`a connection to node${i}`, async () => (peer!.peers().includes(key) ? true : undefined));
    try {
      return await peer!.request(key, 'payload', new TextEncoder().encode(digest), { timeoutMs: 5000 });
    } catch (err) {
      return isDatagrantError(err) ? String(err.meta.remoteCode ?? err.code) : String(err);
    }
  };
  // Before the erasure: who holds a copy (the extractor; node0, if it fetched it to serve the bundle;
  // any replica).
  const holders: number[] = [];
  let ciphertext: Uint8Array | undefined;
  for (const i of validators) {
    const answer = await ask(i);
    if (answer instanceof Uint8Array) {
      holders.push(i);
      ciphertext ??= answer;
      t.equal(sha256Hex(answer), digest, `node${i} serves the ciphertext the record names`);
    } else t.equal(answer, 'PAYLOAD_NOT_FOUND', `node${i} holds no copy`);
  }
  t.ok(holders.includes(extractor), `the extractor holds it (holders: node${holders.join(', node')})`);
  if (!ciphertext) return;
  t.ok(ciphertext.length >= 4 * WINDOW, `a ciphertext of ${ciphertext.length} bytes to look for`);

  // A backup of the extractor, taken by the real command while it runs, before the erasure.
  const backup = join(dir, 'extractor.backup');
  await run(
    process.execPath,
    [BIN, 'backup', '--home', net.nodes[extractor]!.home, '--out', backup, '--quiet'],
    {
      timeout: 60_000,
    },
  );

  // The extractor goes down; on its disk the same checks as below find the payload.
  await testnet.signal(extractor, 'SIGTERM');
  const storeOf = (i: number) => join(net.nodes[i]!.home, 'data', 'payloads');
  const before = await inspectStore(storeOf(extractor), digest, ciphertext);
  t.same(
    Buffer.from(before.value ?? []),
    Buffer.from(ciphertext),
    `node${extractor}'s store holds the ciphertext under its digest`,
  );
  t.ok(before.added, 'with its first-stored time');
  t.ok(
    before.slicesInFiles >= before.slices / 2,
    `${before.slicesInFiles} of its ${before.slices} ${WINDOW}-byte slices are in the raw files`,
  );

  // While it is down, the subject erases the request.
  const erased = await submitAndWait(
    api,
    buildSubjectTx(ctx(), 'erase', { request: opened.id }, erin),
    60_000,
  );
  const view = await client.request(opened.id);
  t.equal(
    view.status,
    'erased',
    `the erase committed at height ${erased.height} while node${extractor} was down`,
  );
  t.ok(
    view.records.some((r) => r.digest === digest),
    'the ledger keeps the digest',
  );

  const logPath = join(net.nodes[extractor]!.home, 'node.log');
  /** Restarts the extractor and waits until it is past the erase and has logged a deletion. */
  const restart = async (what: RegExp) => {
    const logBefore = (await readFile(logPath, 'utf8')).length;
    testnet.start(extractor);
    await testnet.waitReady(extractor, 90_000);
    await until(
      `node${extractor} past the erase`,
      async () => ((await height(extractor)).height >= erased.height ? true : undefined),
      90_000,
    );
    // Its log says when deletion and compaction are done; the checks on disk do not rely on it.
    return until(
      `node${extractor} to log the deletion`,
      async () => (what.test((await readFile(logPath, 'utf8')).slice(logBefore)) ? true : undefined),
      20_000,
    ).catch(() => false);
  };

  // Restarted, it syncs the erase (its start-up sweep ran before, on its old state) and deletes.
  t.ok(
    await restart(/"msg":"(payloads erased|erasure sweep deleted payloads)"/),
    `node${extractor} logged the deletion of the erased payload`,
  );
  for (const i of validators)
    t.equal(
      await ask(i),
      'PAYLOAD_ERASED',
      `node${i} refuses a payload request for the digest: PAYLOAD_ERASED`,
    );
  await testnet.signal(extractor, 'SIGTERM');
  const synced = await inspectStore(storeOf(extractor), digest, ciphertext);
  t.equal(synced.value, undefined, `node${extractor}, restarted, has no value under the digest`);
  t.notOk(synced.added, 'nor its first-stored time');
  t.equal(synced.slicesInFiles, 0, `none of the ciphertext's ${synced.slices} slices is in its files`);

  // Restored from the backup (the payload back on disk, the chain from before the erase), it
  // catches up and deletes it again.
  await run(
    process.execPath,
    [BIN, 'restore', backup, '--home', net.nodes[extractor]!.home, '--force', '--quiet'],
    {
      timeout: 60_000,
    },
  );
  t.ok(
    (await inspectStore(storeOf(extractor), digest, ciphertext)).value,
    'the restored store holds the erased payload again',
  );
  t.ok(
    await restart(/"msg":"(payloads erased|erasure sweep deleted payloads)"/),
    `node${extractor}, restored, logged the deletion`,
  );
  t.equal(await ask(extractor), 'PAYLOAD_ERASED', 'and it refuses the payload: PAYLOAD_ERASED');
  await peer.stop();
  peer = undefined;

  // Every node stopped, every store read on disk: none holds any of its bytes.
  await testnet.stopAll();
  for (const i of validators) {
    const h = await inspectStore(storeOf(i), digest, ciphertext);
    const role = i === extractor ? 'the extractor' : holders.includes(i) ? 'a holder' : 'a node';
    t.equal(h.value, undefined, `node${i} (${role}) has no value under the digest`);
    t.notOk(h.added, `node${i}: nor its first-stored time`);
    t.equal(h.slicesInFiles, 0, `node${i}: none of the ciphertext's ${h.slices} slices is in its files`);
  }
});
