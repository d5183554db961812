/**
 * The `datagrant` command line: keys, testnet init, running a node, chain queries, transaction
 * submission and offline proof verification. Every command has `--help`.
 *
 * The command tree is defined up front, but what a command runs on (the ledger, key files, the
 * node, LevelDB, Fastify, pino) is imported in its action: an invocation loads only what its
 * command uses, and `--help` or `status` start in a fraction of the time.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { DatagrantError } from '../common/errors.js';
import type { TxProof } from '../ledger/proof.js';
import { DEFAULT_STOP_TIMEOUT_MS, runNodeProcess } from '../node/node-process.js';
import { addBackupCommands } from './backup-commands.js';
import { addFlowCommands } from './flow-commands.js';
import { addGovCommands } from './gov-commands.js';
import { addInstitutionCommands } from './institution-commands.js';
import { addMigrateCommand } from './migrate-command.js';
import { passphraseFrom } from './passphrase.js';
import { addRegistrarCommands } from './registrar-commands.js';

const DEFAULT_API = process.env.DATAGRANT_API ?? 'http://127.0.0.1:26650';

function print(value: unknown, json: boolean, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

/** Builds the command tree (exported for tests). */
export function buildCli(): Command {
  const program = new Command('datagrant')
    .description('datagrant: consent-based access to government-held personal data on a permissioned chain')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('keygen')
    .description('write a new key file (Ed25519 signing + X25519 encryption keys), mode 0600')
    .requiredOption('--out <file>', 'where to write the key file')
    .option('--label <text>', 'a label stored in the file', '')
    .option(
      '--passphrase-file <file>',
      'seal the key file with the passphrase in this file (or set DATAGRANT_PASSPHRASE)',
    )
    .option('--force', 'overwrite an existing file')
    .action(async (o: { out: string; label: string; passphraseFile?: string; force?: boolean }) => {
      const [{ generateKeySet }, { writeKeyFile }] = await Promise.all([
        import('../common/keyfile.js'),
        import('../common/keyfile-fs.js'),
      ]);
      const keys = generateKeySet(o.label);
      const passphrase = await passphraseFrom(o);
      await writeKeyFile(o.out, keys, { ...(passphrase ? { passphrase } : {}), overwrite: o.force === true });
      const signKey = Buffer.from(keys.signing.publicKey).toString('hex');
      const encKey = Buffer.from(keys.encryption.publicKey).toString('hex');
      print({ file: o.out, signKey, encKey, sealed: Boolean(passphrase) }, false, () =>
        [`wrote ${o.out}${passphrase ? ' (sealed)' : ''}`, `sign key ${signKey}`, `enc key  ${encKey}`].join(
          '\n',
        ),
      );
    });

  program
    .command('init')
    .description('write genesis, keys and node homes for a local testnet')
    .requiredOption('--dir <dir>', 'directory to create the testnet in')
    .option('--validators <n>', 'number of validators (3f+1)', '4')
    .option(
      '--gateways <n>',
      "non-voting gateway nodes; the first belongs to the first institution and holds its key (the bank's own gateway)",
      '0',
    )
    .option('--institutions <n>', 'institutions in genesis (demo-bank, bank-1, ...)', '1')
    .option(
      '--extraction <policy>',
      'on-request (extract when the request commits) or on-consent',
      'on-request',
    )
    .option('--chain <id>', 'chain id', 'datagrant-local')
    .option(
      '--base-port <port>',
      'API port of the first node on a host (the next on that host: +1, ...; p2p: +100)',
      '26650',
    )
    .option('--block-interval <ms>', 'longest pause between blocks when idle', '1000')
    .option(
      '--hosts <h0,h1,...>',
      'one host per node, validators first, then gateways: where it binds and is dialed (default: all on 127.0.0.1)',
    )
    .option('--listen-host <ip>', 'with --hosts: bind every node here instead (e.g. 0.0.0.0)')
    .option(
      '--topology <file>',
      'JSON {"nodes":[{name, kind, host, listenHost?, apiHost?, apiPort?, p2pPort?, roles?, types?}]}',
    )
    .option('--synthetic-source <url>', 'extractors read the SIMULATED data platform at this URL')
    .option(
      '--synthetic-source-key <file>',
      "with --synthetic-source: the platform's signing key file (created if missing; start the platform with --key-file FILE); registered in genesis",
    )
    .option('--sources <file>', 'extractors read the data-source configs in this JSON file (one or a list)')
    .action(
      async (
        o: {
          dir: string;
          validators: string;
          gateways: string;
          institutions: string;
          extraction: string;
          chain: string;
          basePort: string;
          blockInterval: string;
          hosts?: string;
          listenHost?: string;
          topology?: string;
          syntheticSource?: string;
          syntheticSourceKey?: string;
          sources?: string;
        },
        cmd: Command,
      ) => {
        const dir = resolve(o.dir);
        if (existsSync(join(dir, 'genesis.json')))
          throw new DatagrantError('CLI_EXISTS', `${dir} already holds a testnet`);
        const count = (name: string, text: string, min: number) => {
          const v = Number(text);
          if (!Number.isInteger(v) || v < min || v > 100)
            throw new DatagrantError('CLI_USAGE', `--${name} must be an integer from ${min} to 100`);
          return v;
        };
        if (o.extraction !== 'on-request' && o.extraction !== 'on-consent')
          throw new DatagrantError('CLI_USAGE', '--extraction must be on-request or on-consent');
        const passphrase = process.env.DATAGRANT_PASSPHRASE || undefined;
        const validators = count('validators', o.validators, 1);
        const gateways = count('gateways', o.gateways, 0);
        const [{ placementOf }, { initTestnet }] = await Promise.all([
          import('./init-placement.js'),
          import('../node/init.js'),
        ]);
        const placement = await placementOf({
          ...o,
          validators,
          gateways,
          explicit: {
            validators: cmd.getOptionValueSource('validators') === 'cli',
            gateways: cmd.getOptionValueSource('gateways') === 'cli',
          },
        });
        const result = await initTestnet({
          dir,
          ...placement,
          validators,
          gateways,
          institutions: count('institutions', o.institutions, 1),
          extraction: o.extraction,
          ...(passphrase ? { passphrase } : {}),
          chain: o.chain,
          basePort: Number(o.basePort),
          blockIntervalMs: Number(o.blockInterval),
        });
        print(result, false, () =>
          [
            `testnet ${result.genesis.chain} written to ${dir}`,
            ...result.nodes.map(
              (n) =>
                `  ${n.name.padEnd(9)} ${n.kind.padEnd(9)} ${n.roles.join('+').padEnd(18)} ${n.apiUrl}  ${n.configPath}${n.institution ? `  (holds ${n.institution}'s key)` : ''}`,
            ),
            ...result.institutions.map(
              (i) => `  institution ${i.id}: key file ${i.key}${passphrase ? ' (sealed)' : ''}`,
            ),
          ].join('\n'),
        );
      },
    );

  const node = program.command('node').description('run a node');
  node
    .command('start')
    .description('start a node from its config (or a one-validator dev chain with --dev)')
    .option('--config <file>', 'node config file')
    .option(
      '--home <dir>',
      'node home (config.json inside); with --dev, created if missing',
      '.datagrant/dev',
    )
    .option('--dev', 'run a one-validator dev chain, initialising it on first start')
    .option(
      '--snapshot <file>',
      'start an empty node from a state snapshot (`datagrant snapshot`), then sync the blocks after it',
    )
    .option('--api-port <port>', 'with --dev on first start: API port', '26650')
    .option(
      '--stop-timeout <ms>',
      'on SIGTERM/SIGINT, exit with code 1 if a clean stop takes longer',
      String(DEFAULT_STOP_TIMEOUT_MS),
    )
    .action(
      async (o: {
        config?: string;
        home: string;
        dev?: boolean;
        apiPort: string;
        stopTimeout: string;
        snapshot?: string;
      }) => {
        const stopTimeoutMs = Number(o.stopTimeout);
        if (!Number.isInteger(stopTimeoutMs) || stopTimeoutMs < 1)
          throw new DatagrantError('CLI_USAGE', '--stop-timeout must be a positive integer (ms)');
        let configPath = o.config ? resolve(o.config) : join(resolve(o.home), 'config.json');
        if (o.dev && !o.config) {
          const home = resolve(o.home);
          configPath = join(home, 'node0', 'config.json');
          if (!existsSync(configPath)) {
            const { initTestnet } = await import('../node/init.js');
            await initTestnet({
              dir: home,
              validators: 1,
              chain: 'datagrant-dev',
              basePort: Number(o.apiPort),
            });
          }
        }
        const [{ loadNodeConfig }, { createLogger }] = await Promise.all([
          import('../node/config.js'),
          import('../common/logger.js'),
        ]);
        const config = await loadNodeConfig(configPath);
        const logger = createLogger({ ...(config.logLevel ? { level: config.logLevel } : {}) }).child({
          node: config.name,
        });
        // Loaded here: the node (libp2p, Fastify, LevelDB) is most of the CLI's start-up time.
        const { DatagrantNode } = await import('../node/node.js');
        const instance = new DatagrantNode(config, logger);
        const snapshot = o.snapshot;
        const startable = {
          start: () => instance.start(snapshot !== undefined ? { snapshot } : {}),
          stop: () => instance.stop(),
          get apiUrl() {
            return instance.apiUrl;
          },
        };
        process.exit(await runNodeProcess(startable, logger, { stopTimeoutMs }));
      },
    );

  const port = (name: string, text: string): number => {
    const v = Number(text);
    if (!Number.isInteger(v) || v < 1 || v > 65535)
      throw new DatagrantError('CLI_USAGE', `--${name} must be a port from 1 to 65535`);
    return v;
  };
  node
    .command('join')
    .description(
      "write the home of a node joining this chain as a validator the council seats later: genesis, peers and timing from an existing node's config, a new node key; prints the key to propose (gov propose validator-add --validator <key>)",
    )
    .requiredOption('--home <dir>', 'the new node home')
    .requiredOption('--from <config>', "an existing node's config.json (genesis and peers are copied)")
    .requiredOption('--name <name>', "the node's name (the validator name to propose)")
    .requiredOption('--api-port <port>', 'API port')
    .requiredOption('--p2p-port <port>', 'p2p port')
    .option('--host <address>', 'address to bind and announce', '127.0.0.1')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        home: string;
        from: string;
        name: string;
        apiPort: string;
        p2pPort: string;
        host: string;
        json?: boolean;
      }) => {
        const { joinHome } = await import('../node/join.js');
        const joined = await joinHome({
          home: o.home,
          from: o.from,
          name: o.name,
          apiPort: port('api-port', o.apiPort),
          p2pPort: port('p2p-port', o.p2pPort),
          host: o.host,
        });
        print(joined, o.json === true, () =>
          [
            `wrote ${joined.configPath}`,
            `validator key ${joined.key}`,
            `next: a council member runs  datagrant gov propose validator-add --name ${o.name} --validator ${joined.key} --key <council key>`,
            `then start it: datagrant node start --config ${joined.configPath}`,
          ].join('\n'),
        );
      },
    );

  program
    .command('status')
    .description("show a node's chain status")
    .option('--api <url>', 'node API URL', DEFAULT_API)
    .option('--json', 'print JSON')
    .action(async (o: { api: string; json?: boolean }) => {
      const { apiCall } = await import('./client.js');
      const s = await apiCall<Record<string, unknown>>(o.api, 'GET', '/v1/status');
      print(s, o.json === true, () =>
        [
          `chain     ${s.chain}`,
          `height    ${s.height}`,
          `hash      ${s.hash}`,
          `mode      ${s.mode}  view ${s.view}`,
          `primary   ${s.primary}`,
          `peers     ${(s.peers as string[]).length}`,
          `mempool   ${s.mempool}`,
        ].join('\n'),
      );
    });

  const tx = program.command('tx').description('transactions');
  tx.command('submit')
    .description('submit a signed transaction (JSON file, or - for stdin)')
    .argument('<file>', 'signed transaction JSON')
    .option('--api <url>', 'node API URL', DEFAULT_API)
    .option('--wait', 'wait until it is committed')
    .action(async (file: string, o: { api: string; wait?: boolean }) => {
      const text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
      const { apiCall, waitForTx } = await import('./client.js');
      const r = await apiCall<{ hash: string }>(o.api, 'POST', '/v1/txs', text);
      if (!o.wait) return print(r, false, () => `submitted ${r.hash}`);
      const done = await waitForTx(o.api, r.hash);
      if (done.status === 'rejected') throw new DatagrantError(done.error!.code, done.error!.message);
      print({ ...r, ...done }, false, () => `committed ${r.hash} at height ${done.height}`);
    });
  tx.command('show')
    .description('show a transaction and where it is')
    .argument('<hash>')
    .option('--api <url>', 'node API URL', DEFAULT_API)
    .action(async (hash: string, o: { api: string }) => {
      const { apiCall } = await import('./client.js');
      print(await apiCall(o.api, 'GET', `/v1/txs/${hash}`), true, () => '');
    });

  program
    .command('verify')
    .description(
      'verify a transaction inclusion proof against a genesis file (offline; past a validator-set change the sets are followed through --api, each certified by the one before)',
    )
    .requiredOption('--genesis <file>', 'genesis.json of the chain')
    .option('--proof <file>', 'proof JSON file (from GET /v1/txs/:hash/proof)')
    .option('--tx <hash>', 'fetch the proof of this tx from --api, then verify it locally')
    .option('--api <url>', 'node API URL (with --tx, or to follow validator-set changes)', DEFAULT_API)
    .option(
      '--as <caller>',
      'sign the fetch as subject:<id> or institution:<id> (a tx about a subject is shown only to its parties)',
    )
    .option('--key <file>', 'key file of --as')
    .action(
      async (o: { genesis: string; proof?: string; tx?: string; api: string; as?: string; key?: string }) => {
        const [{ readGenesis }, { apiCall, signedApiCall }, { LightClient }] = await Promise.all([
          import('../node/genesis-file.js'),
          import('./client.js'),
          import('../ledger/light-client.js'),
        ]);
        const genesis = await readGenesis(o.genesis);
        let proof: TxProof;
        if (o.proof) proof = JSON.parse(await readFile(o.proof, 'utf8')) as TxProof;
        else if (o.tx && o.as) {
          if (!o.key) throw new DatagrantError('CLI_USAGE', '--as needs --key');
          const { readKeyFile } = await import('../common/keyfile-fs.js');
          const keys = await readKeyFile(o.key, await passphraseFrom({}));
          proof = await signedApiCall<TxProof>(
            o.api,
            'GET',
            `/v1/txs/${o.tx}/proof`,
            o.as,
            keys.signing.secretKey,
          );
        } else if (o.tx) proof = await apiCall<TxProof>(o.api, 'GET', `/v1/txs/${o.tx}/proof`);
        else throw new DatagrantError('CLI_USAGE', 'give --proof <file> or --tx <hash>');
        // From genesis alone; a proof past a validator-set change needs the chain of sets, which
        // is followed through --api, each set certified by the one before it.
        const light = new LightClient(genesis);
        let result = light.verifyTx(proof);
        if (!result.ok && result.code === 'LIGHT_VALIDATORS_UNKNOWN') {
          await light.followValidatorSets((path) => apiCall(o.api, 'GET', path), {
            code: 'CLI_NODE_LIED',
            node: o.api,
          });
          result = light.verifyTx(proof);
        }
        if (!result.ok) throw new DatagrantError(result.code, result.message);
        if (o.tx && result.hash !== o.tx)
          throw new DatagrantError('PROOF_WRONG_TX', 'the proof is for another transaction');
        print(
          result,
          false,
          () =>
            `verified: tx ${result.hash} is in block ${result.height} (${result.blockHash}), certified by a validator quorum`,
        );
      },
    );

  program
    .command('hash')
    .description('print the hash of a transaction JSON file (checks its schema)')
    .argument('<file>')
    .action(async (file: string) => {
      const { decodeTx, txHash } = await import('../ledger/tx-codec.js');
      const parsed = decodeTx(JSON.parse(await readFile(file, 'utf8')));
      print({ hash: txHash(parsed) }, false, () => txHash(parsed));
    });

  program
    .command('key')
    .description('show the public keys of a key file')
    .argument('<file>')
    .option('--passphrase-file <file>', 'passphrase of a sealed key file (or DATAGRANT_PASSPHRASE)')
    .action(async (file: string, o: { passphraseFile?: string }) => {
      const { readKeyFile } = await import('../common/keyfile-fs.js');
      const keys = await readKeyFile(file, await passphraseFrom(o));
      const signKey = Buffer.from(keys.signing.publicKey).toString('hex');
      const encKey = Buffer.from(keys.encryption.publicKey).toString('hex');
      print({ label: keys.label, signKey, encKey }, false, () => `sign key ${signKey}\nenc key  ${encKey}`);
    });

  addFlowCommands(program);
  addBackupCommands(program);
  addMigrateCommand(program);
  addGovCommands(program);
  addInstitutionCommands(program);
  addRegistrarCommands(program);
  return program;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Runs the CLI; prints `error CODE: message` and exits non-zero on failure. */
export async function main(argv: string[]): Promise<void> {
  // A reader that stops early (`datagrant … | head`) is not an error of the command.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  try {
    await buildCli().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof DatagrantError) {
      process.stderr.write(`error ${err.code}: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    process.stderr.write(`error: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  }
}
