/**
 * `datagrant migrate`: upgrades a stopped node's stores in place to the store format this code
 * reads (src/common/store-format.ts). Each store has its list of steps, one per format; the steps
 * from the store's format on are applied in order, each in one atomic, synced LevelDB batch that
 * also writes the new marker, so a crash leaves the store in the old format or the new one, and a
 * second run finds nothing to do. Every store is opened and every step planned before anything is
 * written: a store that cannot be migrated (another chain's, a newer format, locked by a running
 * node) leaves all of them untouched.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Level } from 'level';
import { DatagrantError } from '../common/errors.js';
import {
  CURRENT_STORE_FORMAT,
  encodeStoreMarker,
  migrateCommand,
  parseStoreMarker,
  READABLE_STORE_FORMATS,
  STORE_FORMAT_KEY,
  STORE_KINDS,
  type StoreKind,
  type StoreLocation,
  type StoreMarker,
  storeHasData,
  storeOpenError,
  UNMARKED_STORE_FORMAT,
} from '../common/store-format.js';
import { unmarkedChainGenesis } from '../ledger/index.js';
import { FileSigningState, SIGNING_STATE_FILE } from './signing-state.js';

/** One write of a migration step. */
export type StoreOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

/** What a step may read of the store it upgrades. */
export interface MigrationSource {
  get(key: string): Promise<string | undefined>;
}

/** What a step knows besides the store. */
export interface MigrationContext {
  /** Where the store is, for messages. */
  at: StoreLocation;
  /** Hash of the genesis in the node's config. */
  genesisHash: string;
}

/** One step of a store from format `from` to format `to` (= from + 1). */
export interface StoreMigration {
  from: number;
  to: number;
  /** What the step does, as `--dry-run` prints it. */
  describe: string;
  /**
   * Reads the store as it is and returns the step's writes, the new marker among them; writes
   * nothing itself (the runner applies them in one batch). Throws to refuse the migration.
   */
  run(db: MigrationSource, ctx: MigrationContext): Promise<StoreOp[]>;
}

function markerOp(kind: StoreKind, marker: Omit<StoreMarker, 'store'>): StoreOp {
  return { type: 'put', key: STORE_FORMAT_KEY[kind], value: encodeStoreMarker({ store: kind, ...marker }) };
}

/** The steps of each store, oldest first. */
export const STORE_MIGRATIONS: Readonly<Record<StoreKind, readonly StoreMigration[]>> = {
  chain: [
    {
      from: 1,
      to: 2,
      describe:
        "record the store's genesis hash (read from its blocks, checked against the node's genesis) in a format marker",
      async run(db, ctx) {
        const found = await unmarkedChainGenesis(db);
        if (found === undefined)
          throw new DatagrantError('LEDGER_STORE_CORRUPT', `${ctx.at.path} holds data but no chain tip`);
        if (found !== ctx.genesisHash)
          throw new DatagrantError(
            'LEDGER_GENESIS_MISMATCH',
            `${ctx.at.path} was made for another genesis (${found}, this node's is ${ctx.genesisHash}): not migrated`,
            { path: ctx.at.path, found, expected: ctx.genesisHash },
          );
        return [markerOp('chain', { format: 2, genesis: found })];
      },
    },
  ],
  payloads: [
    {
      from: 1,
      to: 2,
      describe: 'add a format marker',
      run: async () => [markerOp('payloads', { format: 2 })],
    },
  ],
  replay: [
    { from: 1, to: 2, describe: 'add a format marker', run: async () => [markerOp('replay', { format: 2 })] },
  ],
};

/** What `migrateStores` did (or, in a dry run, would do) to one store. */
export interface StoreMigrationReport {
  store: StoreKind;
  path: string;
  /** Format found; null for an absent or empty store (the node marks a new store itself). */
  from: number | null;
  /** Format after the migration. */
  to: number | null;
  status: 'absent' | 'empty' | 'current' | 'migrated' | 'would-migrate';
  /** The steps applied (or planned), each `from→to: what`. */
  steps: string[];
  /** Writes of those steps. */
  writes: number;
}

/** What `migrateStores` did to a node's stores. */
export interface MigrationReport {
  home: string;
  dryRun: boolean;
  stores: StoreMigrationReport[];
  /** The validator's signing state file: its own version, read as the node reads it. */
  signingState: { path: string; present: boolean };
}

/** Options of `migrateStores`. */
export interface MigrateOptions {
  /** The node's home (named in messages). */
  home: string;
  /** The node's data directory (`chain/`, `payloads/`, `replay/` inside). */
  data: string;
  /** Hash of the node's genesis. */
  genesisHash: string;
  /** The signing state file (default `signing-state.json` in the home). */
  signingState?: string;
  /** Plans and reports, writes nothing. */
  dryRun?: boolean;
}

interface Plan {
  report: StoreMigrationReport;
  at: StoreLocation;
  db?: Level<string, string>;
  steps: StoreMigration[];
  /** The first step's writes, computed while planning (it is what checks the store). */
  first: StoreOp[];
}

/** The format of an open store and whether it holds data. */
async function formatOf(db: Level<string, string>, at: StoreLocation): Promise<number | null> {
  const raw = await db.get(STORE_FORMAT_KEY[at.kind]);
  if (raw !== undefined) {
    const marker = parseStoreMarker(raw, at);
    if (marker.store !== at.kind)
      throw new DatagrantError(
        'STORE_WRONG_KIND',
        `${at.path} holds a ${marker.store} store, not a ${at.kind} store`,
      );
    return marker.format;
  }
  return (await storeHasData(db)) ? UNMARKED_STORE_FORMAT : null;
}

/** The steps that take `from` to the current format, or STORE_VERSION_UNKNOWN. */
function stepsFrom(kind: StoreKind, from: number, at: StoreLocation): StoreMigration[] {
  const steps: StoreMigration[] = [];
  let format = from;
  while (format !== CURRENT_STORE_FORMAT) {
    const step = STORE_MIGRATIONS[kind].find((m) => m.from === format);
    if (!step)
      throw new DatagrantError(
        'STORE_VERSION_UNKNOWN',
        `${at.path} is a ${kind} store in format ${from}, which this datagrant neither reads (it reads format ` +
          `${READABLE_STORE_FORMATS.join(', ')}) nor upgrades (\`${migrateCommand(at.home)}\` upgrades format ` +
          `${UNMARKED_STORE_FORMAT}): use the datagrant that wrote it`,
        { path: at.path, store: kind, found: from, readable: [...READABLE_STORE_FORMATS] },
      );
    steps.push(step);
    format = step.to;
  }
  return steps;
}

/**
 * Opens a store and plans its steps (the database stays open for `apply`). The first step runs
 * now, on the store as it is; a later one runs once the writes of the one before are applied.
 */
async function planStore(kind: StoreKind, options: MigrateOptions): Promise<Plan> {
  const path = join(options.data, kind);
  const at: StoreLocation = { kind, path, home: options.home };
  const report: StoreMigrationReport = {
    store: kind,
    path,
    from: null,
    to: null,
    status: 'absent',
    steps: [],
    writes: 0,
  };
  if (!existsSync(path)) return { report, at, steps: [], first: [] };
  const db = new Level<string, string>(path, { valueEncoding: 'utf8', createIfMissing: false });
  try {
    await db.open();
  } catch (err) {
    throw storeOpenError(err, at, `run \`${migrateCommand(options.home)}\` again`);
  }
  try {
    const from = await formatOf(db, at);
    report.from = from;
    if (from === null) return { report: { ...report, status: 'empty' }, at, db, steps: [], first: [] };
    const steps = stepsFrom(kind, from, at);
    const first = steps[0] ? await steps[0].run(db, { at, genesisHash: options.genesisHash }) : [];
    report.to = CURRENT_STORE_FORMAT;
    report.steps = steps.map((step) => `${step.from}→${step.to}: ${step.describe}`);
    report.writes = first.length;
    report.status = steps.length === 0 ? 'current' : options.dryRun ? 'would-migrate' : 'migrated';
    return { report, at, db, steps, first };
  } catch (err) {
    await db.close();
    throw err;
  }
}

/** Applies a plan's steps in order, each in one synced batch, and checks the marker after each. */
async function apply(plan: Plan, genesisHash: string): Promise<void> {
  const db = plan.db!;
  for (const [i, step] of plan.steps.entries()) {
    const ops = i === 0 ? plan.first : await step.run(db, { at: plan.at, genesisHash });
    if (i > 0) plan.report.writes += ops.length;
    await db.batch(ops, { sync: true });
    const format = await formatOf(db, plan.at);
    if (format !== step.to)
      throw new DatagrantError(
        'STORE_MIGRATION_FAILED',
        `${plan.at.path} is in format ${format} after the step ${step.from}→${step.to}`,
        { path: plan.at.path },
      );
  }
}

/**
 * Upgrades the stores of a stopped node in place (or, with `dryRun`, only says what it would do).
 * STORE_IN_USE while the node runs; STORE_VERSION_UNKNOWN for a format this code cannot upgrade;
 * LEDGER_GENESIS_MISMATCH for a chain store of another genesis. Idempotent.
 */
export async function migrateStores(options: MigrateOptions): Promise<MigrationReport> {
  const plans: Plan[] = [];
  try {
    for (const kind of STORE_KINDS) plans.push(await planStore(kind, options));
    const signingPath = options.signingState ?? join(options.home, SIGNING_STATE_FILE);
    // Read as the node reads it: a file of another version is refused here as at start.
    const { present } = await new FileSigningState(signingPath).load();
    if (!options.dryRun) for (const plan of plans) await apply(plan, options.genesisHash);
    return {
      home: options.home,
      dryRun: options.dryRun === true,
      stores: plans.map((p) => p.report),
      signingState: { path: signingPath, present },
    };
  } finally {
    for (const plan of plans) await plan.db?.close();
  }
}
