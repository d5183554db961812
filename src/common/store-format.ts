/**
 * Store formats. Each LevelDB store of a node (the chain, the payloads, the replay guard) holds a
 * marker under a key of its own that no data key can take: which store it is and the format of its
 * layout. A store opens only in a format this code reads; an older one is upgraded in place by
 * `datagrant migrate` (src/node/migrate.ts), a newer one is refused.
 *
 * Formats:
 * - 1: the layout before markers (no marker at all).
 * - 2: the marker; the chain store's marker also records the hash of the genesis the store was
 *   made for, checked at every open whatever the height (format 1 could only check it at height 0).
 */
import { DatagrantError } from './errors.js';

/** The LevelDB stores of a node, by the name of their directory under the node's data directory. */
export type StoreKind = 'chain' | 'payloads' | 'replay';

/** Every store kind, in the order a node opens them. */
export const STORE_KINDS: readonly StoreKind[] = ['chain', 'payloads', 'replay'];

/** The format this code writes into a new store. */
export const CURRENT_STORE_FORMAT = 2;

/** Formats this code opens as they are. */
export const READABLE_STORE_FORMATS: readonly number[] = [2];

/** The format of a store without a marker that holds data (written before markers existed). */
export const UNMARKED_STORE_FORMAT = 1;

/**
 * Key of the marker in each store: in the chain store among its metadata (`m:`), in the others
 * under `~`, which sorts after every payload digest and is no caller of a signed call.
 */
export const STORE_FORMAT_KEY: Readonly<Record<StoreKind, string>> = {
  chain: 'm:format',
  payloads: '~format',
  replay: '~format',
};

/** What the marker says. */
export interface StoreMarker {
  store: StoreKind;
  format: number;
  /** Chain store only: hash of the genesis the store was made for. */
  genesis?: string;
}

/** Where a store is and whose it is, for the messages of its errors. */
export interface StoreLocation {
  kind: StoreKind;
  /** Directory of the LevelDB database. */
  path: string;
  /** Home of the node the store belongs to, named in the `datagrant migrate` command. */
  home?: string;
}

/** The command that upgrades the stores of the node at `home`. */
export function migrateCommand(home?: string): string {
  return `datagrant migrate --home ${home ?? '<node home>'}`;
}

/** The marker as stored. */
export function encodeStoreMarker(marker: StoreMarker): string {
  return JSON.stringify({
    store: marker.store,
    format: marker.format,
    ...(marker.genesis !== undefined ? { genesis: marker.genesis } : {}),
  });
}

/** Parses a stored marker; STORE_MARKER_CORRUPT when it is not one. */
export function parseStoreMarker(raw: string, at: StoreLocation): StoreMarker {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  const m = parsed as Partial<StoreMarker> | undefined;
  if (
    typeof m !== 'object' ||
    m === null ||
    typeof m.store !== 'string' ||
    !Number.isSafeInteger(m.format) ||
    (m.genesis !== undefined && typeof m.genesis !== 'string')
  )
    throw new DatagrantError(
      'STORE_MARKER_CORRUPT',
      `${at.path}: the store format marker (${STORE_FORMAT_KEY[at.kind]}) is not readable; refusing to guess the layout`,
      { path: at.path },
    );
  return {
    store: m.store as StoreKind,
    format: m.format!,
    ...(m.genesis !== undefined ? { genesis: m.genesis } : {}),
  };
}

/** How a store found on open may be used. */
export type StoreFormatState =
  /** Nothing in it: the caller writes the current marker with its first write. */
  | { state: 'fresh' }
  /** In a format this code reads. */
  | { state: 'readable'; marker: StoreMarker };

/**
 * Decides from a store's marker (`raw`, undefined when absent) and whether it holds any data
 * whether this code may open it. Throws STORE_MIGRATION_NEEDED (format 1: data, no marker),
 * STORE_VERSION_UNKNOWN (a format this code does not read), STORE_WRONG_KIND (the marker of
 * another store) or STORE_MARKER_CORRUPT; every message names the store and the command to run.
 */
export function checkStoreFormat(
  at: StoreLocation,
  raw: string | undefined,
  hasData: boolean,
): StoreFormatState {
  if (raw === undefined) {
    if (!hasData) return { state: 'fresh' };
    throw new DatagrantError(
      'STORE_MIGRATION_NEEDED',
      `${at.path} is a ${at.kind} store in format ${UNMARKED_STORE_FORMAT} (it has no format marker); ` +
        `this node reads format ${READABLE_STORE_FORMATS.join(', ')}: stop the node and run \`${migrateCommand(at.home)}\``,
      { path: at.path, store: at.kind, found: UNMARKED_STORE_FORMAT, readable: [...READABLE_STORE_FORMATS] },
    );
  }
  const marker = parseStoreMarker(raw, at);
  if (marker.store !== at.kind)
    throw new DatagrantError(
      'STORE_WRONG_KIND',
      `${at.path} holds a ${marker.store} store, not a ${at.kind} store: check the node's data directory`,
      { path: at.path, store: at.kind, found: marker.store },
    );
  if (!READABLE_STORE_FORMATS.includes(marker.format))
    throw new DatagrantError(
      'STORE_VERSION_UNKNOWN',
      `${at.path} is a ${at.kind} store in format ${marker.format}, which this node does not read ` +
        `(it reads format ${READABLE_STORE_FORMATS.join(', ')}, and \`${migrateCommand(at.home)}\` upgrades ` +
        `format ${UNMARKED_STORE_FORMAT} to it): run the datagrant that wrote it, or that version's \`datagrant migrate\``,
      { path: at.path, store: at.kind, found: marker.format, readable: [...READABLE_STORE_FORMATS] },
    );
  return { state: 'readable', marker };
}

/** Whether a LevelDB database holds any key at all. */
export async function storeHasData(db: {
  keys(options: { limit: number }): AsyncIterable<unknown>;
}): Promise<boolean> {
  for await (const _ of db.keys({ limit: 1 })) return true;
  return false;
}

/**
 * The error to throw when opening a store failed: STORE_IN_USE when another process holds its
 * LevelDB lock (the node is running), else `err` itself. `doing` ends the message's advice.
 */
export function storeOpenError(err: unknown, at: StoreLocation, doing = 'open it'): unknown {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  if (cause?.code === 'LEVEL_LOCKED')
    return new DatagrantError(
      'STORE_IN_USE',
      `${at.path} is open in another process (is the node running?): stop the node first, then ${doing}`,
      { path: at.path, store: at.kind },
    );
  return err;
}

/** The part of a LevelDB database `openMarkedStore` uses, values in the store's own encoding. */
export interface MarkedDatabase<V> {
  open(): Promise<void>;
  close(): Promise<void>;
  get(key: string): Promise<V | undefined>;
  put(key: string, value: V, options: { sync: boolean }): Promise<void>;
  keys(options: { limit: number }): AsyncIterable<unknown>;
}

/**
 * Opens a store whose marker has no more than its kind and format (the payload and replay stores):
 * a new store gets the current marker, any other must be in a format this code reads; on refusal
 * the database is closed again. `text` and `value` convert between the marker and stored values.
 */
export async function openMarkedStore<V>(
  db: MarkedDatabase<V>,
  at: StoreLocation,
  codec: { text(value: V): string; value(text: string): V },
): Promise<void> {
  try {
    await db.open();
  } catch (err) {
    throw storeOpenError(err, at, 'retry');
  }
  try {
    const raw = await db.get(STORE_FORMAT_KEY[at.kind]);
    const format = checkStoreFormat(
      at,
      raw === undefined ? undefined : codec.text(raw),
      await storeHasData(db),
    );
    if (format.state === 'fresh')
      await db.put(
        STORE_FORMAT_KEY[at.kind],
        codec.value(encodeStoreMarker({ store: at.kind, format: CURRENT_STORE_FORMAT })),
        { sync: true },
      );
  } catch (err) {
    await db.close();
    throw err;
  }
}
