/**
 * Gossip transport cost on loopback, in one process: four validators (libp2p, Noise, Yamux,
 * gossipsub, fully connected) publish transaction gossip in turn; reports CPU per transaction
 * (all four nodes together) and delivery time, for eager relaying on and off and for several
 * batch sizes. Not part of `npm run bench` (it is a tuning tool); BENCHMARKS.md quotes it.
 *
 *   node --import tsx scripts/bench/gossip.ts
 */
import '../../src/common/polyfill.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { generateSigningKeyPair } from '../../src/common/crypto.js';
import type { KeySet } from '../../src/common/keyfile.js';
import { decodeTxGossip, encodeTxGossip } from '../../src/node/tx-gossip.js';
import { Libp2pNetwork } from '../../src/p2p/index.js';
import { prepareInstitutionAdds } from './load.js';
import { latencySummary, printTable, round, sleep } from './report.js';

const N = 4;

async function network(
  relay: boolean,
  onMessage: (data: Uint8Array) => void,
): Promise<{ nodes: Libp2pNetwork[]; keys: string[] }> {
  const pairs = Array.from({ length: N }, () => generateSigningKeyPair());
  const keys = pairs.map((p) => bytesToHex(p.publicKey));
  const nodes: Libp2pNetwork[] = [];
  for (let i = 0; i < N; i++) {
    const node = new Libp2pNetwork({
      secretKey: pairs[i]!.secretKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: nodes.flatMap((n) => n.listenAddresses()),
      allowedKeys: keys,
      heartbeatIntervalMs: 200,
      maxMessageBytes: 16 * 1024 * 1024,
      relay,
    });
    node.subscribe('txs', onMessage);
    await node.start();
    nodes.push(node);
  }
  for (;;) {
    if (nodes.every((n, i) => keys.every((k, j) => i === j || n.topicPeers('txs').includes(k)))) break;
    await sleep(20);
  }
  return { nodes, keys };
}

async function main(): Promise<void> {
  const admin: KeySet = {
    label: 'admin',
    signing: generateSigningKeyPair(),
    encryption: { publicKey: new Uint8Array(32), secretKey: new Uint8Array(32) },
  };
  const rows: (string | number)[][] = [];
  for (const relay of [true, false]) {
    let delivered = 0;
    const arrival = new Map<string, number>();
    const { nodes } = await network(relay, (data) => {
      for (const tx of decodeTxGossip(data) ?? []) {
        delivered++;
        const nonce = (tx as { nonce: string }).nonce;
        arrival.set(nonce, Math.max(arrival.get(nonce) ?? 0, performance.now()));
      }
    });
    await sleep(500);
    let seq = 0;
    for (const batch of [1, 10, 100]) {
      const count = 2000;
      const txs = prepareInstitutionAdds('datagrant-gossip', admin, count, `g${relay}${seq++}`).map(
        (p) => JSON.parse(p.json) as { nonce: string },
      );
      delivered = 0;
      arrival.clear();
      const sent = new Map<string, number>();
      const cpu = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < count; i += batch) {
        const slice = txs.slice(i, i + batch);
        const at = performance.now();
        for (const tx of slice) sent.set(tx.nonce, at);
        for (const message of encodeTxGossip(slice as never))
          await nodes[(i / batch) % N]!.publish('txs', message);
        if (i % (batch * 20) === 0) await sleep(1);
      }
      const expected = count * (N - 1);
      const deadline = performance.now() + 30_000;
      while (delivered < expected && performance.now() < deadline) await sleep(5);
      const used = process.cpuUsage(cpu);
      const latency = [...sent].map(([nonce, at]) => (arrival.get(nonce) ?? Number.NaN) - at);
      rows.push([
        relay ? 'relay (mesh D=4)' : 'no relay (flood publish + lazy repair)',
        batch,
        round(((used.user + used.system) / count) * 1, 1),
        `${delivered}/${expected}`,
        round(count / ((performance.now() - t0) / 1000)),
        latencySummary(latency).p50,
        latencySummary(latency).p99,
      ]);
    }
    for (const node of nodes) await node.stop();
  }
  printTable(
    `Gossip of transactions among ${N} validators in one process (CPU of all four per transaction)`,
    ['gossip', 'txs/message', 'µs CPU per tx', 'delivered', 'tx/s', 'p50 ms', 'p99 ms'],
    rows,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  },
);
