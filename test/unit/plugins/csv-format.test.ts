import fc from 'fast-check';
import t from 'tap';
import { isDatagrantError } from '../../../src/common/errors.js';
import { formatCsv, parseCsv } from '../../../src/plugins/csv-format.js';

t.test('parses quoted fields, doubled quotes, embedded delimiters and line breaks', async (t) => {
  const text = 'a,b,c\r\n"x, y","say ""hi""","two\r\nlines"\r\nplain,,"" \r\n';
  t.throws(() => parseCsv(text), { code: 'CSV_MALFORMED' }, 'space after closing quote is refused');
  const ok = 'a,b,c\r\n"x, y","say ""hi""","two\r\nlines"\r\nplain,,""\r\n';
  t.same(parseCsv(ok), [
    ['a', 'b', 'c'],
    ['x, y', 'say "hi"', 'two\r\nlines'],
    ['plain', '', ''],
  ]);
});

t.test('accepts LF, a BOM, no final line end, and skips empty lines', async (t) => {
  t.same(parseCsv('\ufeffa,b\n1,2\n\n3,4'), [
    ['a', 'b'],
    ['1', '2'],
    ['3', '4'],
  ]);
  t.same(parseCsv('a\n\n', { skipEmptyLines: false }), [['a'], ['']]);
  t.same(parseCsv(''), []);
  t.same(parseCsv('""'), [['']], 'an empty quoted field is a row');
  t.same(parseCsv('a;"b;c"', { delimiter: ';' }), [['a', 'b;c']]);
});

t.test('refuses malformed input, naming the line', async (t) => {
  const cases: [string, RegExp][] = [
    ['a,b\n"open', /line 2: unterminated/],
    ['a,b\nx"y,z', /line 2: a quote inside an unquoted field/],
    ['a,b\n"x"y,z', /line 2: text after a closing quote/],
    ['"a\nb"\n"c"d', /line 3: text after a closing quote/],
  ];
  for (const [input, message] of cases) {
    t.throws(() => parseCsv(input), { code: 'CSV_MALFORMED', message }, JSON.stringify(input));
  }
  t.throws(() => parseCsv('a', { delimiter: '"' }), { code: 'CSV_MALFORMED' });
  try {
    parseCsv('"x');
  } catch (err) {
    t.ok(isDatagrantError(err, 'CSV_MALFORMED'));
    t.equal((err as { meta: { line: number } }).meta.line, 1);
  }
});

t.test('formatCsv then parseCsv is the identity (property)', async (t) => {
  const field = fc.string({ unit: fc.constantFrom('a', 'b', ',', '"', '\r', '\n', ' ', '中', 'x') });
  const rows = fc.array(fc.array(field, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 6 });
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(rows, (input) => {
        // A row of one empty field is an empty line, which the reader skips by default.
        const parsed = parseCsv(formatCsv(input), { skipEmptyLines: false });
        return JSON.stringify(parsed) === JSON.stringify(input);
      }),
      { numRuns: 500 },
    ),
  );
});

t.test('formatCsv quotes only what needs it', async (t) => {
  t.equal(formatCsv([['a', 'b c', 'd,e', 'f"g', ' lead', 'h\ni']]), 'a,b c,"d,e","f""g"," lead","h\ni"\r\n');
});
