/**
 * `datagrant init` and signing sources: a source config that names its key is registered in
 * genesis for its types (`--sources` for a real source, `--synthetic-source-key` for the synthetic
 * platform, whose key file init writes when missing); configs without a key register nothing.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { placementOf } from '../../../src/cli/init-placement.js';
import { bytesToHex } from '../../../src/common/bytes.js';
import { readKeyFile } from '../../../src/common/keyfile-fs.js';
import { parseGenesis } from '../../../src/ledger/genesis.js';
import { initTestnet, registeredSourcesOf } from '../../../src/node/init.js';
import { deriveKeys } from '../../helpers/chain.js';

const flags = { validators: 1, gateways: 0, explicit: { validators: false, gateways: false } };

t.test('--synthetic-source-key writes the key file and registers the platform', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dg-init-sources-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const keyFile = join(dir, 'keys', 'synthetic-source.json');
  const placement = await placementOf({
    ...flags,
    syntheticSource: 'http://127.0.0.1:7070',
    syntheticSourceKey: keyFile,
  });
  const pub = bytesToHex((await readKeyFile(keyFile)).signing.publicKey);
  t.match(placement.sources, [{ kind: 'http-json', signature: { source: 'synthetic-platform', key: pub } }]);
  const again = await placementOf({
    ...flags,
    syntheticSource: 'http://127.0.0.1:7070',
    syntheticSourceKey: keyFile,
  });
  t.same(again.sources, placement.sources, 'an existing key file is read, not replaced');

  const net = await initTestnet({ dir: join(dir, 'net'), validators: 1, ...placement });
  const genesis = parseGenesis(JSON.parse(await readFile(net.genesisPath, 'utf8')));
  t.same(genesis.sources, [
    { id: 'synthetic-platform', key: pub, types: ['social-insurance', 'tax', 'housing-fund', 'property'] },
  ]);
  const unsigned = await placementOf({ ...flags, syntheticSource: 'http://127.0.0.1:7070' });
  t.notOk(
    'signature' in (unsigned.sources![0] as object),
    'without a key file the platform is read unsigned',
  );
  await t.rejects(placementOf({ ...flags, syntheticSourceKey: keyFile }), { code: 'CLI_USAGE' });
});

t.test('registeredSourcesOf: configs naming a key, merged per source, conflicts refused', async (t) => {
  const a = deriveKeys('init-sources', 'a').pub;
  const b = deriveKeys('init-sources', 'b').pub;
  const http = (id: string, key: string | undefined, dataTypes: string[]) => ({
    kind: 'http-json',
    url: 'https://source.example/{subject}',
    dataTypes,
    fields: { x: 'x' },
    signature: { source: id, ...(key ? { key } : {}) },
  });
  t.same(
    registeredSourcesOf([
      http('tax-office', a, ['tax']),
      http('tax-office', a, ['property']),
      http('unchecked', undefined, ['tax']),
      { kind: 'csv', path: 'x.csv', dataType: 'tax' },
    ]),
    [{ id: 'tax-office', key: a, types: ['tax', 'property'] }],
  );
  t.throws(() => registeredSourcesOf([http('s-one', a, ['tax']), http('s-one', b, ['tax'])]), {
    code: 'CONFIG_INVALID',
  });
  t.throws(() => registeredSourcesOf([http('s-one', a, ['tax']), http('s-two', a, ['tax'])]), {
    code: 'CONFIG_INVALID',
  });
});
