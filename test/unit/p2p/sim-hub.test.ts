import '../../../src/common/polyfill.js';
import t from 'tap';
import { bytesToHex } from '../../../src/common/bytes.js';
import { generateSigningKeyPair } from '../../../src/common/crypto.js';
import {
  type Scheduler,
  SimHub,
  type SimHubOptions,
  SimNetwork,
  seededRandom,
} from '../../helpers/sim-network.js';

/** A stopped clock that only moves when told. */
class ManualClock {
  now = 0;
  private tasks: { at: number; seq: number; fn: () => void }[] = [];
  private seq = 0;
  readonly schedule: Scheduler = (ms, fn) => {
    const task = { at: this.now + ms, seq: this.seq++, fn };
    this.tasks.push(task);
    return () => {
      this.tasks = this.tasks.filter((x) => x !== task);
    };
  };

  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      this.tasks.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.tasks[0];
      if (next === undefined || next.at > end) break;
      this.tasks.shift();
      this.now = next.at;
      next.fn();
    }
    this.now = end;
  }
}

async function simNodes(count: number, hubOptions: SimHubOptions) {
  const hub = new SimHub(hubOptions);
  const pairs = Array.from({ length: count }, (_, i) =>
    generateSigningKeyPair(new Uint8Array(32).fill(i + 1)),
  );
  const keys = pairs.map((p) => bytesToHex(p.publicKey));
  const nets = pairs.map((p) => new SimNetwork({ secretKey: p.secretKey, allowedKeys: keys }, { hub }));
  const inbox = nets.map(() => [] as string[]);
  for (const [i, net] of nets.entries()) {
    net.subscribe('txs', (data) => inbox[i]!.push(new TextDecoder().decode(data)));
  }
  for (const net of nets) await net.start();
  return { hub, keys, nets, inbox };
}

t.test('seeded generator is deterministic', async (t) => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const xs = Array.from({ length: 5 }, () => a());
  t.same(
    xs,
    Array.from({ length: 5 }, () => b()),
  );
  t.ok(xs.every((x) => x >= 0 && x < 1));
});

t.test('delays follow the manual clock', async (t) => {
  const clock = new ManualClock();
  const { nets, inbox, keys } = await simNodes(2, {
    delayMs: 50,
    schedule: clock.schedule,
    now: () => clock.now,
  });
  nets[1]!.handle('sync', async (req) => req);
  await nets[0]!.publish('txs', new TextEncoder().encode('m'));
  await clock.advance(49);
  t.same(inbox[1], [], 'not yet at 49 ms');
  await clock.advance(1);
  t.same(inbox[1], ['m'], 'delivered at 50 ms');
  let answered = false;
  const pending = nets[0]!.request(keys[1]!, 'sync', Uint8Array.of(5)).then((r) => {
    answered = true;
    return r;
  });
  await clock.advance(99);
  t.notOk(answered, 'no answer before the round trip');
  await clock.advance(1);
  t.same([...(await pending)], [5], 'answered after 100 ms');
  const slow = t.rejects(
    nets[0]!.request(keys[1]!, 'sync', Uint8Array.of(1), { timeoutMs: 20 }),
    { code: 'P2P_TIMEOUT' },
    'timeout on the manual clock',
  );
  await clock.advance(20);
  await slow;
});

t.test('the duplicate window follows the hub clock', async (t) => {
  const clock = new ManualClock();
  const { nets, inbox } = await simNodes(2, { schedule: clock.schedule, now: () => clock.now });
  const m = new TextEncoder().encode('same');
  await nets[0]!.publish('txs', m);
  await nets[0]!.publish('txs', m);
  await clock.advance(1);
  t.same(inbox[1], ['same'], 'once inside the window');
  await clock.advance(60_000);
  await nets[0]!.publish('txs', m);
  await clock.advance(1);
  t.same(inbox[1], ['same', 'same'], 'again after the window');
});

t.test('gossip loss is reproducible from the seed', async (t) => {
  const run = async (seed: number): Promise<string[]> => {
    const clock = new ManualClock();
    const { nets, inbox } = await simNodes(2, { dropRate: 0.5, seed, schedule: clock.schedule });
    for (let i = 0; i < 100; i++) await nets[0]!.publish('txs', new TextEncoder().encode(`m${i}`));
    await clock.advance(1);
    return inbox[1]!;
  };
  const first = await run(7);
  t.same(await run(7), first, 'same seed, same losses');
  t.ok(first.length > 20 && first.length < 80, `about half delivered (${first.length})`);
  t.notSame(await run(8), first, 'another seed, other losses');
});

t.test('partitions cut links until healed', async (t) => {
  const { hub, nets, inbox, keys } = await simNodes(3, {});
  hub.partition([[keys[0]!, keys[1]!], [keys[2]!]]);
  t.same(nets[2]!.peers(), [], 'isolated node has no peers');
  t.same(nets[0]!.peers(), [keys[1]], 'the others still see each other');
  await nets[0]!.publish('txs', new TextEncoder().encode('split'));
  await t.rejects(nets[2]!.request(keys[0]!, 'sync', Uint8Array.of(1)), { code: 'P2P_PEER_UNREACHABLE' });
  await new Promise((resolve) => setTimeout(resolve, 10));
  t.same(inbox[1], ['split']);
  t.same(inbox[2], [], 'nothing crosses the partition');
  hub.heal();
  t.same(nets[2]!.peers().sort(), [keys[0], keys[1]].sort(), 'healed');
  await nets[0]!.publish('txs', new TextEncoder().encode('healed'));
  await new Promise((resolve) => setTimeout(resolve, 10));
  t.same(inbox[2], ['healed']);
});

t.test('governance can retire a validator', async (t) => {
  const { nets, keys } = await simNodes(3, {});
  for (const net of nets) net.setAllowedKeys(keys.slice(0, 2));
  t.same(nets[0]!.peers(), [keys[1]], 'retired validator no longer a peer');
  t.same(nets[2]!.peers(), [], 'retired validator sees nobody who accepts it');
  await t.rejects(nets[0]!.request(keys[2]!, 'sync', Uint8Array.of(1)), { code: 'P2P_NOT_VALIDATOR' });
});

t.test('a second running network with the same key is refused', async (t) => {
  const { hub, nets, keys } = await simNodes(1, {});
  const pair = generateSigningKeyPair(new Uint8Array(32).fill(1));
  const twin = new SimNetwork({ secretKey: pair.secretKey, allowedKeys: keys }, { hub });
  await t.rejects(twin.start(), { code: 'P2P_BAD_CONFIG' });
  await nets[0]!.stop();
  await twin.start();
  t.ok(twin.isRunning(), 'allowed once the first one stopped');
});
