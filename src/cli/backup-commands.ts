/**
 * `datagrant backup` (a consistent copy of a running node, streamed by the node itself and signed
 * for with its own key), `datagrant restore` (a stopped node's data from such a copy; the node
 * then catches up from its peers) and `datagrant snapshot` (the committed state at the node's tip,
 * for a new node's `node start --snapshot`). See src/node/backup.ts, src/node/snapshot.ts and
 * docs/formats.md.
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { DatagrantError } from '../common/errors.js';
import type { KeySet } from '../common/keyfile.js';
import type { Genesis } from '../ledger/genesis.js';
import type { BackupProgress } from '../node/backup.js';
import type { NodeConfig } from '../node/config.js';
import { passphraseFrom } from './passphrase.js';

/** The config of `--home` or `--config` (exactly one). */
async function configOf(o: { home?: string; config?: string }): Promise<NodeConfig> {
  if ((o.home === undefined) === (o.config === undefined))
    throw new DatagrantError('CLI_USAGE', 'give --home <dir> or --config <file>');
  const { loadNodeConfig } = await import('../node/config.js');
  return loadNodeConfig(o.config ? resolve(o.config) : join(resolve(o.home!), 'config.json'));
}

/** The URL the node's own API answers on, from its config (a wildcard bind is reached on loopback). */
export function apiUrlOf(config: NodeConfig): string {
  let host = config.api.host;
  if (host === '0.0.0.0' || host === '') host = '127.0.0.1';
  else if (host === '::') host = '[::1]';
  else if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  return `http://${host}:${config.api.port}`;
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/** Progress lines on stderr (stdout keeps the result). */
function progressTo(quiet: boolean | undefined): ((p: BackupProgress) => void) | undefined {
  if (quiet) return undefined;
  return (p) => {
    const entries = p.phase === 'download' ? '' : `, ${p.entries} entries`;
    process.stderr.write(`${p.phase}: ${mib(p.bytes)}${entries}\n`);
  };
}

function print(value: unknown, json: boolean | undefined, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

/** Options of a download signed for with the node's own key (`snapshot`, `backup`). */
interface DownloadFlags {
  home?: string;
  config?: string;
  out: string;
  api?: string;
  passphraseFile?: string;
  force?: boolean;
  quiet?: boolean;
  json?: boolean;
}

/** What a download command gets once its flags are read: the node's config, keys and genesis. */
interface DownloadContext {
  o: DownloadFlags;
  common: {
    api: string;
    node: string;
    keys: KeySet;
    out: string;
    force: boolean;
    onProgress?: (p: BackupProgress) => void;
  };
  genesis: Genesis;
}

/** A command that streams something from a running node to `--out`, signed with its own key. */
function downloadCommand(
  program: Command,
  name: string,
  description: string,
  what: string,
  run: (c: DownloadContext) => Promise<void>,
): void {
  program
    .command(name)
    .description(description)
    .option('--home <dir>', 'node home (config.json inside)')
    .option('--config <file>', 'node config file (instead of --home)')
    .requiredOption('--out <file>', `where to write the ${what}`)
    .option('--api <url>', "the node's API URL (default: from its config)")
    .option('--passphrase-file <file>', 'passphrase of a sealed node key file (or DATAGRANT_PASSPHRASE)')
    .option('--force', 'overwrite an existing --out file')
    .option('--quiet', 'no progress output')
    .option('--json', 'print the result as JSON')
    .action(async (o: DownloadFlags) => {
      const config = await configOf(o);
      const [{ readKeyFile }, { readGenesis }] = await Promise.all([
        import('../common/keyfile-fs.js'),
        import('../node/genesis-file.js'),
      ]);
      const keys = await readKeyFile(config.key, await passphraseFrom(o));
      const genesis = await readGenesis(config.genesis);
      const onProgress = progressTo(o.quiet);
      await run({
        o,
        genesis,
        common: {
          api: o.api ?? apiUrlOf(config),
          node: config.name,
          keys,
          out: o.out,
          force: o.force === true,
          ...(onProgress ? { onProgress } : {}),
        },
      });
    });
}

/** Adds `datagrant backup`, `datagrant restore` and `datagrant snapshot` to the command tree. */
export function addBackupCommands(program: Command): void {
  downloadCommand(
    program,
    'snapshot',
    "write the state at a running node's committed tip, with its certified block, for a new node to start from (`node start --snapshot`)",
    'snapshot',
    async ({ o, common, genesis }) => {
      const { downloadSnapshot } = await import('../node/snapshot.js');
      const summary = await downloadSnapshot({ ...common, genesis });
      const h = summary.header;
      print({ file: resolve(o.out), ...summary }, o.json, () =>
        [
          `snapshot of ${h.node} written to ${resolve(o.out)} (${mib(summary.bytes)})`,
          `  chain ${h.chain}, height ${h.height}, block ${h.blockHash}`,
          `  ${summary.entries} state entries; checked against the certificate and the state root`,
          '  start a new node with an empty data directory: datagrant node start --config <file> --snapshot <this file>',
        ].join('\n'),
      );
    },
  );

  downloadCommand(
    program,
    'backup',
    "take a consistent backup of a running node (streamed by the node, signed for with the node's own key)",
    'backup',
    async ({ o, common, genesis }) => {
      const { downloadBackup } = await import('../node/backup.js');
      const summary = await downloadBackup({ ...common, chain: genesis.chain });
      const h = summary.header;
      print({ file: resolve(o.out), ...summary }, o.json, () =>
        [
          `backup of ${h.node} written to ${resolve(o.out)} (${mib(summary.bytes)})`,
          `  chain ${h.chain}, height ${h.height}, block ${h.blockHash}`,
          `  ${summary.entries.chain} chain entries, ${summary.entries.payloads} payload entries`,
        ].join('\n'),
      );
    },
  );

  program
    .command('restore')
    .description(
      "restore a stopped node's data from a backup; its signing state is removed, so a validator runs its double-sign check before voting",
    )
    .argument('<file>', 'the backup file')
    .option('--home <dir>', 'node home (config.json inside)')
    .option('--config <file>', 'node config file (instead of --home)')
    .option('--force', 'move a non-empty data directory aside (data.replaced-<time>) and restore')
    .option('--quiet', 'no progress output')
    .option('--json', 'print the result as JSON')
    .action(
      async (
        file: string,
        o: { home?: string; config?: string; force?: boolean; quiet?: boolean; json?: boolean },
      ) => {
        const config = await configOf(o);
        const [{ readGenesis }, { restoreBackup }] = await Promise.all([
          import('../node/genesis-file.js'),
          import('../node/backup.js'),
        ]);
        const genesis = await readGenesis(config.genesis);
        const onProgress = progressTo(o.quiet);
        const result = await restoreBackup({
          file,
          config,
          genesis,
          force: o.force === true,
          ...(onProgress ? { onProgress } : {}),
        });
        const h = result.header;
        print(result, o.json, () =>
          [
            `restored ${config.data} to height ${h.height} (block ${h.blockHash})`,
            `  from ${resolve(file)}, taken from ${h.node} at ${new Date(h.time).toISOString()}`,
            `  ${result.entries.chain - result.dropped} chain entries, ${result.entries.payloads} payload entries`,
            ...(result.movedAside ? [`  the previous data is in ${result.movedAside}`] : []),
            result.signingStateRemoved
              ? '  signing state removed: the validator runs its double-sign check before it votes'
              : '  no signing state: the validator runs its double-sign check before it votes',
            genesis.validators.length === 1
              ? '  a one-validator chain has no peers: blocks after the backup are lost, and the node produces new ones at those heights'
              : '  start the node: it catches up from its peers',
          ].join('\n'),
        );
      },
    );
}
