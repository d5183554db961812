/**
 * No double signing after disk loss (real processes): a validator whose data and signing state
 * are wiped comes back, syncs from its peers, and does not vote until the chain has passed every
 * height it may have signed before the loss; then it votes again. Its signing state lives apart
 * from the block data (wiping the blocks alone keeps it voting at once).
 */
import '../../src/common/polyfill.js';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { apiCall } from '../../src/cli/client.js';
import { startTestnet } from '../helpers/testnet.js';
import { until } from '../helpers/until.js';

interface Status {
  height: number;
  voting: boolean;
  doubleSignCheckUntil?: number;
}

t.test('a wiped validator does not vote until its double-sign check passes', async (t) => {
  const { testnet, net } = await startTestnet(t, 'datagrant-dsc-', {
    validators: 4,
    chain: 'datagrant-dsc',
    blockIntervalMs: 300,
    minBlockIntervalMs: 20,
    viewTimeoutMs: 1000,
    logLevel: 'info',
  });
  const status = (i: number) => apiCall<Status>(testnet.api(i), 'GET', '/v1/status');
  await until('height 3', async () => ((await status(0)).height >= 3 ? true : undefined));
  const wiped = 3;
  const home = net.nodes[wiped]!.home;
  t.ok(
    (await stat(join(home, 'signing-state.json'))).isFile(),
    'the signing state is a file of its own, beside data/',
  );
  t.equal((await status(wiped)).voting, true, 'a validator with its signing state votes');

  // Its disk is lost: blocks and signing state both.
  await testnet.signal(wiped, 'SIGKILL');
  await rm(join(home, 'data'), { recursive: true, force: true });
  await rm(join(home, 'signing-state.json'), { force: true });
  const networkTip = (await status(0)).height;
  testnet.start(wiped);
  await testnet.waitReady(wiped, 60_000);
  const checking = await until('the double-sign check', async () => {
    const s = await status(wiped);
    return s.doubleSignCheckUntil !== undefined || s.voting ? s : undefined;
  });
  t.equal(checking.voting, false, 'back without its signing state, it does not vote');
  const limit = checking.doubleSignCheckUntil!;
  t.ok(
    limit >= networkTip + 1,
    `it waits until the chain passes height ${limit} (the network was at ${networkTip})`,
  );

  const voting = await until(
    'it votes again',
    async () => ((await status(wiped)).voting ? true : undefined),
    90_000,
  );
  t.ok(voting, 'after the check it votes again');
  const key = net.nodes[wiped]!.key;
  const votersAt = async (h: number) =>
    (
      await apiCall<{ cert: { votes: { validator: string }[] } }>(testnet.api(0), 'GET', `/v1/blocks/${h}`)
    ).cert.votes.map((v) => v.validator);
  for (let h = networkTip + 1; h <= limit; h++)
    t.notOk(
      (await votersAt(h)).includes(key),
      `height ${h}: its vote is in no certificate (it did not vote)`,
    );
  const later = await until(
    'a certificate with its vote',
    async () => {
      const tip = (await status(0)).height;
      for (let h = limit + 1; h <= tip; h++) if ((await votersAt(h)).includes(key)) return h;
      return undefined;
    },
    60_000,
  );
  t.ok(later > limit, `its vote is in the certificate of height ${later}`);
  const s = await status(wiped);
  t.ok(s.height >= limit, 'and it has the whole chain again');

  // Losing only the blocks keeps the signing state: it syncs up to what it signed, then votes on.
  await testnet.signal(1, 'SIGKILL');
  await rm(join(net.nodes[1]!.home, 'data'), { recursive: true, force: true });
  testnet.start(1);
  await testnet.waitReady(1, 60_000);
  const back = await until('node1 votes again', async () => {
    const s1 = await status(1);
    return s1.voting ? s1 : undefined;
  });
  t.ok(
    back.height > 0,
    `a validator that lost only its blocks keeps its signing state, syncs (to ${back.height}) and votes`,
  );
});
