import fc from 'fast-check';
import t from 'tap';
import { canonicalBytes, canonicalize } from '../../../src/common/canonical.js';
import { canonicalValue, unicodeString } from '../../helpers/arbitraries.js';

const UNSUPPORTED = { code: 'CANONICAL_UNSUPPORTED' };

t.test('RFC 8785 §3.2.3: keys sort by UTF-16 code units (non-BMP before U+FB33)', async (t) => {
  const input = JSON.parse(
    String.raw`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
  ) as unknown;
  t.equal(
    canonicalize(input),
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
      '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
  );
  // Code-point order would put U+1F600 last; UTF-16 order puts its high surrogate (D83D) first.
  t.equal(canonicalize({ '\ufb33': 1, '\u{1F600}': 2 }), '{"\u{1F600}":2,"\ufb33":1}');
  t.equal(canonicalize({ b: 1, a: 2, A: 3, aa: 4, '': 5 }), '{"":5,"A":3,"a":2,"aa":4,"b":1}');
});

t.test('RFC 8785 §3.2.2.2: string escaping', async (t) => {
  const input = JSON.parse(String.raw`"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"`) as unknown;
  t.equal(canonicalize(input), String.raw`"€$\u000f\nA'B\"\\\\\"/"`);
  const short: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };
  for (let c = 0; c < 0x20; c++) {
    const want = short[c] ?? `\\u00${c.toString(16).padStart(2, '0')}`;
    t.equal(canonicalize(String.fromCharCode(c)), `"${want}"`, `control char 0x${c.toString(16)}`);
  }
  for (const raw of ['\u007f', '\u2028', '\u2029', '/', '\u{1F600}', 'é']) {
    t.equal(canonicalize(raw), `"${raw}"`, `U+${raw.codePointAt(0)!.toString(16)} is not escaped`);
  }
  t.equal(canonicalize('"\\'), String.raw`"\"\\"`);
});

t.test('integers in the safe range serialise as ECMAScript does; -0 is 0', async (t) => {
  const cases: [number, string][] = [
    [0, '0'],
    [-0, '0'],
    [1, '1'],
    [-1, '-1'],
    [1234567890123, '1234567890123'],
    [9007199254740991, '9007199254740991'],
    [-9007199254740991, '-9007199254740991'],
  ];
  for (const [value, want] of cases) {
    t.equal(canonicalize(value), want, `integer ${want}`);
  }
  t.equal(canonicalize([1, -0, 42]), '[1,0,42]');
});

t.test('nested structures, literals and empty containers', async (t) => {
  t.equal(
    canonicalize({ b: [3, { z: null, a: true }], a: { c: 'x', b: [] }, e: {}, d: false }),
    '{"a":{"b":[],"c":"x"},"b":[3,{"a":true,"z":null}],"d":false,"e":{}}',
  );
  t.equal(canonicalize(null), 'null');
  t.equal(canonicalize([]), '[]');
  t.equal(canonicalize(Object.create(null) as object), '{}');
  t.equal(canonicalize(JSON.parse('{"__proto__":1}')), '{"__proto__":1}');
});

t.test('canonicalBytes is the UTF-8 of canonicalize', async (t) => {
  const value = { k: 'é\u{1F600}', n: 7 };
  t.same(canonicalBytes(value), new TextEncoder().encode(canonicalize(value)));
});

t.test('values outside the domain are refused with CANONICAL_UNSUPPORTED', async (t) => {
  const deep = (n: number): unknown => (n === 0 ? 1 : [deep(n - 1)]);
  const sparse: unknown[] = [1];
  sparse[2] = 3;
  const cases: [string, unknown][] = [
    ['float', 1.5],
    ['float in object', { a: 0.1 }],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['unsafe integer', 9007199254740992],
    ['1e21', 1e21],
    ['undefined', undefined],
    ['undefined in object', { a: undefined }],
    ['undefined in array', [1, undefined]],
    ['lone high surrogate', '\ud800'],
    ['lone low surrogate', 'a\udc00b'],
    ['reversed surrogate pair', '\udc00\ud800'],
    ['lone surrogate in key', { '\ud83d': 1 }],
    ['bigint', 1n],
    ['function', () => 1],
    ['symbol', Symbol('x')],
    ['Date', new Date(0)],
    ['Map', new Map()],
    ['Uint8Array', new Uint8Array(2)],
    ['class instance', new (class Foo {})()],
    ['sparse array', sparse],
    ['too deep', deep(40)],
  ];
  for (const [name, value] of cases) {
    t.throws(() => canonicalize(value), UNSUPPORTED, name);
  }
});

t.test('nesting limit is 32 levels below the root', async (t) => {
  const nest = (levels: number): unknown => {
    let v: unknown = 0;
    for (let i = 0; i < levels; i++) v = [v];
    return v;
  };
  // nest(n) puts the innermost scalar at depth n; the root is depth 0.
  t.equal(canonicalize(nest(32)), `${'['.repeat(32)}0${']'.repeat(32)}`);
  t.throws(() => canonicalize(nest(33)), UNSUPPORTED);
  const objNest = (levels: number): unknown => {
    let v: unknown = 'x';
    for (let i = 0; i < levels; i++) v = { k: v };
    return v;
  };
  t.doesNotThrow(() => canonicalize(objNest(32)));
  t.throws(() => canonicalize(objNest(33)), UNSUPPORTED);
});

t.test('property: canonical text is a fixed point of JSON.parse + canonicalize', async (t) => {
  fc.assert(
    fc.property(canonicalValue, (value) => {
      const text = canonicalize(value);
      return canonicalize(JSON.parse(text)) === text;
    }),
    { numRuns: 500 },
  );
  t.pass('held');
});

t.test('property: the order keys were inserted in does not matter', async (t) => {
  const entries = fc.uniqueArray(fc.tuple(unicodeString(6), canonicalValue), {
    selector: ([k]) => k,
    maxLength: 8,
  });
  fc.assert(
    fc.property(
      entries.chain((es) =>
        fc.tuple(fc.constant(es), fc.shuffledSubarray(es, { minLength: es.length, maxLength: es.length })),
      ),
      ([ordered, shuffled]) => {
        const a = canonicalize(Object.fromEntries(ordered));
        const b = canonicalize(Object.fromEntries(shuffled));
        const c = canonicalize(Object.fromEntries([...ordered].reverse()));
        return a === b && a === c;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('key order independence held');
});

t.test('property: matches an independent reference serialiser and is valid UTF-8', async (t) => {
  fc.assert(
    fc.property(canonicalValue, (value) => {
      const bytes = canonicalBytes(value);
      const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      return text === canonicalize(value) && text === reference(value);
    }),
    { numRuns: 300 },
  );
  t.pass('held');
});

// Reference: keys ordered by an explicit code-unit comparison (not Array#sort's default), scalars
// through JSON.stringify. Independent of the implementation's traversal.
function compareCodeUnits(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function reference(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).sort(compareCodeUnits);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${reference(record[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
