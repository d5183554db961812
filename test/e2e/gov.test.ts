/**
 * The council's commands and routes on a dev chain from `datagrant init` (three council keys, two
 * approve): `datagrant gov propose` adds an institution, which nothing makes real until a second
 * member's `gov approve`; `gov list` and the routes show it open at 1/2, then enacted; `gov show
 * --genesis` proves it against the genesis validators; a member cannot approve twice.
 */
import '../../src/common/polyfill.js';
import { join } from 'node:path';
import t from 'tap';
import { generateKeySet } from '../../src/common/keyfile.js';
import { writeKeyFile } from '../../src/common/keyfile-fs.js';
import { cli } from '../helpers/cli.js';
import { startDevNode } from '../helpers/dev-node.js';

t.test('a council adds an institution: k-1 approvals do nothing, the k-th enacts it', async (t) => {
  const dev = await startDevNode(t, { chain: 'datagrant-gov' });
  const { api, net } = dev;
  const [first, second] = net.keys.council;
  const get = async (path: string) => {
    const r = await fetch(`${api}${path}`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  const council = await get('/v1/gov/council');
  t.equal(council.status, 200);
  t.equal((council.body.members as string[]).length, 3, 'three members');
  t.equal(council.body.threshold, 2, 'two approve');

  const bankKey = join(dev.dir, 'new-bank.json');
  await writeKeyFile(bankKey, generateKeySet('new-bank'));
  const proposed = await cli([
    'gov',
    'propose',
    'institution-add',
    '--key',
    first!,
    '--api',
    api,
    '--json',
    '--institution',
    'new-bank',
    '--name',
    'New Bank',
    '--institution-key',
    bankKey,
    '--open-for',
    '1d',
  ]);
  t.equal(proposed.code, 0, `propose exits 0 ${proposed.stderr}`);
  const { proposal } = JSON.parse(proposed.stdout) as { proposal: string };

  t.equal((await get('/v1/institutions/new-bank')).status, 404, 'one approval of two: no institution');
  const listed = await cli(['gov', 'list', '--api', api]);
  t.match(
    listed.stdout,
    new RegExp(`${proposal}\\s+open\\s+1/2 .*add institution new-bank \\(New Bank\\)`),
    'listed open at 1/2',
  );

  const twice = await cli(['gov', 'approve', proposal, '--key', first!, '--api', api]);
  t.not(twice.code, 0, 'the proposer cannot approve again');
  t.match(twice.stderr, /LEDGER_ALREADY_APPROVED/);
  t.equal((await get('/v1/institutions/new-bank')).status, 404, 'still no institution');

  const approved = await cli(['gov', 'approve', proposal, '--key', second!, '--api', api]);
  t.equal(approved.code, 0, `approve exits 0 ${approved.stderr}`);
  t.match(approved.stdout, /enacted\s+2\/2/, 'the second approval enacts it');
  const inst = await get('/v1/institutions/new-bank');
  t.equal(inst.status, 200, 'the institution exists');
  t.equal(inst.body.name, 'New Bank');

  const shown = await cli(['gov', 'show', proposal, '--api', api, '--genesis', net.genesisPath, '--json']);
  t.equal(shown.code, 0, `show exits 0 ${shown.stderr}`);
  const p = JSON.parse(shown.stdout) as { status: string; verified: boolean; approvals: string[] };
  t.equal(p.status, 'enacted');
  t.equal(p.verified, true, 'proven against the genesis validators');
  t.equal(p.approvals.length, 2);

  const enacted = await get('/v1/gov/proposals?status=enacted');
  t.equal((enacted.body.proposals as { id: string }[])[0]?.id, proposal, 'the route lists it as enacted');
  t.same((await get('/v1/gov/proposals?status=open')).body.proposals, [], 'none is still open');
  t.equal((await get(`/v1/gov/proposals/${'0'.repeat(64)}`)).status, 404, 'an unknown proposal: 404');
  t.equal((await get('/v1/gov/proposals?status=bogus')).status, 400, 'a bad filter: 400');

  const bad = await cli([
    'gov',
    'propose',
    'params',
    '--key',
    first!,
    '--api',
    api,
    '--param',
    'maxBlockTxs=abc',
  ]);
  t.match(bad.stderr, /CLI_USAGE/, 'a malformed parameter is a usage error');
});
