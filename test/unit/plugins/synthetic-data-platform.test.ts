import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import {
  buildSyntheticDataPlatform,
  isNationalIdFormat,
  nationalIdCheckChar,
  SYNTHETIC_NOTICE,
  startSyntheticDataPlatform,
  syntheticCsvSourceConfig,
  syntheticPerson,
  syntheticRecord,
  syntheticRecords,
  syntheticSensitiveValues,
  writeSyntheticCsv,
} from '../../../scripts/synthetic-data-platform.js';
import { bytesToHex } from '../../../src/common/bytes.js';
import { generateSigningKeyPair, sha256Hex } from '../../../src/common/crypto.js';
import { silentLogger } from '../../../src/common/logger.js';
import { DATA_TYPES } from '../../../src/ledger/tx.js';
import { createDataSource } from '../../../src/plugins/create-data-source.js';
import { DEFAULT_SIGNATURE_HEADER } from '../../../src/plugins/http-json-source.js';
import { verifySourceStatement } from '../../../src/records/source-statement.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

t.test('national ID check character (known answers)', async (t) => {
  t.equal(nationalIdCheckChar('11010519491231002'), 'X');
  t.equal(nationalIdCheckChar('34052419800101001'), 'X', 'GB 11643-1999 example');
  t.equal(nationalIdCheckChar('44030719900101001'), '0');
  t.ok(isNationalIdFormat('11010519491231002X'));
  t.notOk(isNationalIdFormat('110105194912310021'));
  t.notOk(isNationalIdFormat('1101051949123100'));
});

t.test('generation is deterministic per seed and subject, and well formed', async (t) => {
  t.same(syntheticRecords('alice-001'), syntheticRecords('alice-001'));
  t.notSame(
    syntheticPerson('seed-a', 'alice-001').nationalId,
    syntheticPerson('seed-b', 'alice-001').nationalId,
  );
  t.notSame(
    syntheticPerson('seed-a', 'alice-001').nationalId,
    syntheticPerson('seed-a', 'bob-0002').nationalId,
  );
  for (let i = 0; i < 50; i++) {
    const subject = `subject-${i}`;
    const person = syntheticPerson('s', subject);
    t.ok(isNationalIdFormat(person.nationalId), `${subject}: 18-character ID`);
    t.equal(
      person.nationalId.slice(6, 14),
      person.birthDate.replaceAll('-', ''),
      `${subject}: ID carries the birth date`,
    );
    t.equal(Number(person.nationalId[16]) % 2 === 1, person.gender === 'male', `${subject}: gender digit`);
    const records = syntheticRecords(subject, { seed: 's' })!;
    for (const type of DATA_TYPES) {
      for (const [k, v] of Object.entries(records[type])) {
        if (typeof v === 'number') t.ok(Number.isSafeInteger(v), `${subject} ${type}.${k} is an integer`);
      }
      t.equal(records[type].nationalId, person.nationalId);
    }
  }
  t.equal(syntheticRecord('unknown-1', 'tax'), undefined);
  t.equal(syntheticRecords('unknown-1'), undefined);
  t.throws(() => syntheticRecord('alice-001', 'tax', { from: '2025-01-01', to: '2024-01-01' }), RangeError);
  t.throws(() => syntheticRecord('alice-001', 'tax', { from: '2025-13-01' }), RangeError);
});

t.test('the period changes period fields only', async (t) => {
  const all = syntheticRecord('alice-001', 'social-insurance')!;
  const half = syntheticRecord('alice-001', 'social-insurance', { from: '2025-01-01', to: '2025-06-30' })!;
  t.equal(all.periodMonths, 12);
  t.equal(half.periodMonths, 6);
  t.equal(half.periodFrom, '2025-01');
  t.equal(all.monthlyBase, half.monthlyBase);
  t.equal(syntheticRecord('alice-001', 'tax', { to: '2023-12-31' })!.taxYear, 2023);
  t.equal(syntheticRecord('alice-001', 'tax')!.taxYear, 2024);
});

t.test('sensitive values cover identifying strings and large amounts only', async (t) => {
  const values = syntheticSensitiveValues('alice-001');
  const records = syntheticRecords('alice-001')!;
  t.ok(values.includes(records.tax.name as string));
  t.ok(values.includes(records.tax.nationalId as string));
  t.ok(values.includes(records.property.address as string));
  t.ok(values.includes(records['housing-fund'].accountNo as string));
  t.ok(values.includes(String(records.tax.annualIncome)));
  t.notOk(values.includes('active'));
  t.ok(
    values.every((v) => v.length >= 2 && !/^\d{1,5}$/.test(v)),
    'no short numbers',
  );
  t.same(syntheticSensitiveValues('unknown-1'), []);
});

t.test('routes (inject): records, not found, bad input, health, faults, counters', async (t) => {
  const { app, platform } = buildSyntheticDataPlatform({ seed: 'x' });
  t.teardown(() => app.close());
  const home = await app.inject({ url: '/' });
  t.equal(home.json().synthetic, true);
  t.equal(home.json().notice, SYNTHETIC_NOTICE);
  const ok = await app.inject({ url: '/v1/tax/alice-001?from=2024-01-01&to=2024-12-31' });
  t.equal(ok.statusCode, 200);
  t.same(
    ok.json().data,
    syntheticRecord('alice-001', 'tax', { seed: 'x', from: '2024-01-01', to: '2024-12-31' }),
  );
  t.equal(ok.json().synthetic, true);
  t.equal(
    (await app.inject({ url: '/v1/tax/alice-001?from=&to=' })).statusCode,
    200,
    'empty dates mean unset',
  );
  t.equal((await app.inject({ url: '/v1/tax/unknown-77' })).statusCode, 404);
  t.equal((await app.inject({ url: '/v1/salary/alice-001' })).statusCode, 404);
  t.equal((await app.inject({ url: '/v1/tax/AB' })).statusCode, 400);
  t.equal((await app.inject({ url: '/v1/tax/alice-001?from=2025-01-01&to=2024-01-01' })).statusCode, 400);
  t.equal((await app.inject({ url: '/health' })).json().ok, true);

  platform.setFaults({ property: { flaky: 2 } });
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await app.inject({ url: '/v1/property/alice-001' })).statusCode);
  t.same(statuses, [503, 503, 200], 'flaky: the first two fail');
  t.equal(platform.requestCount('property'), 3);
  t.equal(platform.requestCount(), 8);
  platform.setFaults({ '*': { down: true }, tax: {} });
  t.equal((await app.inject({ url: '/health' })).statusCode, 503);
  t.equal((await app.inject({ url: '/v1/property/alice-001' })).statusCode, 503);
  t.equal((await app.inject({ url: '/v1/tax/alice-001' })).statusCode, 200, 'a type entry overrides *');
  platform.setFaults({ tax: { garbage: 'not-json' } });
  const garbage = (await app.inject({ url: '/v1/tax/alice-001' })).body;
  t.throws(() => JSON.parse(garbage));
});

t.test('close() cuts slow answers short', async (t) => {
  const platform = await startSyntheticDataPlatform({ faults: { tax: { slowMs: 30_000 } } });
  const pending = fetch(`${platform.url}/v1/tax/alice-001`).then(
    (r) => r.status,
    () => 'error',
  );
  for (let i = 0; i < 500 && platform.requestCount('tax') === 0; i++)
    await new Promise((r) => setTimeout(r, 10));
  t.equal(platform.requestCount('tax'), 1, 'the slow request arrived');
  const started = Date.now();
  await platform.close();
  t.ok(Date.now() - started < 5_000, 'close did not wait for the slow answer');
  t.ok(['error', 503].includes(await pending));
});

t.test('CSV emission round-trips through the csv plugin', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-synth-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const subjects = ['alice-001', 'bob-0002', 'unknown-3'];
  for (const type of DATA_TYPES) {
    const file = join(dir, `${type}.csv`);
    await writeSyntheticCsv(file, type, subjects);
    const source = createDataSource(syntheticCsvSourceConfig(type, file));
    for (const subject of ['alice-001', 'bob-0002']) {
      const result = await source.fetch(
        { subject, type },
        { signal: new AbortController().signal, logger: silentLogger },
      );
      t.same(result.fields, syntheticRecord(subject, type), `${type} ${subject}`);
    }
    await t.rejects(
      source.fetch(
        { subject: 'unknown-3', type },
        { signal: new AbortController().signal, logger: silentLogger },
      ),
      { code: 'PLUGIN_NOT_FOUND' },
    );
  }
});

t.test('runs as a script: prints its URL as one JSON line, and emits CSV', async (t) => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'scripts/synthetic-data-platform.ts', '--port', '0'],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`exited with ${code}`)));
  });
  const info = JSON.parse(line) as { url: string; synthetic: boolean };
  t.equal(info.synthetic, true);
  t.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const health = await fetch(`${info.url}/health`);
  t.equal(health.status, 200);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exits cleanly on SIGTERM');

  const dir = await mkdtemp(join(tmpdir(), 'datagrant-synth-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'tax.csv');
  const emit = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'scripts/synthetic-data-platform.ts',
      'emit-csv',
      '--type',
      'tax',
      '--subjects',
      'alice-001,bob-0002',
      '--out',
      out,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.equal(await new Promise((resolve) => emit.once('exit', resolve)), 0);
  const text = await readFile(out, 'utf8');
  t.match(text, /^subject,name,nationalId,taxYear/);
  t.equal(text.trim().split('\r\n').length, 3);
});

t.test('every data answer is signed over its exact bytes with the given key', async (t) => {
  const key = generateSigningKeyPair();
  const { app, platform } = buildSyntheticDataPlatform({ sourceKey: key.secretKey, now: () => 1234 });
  t.teardown(() => app.close());
  t.same(platform.source, { id: 'synthetic-platform', key: bytesToHex(key.publicKey) });
  t.same((await app.inject({ url: '/' })).json().source, platform.source, 'GET / names id and key');
  const check = async (url: string, period: { from?: string; to?: string }) => {
    const res = await app.inject({ url });
    const m = /^t=(\d+);sig=([0-9a-f]{128})$/.exec(String(res.headers[DEFAULT_SIGNATURE_HEADER]));
    t.ok(m, `${url}: signature header`);
    const signed = {
      statement: {
        v: 1 as const,
        source: 'synthetic-platform',
        subject: 'alice-001',
        type: 'tax' as const,
        ...period,
        digest: sha256Hex(res.rawPayload),
        time: Number(m![1]),
      },
      sig: m![2]!,
    };
    t.equal(signed.statement.time, 1234);
    t.ok(verifySourceStatement(signed, platform.source.key), `${url}: verifies over the body bytes`);
    t.notOk(
      verifySourceStatement(
        { ...signed, statement: { ...signed.statement, subject: 'bob-002' } },
        platform.source.key,
      ),
      `${url}: not for another subject`,
    );
  };
  await check('/v1/tax/alice-001?from=2024-01-01&to=2024-12-31', { from: '2024-01-01', to: '2024-12-31' });
  await check('/v1/tax/alice-001?from=&to=', {});
});
