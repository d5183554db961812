import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { silentLogger } from '../../../src/common/logger.js';
import { createDataSource } from '../../../src/plugins/create-data-source.js';
import type { FetchContext } from '../../../src/plugins/data-source.js';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const ctx = (): FetchContext => ({ signal: new AbortController().signal, logger: silentLogger });

const mapped = {
  kind: 'csv',
  path: 'social-insurance.csv',
  dataType: 'social-insurance',
  fields: {
    name: 'name',
    employer: 'employer',
    monthlyBase: { column: 'monthly_base', as: 'integer' },
    months: { column: 'months', as: 'integer' },
    active: { column: 'active', as: 'boolean' },
    note: 'note',
  },
};

t.test('reads quoted fields with commas, doubled quotes and line breaks', async (t) => {
  const source = createDataSource(mapped, { baseDir: fixtures });
  t.equal(source.name, 'csv:social-insurance.csv');
  t.same(source.dataTypes, ['social-insurance']);
  const alice = await source.fetch({ subject: 'alice-001', type: 'social-insurance' }, ctx());
  t.same(alice.fields, {
    name: 'Zhang, Wei',
    employer: 'Acme "North" Ltd',
    monthlyBase: 8500,
    months: 36,
    active: true,
    note: 'line one\r\nline two',
  });
  t.equal(alice.source, 'csv:social-insurance.csv');
  const raw = new TextDecoder().decode(alice.raw);
  t.match(raw, /^subject,name,employer/, 'raw is the header and the row');
  t.match(raw, /"Acme ""North"" Ltd"/);
  t.notMatch(raw, /bob-0002/, 'raw holds only this subject');

  const bob = await source.fetch({ subject: 'bob-0002', type: 'social-insurance' }, ctx());
  t.same(bob.fields, {
    name: 'Li Na',
    employer: 'Plain Co',
    monthlyBase: null,
    months: 12,
    active: false,
    note: null,
  });
  const carol = await source.fetch({ subject: 'carol-03', type: 'social-insurance' }, ctx());
  t.same(carol.fields.name, 'Wang "Xiao" Hong', 'a quoted subject cell matches too');
  t.same(carol.fields.active, true, 'booleans are case-insensitive');
  t.same(carol.fields.note, 'trailing, comma,');
});

t.test('without a mapping, every other column is a string field', async (t) => {
  const source = createDataSource(
    { kind: 'csv', name: 'si-file', path: 'social-insurance.csv', dataType: 'social-insurance' },
    { baseDir: fixtures },
  );
  t.equal(source.name, 'si-file');
  const alice = await source.fetch({ subject: 'alice-001', type: 'social-insurance' }, ctx());
  t.same(Object.keys(alice.fields), ['name', 'employer', 'monthly_base', 'months', 'active', 'note']);
  t.equal(alice.fields.monthly_base, '8500');
});

t.test(
  'errors: not found, wrong type, bad cells, duplicates, malformed, missing file and column',
  async (t) => {
    const source = createDataSource(mapped, { baseDir: fixtures });
    await t.rejects(source.fetch({ subject: 'nobody-1', type: 'social-insurance' }, ctx()), {
      code: 'PLUGIN_NOT_FOUND',
    });
    await t.rejects(source.fetch({ subject: 'alice-001', type: 'tax' }, ctx()), {
      code: 'PLUGIN_CONFIG_INVALID',
    });

    const badInt = createDataSource(
      { ...mapped, fields: { n: { column: 'name', as: 'integer' } } },
      { baseDir: fixtures },
    );
    await t.rejects(badInt.fetch({ subject: 'alice-001', type: 'social-insurance' }, ctx()), {
      code: 'PLUGIN_BAD_RESPONSE',
      message: /field n is not an integer/,
    });
    const badBool = createDataSource(
      { ...mapped, fields: { b: { column: 'months', as: 'boolean' } } },
      { baseDir: fixtures },
    );
    await t.rejects(badBool.fetch({ subject: 'alice-001', type: 'social-insurance' }, ctx()), {
      code: 'PLUGIN_BAD_RESPONSE',
    });

    const dups = createDataSource(
      { kind: 'csv', path: 'duplicates.csv', dataType: 'tax' },
      { baseDir: fixtures },
    );
    await t.rejects(dups.fetch({ subject: 'dup-0001', type: 'tax' }, ctx()), {
      code: 'PLUGIN_BAD_RESPONSE',
      message: /more than one row/,
    });
    t.same((await dups.fetch({ subject: 'solo-001', type: 'tax' }, ctx())).fields, { name: 'C' });

    const malformed = createDataSource(
      { kind: 'csv', path: 'malformed.csv', dataType: 'tax' },
      { baseDir: fixtures },
    );
    await t.rejects(malformed.fetch({ subject: 'alice-001', type: 'tax' }, ctx()), {
      code: 'PLUGIN_BAD_RESPONSE',
      message: /line 2: unterminated/,
    });
    t.same(await malformed.health(), {
      ok: false,
      detail: 'csv:malformed.csv is not valid CSV: line 2: unterminated quoted field',
    });

    const missing = createDataSource(
      { kind: 'csv', path: 'no-such-file.csv', dataType: 'tax' },
      { baseDir: fixtures },
    );
    await t.rejects(missing.fetch({ subject: 'alice-001', type: 'tax' }, ctx()), {
      code: 'PLUGIN_UNAVAILABLE',
    });
    t.equal((await missing.health()).ok, false);

    const noColumn = createDataSource({ ...mapped, subjectColumn: 'person' }, { baseDir: fixtures });
    await t.rejects(noColumn.fetch({ subject: 'alice-001', type: 'social-insurance' }, ctx()), {
      code: 'PLUGIN_BAD_RESPONSE',
      message: /no column person/,
    });
    const aborted = new AbortController();
    aborted.abort(new DOMException('late', 'TimeoutError'));
    await t.rejects(
      source.fetch(
        { subject: 'alice-001', type: 'social-insurance' },
        { signal: aborted.signal, logger: silentLogger },
      ),
      {
        code: 'PLUGIN_TIMEOUT',
      },
    );
  },
);

t.test('re-reads the file when it changes; rows must match the header width', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-csv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'tax.csv');
  await writeFile(file, 'subject,income\nabc-1,100\n');
  const source = createDataSource({
    kind: 'csv',
    path: file,
    dataType: 'tax',
    fields: { income: { column: 'income', as: 'integer' } },
  });
  t.same((await source.fetch({ subject: 'abc-1', type: 'tax' }, ctx())).fields, { income: 100 });
  t.same(await source.health(), { ok: true, detail: '1 subjects' });
  await writeFile(file, 'subject,income\nabc-1,250000\nxyz-2,7\n');
  t.same((await source.fetch({ subject: 'abc-1', type: 'tax' }, ctx())).fields, { income: 250000 });
  await writeFile(file, 'subject,income\nabc-1\n');
  await t.rejects(source.fetch({ subject: 'abc-1', type: 'tax' }, ctx()), {
    code: 'PLUGIN_BAD_RESPONSE',
    message: /row 2 has 1 fields/,
  });
});
