import fc from 'fast-check';
import t from 'tap';
import { bytesToHex, equalBytes, fromBase64url, fromHex, toBase64url } from '../../../src/common/bytes.js';
import { bytes } from '../../helpers/arbitraries.js';

const BAD = { code: 'CRYPTO_BAD_ENCODING' };
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

t.test('base64url: RFC 4648 §10 vectors, unpadded', async (t) => {
  const vectors: [string, string][] = [
    ['', ''],
    ['f', 'Zg'],
    ['fo', 'Zm8'],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg'],
    ['fooba', 'Zm9vYmE'],
    ['foobar', 'Zm9vYmFy'],
  ];
  for (const [plain, encoded] of vectors) {
    t.equal(toBase64url(utf8(plain)), encoded, `encode "${plain}"`);
    t.same(fromBase64url(encoded), utf8(plain), `decode "${encoded}"`);
  }
  // The URL-safe alphabet: 0xfb 0xff -> "-_8" (standard base64 would be "+/8").
  t.equal(toBase64url(new Uint8Array([0xfb, 0xff])), '-_8');
});

t.test('base64url: property round trips and agreement with Buffer', async (t) => {
  fc.assert(
    fc.property(bytes(0, 200), (b) => {
      const text = toBase64url(b);
      return (
        text === Buffer.from(b).toString('base64url') &&
        equalBytes(fromBase64url(text), b) &&
        toBase64url(fromBase64url(text)) === text
      );
    }),
    { numRuns: 500 },
  );
  t.pass('held');
});

t.test('base64url: every accepted string is the canonical encoding of its bytes', async (t) => {
  fc.assert(
    fc.property(fc.stringMatching(/^[A-Za-z0-9_-]{0,12}$/), (text) => {
      let decoded: Uint8Array;
      try {
        decoded = fromBase64url(text);
      } catch {
        return true;
      }
      return toBase64url(decoded) === text;
    }),
    { numRuns: 1000 },
  );
  t.pass('held');
});

t.test('base64url: malformed input is refused with CRYPTO_BAD_ENCODING', async (t) => {
  const cases: [string, unknown][] = [
    ['impossible length 1', 'A'],
    ['impossible length 5', 'AAAAA'],
    ['padding', 'Zg=='],
    ['standard alphabet +', 'ab+c'],
    ['standard alphabet /', 'ab/c'],
    ['whitespace', 'Zm9 v'],
    ['non-ASCII', 'Zm9é'],
    ['non-zero trailing bits (2 chars)', 'Zh'],
    ['non-zero trailing bits (3 chars)', 'Zm9'],
    ['not a string', 42],
  ];
  for (const [name, input] of cases) {
    t.throws(() => fromBase64url(input as string, 'field'), BAD, name);
  }
  t.throws(() => fromBase64url('A', 'nonce'), { message: /nonce/ }, 'the error names the field');
});

t.test('hex: round trips, strict lower case, lengths', async (t) => {
  fc.assert(
    fc.property(bytes(0, 64), (b) => {
      const hex = bytesToHex(b);
      return hex === Buffer.from(b).toString('hex') && equalBytes(fromHex(hex), b);
    }),
    { numRuns: 300 },
  );
  t.same(fromHex('00ff10'), new Uint8Array([0, 255, 16]));
  t.same(fromHex('abcd', 'key', 2), new Uint8Array([0xab, 0xcd]));
  const cases: [string, () => unknown][] = [
    ['upper case', () => fromHex('ABCD')],
    ['odd length', () => fromHex('abc')],
    ['non-hex', () => fromHex('zz')],
    ['0x prefix', () => fromHex('0xab')],
    ['wrong length', () => fromHex('abcd', 'key', 3)],
    ['not a string', () => fromHex(7 as unknown as string)],
  ];
  for (const [name, fn] of cases) t.throws(fn, BAD, name);
  t.throws(() => fromHex('abcd', 'signer', 32), { message: /signer must be 32 bytes/ });
});

t.test('equalBytes', async (t) => {
  t.ok(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])));
  t.notOk(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3])));
  t.notOk(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3])));
  t.ok(equalBytes(new Uint8Array(0), new Uint8Array(0)));
});
