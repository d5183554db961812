/**
 * Loopback measurements of the libp2p network (not a test: tap does not pick it up). Two
 * validators in this process; prints gossip latency and throughput and request round trips.
 *
 *   node --import tsx test/e2e/p2p-bench.ts
 */
import '../../src/common/polyfill.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { generateSigningKeyPair } from '../../src/common/crypto.js';
import { Libp2pNetwork } from '../../src/p2p/index.js';

const pairs = [generateSigningKeyPair(), generateSigningKeyPair()];
const keys = pairs.map((p) => bytesToHex(p.publicKey));
const node = (i: number, bootstrap: string[]): Libp2pNetwork =>
  new Libp2pNetwork({
    secretKey: pairs[i]!.secretKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    allowedKeys: keys,
    heartbeatIntervalMs: 100,
  });

function payload(i: number, size: number): Uint8Array {
  const m = new Uint8Array(size);
  new DataView(m.buffer).setUint32(0, i);
  m[size - 1] = 1;
  return m;
}

function pct(sorted: number[], p: number): string {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!.toFixed(2);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const a = node(0, []);
await a.start();
const b = node(1, a.listenAddresses());
await b.start();
const arrivals = new Map<number, () => void>();
let count = 0;
b.subscribe('txs', (data) => {
  count++;
  arrivals.get(new DataView(data.buffer, data.byteOffset).getUint32(0))?.();
});
a.subscribe('txs', () => undefined);
b.handle('sync', async (req) => req);
while (!a.topicPeers('txs').includes(keys[1]!) || !b.topicPeers('txs').includes(keys[0]!)) await sleep(10);

const lat: number[] = [];
for (let i = 0; i < 500; i++) {
  const seen = new Promise<void>((resolve) => arrivals.set(i, resolve));
  const t0 = performance.now();
  await a.publish('txs', payload(i, 256));
  await seen;
  lat.push(performance.now() - t0);
}
lat.sort((x, y) => x - y);
console.log(`gossip latency, 256 B, one at a time: p50 ${pct(lat, 50)} ms, p99 ${pct(lat, 99)} ms`);

const total = 5000;
const before = count;
const t1 = performance.now();
for (let i = 0; i < total; i++) await a.publish('txs', payload(1_000_000 + i, 512));
while (count - before < total) await sleep(1);
console.log(`gossip throughput, 512 B: ${Math.round(total / ((performance.now() - t1) / 1000))} msg/s`);

const rtt: number[] = [];
for (let i = 0; i < 500; i++) {
  const t0 = performance.now();
  await a.request(keys[1]!, 'sync', payload(i, 128));
  rtt.push(performance.now() - t0);
}
rtt.sort((x, y) => x - y);
console.log(`request round trip, 128 B: p50 ${pct(rtt, 50)} ms, p99 ${pct(rtt, 99)} ms`);

const t2 = performance.now();
await Promise.all(Array.from({ length: 1000 }, (_, i) => a.request(keys[1]!, 'sync', payload(i, 128))));
console.log(
  `requests, 1000 issued at once (16 in flight): ${Math.round(1000 / ((performance.now() - t2) / 1000))} req/s`,
);

await b.stop();
await a.stop();
