/**
 * `npm run testnet`: starts a local testnet as separate node processes on loopback (writing it
 * first with `datagrant init` defaults when the directory is new), prints the API URLs, and
 * stops every node cleanly on Ctrl-C.
 */
import '../src/common/polyfill.js';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalTestnet } from '../src/node/local-testnet.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: '.datagrant/testnet' },
    validators: { type: 'string', default: '4' },
    gateways: { type: 'string', default: '1' },
    'log-level': { type: 'string', default: 'info' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: npm run testnet -- [--dir DIR] [--validators N] [--gateways N] [--log-level LEVEL]\n',
  );
  process.exit(0);
}

const dir = resolve(values.dir);
const testnet = new LocalTestnet({
  dir,
  validators: Number(values.validators),
  gateways: Number(values.gateways),
  logLevel: values['log-level'],
});
const net = existsSync(join(dir, 'genesis.json')) ? await testnet.load() : await testnet.init();
testnet.startAll();
await testnet.waitAllReady(90_000);
const validators = net.nodes.filter((n) => n.kind === 'validator').length;
process.stdout.write(
  `testnet ${net.genesis.chain} (${validators} validators, ${net.nodes.length - validators} gateways) in ${dir}\n`,
);
for (const node of net.nodes) {
  process.stdout.write(
    `  ${node.name.padEnd(9)} ${node.kind.padEnd(9)} ${node.roles.join('+').padEnd(18)} ${node.apiUrl}   logs: ${join(node.home, 'node.log')}${node.institution ? `   (holds ${node.institution}'s key)` : ''}\n`,
  );
}
for (const i of net.institutions)
  process.stdout.write(`  institution ${i.id}: key file ${i.key} (keep it on the bank's side)\n`);
process.stdout.write('Ctrl-C stops every node.\n');

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  process.stdout.write('\nstopping…\n');
  await testnet.stopAll();
  process.stdout.write('all nodes stopped\n');
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
