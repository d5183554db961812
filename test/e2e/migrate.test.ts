/**
 * `datagrant migrate` on stores written by the previous store format (real processes): the
 * testnet of test/fixtures/store-v1 (4 validators and the bank's gateway at height 40, written by
 * the format-1 code; see its README) is unpacked onto free ports. A node started on it exits
 * non-zero naming `datagrant migrate`; a dry run writes nothing; `datagrant migrate` upgrades each
 * home. Then the gateway's data is wiped and every node starts: the validators on their migrated
 * stores serve the bank its old request, new transactions commit, the gateway syncs from genesis
 * and serves the old request too, and every node agrees on every block hash, the fixture's tip
 * among them.
 */
import '../../src/common/polyfill.js';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Level } from 'level';
import t from 'tap';
import { DatagrantClient } from '../../src/client/index.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import type { ChainTip } from '../../src/ledger/index.js';
import { findFreeBasePort, LocalTestnet } from '../../src/node/local-testnet.js';
import type { MigrationReport } from '../../src/node/migrate.js';
import { registerSubject } from '../helpers/dev-node.js';
import { until } from '../helpers/until.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BIN = join(ROOT, 'bin/datagrant.js');
const FIXTURE = join(ROOT, 'test/fixtures/store-v1/testnet.tar.gz');
const NODES = ['node0', 'node1', 'node2', 'node3', 'gateway0'];
const run = promisify(execFile);

interface Config {
  api: { port: number };
  p2p: { listen: string[]; peers: { key: string; addr: string }[] };
}

/** Moves every node of the unpacked testnet in `dir` to free loopback ports. */
async function rewritePorts(dir: string): Promise<void> {
  const base = await findFreeBasePort(NODES.length);
  const configs = await Promise.all(
    NODES.map(async (name) => JSON.parse(await readFile(join(dir, name, 'config.json'), 'utf8')) as Config),
  );
  const moved = new Map<string, string>();
  configs.forEach((c, i) => {
    const addr = `/ip4/127.0.0.1/tcp/${base + 100 + i}`;
    for (const old of c.p2p.listen) moved.set(old, addr);
    c.api.port = base + i;
    c.p2p.listen = [addr];
  });
  for (const [i, c] of configs.entries()) {
    c.p2p.peers = c.p2p.peers.map((p) => ({ key: p.key, addr: moved.get(p.addr) ?? p.addr }));
    await writeFile(join(dir, NODES[i]!, 'config.json'), `${JSON.stringify(c, null, 2)}\n`);
  }
}

/** Runs `datagrant node start` and waits for it to exit: its code and stderr. */
function startUntilExit(config: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, 'node', 'start', '--config', config], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      done({ code, stderr });
    });
  });
}

async function migrate(home: string, ...flags: string[]): Promise<MigrationReport> {
  const { stdout } = await run(process.execPath, [BIN, 'migrate', '--home', home, '--json', ...flags]);
  return JSON.parse(stdout) as MigrationReport;
}

/** The tip a closed chain store holds. */
async function storedTip(path: string): Promise<ChainTip> {
  const db = new Level<string, string>(path, { valueEncoding: 'utf8', createIfMissing: false });
  await db.open();
  try {
    return JSON.parse((await db.get('m:tip'))!) as ChainTip;
  } finally {
    await db.close();
  }
}

t.test('stores of the previous format: refused, migrated, then in agreement', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-migrate-'));
  const testnet = new LocalTestnet({ dir, validators: 4, gateways: 1, logLevel: 'warn' });
  t.teardown(async () => {
    await testnet.stopAll();
    await rm(dir, { recursive: true, force: true });
  });
  await run('tar', ['-xzf', FIXTURE, '-C', dir]);
  await rewritePorts(dir);
  const made = JSON.parse(await readFile(join(dir, 'made.json'), 'utf8')) as { request: string };
  const fixtureTip = await storedTip(join(dir, 'node0', 'data', 'chain'));
  t.equal(fixtureTip.height, 40, 'the fixture is at height 40');

  // 1. Refused, with the command to run.
  const refused = await startUntilExit(join(dir, 'node0', 'config.json'));
  t.not(refused.code, 0, 'a node on format-1 stores exits non-zero');
  t.match(refused.stderr, /^error STORE_MIGRATION_NEEDED: /m, 'with a coded error');
  t.match(refused.stderr, `datagrant migrate --home ${join(dir, 'node0')}`, 'naming datagrant migrate');
  t.match(refused.stderr, join(dir, 'node0', 'data', 'chain'), 'and the store');

  // 2. A dry run writes nothing (the migration below still finds format 1).
  const dry = await migrate(join(dir, 'node0'), '--dry-run');
  t.same(
    dry.stores.map((s) => [s.store, s.from, s.status]),
    [
      ['chain', 1, 'would-migrate'],
      ['payloads', 1, 'would-migrate'],
      ['replay', 1, 'would-migrate'],
    ],
  );

  // 3. Migrate every home (a second run is in test/unit/node/migrate.test.ts).
  const reports = await Promise.all(NODES.map((name) => migrate(join(dir, name))));
  for (const [i, report] of reports.entries()) {
    const byStore = Object.fromEntries(report.stores.map((s) => [s.store, s]));
    t.match(byStore.chain, { from: 1, to: 2, status: 'migrated' }, `${NODES[i]}: chain store migrated`);
    // Every validator holds the ciphertexts; the gateway none; only node0 served signed calls.
    t.equal(
      byStore.payloads!.status,
      NODES[i] === 'gateway0' ? 'empty' : 'migrated',
      `${NODES[i]}: payloads`,
    );
    t.equal(byStore.replay!.status, NODES[i] === 'node0' ? 'migrated' : 'empty', `${NODES[i]}: replay`);
  }

  // 4. The gateway's data is wiped (it will sync from genesis); every node starts, the validators
  // on their migrated stores; new transactions commit.
  await rm(join(dir, 'gateway0', 'data'), { recursive: true, force: true });
  const net = await testnet.load();
  testnet.startAll();
  await testnet.waitAllReady(60_000);
  const status = async (i: number) =>
    (await (await fetch(`${testnet.api(i)}/v1/status`)).json()) as { height: number; hash: string };
  for (let i = 0; i < 4; i++) t.ok((await status(i)).height >= 40, `${NODES[i]} resumed at 40+`);
  const bankKeys = await readKeyFile(net.keys.institution);
  const client = (api: string) =>
    new DatagrantClient({ api, institution: net.institutionId, keys: bankKeys, genesis: net.genesis });
  const old = await client(testnet.api(0)).request(made.request);
  t.equal(old.records.length, 1, 'the bank reads its format-1 request and its record through node0');
  const registrar = await readKeyFile(net.keys.registrar);
  for (const [i, id] of ['after-migrate-0001', 'after-migrate-0002'].entries())
    await registerSubject(testnet.api(i + 1), net.genesis, registrar, id);

  // 5. The wiped gateway syncs from genesis.
  const gateway = NODES.indexOf('gateway0');
  const target = Math.min(...(await Promise.all([0, 1, 2, 3].map(async (i) => (await status(i)).height))));
  await until("the wiped gateway back at the validators' height", async () =>
    (await status(gateway)).height >= target ? true : undefined,
  );
  t.equal(
    (await client(testnet.api(gateway)).request(made.request)).records.length,
    1,
    'the resynced gateway serves the old request too',
  );

  // 6. Every node agrees on every block hash up to `target`, the fixture's tip among them.
  const hashes = async (i: number): Promise<string[]> => {
    const out: string[] = [];
    let before = target + 1;
    while (before > 1) {
      const page = (await (await fetch(`${testnet.api(i)}/v1/blocks?before=${before}&limit=100`)).json()) as {
        blocks: { hash: string; header: { height: number } }[];
      };
      if (page.blocks.length === 0) break;
      for (const b of page.blocks) out[b.header.height] = b.hash;
      before = Math.min(...page.blocks.map((b) => b.header.height));
    }
    return out;
  };
  const all = await Promise.all(NODES.map((_, i) => hashes(i)));
  t.equal(all[0]![40], fixtureTip.hash, "block 40 is the fixture's tip");
  t.ok(target > 40, `new blocks past the fixture (${target})`);
  let differing = 0;
  for (let h = 1; h <= target; h++)
    for (let i = 1; i < NODES.length; i++)
      if (all[i]![h] !== all[0]![h]) {
        differing++;
        t.fail(`${NODES[i]} differs from node0 at height ${h}`);
      }
  t.equal(differing, 0, `every node agrees on blocks 1..${target}`);
});
