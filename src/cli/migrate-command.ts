/**
 * `datagrant migrate`: upgrades a stopped node's stores to the store format this datagrant reads
 * (src/node/migrate.ts), or with `--dry-run` prints what it would do.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { DatagrantError } from '../common/errors.js';
import { CURRENT_STORE_FORMAT } from '../common/store-format.js';
import type { MigrationReport } from '../node/migrate.js';

/** The report as lines of text. */
export function formatMigrationReport(report: MigrationReport): string {
  const lines = [
    `${report.dryRun ? 'dry run (nothing written): ' : ''}stores of ${report.home}, to format ${CURRENT_STORE_FORMAT}`,
  ];
  for (const s of report.stores) {
    const head = `  ${s.store.padEnd(9)}`;
    if (s.status === 'absent') lines.push(`${head}absent (${s.path}); the node creates it`);
    else if (s.status === 'empty') lines.push(`${head}empty; the node marks it when it opens it`);
    else if (s.status === 'current') lines.push(`${head}format ${s.from}, current: nothing to do`);
    else {
      lines.push(
        `${head}format ${s.from} → ${s.to}${s.status === 'would-migrate' ? ' (would migrate)' : ''}`,
      );
      for (const step of s.steps) lines.push(`             ${step}`);
    }
  }
  const signing = report.signingState;
  lines.push(
    signing.present
      ? `  signing  ${signing.path}: version 1, readable: nothing to do`
      : `  signing  absent (${signing.path}): nothing to do`,
  );
  return lines.join('\n');
}

/** Adds `datagrant migrate` to the command tree. */
export function addMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description("upgrade a stopped node's stores in place to the store format this datagrant reads")
    .option('--home <dir>', 'node home (config.json inside)')
    .option('--config <file>', 'node config file (instead of --home)')
    .option('--dry-run', 'print what would be done; write nothing')
    .option('--json', 'print the report as JSON')
    .action(async (o: { home?: string; config?: string; dryRun?: boolean; json?: boolean }) => {
      if ((o.home === undefined) === (o.config === undefined))
        throw new DatagrantError('CLI_USAGE', 'give --home <dir> or --config <file>');
      const [{ loadNodeConfig }, { genesisHash, parseGenesis }, { migrateStores }] = await Promise.all([
        import('../node/config.js'),
        import('../ledger/genesis.js'),
        import('../node/migrate.js'),
      ]);
      const config = await loadNodeConfig(
        o.config ? resolve(o.config) : join(resolve(o.home!), 'config.json'),
      );
      let genesis: unknown;
      try {
        genesis = JSON.parse(await readFile(config.genesis, 'utf8'));
      } catch (err) {
        throw new DatagrantError(
          'LEDGER_GENESIS_INVALID',
          `cannot read genesis ${config.genesis}: ${(err as Error).message}`,
        );
      }
      const report = await migrateStores({
        home: config.home,
        data: config.data,
        genesisHash: genesisHash(parseGenesis(genesis)),
        ...(config.signingState ? { signingState: resolve(config.home, config.signingState) } : {}),
        dryRun: o.dryRun === true,
      });
      process.stdout.write(`${o.json ? JSON.stringify(report, null, 2) : formatMigrationReport(report)}\n`);
    });
}
