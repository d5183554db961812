/**
 * The council's gateways and data sources on a dev chain from `datagrant init`, through the CLI:
 * `gov propose gateway-add` and `source-add` do nothing until a second member approves; then the
 * routes list them in force, the proof routes answer their entries, `gov list` describes the
 * changes, and retiring them takes them out of force again.
 */
import '../../src/common/polyfill.js';
import { join } from 'node:path';
import t from 'tap';
import { bytesToHex } from '../../src/common/bytes.js';
import { generateKeySet } from '../../src/common/keyfile.js';
import { writeKeyFile } from '../../src/common/keyfile-fs.js';
import { cli } from '../helpers/cli.js';
import { startDevNode } from '../helpers/dev-node.js';

t.test('a council adds and retires a gateway and a data source', async (t) => {
  const dev = await startDevNode(t, { chain: 'datagrant-gov-members' });
  const { api, net } = dev;
  const [first, second] = net.keys.council;
  const get = async (path: string) => {
    const r = await fetch(`${api}${path}`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  /** Proposes `args` as the first member and approves as the second; the proposal id. */
  const enact = async (args: string[]) => {
    const proposed = await cli(['gov', 'propose', ...args, '--key', first!, '--api', api, '--json']);
    t.equal(proposed.code, 0, `propose ${args[0]} exits 0 ${proposed.stderr}`);
    const { proposal } = JSON.parse(proposed.stdout) as { proposal: string };
    const approved = await cli(['gov', 'approve', proposal, '--key', second!, '--api', api]);
    t.equal(approved.code, 0, `approve exits 0 ${approved.stderr}`);
    t.match(approved.stdout, /enacted\s+2\/2/, `${args[0]} enacted`);
    return proposal;
  };

  const gwFile = join(dev.dir, 'bank-gw.json');
  const gw = generateKeySet('bank-gw');
  await writeKeyFile(gwFile, gw);
  const gwKey = bytesToHex(gw.signing.publicKey);
  const proposed = await cli([
    'gov',
    'propose',
    'gateway-add',
    '--key',
    first!,
    '--api',
    api,
    '--json',
    '--name',
    'bank-gw',
    '--node-key',
    gwFile,
    '--roles',
    'platform',
  ]);
  t.equal(proposed.code, 0, `propose exits 0 ${proposed.stderr}`);
  const { proposal } = JSON.parse(proposed.stdout) as { proposal: string };
  t.same((await get('/v1/gov/gateways')).body.inForce, [], 'one approval of two: no gateway');
  const listed = await cli(['gov', 'list', '--api', api]);
  t.match(
    listed.stdout,
    new RegExp(`${proposal}\\s+open\\s+1/2 .*add gateway bank-gw`),
    'gov list describes it',
  );
  t.equal((await cli(['gov', 'approve', proposal, '--key', second!, '--api', api])).code, 0);
  t.same((await get('/v1/gov/gateways')).body.inForce, [
    { name: 'bank-gw', key: gwKey, roles: ['platform'] },
  ]);
  const entry = await get(`/v1/state/gateways/${gwKey}`);
  t.equal(entry.status, 200);
  t.match(entry.body.value, { key: gwKey, active: true }, 'the proof route answers its entry');

  const source = generateKeySet('pension-office');
  const sourceKey = bytesToHex(source.signing.publicKey);
  await enact([
    'source-add',
    '--source',
    'pension-office',
    '--source-key',
    sourceKey,
    '--types',
    'social-insurance',
  ]);
  const sources = (await get('/v1/gov/sources')).body.inForce as { id: string; types: string[] }[];
  t.same(
    sources.find((s) => s.id === 'pension-office'),
    { id: 'pension-office', key: sourceKey, types: ['social-insurance'] },
    'the source is registered',
  );
  await enact(['source-update', '--source', 'pension-office', '--types', 'social-insurance,tax']);
  t.match((await get('/v1/state/sources/pension-office')).body.value, { types: ['social-insurance', 'tax'] });

  await enact(['gateway-retire', '--gateway', gwKey]);
  await enact(['source-retire', '--source', 'pension-office']);
  t.same((await get('/v1/gov/gateways')).body.inForce, [], 'the gateway is retired');
  t.notOk(
    ((await get('/v1/gov/sources')).body.inForce as { id: string }[]).some((s) => s.id === 'pension-office'),
    'the source is retired',
  );
  t.match((await get('/v1/state/sources/pension-office')).body.value, { active: false }, 'its entry stays');

  const again = await cli([
    'gov',
    'propose',
    'gateway-retire',
    '--gateway',
    gwKey,
    '--key',
    first!,
    '--api',
    api,
  ]);
  t.match(again.stderr, /LEDGER_UNKNOWN_GATEWAY/, 'a retired gateway cannot be retired again');
  const bad = await cli([
    'gov',
    'propose',
    'source-add',
    '--source',
    'x',
    '--source-key',
    sourceKey,
    '--key',
    first!,
    '--api',
    api,
  ]);
  t.match(bad.stderr, /CLI_USAGE/, 'source-add without --types is a usage error');
});
