/**
 * Four real node processes over libp2p on 127.0.0.1: transactions submitted to different nodes
 * end up in identical blocks everywhere; a SIGKILLed validator's peers keep committing and it
 * catches up after restarting, losing nothing; killing the primary forces a view change.
 */
import '../../src/common/polyfill.js';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { generateKeySet, type KeySet } from '../../src/common/keyfile.js';
import { signTx } from '../../src/ledger/index.js';
import { addInstitutionChange, councilKeys } from '../helpers/council.js';
import { startTestnet } from '../helpers/testnet.js';

interface Status {
  height: number;
  view: number;
  primary: string;
  peers: string[];
}

async function get<T>(url: string): Promise<T> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return (await r.json()) as T;
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {
      // Node not reachable yet.
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

t.test(
  '4 validators over libp2p: agreement, crash and catch-up, resync from genesis, primary failure',
  async (t) => {
    const { testnet, net } = await startTestnet(t, 'datagrant-pbft-', {
      validators: 4,
      chain: 'datagrant-pbft',
      blockIntervalMs: 300,
      minBlockIntervalMs: 20,
      viewTimeoutMs: 1500,
      logLevel: 'info',
    });
    const [admin] = await councilKeys(net.keys.council);

    let counter = 0;
    const acknowledged: string[] = [];
    /** Submits an institution.add to node i; returns its hash once committed there. */
    const submitTo = async (i: number): Promise<string> => {
      const keys: KeySet = generateKeySet();
      const id = `inst-${process.pid}-${counter++}`;
      // A council proposal: a transaction that always applies (it opens a proposal nobody approves).
      const tx = signTx(
        {
          chain: 'datagrant-pbft',
          kind: 'gov.propose',
          body: { change: addInstitutionChange(id, id, keys), deadline: Date.now() + 3600_000 },
        },
        admin!.signing.publicKey,
        admin!.signing.secretKey,
      );
      const r = await fetch(`${testnet.api(i)}/v1/txs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(tx),
      });
      const { hash } = (await r.json()) as { hash: string };
      return hash;
    };
    const waitCommitted = async (i: number, hash: string) =>
      waitFor(
        `tx ${hash} on node${i}`,
        async () =>
          (await get<{ status: string }>(`${testnet.api(i)}/v1/txs/${hash}`)).status === 'committed',
      );
    const heights = async (nodes: number[]) =>
      Promise.all(nodes.map(async (i) => (await get<Status>(`${testnet.api(i)}/v1/status`)).height));
    /** Compares block hashes at every height 1..h on the given nodes. */
    const agree = async (nodes: number[], label: string) => {
      const h = Math.min(...(await heights(nodes)));
      let mismatches = 0;
      for (let height = 1; height <= h; height++) {
        const hashes = await Promise.all(
          nodes.map(async (i) => (await get<{ hash: string }>(`${testnet.api(i)}/v1/blocks/${height}`)).hash),
        );
        if (new Set(hashes).size !== 1) mismatches++;
      }
      t.equal(
        mismatches,
        0,
        `${label}: identical block hashes at every height 1..${h} on nodes ${nodes.join(',')}`,
      );
      return h;
    };

    await t.test('transactions sent to different nodes commit in identical blocks', async (t) => {
      const hashes = await Promise.all([0, 1, 2, 3, 0, 1, 2, 3].map((i) => submitTo(i)));
      for (const hash of hashes) for (const i of [0, 1, 2, 3]) await waitCommitted(i, hash);
      acknowledged.push(...hashes);
      const h = await agree([0, 1, 2, 3], 'all four');
      t.ok(h >= 1);
    });

    await t.test(
      'a SIGKILLed validator: the others keep committing; it restarts, catches up, nothing lost',
      async (t) => {
        const victim = 3;
        await testnet.signal(victim, 'SIGKILL');
        const before = Math.max(...(await heights([0, 1, 2])));
        const during = await Promise.all([0, 1, 2, 0, 1, 2].map((i) => submitTo(i)));
        for (const hash of during) for (const i of [0, 1, 2]) await waitCommitted(i, hash);
        acknowledged.push(...during);
        const after = Math.max(...(await heights([0, 1, 2])));
        t.ok(after > before, `three validators kept committing (${before} → ${after})`);
        testnet.start(victim);
        await testnet.waitReady(victim, 60_000);
        await waitFor('catch-up', async () => (await heights([victim]))[0]! >= after, 60_000);
        for (const hash of acknowledged) await waitCommitted(victim, hash);
        t.pass(
          `node${victim} caught up to ${after} and holds all ${acknowledged.length} acknowledged transactions`,
        );
        await agree([0, 1, 2, 3], 'after restart');
      },
    );

    await t.test('a node whose data is wiped syncs the whole chain from genesis', async (t) => {
      const victim = 2;
      await testnet.signal(victim, 'SIGKILL');
      await rm(join(net.nodes[victim]!.home, 'data'), { recursive: true, force: true });
      const target = Math.max(...(await heights([0, 1, 3])));
      testnet.start(victim);
      await testnet.waitReady(victim, 60_000);
      await waitFor('sync from genesis', async () => (await heights([victim]))[0]! >= target, 90_000);
      for (const hash of acknowledged) await waitCommitted(victim, hash);
      t.pass(`node${victim} synced ${target} blocks from genesis, each certificate verified`);
      await agree([0, 1, 2, 3], 'after resync');
    });

    await t.test('killing the primary: a view change happens and commits continue', async (t) => {
      const status = await get<Status>(`${testnet.api(0)}/v1/status`);
      // The primary rotates per height; kill the one that leads the next height's view 0.
      const primaryIndex = net.nodes.findIndex((n) => n.key === status.primary);
      t.ok(primaryIndex >= 0, `primary is node${primaryIndex}`);
      await testnet.signal(primaryIndex, 'SIGKILL');
      const alive = [0, 1, 2, 3].filter((i) => i !== primaryIndex);
      const viewsBefore = await Promise.all(
        alive.map(async (i) => (await get<Status>(`${testnet.api(i)}/v1/status`)).view),
      );
      const more = await Promise.all(alive.map((i) => submitTo(i)));
      for (const hash of more) for (const i of alive) await waitCommitted(i, hash);
      acknowledged.push(...more);
      const metrics = await (await fetch(`${testnet.api(alive[0]!)}/metrics`)).text();
      const viewChanges = Number(/^datagrant_view_changes_total (\d+)/m.exec(metrics)?.[1] ?? '0');
      t.ok(
        viewChanges > 0,
        `a view change happened (views before: ${viewsBefore.join(',')}; view changes counted: ${viewChanges})`,
      );
      testnet.start(primaryIndex);
      await testnet.waitReady(primaryIndex, 60_000);
      for (const hash of acknowledged) await waitCommitted(primaryIndex, hash);
      await agree([0, 1, 2, 3], 'after primary restart');
    });
  },
);
