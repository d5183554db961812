import fc from 'fast-check';
import t from 'tap';
import { VerifiedSignatures } from '../../../src/node/verified-signatures.js';

const hashOf = (n: number) => n.toString(16).padStart(64, '0');
const sigOf = (n: number) => n.toString(16).padStart(128, 'e');

t.test('remembers exactly the latest pair of each of the last `limit` hashes written', async (t) => {
  // Hashes from a small pool, each with one of two signatures, so pairs repeat and supersede.
  const adds = fc.array(fc.tuple(fc.nat(40), fc.nat(1)), { minLength: 1, maxLength: 400, size: 'max' });
  fc.assert(
    fc.property(adds, fc.integer({ min: 1, max: 64 }), (run, limit) => {
      const cache = new VerifiedSignatures(limit);
      // The model: the pairs that took a slot, in order (adding a pair already held takes none).
      const slots: [number, number][] = [];
      for (const [h, s] of run) {
        const held = (() => {
          const recent = slots.slice(-limit);
          const latest = recent.findLast(([x]) => x === h);
          return latest !== undefined && latest[1] === s && slots.findLast(([x]) => x === h) === latest;
        })();
        if (!held) slots.push([h, s]);
        cache.add(hashOf(h), sigOf(s));
        const recent = slots.slice(-limit);
        for (let x = 0; x <= 40; x++) {
          const latest = slots.findLast(([y]) => y === x);
          for (const y of [0, 1]) {
            const expected = latest !== undefined && latest[1] === y && recent.includes(latest);
            if (cache.has(hashOf(x), sigOf(y)) !== expected) return false;
          }
        }
        if (cache.size > limit) return false;
      }
      return true;
    }),
    { numRuns: 200 },
  );
  t.pass('matches the model');
});

t.test('a malformed hash or signature is never remembered', async (t) => {
  const cache = new VerifiedSignatures(4);
  cache.add(hashOf(1), 'not hex');
  cache.add('short', sigOf(1));
  t.equal(cache.size, 0);
  cache.add(hashOf(1), sigOf(1));
  t.ok(cache.has(hashOf(1), sigOf(1)));
  t.notOk(cache.has(hashOf(1), sigOf(1).toUpperCase()), 'upper case is another signature');
  t.notOk(cache.has(hashOf(1), `${sigOf(1)}00`));
  t.throws(() => new VerifiedSignatures(0), RangeError);
});
