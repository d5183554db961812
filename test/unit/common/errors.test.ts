import t from 'tap';
import { DatagrantError, httpStatusOf, isDatagrantError } from '../../../src/common/errors.js';

t.test('DatagrantError carries a code and metadata', async (t) => {
  const err = new DatagrantError('LEDGER_TX_MALFORMED', 'bad', { field: 'x' });
  t.ok(err instanceof Error);
  t.equal(err.name, 'DatagrantError');
  t.equal(err.code, 'LEDGER_TX_MALFORMED');
  t.same(err.meta, { field: 'x' });
  t.ok(isDatagrantError(err));
  t.ok(isDatagrantError(err, 'LEDGER_TX_MALFORMED'));
  t.notOk(isDatagrantError(err, 'OTHER'));
  t.notOk(isDatagrantError(new Error('plain')));
  t.notOk(isDatagrantError({ code: 'LEDGER_TX_MALFORMED' }), 'look-alikes are not DatagrantErrors');
});

t.test('httpStatusOf: table first, then the input-validation families, else 500', async (t) => {
  const cases: [string, number][] = [
    ['API_NOT_FOUND', 404],
    ['LEDGER_MEMPOOL_FULL', 503],
    ['LEDGER_TX_REPLAYED', 409],
    ['LEDGER_TX_MALFORMED', 400],
    ['CRYPTO_BAD_ENCODING', 400],
    ['PLATFORM_SOMETHING', 400],
    ['KEYFILE_BAD_PASSPHRASE', 500],
    ['P2P_TIMEOUT', 500],
  ];
  for (const [code, status] of cases) t.equal(httpStatusOf(code), status, code);
});
