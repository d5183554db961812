/**
 * Key custody against curious or hostile operators:
 * - a validator with full access to its own disk and memory cannot open a record granted to a
 *   bank (every 32-byte secret it holds is tried on every wrapped key), and a validator configured
 *   with a bank's key refuses to start;
 * - on 4 validators and the bank's own gateway (real processes): a signed document call replayed at
 *   another node, or at the same node after it restarted, spends no use and yields no plaintext; so
 *   does a replayed bundle call; the gateway never votes.
 */
import '../../src/common/polyfill.js';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { syntheticSensitiveValues } from '../../scripts/synthetic-data-platform.js';
import { apiCall } from '../../src/cli/client.js';
import { DatagrantClient } from '../../src/client/index.js';
import { bytesToHex, fromBase64url } from '../../src/common/bytes.js';
import { unwrapKey, type WrappedKey } from '../../src/common/crypto.js';
import { isDatagrantError } from '../../src/common/errors.js';
import { institutionCaller, signCall } from '../../src/common/http-signature.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { silentLogger } from '../../src/common/logger.js';
import type { GrantState, RecordState } from '../../src/ledger/index.js';
import { stateKey } from '../../src/ledger/index.js';
import { DatagrantNode } from '../../src/node/node.js';
import { buildGrantTx } from '../../src/platform/consent.js';
import type { RequestView } from '../../src/platform/views.js';
import { recordContext } from '../../src/records/index.js';
import { registerSubject, startDevNode } from '../helpers/dev-node.js';
import { startTestnet } from '../helpers/testnet.js';

const SUBJECT = 'alice-0042';

const HEX32 = /(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])/g;
const B64URL32 = /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g;

/** Every 32-byte value written as hex or base64url anywhere in the files under `dir`. */
async function secretsOnDisk(dir: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const text = (await readFile(join(entry.parentPath, entry.name))).toString('latin1');
    for (const m of text.match(HEX32) ?? []) out.push(Uint8Array.from(Buffer.from(m, 'hex')));
    for (const m of text.match(B64URL32) ?? []) {
      try {
        const bytes = fromBase64url(m);
        if (bytes.length === 32) out.push(bytes);
      } catch {
        // Not base64url after all.
      }
    }
  }
  return out;
}

/** Every 32-byte array and 64-hex string reachable from `root` (bounded walk of the object graph). */
function secretsInMemory(root: unknown, maxObjects = 400_000): Uint8Array[] {
  const out: Uint8Array[] = [];
  const seen = new Set<unknown>();
  const stack: unknown[] = [root];
  while (stack.length > 0 && seen.size < maxObjects) {
    const value = stack.pop();
    if (typeof value === 'string') {
      if (value.length === 64 && /^[0-9a-f]{64}$/.test(value))
        out.push(Uint8Array.from(Buffer.from(value, 'hex')));
      continue;
    }
    if (value === null || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value))
      continue;
    seen.add(value);
    if (value instanceof Uint8Array) {
      if (value.length === 32) out.push(value.slice());
      continue;
    }
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) continue;
    if (value instanceof Map) {
      for (const [k, v] of value) stack.push(k, v);
      continue;
    }
    if (value instanceof Set) {
      for (const v of value) stack.push(v);
      continue;
    }
    let keys: (string | symbol)[] = [];
    try {
      keys = Reflect.ownKeys(value as object);
    } catch {
      continue;
    }
    for (const key of keys) {
      try {
        const d = Object.getOwnPropertyDescriptor(value, key);
        if (d && 'value' in d) stack.push(d.value);
      } catch {
        // Exotic objects.
      }
    }
  }
  return out;
}

/** How many (candidate, wrapped key) pairs open: each candidate tried as an X25519 secret key. */
function opening(candidates: Uint8Array[], wrapped: { key: WrappedKey; context: Uint8Array }[]): number {
  let opened = 0;
  const unique = new Map(candidates.map((c) => [bytesToHex(c), c]));
  for (const secret of unique.values()) {
    for (const w of wrapped) {
      try {
        unwrapKey(w.key, secret, w.context);
        opened++;
      } catch {
        // Not this key.
      }
    }
  }
  return opened;
}

t.test('a validator with its whole disk and memory cannot open a record granted to a bank', async (t) => {
  const chain = 'datagrant-custody';
  const dev = await startDevNode(t, { chain });
  const { dir, net, node, bank, config } = dev;

  // A validator given the bank's key refuses to start (before it touches its store).
  const tempted = new DatagrantNode(
    { ...config, platform: { institutions: [{ id: 'demo-bank', key: net.keys.institution }] } },
    silentLogger,
  );
  await t.rejects(tempted.start(), { code: 'CONFIG_INVALID', message: /must not hold/ }, 'refused');
  await tempted.stop();

  const alice = await registerSubject(dev.api, net.genesis, dev.registrar, SUBJECT);
  const client = dev.client();
  const opened = await client.openRequest({
    subject: SUBJECT,
    types: ['tax', 'social-insurance'],
    purpose: 'mortgage',
    format: 'json',
    fields: {},
  });
  const ready = await client.waitFor(opened.id, ['waiting-for-consent']);
  await client.submit(
    buildGrantTx(
      { chain, now: Date.now() },
      ready,
      alice,
      { institution: 'demo-bank', encKey: bytesToHex(bank.encryption.publicKey) },
      { expiresInMs: 3_600_000, uses: 2, retainDays: 1 },
    ),
  );
  const doc = await client.document(opened.id);
  t.ok(
    syntheticSensitiveValues(SUBJECT).some((v) => doc.body.includes(v)),
    'the bank did get the data',
  );

  // Everything that wraps a data key: the grant's keys to the bank, the records' keys to Alice.
  const view = (await client.request(opened.id)) as RequestView;
  const grant = node.chain.state.get(stateKey.grant(view.grant!.id)) as unknown as GrantState;
  const wrapped = [
    ...grant.keys.map((k) => {
      const record = node.chain.state.get(stateKey.record(k.record)) as unknown as RecordState;
      return { key: k.key, context: recordContext(chain, opened.id, record.type) };
    }),
    ...view.records.map((r) => ({ key: r.key, context: recordContext(chain, opened.id, r.type) })),
  ];
  t.equal(wrapped.length, 4, 'two keys wrapped to the bank, two to the subject');

  await node.stop();
  const disk = await secretsOnDisk(net.nodes[0]!.home);
  const memory = secretsInMemory(node);
  t.ok(disk.length > 50, `${disk.length} 32-byte values found on the validator's disk`);
  t.ok(memory.length > 10, `${memory.length} 32-byte values found in the validator's memory`);
  t.ok(
    memory.some((m) => bytesToHex(m) === bytesToHex(node.keys.encryption.secretKey)),
    "the memory walk reaches the node's own secret keys (it is not blind)",
  );
  t.equal(opening([...disk, ...memory], wrapped), 0, 'not one of them opens any wrapped data key');

  // The same scan finds the bank's key wherever it is held: it would have caught the old layout.
  const bankDisk = await secretsOnDisk(join(dir, 'institutions'));
  t.ok(opening(bankDisk, wrapped) >= 2, "on the bank's side the scan finds the key that opens its records");
});

t.test(
  'replayed calls on 4 validators and the bank gateway spend no use and yield no plaintext',
  async (t) => {
    const { testnet, net } = await startTestnet(
      t,
      'datagrant-replay-',
      {
        validators: 4,
        gateways: 1,
        chain: 'datagrant-replay',
        blockIntervalMs: 500,
        minBlockIntervalMs: 20,
        logLevel: 'warn',
      },
      { withSource: true },
    );
    const gatewayIndex = net.nodes.findIndex((n) => n.kind === 'gateway');
    const validatorIndex = net.nodes.findIndex((n) => n.kind === 'validator' && n.roles.includes('platform'));
    const otherValidator = net.nodes.findIndex(
      (n, i) => i !== validatorIndex && n.kind === 'validator' && n.roles.includes('platform'),
    );
    const gateway = testnet.api(gatewayIndex);
    const validator = testnet.api(validatorIndex);
    t.equal(net.nodes[gatewayIndex]!.institution, 'demo-bank', "gateway0 is the bank's own");
    const status = await apiCall<{ kind: string }>(gateway, 'GET', '/v1/status');
    t.equal(status.kind, 'gateway', 'it runs as a gateway');

    const bank = await readKeyFile(net.keys.institution);
    const alice = await registerSubject(
      validator,
      net.genesis,
      await readKeyFile(net.keys.registrar),
      SUBJECT,
    );
    const client = new DatagrantClient({
      api: gateway,
      institution: 'demo-bank',
      keys: bank,
      genesis: net.genesis,
    });
    const overValidator = new DatagrantClient({
      api: validator,
      institution: 'demo-bank',
      keys: bank,
      genesis: net.genesis,
    });
    const opened = await client.openRequest({
      subject: SUBJECT,
      types: ['tax'],
      purpose: 'mortgage',
      format: 'csv',
      fields: {},
    });
    const ready = await client.waitFor(opened.id, ['waiting-for-consent'], { timeoutMs: 60_000 });
    await client.submit(
      buildGrantTx(
        { chain: net.genesis.chain, now: Date.now() },
        ready,
        alice,
        { institution: 'demo-bank', encKey: bytesToHex(bank.encryption.publicKey) },
        { expiresInMs: 3_600_000, uses: 3, retainDays: 1 },
      ),
    );
    await client.waitFor(opened.id, ['granted']);
    const values = syntheticSensitiveValues(SUBJECT);
    const holdsPlaintext = (text: string) => values.some((v) => text.includes(v));
    const used = async () => (await overValidator.request(opened.id)).grant?.used ?? -1;
    const waitUsed = async (n: number) => {
      for (let i = 0; i < 100 && (await used()) !== n; i++) await new Promise((r) => setTimeout(r, 100));
      return used();
    };
    const nodeKey = (i: number) => net.nodes[i]!.key;
    const signedHeaders = (path: string, audience: string, chain = net.genesis.chain) =>
      signCall(
        {
          method: 'GET',
          path,
          body: '',
          caller: institutionCaller('demo-bank'),
          audience,
          chain,
        },
        bank.signing.secretKey,
      );
    const get = async (base: string, path: string, headers: Record<string, string>) => {
      const r = await fetch(`${base}${path}`, { headers });
      const text = await r.text();
      let code: string | undefined;
      try {
        code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
      } catch {
        code = undefined;
      }
      return { status: r.status, text, code, usage: r.headers.get('x-datagrant-usage-tx') };
    };

    // The bank's own gateway assembles its document (it holds the bank's key): one use.
    const docPath = `/v1/requests/${opened.id}/document`;
    const docCall = signedHeaders(docPath, nodeKey(gatewayIndex));
    const first = await get(gateway, docPath, docCall);
    t.equal(first.status, 200, 'the gateway delivers the document');
    t.ok(holdsPlaintext(first.text), 'with the plaintext, inside the bank');
    t.equal(await waitUsed(1), 1, 'one use spent');

    const atValidator = await get(validator, docPath, docCall);
    t.same(
      [atValidator.status, atValidator.code],
      [401, 'API_WRONG_AUDIENCE'],
      'replayed at a validator: refused',
    );
    t.notOk(holdsPlaintext(atValidator.text), 'no plaintext');
    const again = await get(gateway, docPath, docCall);
    t.same([again.status, again.code], [401, 'API_REPLAYED'], 'replayed at the gateway: refused');

    await testnet.signal(gatewayIndex, 'SIGTERM');
    testnet.start(gatewayIndex);
    await testnet.waitReady(gatewayIndex, 60_000);
    const afterRestart = await get(gateway, docPath, docCall);
    t.same(
      [afterRestart.status, afterRestart.code],
      [401, 'API_REPLAYED'],
      'replayed at the gateway after it restarted: still refused',
    );
    t.notOk(holdsPlaintext(afterRestart.text), 'no plaintext');
    const otherChain = await get(
      gateway,
      docPath,
      signedHeaders(docPath, nodeKey(gatewayIndex), 'other-chain'),
    );
    t.same(
      [otherChain.status, otherChain.code],
      [401, 'API_WRONG_CHAIN'],
      'a call signed for another chain: refused',
    );
    t.notOk(holdsPlaintext(otherChain.text), 'no plaintext');
    t.equal(await used(), 1, 'and no use spent by any replay');

    // A bundle call to a data-blind validator, replayed elsewhere and after a restart.
    const bundlePath = `/v1/requests/${opened.id}/bundle?usage=${first.usage}`;
    const bundleCall = signedHeaders(bundlePath, nodeKey(validatorIndex));
    const bundle = await get(validator, bundlePath, bundleCall);
    t.equal(bundle.status, 200, 'the validator hands the bank its sealed bundle for that use');
    t.notOk(holdsPlaintext(bundle.text), 'which holds no plaintext');
    const elsewhere = await get(testnet.api(otherValidator), bundlePath, bundleCall);
    t.same(
      [elsewhere.status, elsewhere.code],
      [401, 'API_WRONG_AUDIENCE'],
      'replayed at another validator: refused',
    );
    await testnet.signal(validatorIndex, 'SIGTERM');
    testnet.start(validatorIndex);
    await testnet.waitReady(validatorIndex, 60_000);
    const restarted = await get(validator, bundlePath, bundleCall);
    t.same(
      [restarted.status, restarted.code],
      [401, 'API_REPLAYED'],
      'replayed after the validator restarted: refused',
    );
    t.equal(await used(), 1, 'still one use');

    // The gateway followed every block without ever voting.
    const tip = await apiCall<{ height: number }>(gateway, 'GET', '/v1/status');
    const block = await apiCall<{ cert: { votes: { validator: string }[] }; hash: string }>(
      gateway,
      'GET',
      `/v1/blocks/${tip.height}`,
    );
    const validators = new Set(net.genesis.validators.map((v) => v.key));
    t.ok(
      block.cert.votes.every((v) => validators.has(v.validator)) &&
        !block.cert.votes.some((v) => v.validator === nodeKey(gatewayIndex)),
      'certificates hold validator votes only',
    );
    // The restarted validator may still be catching up: read the block from one that was not.
    let atValidatorBlock: { hash: string } | undefined;
    for (let i = 0; i < 100 && !atValidatorBlock; i++) {
      atValidatorBlock = await apiCall<{ hash: string }>(
        testnet.api(otherValidator),
        'GET',
        `/v1/blocks/${tip.height}`,
      ).catch(() => undefined);
      if (!atValidatorBlock) await new Promise((r) => setTimeout(r, 100));
    }
    t.equal(atValidatorBlock?.hash, block.hash, 'and the gateway holds the same block as the validators');
    const failure = await client.document(opened.id).then(
      () => 'ok',
      (err: unknown) => (isDatagrantError(err) ? err.code : String(err)),
    );
    t.equal(failure, 'ok', 'a genuinely new call still works');
    t.equal(await waitUsed(2), 2, 'and spends exactly one more use');
  },
);
