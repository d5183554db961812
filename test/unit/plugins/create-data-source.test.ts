import t from 'tap';
import { createDataSource, validateDataSourceConfig } from '../../../src/plugins/create-data-source.js';
import { CsvSource } from '../../../src/plugins/csv-source.js';
import { HttpJsonSource } from '../../../src/plugins/http-json-source.js';

const http = {
  kind: 'http-json',
  url: 'https://data.example.gov/v1/{type}/{subject}?from={dataFrom}&to={dataTo}',
  dataTypes: ['tax'],
  fields: { income: 'data.annualIncome' },
};

t.test('builds each kind', async (t) => {
  const h = createDataSource(http);
  t.ok(h instanceof HttpJsonSource);
  t.equal(h.name, 'http-json:data.example.gov');
  t.same(h.dataTypes, ['tax']);
  const c = createDataSource({ kind: 'csv', path: '/tmp/x.csv', dataType: 'property' });
  t.ok(c instanceof CsvSource);
  t.same(c.dataTypes, ['property']);
  t.same(await h.health(), { ok: true, detail: 'configured; no healthUrl to probe' });
});

t.test('fails fast naming the bad field', async (t) => {
  const cases: [string, unknown, string][] = [
    ['not an object', 'http-json', '(root)'],
    ['array', [], '(root)'],
    ['unknown kind', { kind: 'ftp' }, 'kind'],
    ['missing url', { ...http, url: undefined }, 'url'],
    ['unknown property', { ...http, extra: 1 }, 'extra'],
    ['bad data type', { ...http, dataTypes: ['salary'] }, 'dataTypes.0'],
    ['empty data types', { ...http, dataTypes: [] }, 'dataTypes'],
    ['bad field name', { ...http, fields: { 'bad name': 'data.x' } }, 'fields.bad name'],
    ['bad json path', { ...http, fields: { income: 'data..x' } }, 'fields.income'],
    ['header value type', { ...http, headers: { authorization: 5 } }, 'headers.authorization'],
    ['bad header name', { ...http, headers: { 'bad header': 'x' } }, 'headers.bad header'],
    [
      'csv bad field name',
      { kind: 'csv', path: 'x.csv', dataType: 'tax', fields: { '1x': 'a' } },
      'fields.1x',
    ],
    ['bad name', { ...http, name: 'has space' }, 'name'],
    ['unknown placeholder', { ...http, url: 'https://x.example/{subject}/{nationalId}' }, 'url'],
    ['no subject placeholder', { ...http, url: 'https://x.example/{type}' }, 'url'],
    ['not http', { ...http, url: 'file:///etc/{subject}' }, 'url'],
    ['not a URL', { ...http, url: 'no url {subject}' }, 'url'],
    ['bad health url', { ...http, healthUrl: 'nope' }, 'healthUrl'],
    [
      'no mapping for a type',
      { ...http, dataTypes: ['tax', 'property'], fields: undefined, fieldsByType: { tax: { a: 'b' } } },
      'fieldsByType.property',
    ],
    ['csv missing path', { kind: 'csv', dataType: 'tax' }, 'path'],
    [
      'csv bad conversion',
      { kind: 'csv', path: 'x.csv', dataType: 'tax', fields: { a: { column: 'a', as: 'float' } } },
      'fields.a',
    ],
    ['csv bad delimiter', { kind: 'csv', path: 'x.csv', dataType: 'tax', delimiter: '"' }, 'delimiter'],
  ];
  for (const [label, config, field] of cases) {
    try {
      createDataSource(config);
      t.fail(`${label}: accepted`);
    } catch (err) {
      const e = err as { code: string; meta: { field: string }; message: string };
      t.equal(e.code, 'PLUGIN_CONFIG_INVALID', `${label}: code`);
      t.equal(e.meta.field, field, `${label}: names ${field} (${e.message})`);
      t.match(e.message, `plugin config ${field}`, `${label}: message names the field`);
    }
  }
});

t.test('per-type mappings and type names are accepted', async (t) => {
  const config = validateDataSourceConfig({
    kind: 'http-json',
    url: 'http://127.0.0.1:9/{type}/{subject}',
    dataTypes: ['tax', 'property'],
    fieldsByType: { tax: { income: 'data.income' }, property: { area: 'data.items[0].area' } },
    typeNames: { tax: 'shuiwu' },
    headers: { 'x-api-key': 'secret' },
  });
  t.equal(config.kind, 'http-json');
  t.ok(createDataSource(config));
});
