/**
 * `datagrant init` for nodes on several hosts (`--hosts`, `--topology`): each node binds to its
 * host (or where told), announces it and dials its peers at theirs; ports repeat across hosts and
 * count up on one host; every node home is self-contained; bad topologies name the bad field.
 * Without hosts, init writes what it always wrote.
 */
import '../../../src/common/polyfill.js';
import { execFile } from 'node:child_process';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { buildCli } from '../../../src/cli/main.js';
import { readKeyFile } from '../../../src/common/keyfile-fs.js';
import { loadNodeConfig, type NodeConfig } from '../../../src/node/config.js';
import { readGenesis } from '../../../src/node/genesis-file.js';
import { type InitResult, initTestnet } from '../../../src/node/init.js';
import { LocalTestnet } from '../../../src/node/local-testnet.js';
import { SIGNING_STATE_FILE } from '../../../src/node/signing-state.js';
import { parseTopology } from '../../../src/node/topology.js';
import { makeTempDir } from '../../helpers/tmp.js';

const run = promisify(execFile);
const HOSTS = ['10.1.0.10', '10.1.0.11', '10.1.0.12', '10.1.0.13', '10.1.0.14'];

const configs = (net: InitResult) => Promise.all(net.nodes.map((n) => loadNodeConfig(n.configPath)));

/** Every file path a node config names, absolute. */
function pathsOf(config: NodeConfig): string[] {
  const sources = (config.extractor?.sources ?? []).flatMap((s) =>
    typeof s.path === 'string' ? [resolve(config.home, s.path)] : [],
  );
  return [
    config.genesis,
    config.key,
    config.data,
    resolve(config.home, config.signingState ?? SIGNING_STATE_FILE),
    ...(config.platform?.institutions.map((i) => i.key) ?? []),
    ...sources,
  ];
}

const inside = (home: string, path: string) => {
  const rel = relative(home, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
};

/** Checks that every home holds all it names and nothing outside it, and still works copied alone. */
async function checkSelfContained(t: Test, net: InitResult, dir: string): Promise<void> {
  const top = await readFile(net.genesisPath, 'utf8');
  for (const config of await configs(net)) {
    const outside = pathsOf(config).filter((p) => !inside(config.home, p));
    t.same(outside, [], `${config.name}: every path in its config is inside its home`);
    t.equal(await readFile(config.genesis, 'utf8'), top, `${config.name}: its own copy of genesis`);
    // Copied alone somewhere else, the home still loads: genesis, node key, institution key.
    const away = join(dir, 'elsewhere', config.name, 'home');
    await cp(config.home, away, { recursive: true });
    const moved = await loadNodeConfig(join(away, 'config.json'));
    t.equal(
      (await readGenesis(moved.genesis)).chain,
      net.genesis.chain,
      `${config.name}: genesis read from the copy`,
    );
    await readKeyFile(moved.key);
    for (const i of moved.platform?.institutions ?? []) await readKeyFile(i.key);
    const kind = net.nodes.find((n) => n.name === config.name)!.kind;
    if (kind === 'validator')
      t.ok(
        (await readFile(join(away, SIGNING_STATE_FILE), 'utf8')).length > 0,
        `${config.name}: signing state travels with it`,
      );
  }
}

t.test('--hosts: one host per node, the same default ports, announced and dialed', async (t) => {
  const dir = await makeTempDir(t);
  const net = await initTestnet({ dir, validators: 4, gateways: 1, hosts: HOSTS });
  const all = await configs(net);
  t.same(
    net.nodes.map((n) => [n.name, n.kind, n.host, n.apiUrl]),
    HOSTS.map((h, i) => [
      i < 4 ? `node${i}` : 'gateway0',
      i < 4 ? 'validator' : 'gateway',
      h,
      `http://${h}:26650`,
    ]),
    'validators first, then the gateway, each at its host',
  );
  for (const [i, config] of all.entries()) {
    const host = HOSTS[i]!;
    t.same(config.api, { host, port: 26650, url: `http://${host}:26650` }, `${config.name}: API at its host`);
    t.same(config.p2p.listen, [`/ip4/${host}/tcp/26750`], `${config.name}: binds p2p at its host`);
    t.same(config.p2p.announce, [`/ip4/${host}/tcp/26750`], `${config.name}: announces its host`);
    const expected = HOSTS.slice(0, 4)
      .filter((_, j) => j !== i)
      .map((h) => `/ip4/${h}/tcp/26750`);
    t.same(
      config.p2p.peers.map((p) => p.addr),
      expected,
      `${config.name}: dials every other validator at its announced address`,
    );
  }
  const gatewayPeers = all[4]!.p2p.peers.map((p) => p.key);
  t.same(
    gatewayPeers,
    net.genesis.validators.map((v) => v.key),
    'the gateway dials the four validators',
  );
  await checkSelfContained(t, net, dir);

  const loaded = await new LocalTestnet({ dir, validators: 4 }).load();
  t.same(
    loaded.nodes.map((n) => [n.apiUrl, n.host]),
    net.nodes.map((n) => [n.apiUrl, n.host]),
    'LocalTestnet.load finds the same URLs',
  );
});

t.test('--hosts with a repeated host: consecutive ports on it', async (t) => {
  const dir = await makeTempDir(t);
  const net = await initTestnet({
    dir,
    validators: 4,
    gateways: 1,
    hosts: ['10.2.0.1', '10.2.0.1', '10.2.0.2', '10.2.0.2', '10.2.0.1'],
  });
  const all = await configs(net);
  t.same(
    all.map((c) => [c.api.port, c.p2p.listen[0]]),
    [
      [26650, '/ip4/10.2.0.1/tcp/26750'],
      [26651, '/ip4/10.2.0.1/tcp/26751'],
      [26650, '/ip4/10.2.0.2/tcp/26750'],
      [26651, '/ip4/10.2.0.2/tcp/26751'],
      [26652, '/ip4/10.2.0.1/tcp/26752'],
    ],
    'each host counts its own nodes',
  );
  t.same(
    all[0]!.p2p.peers.map((p) => p.addr),
    ['/ip4/10.2.0.1/tcp/26751', '/ip4/10.2.0.2/tcp/26750', '/ip4/10.2.0.2/tcp/26751'],
    'peers dialed at their own ports',
  );
});

t.test('--listen-host: bind elsewhere, announce and advertise the host', async (t) => {
  const dir = await makeTempDir(t);
  const net = await initTestnet({
    dir,
    validators: 2,
    gateways: 1,
    hosts: ['val0.example.org', '10.3.0.2', 'fd00::3'],
    listenHost: '0.0.0.0',
    basePort: 9000,
  });
  const all = await configs(net);
  t.same(
    all.map((c) => [c.api.host, c.api.url, c.p2p.listen[0], c.p2p.announce?.[0]]),
    [
      ['0.0.0.0', 'http://val0.example.org:9000', '/ip4/0.0.0.0/tcp/9100', '/dns/val0.example.org/tcp/9100'],
      ['0.0.0.0', 'http://10.3.0.2:9000', '/ip4/0.0.0.0/tcp/9100', '/ip4/10.3.0.2/tcp/9100'],
      ['0.0.0.0', 'http://[fd00::3]:9000', '/ip4/0.0.0.0/tcp/9100', '/ip6/fd00::3/tcp/9100'],
    ],
    'binds all, announces names, IPv4 and IPv6 as dialable multiaddrs',
  );
  t.same(
    all[1]!.p2p.peers.map((p) => p.addr),
    ['/dns/val0.example.org/tcp/9100'],
    'peers dialed by their announced name',
  );
  const loaded = await new LocalTestnet({ dir, validators: 2 }).load();
  t.same(
    loaded.nodes.map((n) => n.apiUrl),
    ['http://val0.example.org:9000', 'http://10.3.0.2:9000', 'http://[fd00::3]:9000'],
    'the reachable URL, not the bind address',
  );
});

t.test('without hosts: what init always wrote, and self-contained homes', async (t) => {
  const dir = await makeTempDir(t);
  const net = await initTestnet({ dir, validators: 4, gateways: 1, basePort: 30000 });
  const all = await configs(net);
  for (const [i, config] of all.entries()) {
    t.same(config.api, { host: '127.0.0.1', port: 30000 + i }, `${config.name}: loopback, consecutive port`);
    t.same(config.p2p.listen, [`/ip4/127.0.0.1/tcp/${30100 + i}`], `${config.name}: p2p port +100`);
    t.equal(config.p2p.announce, undefined, `${config.name}: announces nothing besides`);
  }
  t.same(
    net.nodes.map((n) => n.apiUrl),
    [0, 1, 2, 3, 4].map((i) => `http://127.0.0.1:${30000 + i}`),
    'API URLs as before',
  );
  t.same(
    net.genesis.validators.map((v) => [v.name, v.roles]),
    [
      ['node0', ['platform']],
      ['node1', ['platform']],
      ['node2', ['extractor']],
      ['node3', ['extractor']],
    ],
    'default names and roles',
  );
  const raw = JSON.parse(await readFile(net.nodes[4]!.configPath, 'utf8')) as { genesis: string };
  t.equal(raw.genesis, 'genesis.json', 'config names its own genesis copy');
  await checkSelfContained(t, net, dir);
  const loaded = await new LocalTestnet({ dir, validators: 4 }).load();
  t.same(
    loaded.nodes.map((n) => n.apiUrl),
    net.nodes.map((n) => n.apiUrl),
    'LocalTestnet.load reads it back from <dir>/genesis.json',
  );
});

t.test('a topology file: names, kinds, hosts, ports, roles, types', async (t) => {
  const dir = await makeTempDir(t);
  const topology = parseTopology({
    nodes: [
      { name: 'bank-gw', kind: 'gateway', host: '10.4.0.9', apiHost: '0.0.0.0', apiPort: 8443 },
      { name: 'val-a', kind: 'validator', host: '10.4.0.1', roles: ['platform'] },
      {
        name: 'val-b',
        kind: 'validator',
        host: '10.4.0.2',
        listenHost: '0.0.0.0',
        p2pPort: 4001,
        roles: ['extractor'],
        types: ['tax'],
      },
      { name: 'val-c', kind: 'validator', host: '10.4.0.3', roles: ['platform', 'extractor'] },
    ],
  });
  const net = await initTestnet({ dir, validators: 1, topology, sources: [] });
  t.same(
    net.nodes.map((n) => [n.name, n.kind]),
    [
      ['val-a', 'validator'],
      ['val-b', 'validator'],
      ['val-c', 'validator'],
      ['bank-gw', 'gateway'],
    ],
    'validators first, in file order; --validators is not used',
  );
  t.same(
    net.genesis.validators.map((v) => [v.name, v.roles, v.types.length]),
    [
      ['val-a', ['platform'], 0],
      ['val-b', ['extractor'], 1],
      ['val-c', ['platform', 'extractor'], 4],
    ],
    'roles and data types as given (all types by default)',
  );
  t.equal(net.nodes[3]!.institution, 'demo-bank', "the gateway is the first bank's own");
  const all = await configs(net);
  t.same(
    all[3]!.api,
    { host: '0.0.0.0', port: 8443, url: 'http://10.4.0.9:8443' },
    'the gateway API binds all',
  );
  t.same(
    [all[1]!.p2p.listen, all[1]!.p2p.announce],
    [['/ip4/0.0.0.0/tcp/4001'], ['/ip4/10.4.0.2/tcp/4001']],
    'val-b binds all on its own port and announces its host',
  );
  t.same(
    all[0]!.p2p.peers.map((p) => p.addr),
    ['/ip4/10.4.0.2/tcp/4001', '/ip4/10.4.0.3/tcp/26750'],
    'val-a dials val-b at its announced port',
  );
  t.ok(all[1]!.extractor && !all[0]!.extractor, 'only extractors get an extractor section');
  await checkSelfContained(t, net, dir);
  const loaded = await new LocalTestnet({ dir, validators: 3 }).load();
  t.equal(loaded.nodes[3]!.apiUrl, 'http://10.4.0.9:8443', 'the gateway is reached at its host');
});

t.test('bad topologies: the error names the field', async (t) => {
  const bad = (input: unknown, field: RegExp, why: string) =>
    t.throws(() => parseTopology(input), { code: 'CONFIG_INVALID', message: field }, why);
  const v = (over: Record<string, unknown> = {}) => ({
    name: 'node0',
    kind: 'validator',
    host: '10.0.0.1',
    ...over,
  });
  bad({}, /^topology\/nodes: /, 'no nodes');
  bad({ nodes: [] }, /^topology\/nodes: /, 'empty');
  bad({ nodes: [v({ host: undefined })] }, /^topology\/nodes\/0\/host: /, 'a node without a host');
  bad({ nodes: [v({ host: 'a b' })] }, /^topology\/nodes\/0\/host: /, 'a host with a space');
  bad({ nodes: [v({ kind: 'observer' })] }, /^topology\/nodes\/0\/kind: /, 'an unknown kind');
  bad({ nodes: [v({ name: 'X' })] }, /^topology\/nodes\/0\/name: /, 'a bad name');
  bad({ nodes: [v({ apiPort: 70000 })] }, /^topology\/nodes\/0\/apiPort: /, 'a port out of range');
  bad({ nodes: [v({ roles: ['miner'] })] }, /^topology\/nodes\/0\/roles\/0: /, 'an unknown role');
  bad({ nodes: [v({ types: ['dna'] })] }, /^topology\/nodes\/0\/types\/0: /, 'an unknown data type');
  bad({ nodes: [v({ color: 'red' })] }, /^topology\/nodes\/0\/color: /, 'an unknown field');
  bad(
    { nodes: [v({ listenHost: 'anywhere' })] },
    /^topology\/nodes\/0\/listenHost: must be an IP/,
    'a bind name',
  );
  bad({ nodes: [v(), v({ host: '10.0.0.2' })] }, /^topology\/nodes\/1\/name: duplicate/, 'a repeated name');
  bad(
    { nodes: [{ ...v(), kind: 'gateway' }] },
    /^topology\/nodes: needs at least one validator/,
    'no validator',
  );
  bad(
    { nodes: [v(), { name: 'gw-1', kind: 'gateway', host: '10.0.0.5', roles: ['extractor'] }] },
    /^topology\/nodes\/1\/roles: a gateway/,
    'a gateway that extracts',
  );
  bad(
    { nodes: [v({ roles: ['platform'], types: ['tax'] })] },
    /^topology\/nodes\/0\/types: data types need the extractor role/,
    'types without the extractor role',
  );

  const dir = await makeTempDir(t);
  const clash = parseTopology({ nodes: [v({ apiPort: 5000 }), v({ name: 'node1', p2pPort: 5000 })] });
  await t.rejects(
    initTestnet({ dir, validators: 2, topology: clash }),
    {
      code: 'CONFIG_INVALID',
      message: /^topology\/nodes\/1\/p2pPort: 10\.0\.0\.1:5000 is already node0 apiPort/,
    },
    'two nodes on one port of one host',
  );
  await t.rejects(
    initTestnet({ dir, validators: 4, gateways: 1, hosts: ['10.0.0.1', '10.0.0.2'] }),
    { code: 'CONFIG_INVALID', message: /2 hosts for 5 nodes/ },
    'a host count that does not match',
  );
});

t.test('the CLI: --hosts, --topology, --synthetic-source and their usage errors', async (t) => {
  const dir = await makeTempDir(t);
  /** Runs the CLI in this process: for usage errors, thrown before anything is printed. */
  const cli = async (...args: string[]) => {
    const program = buildCli();
    program.configureOutput({ writeOut: () => {}, writeErr: () => {} });
    await program.parseAsync(['node', 'datagrant', ...args]);
  };
  /** Runs the `datagrant` command; its output. */
  const datagrant = async (...args: string[]) =>
    (await run(process.execPath, [resolve('bin/datagrant.js'), ...args], { timeout: 60_000 })).stdout;

  await t.rejects(
    cli('init', '--dir', join(dir, 'a'), '--gateways', '1', '--hosts', '10.0.0.1,10.0.0.2'),
    {
      code: 'CLI_USAGE',
      message: /--hosts names 2 hosts but there are 5 nodes \(4 validators, then 1 gateways\)/,
    },
    'too few hosts',
  );
  await t.rejects(
    cli('init', '--dir', join(dir, 'b'), '--hosts', '10.0.0.1,,10.0.0.3,10.0.0.4'),
    { code: 'CLI_USAGE', message: /empty host/ },
    'a blank host',
  );
  await t.rejects(
    cli('init', '--dir', join(dir, 'c'), '--listen-host', '0.0.0.0'),
    { code: 'CLI_USAGE', message: /--listen-host goes with --hosts/ },
    '--listen-host alone',
  );
  const topologyFile = join(dir, 'topology.json');
  await writeFile(
    topologyFile,
    JSON.stringify({
      nodes: [
        { name: 'val-a', kind: 'validator', host: '10.5.0.1' },
        { name: 'val-b', kind: 'validator', host: '10.5.0.2' },
      ],
    }),
  );
  await t.rejects(
    cli('init', '--dir', join(dir, 'd'), '--topology', topologyFile, '--validators', '4'),
    { code: 'CLI_USAGE', message: /--topology names every node: drop --validators/ },
    '--topology with --validators',
  );
  await writeFile(join(dir, 'bad.json'), JSON.stringify({ nodes: [{ name: 'val-a', kind: 'validator' }] }));
  await t.rejects(
    cli('init', '--dir', join(dir, 'e'), '--topology', join(dir, 'bad.json')),
    { code: 'CONFIG_INVALID', message: /topology\/nodes\/0\/host/ },
    'a topology file missing a host',
  );

  await datagrant(
    'init',
    '--dir',
    join(dir, 'f'),
    '--topology',
    topologyFile,
    '--synthetic-source',
    'http://10.5.0.9:7070',
  );
  const topo = await new LocalTestnet({ dir: join(dir, 'f'), validators: 2 }).load();
  t.same(
    topo.nodes.map((n) => n.apiUrl),
    ['http://10.5.0.1:26650', 'http://10.5.0.2:26650'],
    'written from the topology file',
  );
  const extractor = await loadNodeConfig(topo.nodes[1]!.configPath);
  t.match(
    extractor.extractor?.sources,
    [{ kind: 'http-json', url: /^http:\/\/10\.5\.0\.9:7070\/v1\/\{type\}\/\{subject\}/ }],
    'the extractor reads the synthetic platform at the given URL',
  );

  await writeFile(join(dir, 'sources.json'), JSON.stringify([{ kind: 'http-json', name: 'x' }]));
  await t.rejects(
    cli('init', '--dir', join(dir, 'h'), '--sources', join(dir, 'sources.json')),
    { code: 'PLUGIN_CONFIG_INVALID' },
    'a data-source config that does not validate',
  );
  await t.rejects(
    cli('init', '--dir', join(dir, 'i'), '--synthetic-source', 'not a url'),
    { code: 'CLI_USAGE', message: /--synthetic-source must be a URL/ },
    'a synthetic source that is not a URL',
  );
  const printed = await datagrant(
    'init',
    '--dir',
    join(dir, 'g'),
    '--gateways',
    '1',
    '--hosts',
    HOSTS.join(','),
  );
  const hosted = await new LocalTestnet({ dir: join(dir, 'g'), validators: 4 }).load();
  t.same(
    hosted.nodes.map((n) => n.apiUrl),
    HOSTS.map((h) => `http://${h}:26650`),
    'written from --hosts',
  );
  t.ok(
    printed.includes('gateway0  gateway   platform           http://10.1.0.14:26650'),
    'the printed summary shows the reachable URLs',
  );
});
