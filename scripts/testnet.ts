/**
 * `npm run testnet`: starts a local testnet as separate node processes on loopback (writing it
 * first with `datagrant init` defaults when the directory is new), prints the API URLs, and
 * stops every node cleanly on Ctrl-C.
 *
 * `npm run testnet -- --netns` (root, iproute2): the same network as if on separate machines —
 * each node in its own network namespace at its own address (`init --hosts`), the synthetic data
 * platform in another, all on one bridge the root namespace also sits on; it prints each node's
 * URL and the `ip netns exec` command to work inside its namespace, and Ctrl-C removes it all.
 */
import '../src/common/polyfill.js';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalTestnet } from '../src/node/local-testnet.js';
import { NetnsLab, netnsUnavailable, startPlatformIn } from './netns/lab.js';
import { syntheticSourceConfig } from './synthetic-data-platform.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    validators: { type: 'string', default: '4' },
    gateways: { type: 'string', default: '1' },
    'log-level': { type: 'string', default: 'info' },
    netns: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    [
      'usage: npm run testnet -- [--dir DIR] [--validators N] [--gateways N] [--log-level LEVEL] [--netns]',
      '  --netns   each node in its own network namespace on a private bridge (root, iproute2);',
      '            DIR (default .datagrant/testnet-netns) is rewritten on every start',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

/** Marks a directory as written by `--netns`, so that the next start may rewrite it. */
const NETNS_MARK = 'netns-lab.json';

const validators = Number(values.validators);
const gateways = Number(values.gateways);
const dir = resolve(values.dir ?? (values.netns ? '.datagrant/testnet-netns' : '.datagrant/testnet'));
let lab: NetnsLab | undefined;
let platform: ChildProcess | undefined;
let testnet: LocalTestnet;

if (values.netns) {
  const unavailable = await netnsUnavailable();
  if (unavailable) {
    process.stderr.write(`--netns: ${unavailable}\n`);
    process.exit(1);
  }
  if (existsSync(dir)) {
    const entries = await readdir(dir);
    if (entries.length > 0 && !entries.includes(NETNS_MARK)) {
      process.stderr.write(`--netns: ${dir} holds something else; give another --dir\n`);
      process.exit(1);
    }
    await rm(dir, { recursive: true, force: true });
  }
  const names = [
    ...Array.from({ length: validators }, (_, i) => `node${i}`),
    ...Array.from({ length: gateways }, (_, i) => `gateway${i}`),
  ];
  lab = await NetnsLab.create([...names, 'platform']);
  const built = lab;
  try {
    const source = await startPlatformIn(built, 'platform');
    platform = source.process;
    testnet = new LocalTestnet({
      dir,
      validators,
      gateways,
      basePort: 26650,
      hosts: names.map((n) => built.address(n)),
      sources: [syntheticSourceConfig(source) as unknown as Record<string, unknown>],
      logLevel: values['log-level'],
      commandPrefix: (i) => built.exec(names[i]!),
    });
    await testnet.init();
    await writeFile(join(dir, NETNS_MARK), `${JSON.stringify({ subnet: built.subnet, id: built.id })}\n`);
  } catch (err) {
    platform?.kill('SIGKILL');
    await built.teardown();
    throw err;
  }
} else {
  testnet = new LocalTestnet({ dir, validators, gateways, logLevel: values['log-level'] });
  if (existsSync(join(dir, 'genesis.json'))) await testnet.load();
  else await testnet.init();
}

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  process.stdout.write('\nstopping…\n');
  await testnet.stopAll();
  platform?.kill('SIGTERM');
  await lab?.teardown();
  process.stdout.write(lab ? 'all nodes stopped, namespaces and bridge removed\n' : 'all nodes stopped\n');
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

const net = testnet.net;
testnet.startAll();
try {
  await testnet.waitAllReady(90_000);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  await stop();
}
const count = net.nodes.filter((n) => n.kind === 'validator').length;
process.stdout.write(
  `testnet ${net.genesis.chain} (${count} validators, ${net.nodes.length - count} gateways) in ${dir}\n`,
);
if (lab)
  process.stdout.write(
    `namespaces on ${lab.subnet}, bridge ${lab.bridge} (this shell: ${lab.rootAddress})\n`,
  );
for (const node of net.nodes) {
  process.stdout.write(
    `  ${node.name.padEnd(9)} ${node.kind.padEnd(9)} ${node.roles.join('+').padEnd(18)} ${node.apiUrl}   logs: ${join(node.home, 'node.log')}${node.institution ? `   (holds ${node.institution}'s key)` : ''}\n`,
  );
  if (lab) {
    const m = lab.member(node.name);
    process.stdout.write(
      `            inside: ${lab.exec(node.name).join(' ')} bash    cut its link: ip link set ${m.hostLink} down (up to restore)\n`,
    );
  }
}
if (lab)
  process.stdout.write(
    `  platform  synthetic data platform (SIMULATED) http://${lab.address('platform')}:7070   inside: ${lab.exec('platform').join(' ')} bash\n`,
  );
for (const i of net.institutions)
  process.stdout.write(`  institution ${i.id}: key file ${i.key} (keep it on the bank's side)\n`);
process.stdout.write(
  lab ? 'Ctrl-C stops every node and removes the namespaces.\n' : 'Ctrl-C stops every node.\n',
);
