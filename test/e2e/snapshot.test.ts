/**
 * A node started from a state snapshot (real processes, the real `datagrant` command): on a
 * 4-validator testnet under load (subjects registered in a loop), `datagrant snapshot` takes the
 * state of node0 at its committed height h while it runs. The testnet's gateway, never started
 * before, starts with `--snapshot`: it checks the file against the genesis validators and the
 * certified root, syncs only the blocks after h (its log names every range it fetched; it holds no
 * block below h and says so with LEDGER_BLOCK_NOT_HELD), follows the load, and agrees with the four
 * validators on every block hash after h. At the same time node3, stopped after the snapshot and its
 * block data wiped (its signing state kept), starts from the same file: it follows without voting
 * until past the height it last signed at, agrees on every block after h, and votes again.
 */
import '../../src/common/polyfill.js';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { apiCall } from '../../src/cli/client.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { generateKeySet } from '../../src/common/keyfile.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { LocalTestnet } from '../../src/node/local-testnet.js';
import { attestSubject, buildRegisterTx } from '../../src/platform/consent.js';
import { until } from '../helpers/until.js';

const run = promisify(execFile);
const BIN = resolve('bin/datagrant.js');

interface Status {
  height: number;
  hash: string;
  base?: number;
}

t.test('a node started from a snapshot syncs only the blocks after it and agrees', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-snapshot-'));
  const testnet = new LocalTestnet({
    dir,
    validators: 4,
    gateways: 1,
    chain: 'datagrant-snapshot',
    blockIntervalMs: 300,
    minBlockIntervalMs: 20,
    viewTimeoutMs: 1000,
  });
  t.teardown(async () => {
    await testnet.stopAll();
    await rm(dir, { recursive: true, force: true });
  });
  const net = await testnet.init();
  const gateway = net.nodes.findIndex((n) => n.kind === 'gateway');
  for (let i = 0; i < 4; i++) testnet.start(i);
  await testnet.waitAllReady(90_000);
  const status = (i: number) => apiCall<Status>(testnet.api(i), 'GET', '/v1/status');
  await until('height 2', async () => ((await status(0)).height >= 2 ? true : undefined));

  // Load: subjects registered through nodes 0-2, a few at a time, until the test says stop.
  const registrar = await readKeyFile(net.keys.registrar);
  let loading = true;
  let submitted = 0;
  const load = (async () => {
    for (let n = 0; loading; n++) {
      const id = `load-${String(n).padStart(6, '0')}`;
      const subject = generateKeySet(id);
      const attestation = attestSubject(
        net.genesis.chain,
        id,
        { signKey: bytesToHex(subject.signing.publicKey), encKey: bytesToHex(subject.encryption.publicKey) },
        registrar,
      );
      const tx = buildRegisterTx(
        { chain: net.genesis.chain, now: Date.now() },
        id,
        subject,
        bytesToHex(registrar.signing.publicKey),
        attestation,
      );
      await apiCall(testnet.api(n % 3), 'POST', '/v1/txs', tx).then(
        () => submitted++,
        () => undefined,
      );
      if (n % 4 === 3) await new Promise((r) => setTimeout(r, 20));
    }
  })();
  t.teardown(() => {
    loading = false;
  });
  await until('load committing', async () => (submitted >= 40 ? true : undefined));

  // The snapshot, taken by the real command from node0 while the load goes on.
  const file = join(dir, 'node0.snapshot');
  const taken = JSON.parse(
    (
      await run(process.execPath, [BIN, 'snapshot', '--home', net.nodes[0]!.home, '--out', file, '--json'], {
        timeout: 60_000,
      })
    ).stdout,
  ) as { header: { height: number; blockHash: string; stateRoot: string }; entries: number };
  const h = taken.header.height;
  t.ok(h >= 2 && taken.entries > 40, `snapshot at height ${h} with ${taken.entries} state entries`);
  const atH = await apiCall<{ hash: string; block: { header: { stateRoot: string } } }>(
    testnet.api(1),
    'GET',
    `/v1/blocks/${h}`,
  );
  t.equal(taken.header.blockHash, atH.hash, 'its block is the chain’s at h (as node1 has it)');
  t.equal(taken.header.stateRoot, atH.block.header.stateRoot, 'and its root the certified one');

  // node3 loses its block data (not its signing state) while the chain goes on without it.
  const wiped = 3;
  await testnet.signal(wiped, 'SIGTERM');
  await rm(join(net.nodes[wiped]!.home, 'data'), { recursive: true, force: true });
  t.ok(existsSync(join(net.nodes[wiped]!.home, 'signing-state.json')), 'node3 keeps its signing state');

  // The chain moves on before the new node starts, so it has blocks after h to sync.
  await until('the chain past the snapshot', async () =>
    (await status(0)).height >= h + 5 ? true : undefined,
  );
  testnet.start(gateway, { args: ['--snapshot', file] });
  testnet.start(wiped, { args: ['--snapshot', file] });
  await Promise.all([testnet.waitReady(gateway, 60_000), testnet.waitReady(wiped, 60_000)]);
  t.equal((await status(gateway)).base, h, `the new node reports its base, ${h}`);
  t.equal((await status(wiped)).base, h, `node3 too`);
  const networkTip = (await status(0)).height;
  await until(
    'both caught up and following',
    async () =>
      (await status(gateway)).height >= networkTip + 3 && (await status(wiped)).height >= networkTip + 3
        ? true
        : undefined,
    60_000,
  );
  const votedAt = await until(
    'a certificate with node3’s vote',
    async () => {
      const tipNow = (await status(wiped)).height;
      for (let height = networkTip + 1; height <= tipNow; height++) {
        const b = await apiCall<{ cert: { votes: { validator: string }[] } }>(
          testnet.api(wiped),
          'GET',
          `/v1/blocks/${height}`,
        );
        if (b.cert.votes.some((v) => v.validator === net.nodes[wiped]!.key)) return height;
      }
      return undefined;
    },
    60_000,
  );
  t.ok(votedAt > networkTip, `node3 votes again (its vote is in the certificate of ${votedAt})`);
  loading = false;
  await load;
  // Transactions committed after the load stopped; then compare every block after h.
  const end = Math.min((await status(gateway)).height, (await status(wiped)).height);
  await until('every validator at the new node’s height', async () => {
    for (let i = 0; i < 4; i++) if ((await status(i)).height < end) return undefined;
    return true;
  });

  /** Block hashes of heights h+1..end as node i has them (listed, newest first, a page at a time). */
  const hashesOf = async (i: number): Promise<string[]> => {
    const out: string[] = new Array(end - h);
    for (let before = end + 1; before > h + 1; before -= 100) {
      const r = await apiCall<{ blocks: { hash: string; header: { height: number } }[] }>(
        testnet.api(i),
        'GET',
        `/v1/blocks?before=${before}&limit=100`,
      );
      for (const b of r.blocks)
        if (b.header.height > h && b.header.height <= end) out[b.header.height - h - 1] = b.hash;
    }
    return out;
  };
  const reference = await hashesOf(gateway);
  t.equal(reference.filter(Boolean).length, end - h, `the new node holds every block ${h + 1}..${end}`);
  for (let i = 0; i < 4; i++)
    t.same(await hashesOf(i), reference, `node${i} agrees with it on every block hash ${h + 1}..${end}`);
  let after = 0;
  for (let height = h + 1; height <= networkTip; height++)
    after += (
      await apiCall<{ block: { header: { txCount: number } } }>(
        testnet.api(gateway),
        'GET',
        `/v1/blocks/${height}`,
      )
    ).block.header.txCount;
  t.ok(after > 0, `the load went on after the snapshot (${after} transactions up to ${networkTip})`);

  // Nothing below h: not held, with its own code; block h itself is, with its certificate.
  const block = (height: number) => fetch(`${testnet.api(gateway)}/v1/blocks/${height}`);
  for (const below of [1, h - 1]) {
    const r = await block(below);
    t.equal(r.status, 404, `block ${below}: 404`);
    t.equal(
      ((await r.json()) as { error: { code: string } }).error.code,
      'LEDGER_BLOCK_NOT_HELD',
      `block ${below}: LEDGER_BLOCK_NOT_HELD`,
    );
  }
  t.equal(((await (await block(h)).json()) as { hash: string }).hash, atH.hash, 'block h is held');
  // And it fetched none: every range its block sync fetched starts after h.
  const logPath = join(net.nodes[gateway]!.home, 'node.log');
  const lines = (await readFile(logPath, 'utf8'))
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; from?: number; to?: number; height?: number });
  const synced = lines.filter((l) => l.msg === 'synced blocks');
  t.ok(synced.length > 0, `it synced blocks (${synced.length} ranges)`);
  t.equal(Math.min(...synced.map((l) => l.from!)), h + 1, `the first block it fetched is ${h + 1}`);
  t.ok(
    lines.some((l) => l.msg?.startsWith('started from a state snapshot') && l.height === h),
    'its log says it started from the snapshot',
  );
});
