import fc from 'fast-check';
import t from 'tap';
import { bytesToHex } from '../../../src/common/bytes.js';
import { HashIndex } from '../../../src/ledger/hash-index.js';

/**
 * Keys whose first two words (all the home slot depends on) come from a pool of three values, so
 * many keys share a home slot: long probe runs, wrapping past the table's end, shifted by deletes.
 */
const key = fc.tuple(fc.nat(2), fc.nat(2), fc.nat(40)).map(([a, b, c]) => {
  const bytes = new Uint8Array(32);
  bytes[0] = a;
  bytes[4] = b;
  bytes[31] = c;
  return bytes;
});

const op = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key, value: fc.double({ noNaN: true }) }),
  fc.record({ kind: fc.constant('delete' as const), key }),
  fc.record({ kind: fc.constant('get' as const), key }),
);

t.test('behaves as a Map under any run of sets, deletes and gets, growing from 8 slots', async (t) => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 50, maxLength: 600, size: 'max' }), fc.boolean(), (ops, byHex) => {
      const index = new HashIndex(8);
      const model = new Map<string, number>();
      for (const o of ops) {
        const hex = bytesToHex(o.key);
        if (o.kind === 'set') {
          if (byHex) index.setHex(`seen/${hex}`, o.value, 5);
          else index.set(o.key, o.value);
          model.set(hex, o.value);
        } else if (o.kind === 'delete') {
          const had = byHex ? index.deleteHex(hex) : index.delete(o.key);
          if (had !== model.delete(hex)) return false;
        } else if ((byHex ? index.getHex(hex) : index.get(o.key)) !== model.get(hex)) return false;
        if (index.size !== model.size) return false;
      }
      // Every key of the pool answers as the model does, held or not.
      for (const [hex, value] of model) if (index.getHex(hex) !== value) return false;
      return true;
    }),
    { numRuns: 400 },
  );
  t.pass('matches the model');
});

t.test('a key that is not 64 lower-case hex digits is never found and cannot be set', async (t) => {
  const index = new HashIndex();
  const hex = 'ab'.repeat(32);
  index.setHex(hex, 7);
  t.equal(index.getHex(hex), 7);
  t.equal(index.getHex(hex.toUpperCase()), undefined, 'upper case is another key');
  t.equal(index.getHex(hex.slice(1)), undefined, 'too short');
  t.equal(index.getHex(`${hex}0`), undefined, 'too long');
  t.equal(index.getHex(`${'zz'}${hex.slice(2)}`), undefined, 'not hex');
  t.equal(index.deleteHex('xyz'), false);
  t.equal(index.setHex('not hex', 1), false);
  t.throws(() => index.set(new Uint8Array(31), 1), RangeError);
  t.equal(index.size, 1);
});

t.test('holds half a million hashes in flat buffers of about 80 bytes each', async (t) => {
  const index = new HashIndex();
  const bytes = new Uint8Array(32);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 500_000; i++) {
    view.setUint32(0, Math.imul(i, 0x9e3779b1));
    view.setUint32(28, i);
    index.set(bytes, i);
  }
  t.equal(index.size, 500_000);
  t.ok(index.bytes / index.size < 100, `${(index.bytes / index.size).toFixed(1)} bytes per entry`);
  view.setUint32(0, Math.imul(123_456, 0x9e3779b1));
  view.setUint32(28, 123_456);
  t.equal(index.get(bytes), 123_456);
});
