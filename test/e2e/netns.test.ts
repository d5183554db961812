/**
 * The testnet as if on separate machines: `datagrant init --hosts` for 4 validators and the bank's
 * own gateway, each node folder copied alone to its own "machine" directory and started unedited
 * in its own network namespace, the synthetic data platform in another; the namespaces meet only on
 * one bridge. The whole business flow runs across them; one validator's link is cut while the other
 * three commit, then restored, and every node must agree on every block hash. Every node must
 * listen on its own bridge address only, never on loopback, and be connected over the bridge.
 *
 * Needs root and iproute2 (`ip`, `ss`); skipped with the reason without them, except under CI
 * (`CI` set), where their absence fails the test.
 */
import '../../src/common/polyfill.js';
import { type ChildProcess, execFile } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { NetnsLab, netnsUnavailable, startPlatformIn } from '../../scripts/netns/lab.js';
import { syntheticSensitiveValues } from '../../scripts/synthetic-data-platform.js';
import { apiCall } from '../../src/cli/client.js';
import { DatagrantClient } from '../../src/client/index.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { loadNodeConfig } from '../../src/node/config.js';
import { LocalTestnet } from '../../src/node/local-testnet.js';
import { buildGrantTx } from '../../src/platform/consent.js';
import { registerSubject } from '../helpers/dev-node.js';
import { until } from '../helpers/until.js';

const run = promisify(execFile);
const BIN = resolve('bin/datagrant.js');
const NODES = ['node0', 'node1', 'node2', 'node3', 'gateway0'];
const API_PORT = 26650;
const P2P_PORT = 26750;
const PLATFORM_PORT = 7070;
const CHAIN = 'datagrant-netns';

interface Status {
  height: number;
  primary: string;
  peers: string[];
}

/** Block hashes 1..height of the node at `api`, oldest first. */
async function blockHashes(api: string, height: number): Promise<string[]> {
  const out: string[] = [];
  let before = height + 1;
  while (before > 1) {
    const page = await apiCall<{ blocks: { hash: string; header: { height: number } }[] }>(
      api,
      'GET',
      `/v1/blocks?before=${before}&limit=100`,
    );
    if (page.blocks.length === 0) break;
    for (const b of page.blocks) out[b.header.height - 1] = b.hash;
    before = page.blocks.at(-1)!.header.height;
  }
  return out;
}

const unavailable = await netnsUnavailable();
const skip =
  unavailable !== undefined && !process.env.CI ? `network namespaces unavailable: ${unavailable}` : false;

t.test('a testnet across network namespaces: init --hosts, copied homes, a cut link', { skip }, async (t) => {
  if (unavailable !== undefined) {
    t.fail(`network namespaces are required under CI: ${unavailable}`);
    return;
  }
  const root = await mkdtemp(join(tmpdir(), 'datagrant-netns-'));
  const lab = await NetnsLab.create([...NODES, 'platform']);
  let testnet: LocalTestnet | undefined;
  let platform: ChildProcess | undefined;
  t.teardown(async () => {
    await testnet?.stopAll().catch(() => undefined);
    platform?.kill('SIGKILL');
    await lab.teardown();
    await rm(root, { recursive: true, force: true });
  });
  t.comment(`lab ${lab.id} on ${lab.subnet}`);

  // The operator writes the testnet once, naming each node's host, while the platform starts.
  const platformUrl = `http://${lab.address('platform')}:${PLATFORM_PORT}`;
  const operator = join(root, 'operator');
  const [source] = await Promise.all([
    startPlatformIn(lab, 'platform', PLATFORM_PORT).then((p) => {
      platform = p.process;
      return p;
    }),
    run(
      process.execPath,
      [
        BIN,
        'init',
        '--dir',
        operator,
        '--validators',
        '4',
        '--gateways',
        '1',
        '--chain',
        CHAIN,
        '--block-interval',
        '500',
        '--hosts',
        NODES.map((n) => lab.address(n)).join(','),
        '--synthetic-source',
        platformUrl,
      ],
      { timeout: 60_000 },
    ),
  ]);
  t.equal(source.url, platformUrl, 'the data platform is on its own host');
  // Each node folder goes alone to its machine: nothing is edited, nothing else comes along.
  const machine = (name: string) => join(root, 'machines', name, name);
  for (const name of NODES) {
    await cp(join(operator, name), machine(name), { recursive: true });
    await rm(join(operator, name), { recursive: true });
  }
  for (const name of NODES) {
    const config = await loadNodeConfig(join(machine(name), 'config.json'));
    t.equal(config.api.host, lab.address(name), `${name} binds its API to its own host`);
  }

  const net = new LocalTestnet({
    dir: operator,
    validators: 4,
    logLevel: 'warn',
    homeOf: machine,
    commandPrefix: (i) => lab.exec(NODES[i]!),
  });
  testnet = net;
  const { nodes, genesis, keys } = await net.load();
  t.same(
    nodes.map((n) => n.name),
    NODES,
    'validators, then the gateway',
  );
  t.same(
    nodes.map((n) => n.apiUrl),
    NODES.map((n) => `http://${lab.address(n)}:${API_PORT}`),
    'every API at its host, on the same default port',
  );
  net.startAll();
  await net.waitAllReady(90_000);
  const api = (name: string) => net.api(NODES.indexOf(name));

  // Nothing on loopback: each node listens on its bridge address only, API and p2p.
  for (const name of NODES) {
    const sockets = await lab.listening(name);
    t.same(
      sockets.map((s) => `${s.address}:${s.port}`).sort(),
      [`${lab.address(name)}:${API_PORT}`, `${lab.address(name)}:${P2P_PORT}`],
      `${name} listens on ${lab.address(name)} only`,
    );
  }
  // And they are connected, which across namespaces can only be over the bridge.
  const validatorKeys = genesis.validators.map((v) => v.key);
  await until('every node connected to every other validator', async () => {
    for (const [i, node] of nodes.entries()) {
      const s = await apiCall<Status>(net.api(i), 'GET', '/v1/status');
      if (!validatorKeys.every((k) => k === node.key || s.peers.includes(k))) return undefined;
    }
    return true;
  });
  for (const name of NODES) {
    const remotes = await lab.connectedTo(name);
    const others = NODES.slice(0, 4)
      .filter((n) => n !== name)
      .map((n) => lab.address(n));
    t.ok(
      others.every((a) => remotes.includes(a)),
      `${name} has TCP connections to the other validators' bridge addresses`,
    );
  }

  // The business flow, through the bank's own gateway.
  const gateway = api('gateway0');
  const registrar = await readKeyFile(keys.registrar);
  const bank = await readKeyFile(keys.institution);
  const subject = 'alice-0777';
  const alice = await registerSubject(gateway, genesis, registrar, subject);
  const client = new DatagrantClient({ api: gateway, institution: 'demo-bank', keys: bank, genesis });
  const opened = await client.openRequest({
    subject,
    types: ['tax', 'social-insurance'],
    purpose: 'mortgage',
    format: 'json',
    fields: {},
  });
  const ready = await client.waitFor(opened.id, ['waiting-for-consent'], { timeoutMs: 60_000 });
  t.equal(ready.records.length, 2, 'both records put by the extractors, from the platform across the bridge');
  await client.submit(
    buildGrantTx(
      { chain: CHAIN, now: Date.now() },
      ready,
      alice,
      { institution: 'demo-bank', encKey: bytesToHex(bank.encryption.publicKey) },
      { expiresInMs: 3_600_000, uses: 1, retainDays: 1 },
    ),
  );
  await client.waitFor(opened.id, ['granted']);
  const doc = await client.document(opened.id);
  t.ok(
    syntheticSensitiveValues(subject).some((v) => doc.body.includes(v)),
    'the bank gets the document: usage, sealed bundle, decrypted on its side',
  );
  t.equal((await client.request(opened.id)).grant?.used, 1, 'one use spent');

  // Cut a validator that is not the primary; the other three go on committing.
  const status = await apiCall<Status>(gateway, 'GET', '/v1/status');
  const victim = ['node0', 'node1'].find((n) => nodes[NODES.indexOf(n)]!.key !== status.primary)!;
  await lab.linkDown(victim);
  t.comment(`${victim} cut at height ${status.height}`);
  await t.rejects(
    fetch(`${api(victim)}/v1/status`, { signal: AbortSignal.timeout(1500) }),
    `${victim} is unreachable`,
  );
  for (const id of ['bob-0778', 'carol-0779']) await registerSubject(gateway, genesis, registrar, id);
  const during = await until('three validators commit past the cut', async () => {
    const s = await apiCall<Status>(gateway, 'GET', '/v1/status');
    return s.height >= status.height + 5 ? s.height : undefined;
  });
  t.ok(during > status.height, `the other three committed up to ${during} without ${victim}`);

  await lab.linkUp(victim);
  const caughtUp = await until(
    `${victim} catches up`,
    async () => {
      const s = await apiCall<Status>(api(victim), 'GET', '/v1/status');
      return s.height >= during ? s.height : undefined;
    },
    60_000,
  );
  t.ok(caughtUp >= during, `${victim} caught up to ${caughtUp}`);

  const heights = await Promise.all(
    nodes.map(async (_, i) => (await apiCall<Status>(net.api(i), 'GET', '/v1/status')).height),
  );
  const common = Math.min(...heights);
  t.ok(common >= during, `common height ${common} includes the blocks committed during the cut`);
  const reference = await blockHashes(api('node2'), common);
  t.equal(reference.filter(Boolean).length, common, `block hashes 1..${common} read`);
  for (const name of NODES) {
    const hashes = await blockHashes(api(name), common);
    t.same(hashes, reference, `${name} agrees on every block hash up to ${common}`);
  }
});

t.test(
  'labs: short unique names, distinct subnets side by side, nothing left after teardown',
  { skip },
  async (t) => {
    if (unavailable !== undefined) {
      t.fail(`network namespaces are required under CI: ${unavailable}`);
      return;
    }
    const [a, b] = await Promise.all([NetnsLab.create(['x', 'y']), NetnsLab.create(['x', 'y'])]);
    t.teardown(async () => {
      await a.teardown();
      await b.teardown();
    });
    t.not(a.subnet, b.subnet, 'two labs at once take two /24s');
    t.not(a.id, b.id, 'and two ids');
    for (const lab of [a, b])
      for (const name of lab.names) {
        const m = lab.member(name);
        t.ok(
          m.hostLink.length <= 15 && m.nsLink.length <= 15,
          `${m.hostLink}, ${m.nsLink}: interface names fit`,
        );
      }
    const ips = (await run('ip', ['-o', 'link', 'show'])).stdout;
    t.ok(ips.includes(a.bridge) && ips.includes(b.bridge), 'both bridges exist');
    await a.teardown();
    await a.teardown();
    const links = (await run('ip', ['-o', 'link', 'show'])).stdout;
    const namespaces = (await run('ip', ['netns', 'list'])).stdout;
    t.notOk(links.includes(`dg${a.id}`), 'no link of the removed lab is left');
    t.notOk(namespaces.includes(`dg${a.id}-`), 'no namespace of the removed lab is left');
    t.ok(namespaces.includes(`dg${b.id}-x`), 'the other lab is untouched');
  },
);
