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
    'log-level': { type: 'string', default: 'info' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: npm run testnet -- [--dir DIR] [--validators N] [--log-level LEVEL]\n');
  process.exit(0);
}

const dir = resolve(values.dir);
const testnet = new LocalTestnet({
  dir,
  validators: Number(values.validators),
  logLevel: values['log-level'],
});
const net = existsSync(join(dir, 'genesis.json')) ? await testnet.load() : await testnet.init();
testnet.startAll();
await testnet.waitAllReady(90_000);
process.stdout.write(`testnet ${net.genesis.chain} (${net.nodes.length} validators) in ${dir}\n`);
for (const node of net.nodes) {
  process.stdout.write(
    `  ${node.name}  ${node.roles.join('+').padEnd(18)} ${node.apiUrl}   logs: ${join(node.home, 'node.log')}\n`,
  );
}
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
