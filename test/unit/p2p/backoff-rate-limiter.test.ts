import '../../../src/common/polyfill.js';
import t from 'tap';
import { Backoff } from '../../../src/p2p/backoff.js';
import { PeerRateLimiter } from '../../../src/p2p/rate-limiter.js';

t.test('backoff doubles up to the cap and resets', async (t) => {
  const b = new Backoff({ minMs: 100, maxMs: 1000, jitter: 0 });
  t.same([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000, 1000]);
  b.reset();
  t.equal(b.next(), 100);
});

t.test('backoff jitter stays within its fraction', async (t) => {
  const lo = new Backoff({ minMs: 1000, maxMs: 1000, jitter: 0.2, random: () => 0 });
  const hi = new Backoff({ minMs: 1000, maxMs: 1000, jitter: 0.2, random: () => 0.999999 });
  t.equal(lo.next(), 800);
  t.equal(hi.next(), 1200);
});

t.test('rate limiter allows the burst, then the rate', async (t) => {
  let now = 0;
  const limiter = new PeerRateLimiter({ ratePerSecond: 10, burst: 3, now: () => now });
  t.same(
    [1, 2, 3, 4].map(() => limiter.take('a')),
    [true, true, true, false],
    'burst of 3',
  );
  t.ok(limiter.take('b'), 'peers have separate buckets');
  now += 100;
  t.same([limiter.take('a'), limiter.take('a')], [true, false], 'one token per 100 ms');
  now += 10_000;
  t.same(
    [1, 2, 3, 4].map(() => limiter.take('a')),
    [true, true, true, false],
    'refill capped at the burst',
  );
  limiter.forget('a');
  t.ok(limiter.take('a'), 'a forgotten peer starts full');
});
