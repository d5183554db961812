/**
 * State snapshots: the committed state at one height, so that a new node starts there instead of
 * replaying every block from genesis.
 *
 * Taking one (`SnapshotService`, behind `GET /v1/admin/snapshot`, for the node's own operator):
 * the node reads its chain store through one LevelDB snapshot — the tip, the certified block at the
 * tip and every state entry, all of one height since a block commits in one batch — and streams
 * them (snapshot-format.ts). Nothing node-local travels: no keys, signing state, consensus
 * write-ahead state, replay guard or payloads; the replay protection of transactions (`seen-at/`
 * or `seen/` entries) is state, so it does.
 *
 * Trusting one (`verifySnapshotFile`): nothing in the file is taken on the word of the node that
 * made it. The block must be the header the file names, its transactions must match the header's
 * root, its certificate must carry a quorum (2f+1) of the genesis validators' commit signatures
 * over that header, and the sparse Merkle tree rebuilt from the entries must have the header's
 * state root. A quorum of validators signed that root, so entries that reproduce it are the
 * chain's state at that height (any other set would need a SHA-256 collision).
 *
 * Starting from one (`installSnapshotFile`, `datagrant node start --snapshot <file>`): only an
 * empty store (tip at genesis) takes it; the entries, block h and the tip at h with `base` h are
 * written in one batch. The node then syncs blocks h+1, … from its peers like any node behind, and
 * holds no block below h: it answers for those with LEDGER_BLOCK_NOT_HELD (API) or
 * SYNC_BLOCK_NOT_HELD (block sync); its transaction index starts at block h, its audit (subject)
 * index at h+1.
 */
import type { Readable } from 'node:stream';
import { utf8ToBytes } from '../common/bytes.js';
import { type CanonicalValue, canonicalBytes } from '../common/canonical.js';
import { DatagrantError, isDatagrantError } from '../common/errors.js';
import type { KeySet } from '../common/keyfile.js';
import type { Logger } from '../common/logger.js';
import {
  type BlockStore,
  blockHash,
  type CertifiedBlock,
  CommittedState,
  type EpochLink,
  type Genesis,
  genesisHash,
  type LevelBlockStore,
  LightClient,
  type SignatureVerifier,
  type SnapshotTarget,
  type StateRootRule,
  type StateValue,
  stateRootRule,
  txRootOf,
  type ValidatorEpoch,
} from '../ledger/index.js';
import { type BackupProgress, throttled } from './backup.js';
import { gzipStream, readEntryFile } from './entry-file.js';
import { downloadSignedFile } from './signed-download.js';
import {
  encodeSnapshot,
  SNAPSHOT_FORMAT,
  SNAPSHOT_VERSION,
  type SnapshotEntry,
  type SnapshotHeader,
} from './snapshot-format.js';

export type { SnapshotHeader } from './snapshot-format.js';

/** The path of the admin route that streams a state snapshot. */
export const SNAPSHOT_ROUTE = '/v1/admin/snapshot';
/** Default of `SnapshotServiceOptions.idleTimeoutMs`. */
const SNAPSHOT_IDLE_TIMEOUT_MS = 60_000;

/** Who the node is and how its chain commits to state. */
export interface SnapshotServiceOptions {
  chain: string;
  genesisHash: string;
  node: string;
  nodeKey: string;
  rule: StateRootRule;
  /** A snapshot whose reader takes nothing for this long is ended, freeing its slot (default 60 s). */
  idleTimeoutMs?: number;
}

/** An open snapshot: its header and its gzip stream. */
export interface OpenSnapshot {
  header: SnapshotHeader;
  stream: Readable;
}

/** Streams state snapshots of a running node, one at a time. */
export class SnapshotService {
  private running = false;

  constructor(
    private readonly options: SnapshotServiceOptions,
    private readonly modules: {
      store: Pick<LevelBlockStore, 'stateSnapshot'>;
      /** The links of the validator sets in force up to `height` (`validatorLinks`). */
      links?: (height: number) => Promise<EpochLink[]>;
      now: () => number;
      logger: Logger;
    },
  ) {}

  /**
   * Reads the store's snapshot and returns the stream of the file (gzip). API_BUSY while another
   * snapshot streams; SNAPSHOT_UNAVAILABLE on a chain whose headers commit to no state tree, or
   * before the first block (there is no certified header to check a root against).
   */
  async open(): Promise<OpenSnapshot> {
    if (this.options.rule !== 'sparse-merkle')
      throw new DatagrantError(
        'SNAPSHOT_UNAVAILABLE',
        "this chain's headers carry a running hash, not a state tree root: a snapshot of it could not be checked",
      );
    if (this.running) throw new DatagrantError('API_BUSY', 'a snapshot is already being taken; retry later');
    this.running = true;
    let read: Awaited<ReturnType<LevelBlockStore['stateSnapshot']>>;
    try {
      read = await this.modules.store.stateSnapshot();
    } catch (err) {
      this.running = false;
      throw err;
    }
    const certified = read.certified;
    if (certified === undefined) {
      await read.close();
      this.running = false;
      throw new DatagrantError(
        'SNAPSHOT_UNAVAILABLE',
        'no block is committed yet: nothing certifies a state',
      );
    }
    let closed = false;
    const release = async () => {
      if (closed) return;
      closed = true;
      await read.close().catch(() => undefined);
    };
    const header: SnapshotHeader = {
      format: 'datagrant-snapshot',
      version: SNAPSHOT_VERSION,
      chain: this.options.chain,
      genesisHash: this.options.genesisHash,
      height: read.tip.height,
      blockHash: read.tip.hash,
      stateRoot: read.tip.stateRoot,
      node: this.options.node,
      nodeKey: this.options.nodeKey,
      time: this.modules.now(),
    };
    let links: EpochLink[];
    try {
      links = (await this.modules.links?.(header.height)) ?? [];
    } catch (err) {
      await release();
      this.running = false;
      throw err;
    }
    let entries = 0;
    async function* all(): AsyncGenerator<SnapshotEntry> {
      try {
        for (const link of links)
          yield {
            store: 'link',
            key: utf8ToBytes(String(link.epoch.from)),
            value: canonicalBytes(link as unknown as CanonicalValue),
          };
        yield {
          store: 'block',
          key: utf8ToBytes(String(header.height)),
          value: canonicalBytes(certified as unknown as CanonicalValue),
        };
        for await (const [key, value] of read.entries()) {
          entries++;
          yield {
            store: 'state',
            key: utf8ToBytes(key),
            value: canonicalBytes(JSON.parse(value) as CanonicalValue),
          };
        }
      } finally {
        await release();
      }
    }
    const log = this.modules.logger;
    log.info({ height: header.height }, 'snapshot started');
    const stream = gzipStream(encodeSnapshot(header, all()), {
      idleMs: this.options.idleTimeoutMs ?? SNAPSHOT_IDLE_TIMEOUT_MS,
      onEnd: (bytes, err) => {
        if (err)
          log.warn({ height: header.height, entries, bytes, err: err.message }, 'snapshot not completed');
        else log.info({ height: header.height, entries, bytes }, 'snapshot streamed');
        void release();
        this.running = false;
      },
    });
    return { header, stream };
  }
}

/** A snapshot file read whole and checked: its header, certified block and state. */
export interface VerifiedSnapshot {
  header: SnapshotHeader;
  certified: CertifiedBlock;
  entries: Map<string, StateValue>;
  /** Compressed size of the file. */
  bytes: number;
}

function corrupt(message: string): DatagrantError {
  return new DatagrantError('SNAPSHOT_CORRUPT', message);
}

/** Parses canonical JSON; SNAPSHOT_CORRUPT when it is not JSON or not in canonical form. */
function parseCanonical(bytes: Uint8Array, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw corrupt(`${what} is not JSON`);
  }
  if (Buffer.compare(canonicalBytes(value as CanonicalValue), bytes) !== 0)
    throw corrupt(`${what} is not canonical JSON`);
  return value;
}

/**
 * Checks the snapshot's block against its header and the validators in force at its height, which
 * a light client follows from genesis through the file's links.
 */
function checkBlock(
  genesis: Genesis,
  header: SnapshotHeader,
  certified: CertifiedBlock,
  links: readonly EpochLink[],
  verifier?: SignatureVerifier,
): void {
  const h = certified?.block?.header;
  if (!h || typeof h !== 'object' || !Array.isArray(certified.block.txs))
    throw corrupt('the block entry is not a certified block');
  if (h.chain !== genesis.chain || h.height !== header.height || h.stateRoot !== header.stateRoot)
    throw corrupt(`the block is not the one the header names (height ${header.height})`);
  let hash: string;
  let txRoot: string;
  try {
    hash = blockHash(h);
    txRoot = txRootOf(certified.block.txs);
  } catch {
    throw corrupt('the block entry is not a well-formed block');
  }
  if (hash !== header.blockHash) throw corrupt('the block hash is not the one the header names');
  if (h.txCount !== certified.block.txs.length || txRoot !== h.txRoot)
    throw corrupt("the block's transactions do not match its header");
  const light = new LightClient(genesis, verifier ? { verifier } : {});
  for (const link of links) {
    const followed = light.followEpoch(link);
    if (!followed.ok)
      throw new DatagrantError(
        'SNAPSHOT_CERT_INVALID',
        `the link to the validator set from height ${link?.epoch?.from} is refused (${followed.code}): ${followed.message}`,
        { fault: followed.code },
      );
  }
  const checked = light.verifyHeader(h, certified.cert);
  if (!checked.ok)
    throw new DatagrantError(
      'SNAPSHOT_CERT_INVALID',
      `the certificate of block ${h.height} is refused (${checked.code}): it is not a quorum of the validators in force there, followed from genesis`,
      { fault: checked.code.replace(/^PROOF_CERT_/, '') },
    );
}

/**
 * The links of the validator sets in force up to `height`: for each set scheduled after genesis's
 * whose first height is at most `height`, the certified block before it (SNAPSHOT_LINK_MISSING if
 * this node does not hold it, e.g. it started from a snapshot after it).
 */
export async function validatorLinks(
  epochs: readonly ValidatorEpoch[],
  height: number,
  store: Pick<BlockStore, 'getBlock'>,
): Promise<EpochLink[]> {
  const links: EpochLink[] = [];
  for (const epoch of epochs) {
    if (epoch.from > height) break;
    const b = await store.getBlock(epoch.from - 1);
    if (!b)
      throw new DatagrantError(
        'SNAPSHOT_LINK_MISSING',
        `this node holds no block ${epoch.from - 1}, which links the validator set from height ${epoch.from}: take the snapshot on a node that does`,
      );
    links.push({ epoch, header: b.block.header, cert: b.cert });
  }
  return links;
}

/**
 * Reads a whole snapshot file and checks it against `genesis` (see the module comment), writing
 * nothing. Throws SNAPSHOT_NOT_FOUND, SNAPSHOT_CORRUPT, SNAPSHOT_TRUNCATED, SNAPSHOT_CHECKSUM,
 * SNAPSHOT_UNSUPPORTED_VERSION (the file), SNAPSHOT_GENESIS_MISMATCH (another chain or genesis),
 * SNAPSHOT_CERT_INVALID (no quorum of the genesis validators signed the block), SNAPSHOT_ROOT_MISMATCH
 * (the entries do not reproduce the certified state root) or SNAPSHOT_UNAVAILABLE (a chain whose
 * headers carry no tree root).
 */
export async function verifySnapshotFile(
  path: string,
  options: {
    genesis: Genesis;
    verifier?: SignatureVerifier;
    onProgress?: (p: BackupProgress) => void;
  },
): Promise<VerifiedSnapshot> {
  const { genesis } = options;
  const rule = stateRootRule(genesis.params);
  if (rule !== 'sparse-merkle')
    throw new DatagrantError(
      'SNAPSHOT_UNAVAILABLE',
      "this chain's headers carry a running hash, not a state tree root: a snapshot cannot be checked",
    );
  const expected = genesisHash(genesis);
  let header: SnapshotHeader | undefined;
  let block: Uint8Array | undefined;
  const links: EpochLink[] = [];
  const raw: { key: Uint8Array; value: Uint8Array }[] = [];
  let bytes = 0;
  const progress = throttled(options.onProgress);
  // First the file's integrity (structure and checksum, read to the end), then its meaning.
  for await (const item of readEntryFile(SNAPSHOT_FORMAT, path, (b) => {
    bytes = b;
  })) {
    if ('header' in item) {
      header = item.header;
      if (header.chain !== genesis.chain || header.genesisHash !== expected)
        throw new DatagrantError(
          'SNAPSHOT_GENESIS_MISMATCH',
          `the snapshot is of chain ${header.chain} (genesis ${header.genesisHash.slice(0, 16)}…), this node runs ${genesis.chain} (genesis ${expected.slice(0, 16)}…)`,
        );
      continue;
    }
    const { entry } = item;
    if (entry.store === 'link') {
      if (block !== undefined) throw corrupt('a link entry comes after the block');
      links.push(parseCanonical(entry.value, 'a link entry') as EpochLink);
    } else if (entry.store === 'block') {
      if (block !== undefined || raw.length > 0) throw corrupt('the block entry is not first, or not alone');
      block = entry.value;
    } else {
      if (block === undefined) throw corrupt('a state entry comes before the block');
      raw.push(entry);
    }
    progress({ phase: 'verify', entries: raw.length, bytes });
  }
  if (header === undefined || block === undefined) throw corrupt('the snapshot holds no block');
  progress({ phase: 'verify', entries: raw.length, bytes }, true);
  const certified = parseCanonical(block, 'the block entry') as CertifiedBlock;
  checkBlock(genesis, header, certified, links, options.verifier);
  const entries = new Map<string, StateValue>();
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  for (const entry of raw) {
    let key: string;
    try {
      key = utf8.decode(entry.key);
    } catch {
      throw corrupt('a state key is not UTF-8');
    }
    if (entries.has(key)) throw corrupt(`the state key ${JSON.stringify(key)} appears twice`);
    entries.set(key, parseCanonical(entry.value, `the value of ${JSON.stringify(key)}`) as StateValue);
  }
  raw.length = 0;
  // The tree over the entries must be the one the quorum certified.
  const state = new CommittedState(header.stateRoot, header.height, rule);
  for (const [key, value] of entries) state.load(key, value);
  try {
    state.checkRoot(rule);
  } catch (err) {
    if (isDatagrantError(err, 'LEDGER_STATE_CORRUPT'))
      throw new DatagrantError(
        'SNAPSHOT_ROOT_MISMATCH',
        `the snapshot's entries do not reproduce the state root ${header.stateRoot} certified at height ${header.height}`,
      );
    throw err;
  }
  return { header, certified, entries, bytes };
}

/** What `installSnapshotFile` did. */
export interface InstalledSnapshot {
  header: SnapshotHeader;
  entries: number;
  bytes: number;
}

/**
 * Starts an empty store from a snapshot file: refuses a store that holds blocks
 * (SNAPSHOT_STORE_NOT_EMPTY) before reading anything, checks the whole file
 * (`verifySnapshotFile`), then installs it in one batch.
 */
export async function installSnapshotFile(options: {
  file: string;
  genesis: Genesis;
  store: BlockStore & SnapshotTarget;
  verifier?: SignatureVerifier;
  onProgress?: (p: BackupProgress) => void;
}): Promise<InstalledSnapshot> {
  const tip = options.store.tip();
  if (tip.height !== 0)
    throw new DatagrantError(
      'SNAPSHOT_STORE_NOT_EMPTY',
      `the block store already holds blocks (tip at height ${tip.height}): start from a snapshot only with an empty data directory`,
    );
  const verified = await verifySnapshotFile(options.file, {
    genesis: options.genesis,
    ...(options.verifier ? { verifier: options.verifier } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  await options.store.installSnapshot({ certified: verified.certified, entries: verified.entries });
  return { header: verified.header, entries: verified.entries.size, bytes: verified.bytes };
}

/** What `downloadSnapshot` needs: the node's API, name and keys, its genesis, and where to write. */
export interface SnapshotDownloadOptions {
  api: string;
  node: string;
  keys: KeySet;
  genesis: Genesis;
  out: string;
  force?: boolean;
  idleTimeoutMs?: number;
  onProgress?: (p: BackupProgress) => void;
}

/** What a downloaded snapshot holds. */
export interface SnapshotSummary {
  header: SnapshotHeader;
  entries: number;
  bytes: number;
}

/**
 * Asks the node at `api` for a state snapshot (a call signed with its own key as `node:<name>`),
 * writes it to `<out>.partial`, checks the whole file as a starting node would
 * (`verifySnapshotFile`), and renames it to `out`.
 */
export async function downloadSnapshot(options: SnapshotDownloadOptions): Promise<SnapshotSummary> {
  const progress = throttled(options.onProgress);
  const { onProgress, genesis } = options;
  return downloadSignedFile({
    api: options.api,
    route: SNAPSHOT_ROUTE,
    codePrefix: 'SNAPSHOT',
    node: options.node,
    keys: options.keys,
    chain: genesis.chain,
    out: options.out,
    ...(options.force ? { force: true } : {}),
    ...(options.idleTimeoutMs ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
    onBytes: (bytes, done) => progress({ phase: 'download', entries: 0, bytes }, done),
    verify: async (path) => {
      const v = await verifySnapshotFile(path, { genesis, ...(onProgress ? { onProgress } : {}) });
      return { header: v.header, entries: v.entries.size, bytes: v.bytes };
    },
  });
}
