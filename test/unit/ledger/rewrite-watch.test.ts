import fc from 'fast-check';
import t from 'tap';
import { RewriteWatch } from '../../../src/ledger/rewrite-watch.js';

const hashOf = (n: number) => n.toString(16).padStart(8, '0').repeat(8);

t.test('a hash written again after a covered height replaced it is always remembered', async (t) => {
  // Heights of (replaced, written) hashes drawn from a small pool, so rewrites are common.
  const heights = fc.array(
    fc.tuple(fc.uniqueArray(fc.nat(30), { maxLength: 6 }), fc.uniqueArray(fc.nat(30), { maxLength: 6 })),
    { minLength: 1, maxLength: 80 },
  );
  fc.assert(
    fc.property(heights, fc.integer({ min: 1, max: 16 }), (run, lines) => {
      const keep = 20;
      const watch = new RewriteWatch(1, keep, 4, 1 << Math.ceil(Math.log2(lines)));
      const replacedAt = new Map<string, number[]>();
      for (let h = 1; h <= run.length; h++) {
        const [replaced, written] = run[h - 1]!;
        watch.noteReplaced(
          h,
          replaced.map((n) => hashOf(n)),
        );
        for (const n of replaced) replacedAt.set(hashOf(n), [...(replacedAt.get(hashOf(n)) ?? []), h]);
        watch.noteWritten(
          h,
          written.map((n) => hashOf(n)),
        );
        // The model: a hash replaced at a covered a ≤ h and written at h must be remembered.
        for (const n of written) {
          const hash = hashOf(n);
          if ((replacedAt.get(hash) ?? []).some((a) => watch.covers(a, h)) && !watch.mayBeRewritten(hash))
            return false;
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass('no rewrite is missed');
});

t.test('covers only heights it saw and the window it keeps; forgets old rewrites', async (t) => {
  const watch = new RewriteWatch(10, 8, 4, 16);
  t.notOk(watch.covers(9, 12), 'before it started');
  t.ok(watch.covers(10, 17));
  t.notOk(watch.covers(10, 18), 'beyond the heights it keeps');
  const a = 'ab'.repeat(32);
  const b = 'cd'.repeat(32);
  watch.noteReplaced(10, [a]);
  watch.noteWritten(11, [a, b]);
  t.ok(watch.mayBeRewritten(a));
  watch.noteWritten(12, [a]);
  watch.forgetBefore(12);
  t.ok(watch.mayBeRewritten(a), 'a later rewrite is still remembered');
  watch.forgetBefore(13);
  t.notOk(watch.mayBeRewritten(a));
  t.ok(watch.remembered <= 1, 'a false positive at most');
});
