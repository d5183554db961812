/** fast-check arbitraries shared by property tests. */
import fc from 'fast-check';
import type { CanonicalValue } from '../../src/common/canonical.js';

/** Any well-formed string (full Unicode range, surrogate pairs but never lone surrogates). */
export const unicodeString = (maxLength = 12): fc.Arbitrary<string> =>
  fc.string({ unit: 'binary', maxLength });

/**
 * Values in the canonical JSON domain: null, booleans, safe integers, well-formed strings,
 * arrays and plain objects, nested a few levels.
 */
export const canonicalValue: fc.Arbitrary<CanonicalValue> = fc.letrec<{ value: CanonicalValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 5 },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.integer({ min: -1000, max: 1000 }),
    unicodeString(),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(unicodeString(6), tie('value'), { maxKeys: 6 }),
  ),
})).value;

/** Random bytes of length between `min` and `max`. */
export const bytes = (min = 0, max = 96): fc.Arbitrary<Uint8Array> =>
  fc.uint8Array({ minLength: min, maxLength: max });

/** 32 random bytes, e.g. a secret key or seed. */
export const seed32: fc.Arbitrary<Uint8Array> = fc.uint8Array({ minLength: 32, maxLength: 32 });
