/**
 * Backup and restore of a validator (real processes, the real `datagrant` command): on a
 * 4-validator testnet under load (subjects registered in a loop the whole time), `datagrant backup`
 * takes a copy of node3 while it runs; callers without node3's own key are refused. The load goes
 * on; node3 stops, its data is wiped, `datagrant restore` brings it back (its signing state
 * removed), and restarted it first follows without voting (its double-sign check), catches up,
 * agrees with the others on every block hash, and votes in new blocks again.
 */
import '../../src/common/polyfill.js';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { apiCall } from '../../src/cli/client.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { institutionCaller, signCall } from '../../src/common/http-signature.js';
import { generateKeySet } from '../../src/common/keyfile.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { downloadBackup, restoreBackup } from '../../src/node/backup.js';
import { loadNodeConfig } from '../../src/node/config.js';
import { attestSubject, buildRegisterTx } from '../../src/platform/consent.js';
import { startTestnet } from '../helpers/testnet.js';
import { until } from '../helpers/until.js';

const run = promisify(execFile);
const BIN = resolve('bin/datagrant.js');

interface Status {
  height: number;
  hash: string;
  voting: boolean;
  doubleSignCheckUntil?: number;
}

t.test('a validator restored from a backup taken under load catches up and agrees', async (t) => {
  const { testnet, net, dir } = await startTestnet(t, 'datagrant-backup-', {
    validators: 4,
    chain: 'datagrant-backup',
    blockIntervalMs: 300,
    minBlockIntervalMs: 20,
    viewTimeoutMs: 1000,
  });
  const status = (i: number) => apiCall<Status>(testnet.api(i), 'GET', '/v1/status');
  const target = 3;
  const home = net.nodes[target]!.home;
  const key = net.nodes[target]!.key;
  await until('height 2', async () => ((await status(target)).height >= 2 ? true : undefined));

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

  // Callers without node3's key are refused.
  const backupUrl = `${testnet.api(target)}/v1/admin/backup`;
  const refusal = async (headers: Record<string, string>) => {
    const r = await fetch(backupUrl, { headers });
    return { status: r.status, code: ((await r.json()) as { error: { code: string } }).error.code };
  };
  t.same(await refusal({}), { status: 401, code: 'API_UNAUTHENTICATED' }, 'an unsigned call: 401');
  const call = { method: 'GET', path: '/v1/admin/backup', body: '', audience: key, chain: net.genesis.chain };
  const node0 = await readKeyFile(join(net.nodes[0]!.home, 'node-key.json'));
  t.same(
    await refusal(signCall({ ...call, caller: 'node:node3' }, node0.signing.secretKey)),
    { status: 401, code: 'API_BAD_SIGNATURE' },
    "node3's name signed with another node's key: 401",
  );
  t.same(
    await refusal(signCall({ ...call, caller: 'node:node0' }, node0.signing.secretKey)),
    { status: 401, code: 'API_UNAUTHENTICATED' },
    'another node, with its own key: 401 (no node but this one is its operator)',
  );
  const bank = await readKeyFile(net.keys.institution);
  t.same(
    await refusal(
      signCall({ ...call, caller: institutionCaller(net.institutionId) }, bank.signing.secretKey),
    ),
    { status: 403, code: 'API_FORBIDDEN' },
    'a signed institution: 403',
  );

  // The backup, taken by the real command while node3 runs and the load goes on.
  const file = join(dir, 'node3.backup');
  const before = await status(target);
  const backup = await run(process.execPath, [BIN, 'backup', '--home', home, '--out', file, '--json'], {
    timeout: 60_000,
  });
  const taken = JSON.parse(backup.stdout) as { header: { height: number; blockHash: string } };
  t.ok(taken.header.height >= before.height, `backup taken at height ${taken.header.height}`);
  const atHeight = await apiCall<{ hash: string }>(
    testnet.api(0),
    'GET',
    `/v1/blocks/${taken.header.height}`,
  );
  t.equal(taken.header.blockHash, atHeight.hash, 'its block hash is the chain’s at that height');
  await t.rejects(
    downloadBackup({
      api: testnet.api(target),
      node: 'node3',
      keys: await readKeyFile(join(home, 'node-key.json')),
      chain: net.genesis.chain,
      out: file,
    }),
    { code: 'BACKUP_EXISTS' },
    'an existing backup file is not overwritten without --force',
  );

  // The load goes on past the backup; node3 stops and loses its data.
  await until('the chain well past the backup', async () =>
    (await status(0)).height >= taken.header.height + 3 ? true : undefined,
  );
  await testnet.signal(target, 'SIGTERM');
  const restoreArgs = [BIN, 'restore', file, '--home', home];
  const config = await loadNodeConfig(join(home, 'config.json'));
  await t.rejects(
    restoreBackup({ file, config, genesis: net.genesis }),
    { code: 'BACKUP_DATA_EXISTS' },
    'restore refuses a home whose data is there',
  );
  await rm(join(home, 'data'), { recursive: true, force: true });
  t.ok(existsSync(join(home, 'signing-state.json')), 'its signing state is still there');
  const restored = await run(process.execPath, restoreArgs, { timeout: 60_000 });
  t.match(restored.stdout, new RegExp(`to height ${taken.header.height}\\b`), 'restore prints the height');
  t.notOk(existsSync(join(home, 'signing-state.json')), 'the signing state is removed');

  // Restarted: it does not vote before its double-sign check, catches up, and agrees.
  const networkTip = (await status(0)).height;
  testnet.start(target);
  await testnet.waitReady(target, 60_000);
  const first = await until('its first status', async () => {
    const s = await status(target);
    return s.doubleSignCheckUntil !== undefined || s.voting ? s : undefined;
  });
  t.equal(first.voting, false, 'back from a backup, it does not vote at first');
  t.ok(
    (first.doubleSignCheckUntil ?? 0) > networkTip,
    `it waits until the chain passes height ${first.doubleSignCheckUntil} (the network was at ${networkTip})`,
  );
  const caughtUp = await until(
    'node3 caught up',
    async () => {
      const s = await status(target);
      return s.height >= networkTip + 3 ? s.height : undefined;
    },
    60_000,
  );
  loading = false;
  await load;
  t.ok(caughtUp > taken.header.height, `it synced past the backup (to ${caughtUp})`);
  let differing = 0;
  for (let h = 1; h <= caughtUp; h++) {
    const hashes = await Promise.all(
      [0, 1, 2, 3].map(
        async (i) => (await apiCall<{ hash: string }>(testnet.api(i), 'GET', `/v1/blocks/${h}`)).hash,
      ),
    );
    if (new Set(hashes).size !== 1) {
      differing++;
      t.fail(`height ${h}: the nodes disagree (${hashes.join(', ')})`);
    }
  }
  t.equal(differing, 0, `all four agree on every block hash, 1 to ${caughtUp}`);
  let after = 0;
  for (let h = taken.header.height + 1; h <= networkTip; h++)
    after += (
      await apiCall<{ block: { header: { txCount: number } } }>(testnet.api(target), 'GET', `/v1/blocks/${h}`)
    ).block.header.txCount;
  t.ok(after > 0, `the load went on after the backup (${after} transactions), node3 has them from its peers`);

  // It commits new blocks, and votes in them once the check has passed.
  const votedAt = await until(
    'a certificate with its vote',
    async () => {
      const s = await status(target);
      for (let h = Math.max(caughtUp, (first.doubleSignCheckUntil ?? 0) + 1); h <= s.height; h++) {
        const b = await apiCall<{ cert: { votes: { validator: string }[] } }>(
          testnet.api(target),
          'GET',
          `/v1/blocks/${h}`,
        );
        if (b.cert.votes.some((v) => v.validator === key)) return h;
      }
      return undefined;
    },
    60_000,
  );
  t.ok(
    votedAt > caughtUp - 1,
    `it commits new blocks and its vote is in the certificate of height ${votedAt}`,
  );
  t.equal((await status(target)).voting, true, 'and it votes');
});
