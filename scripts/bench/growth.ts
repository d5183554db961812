/**
 * Part 4, growth: one validator's `Chain` over a `LevelBlockStore`, in process (no consensus), fed
 * complete business flows — subject.register, request.open, record.put, grant, usage, five
 * transactions per subject, pipelined so each block carries every stage for different subjects —
 * until the chain holds the target number of transactions. At 10³, 10⁴, 10⁵, 10⁶… it records the
 * time per block (admission without the signature check, which the mempool does once and part 1
 * measures; block building = execution and state root; commit = one LevelDB batch), the time of a
 * transaction lookup and of a subject's audit trail with proofs, store size per transaction, and
 * memory. Block time advances one second per block, so replay-protection entries expire and are
 * pruned as on a live chain. Beside every checkpoint after the first, the first is measured again on
 * fresh chains, so that the flatness ratio compares figures taken in the same minutes.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { bytesToHex, toBase64url } from '../../src/common/bytes.js';
import type { WrappedKey } from '../../src/common/crypto.js';
import { verifyFast } from '../../src/common/crypto-node.js';
import {
  type AnyTx,
  attestationBytes,
  type BlockStore,
  blockHash,
  buildTxProof,
  bundleDigest,
  commitSigningBytes,
  DEFAULT_CHAIN_PARAMS,
  DEFAULT_STATE_CACHE,
  type Genesis,
  genesisHash,
  genesisState,
  LevelBlockStore,
  MemoryBlockStore,
  type ReplayGuard,
  type StateCacheSize,
  type StateStorage,
  signTx,
  type TxBody,
  type TxKind,
  txHash,
} from '../../src/ledger/index.js';
import { Chain } from '../../src/node/chain.js';
import { Mempool } from '../../src/node/mempool.js';
import { signStorageReceipt } from '../../src/records/index.js';
import { type FastEncKey, fastEncKey } from './fast-client.js';
import { type BenchKey, benchKey, randomHex } from './keys.js';
import { latencySummary, note, printTable, round, writeResult } from './report.js';

/** Options of part 4. */
export interface GrowthOptions {
  quick: boolean;
  /** Verifies per second per core (OpenSSL), to express figures against the crypto ceiling. */
  verifyPerCore: number;
  /** Transactions to grow to (default 10⁵ quick, 10⁶ full). */
  target?: number;
  /**
   * `disk` (what a node runs): state read through the default bounded caches; `heap`: caches
   * unbounded, so every entry and tree node stays in the heap once touched (the layout before the
   * state moved to disk), for an A/B of heap and CPU.
   */
  state?: 'disk' | 'heap';
  /** The replay guard's layout in the state (default genesis' default, `per-block`). */
  replayGuard?: ReplayGuard;
  /** Tree nodes the state's node cache holds at most (default DEFAULT_STATE_CACHE's). */
  treeNodeCache?: number;
}

const CHAIN = 'datagrant-growth';
const STAGES = 5;
const PURPOSE = 'mortgage application';

/**
 * Subjects whose flows are complete: a uniform sample of them is kept for the checkpoints' lookups
 * and audits; the rest are dropped, so the process's heap is the node's, not the generator's.
 */
class Finished {
  readonly sample: Subject[] = [];
  private seen = 0;

  constructor(private readonly size: number) {}

  finish(subjects: (Subject | undefined)[], index: number): void {
    const s = subjects[index]!;
    s.key = undefined;
    subjects[index] = undefined;
    this.seen++;
    if (this.sample.length < this.size) this.sample.push(s);
    else {
      const slot = Math.floor(Math.random() * this.seen);
      if (slot < this.size) this.sample[slot] = s;
    }
  }
}

interface Subject {
  id: string;
  /** Released once the subject's last transaction is signed (the generator is not the node). */
  key: BenchKey | undefined;
  request?: string;
  digest?: string;
  grant?: string;
}

/** Everything the generator signs with. */
interface Actors {
  validator: BenchKey;
  registrar: BenchKey;
  admin: BenchKey;
  bank: BenchKey;
  /** The bank's X25519 key pair: its public key is registered, and every grant names it. */
  bankEnc: FastEncKey;
}

const BANK = 'demo-bank';

/** A wrapped key's shape (HPKE enc + sealed 32-byte key): the ledger stores it and never opens it. */
function wrappedKey(): WrappedKey {
  const r = (n: number) => toBase64url(Uint8Array.from(Buffer.from(randomHex(n), 'hex')));
  return { enc: r(32), ct: r(48) };
}

function genesisOf(actors: Actors, time: number, guard: ReplayGuard): Genesis {
  return {
    chain: CHAIN,
    time,
    validators: [
      {
        name: 'node0',
        key: actors.validator.pub,
        roles: ['platform', 'extractor'],
        types: ['social-insurance', 'tax', 'housing-fund', 'property'],
      },
    ],
    registrars: [actors.registrar.pub],
    admins: [actors.admin.pub],
    institutions: [
      {
        institution: BANK,
        name: 'Demo Bank',
        signKey: actors.bank.pub,
        encKey: bytesToHex(actors.bankEnc.publicKey),
      },
    ],
    params: { ...DEFAULT_CHAIN_PARAMS, replayGuard: guard },
  };
}

/** Builds the transaction of `stage` for `subject` at block time `time`. */
function stageTx(stage: number, s: Subject, actors: Actors, time: number): AnyTx {
  const expires = time + 10 * 60 * 1000;
  const sign = <K extends TxKind>(kind: K, body: TxBody<K>, key: BenchKey) =>
    signTx({ chain: CHAIN, kind, body, expires }, key.publicKey, key.secretKey, time, (m) =>
      key.sign(m),
    ) as AnyTx;
  const own = s.key;
  if (!own) throw new Error(`subject ${s.id}: key already released`);
  switch (stage) {
    case 0: {
      const encKey = randomHex(32);
      const attestation = bytesToHex(actors.registrar.sign(attestationBytes(CHAIN, s.id, own.pub, encKey)));
      return sign(
        'subject.register',
        { subject: s.id, encKey, registrar: actors.registrar.pub, attestation },
        own,
      );
    }
    case 1: {
      const tx = sign(
        'request.open',
        {
          subject: s.id,
          types: ['tax'],
          purpose: PURPOSE,
          format: 'json',
          fields: { annual_income: 'tax.annualIncome', tax_year: 'tax.taxYear' },
          consentBy: time + 7 * 24 * 3600 * 1000,
        },
        actors.bank,
      );
      s.request = txHash(tx);
      return tx;
    }
    case 2:
      s.digest = randomHex(32);
      return sign(
        'record.put',
        {
          request: s.request!,
          type: 'tax',
          digest: s.digest,
          size: 640,
          key: wrappedKey(),
          source: 'synthetic-platform',
          fetchedAt: time,
          sourceCommitment: randomHex(32),
          // The lone validator's own storage receipt (f + 1 = 1 of a one-validator set).
          receipts: [
            signStorageReceipt(
              { validator: actors.validator.pub, digest: s.digest, size: 640, chain: CHAIN, height: 0 },
              actors.validator.secretKey,
              (m) => actors.validator.sign(m),
            ),
          ],
        },
        actors.validator,
      );
    case 3: {
      const tx = sign(
        'grant',
        {
          request: s.request!,
          institution: BANK,
          granteeKey: bytesToHex(actors.bankEnc.publicKey),
          types: ['tax'],
          purpose: PURPOSE,
          expires: time + 30 * 24 * 3600 * 1000,
          uses: 1,
          retainDays: 30,
          keys: [{ record: s.digest!, key: wrappedKey() }],
        },
        own,
      );
      s.grant = txHash(tx);
      return tx;
    }
    default:
      // The bank names the bundle of exactly the granted record, as the ledger checks.
      return sign(
        'usage',
        { grant: s.grant!, bundle: bundleDigest(CHAIN, s.grant!, [s.digest!]), format: 'json' },
        actors.bank,
      );
  }
}

async function dirSize(path: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const p = join(path, entry.name);
    total += entry.isDirectory() ? await dirSize(p) : (await stat(p)).size;
  }
  return total;
}

/**
 * Milliseconds spent in garbage collection (all kinds) while `runGrowth` runs. V8 reports each
 * collection a little after it happens, so a block's share may land on the next block; the median
 * over a checkpoint's window evens that out.
 */
const gc = { ms: 0 };
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gc.ms += entry.duration;
});

/** One chain under test: store, mempool, chain and the generator's state. */
async function openChain(
  store: (g: Genesis, init: ReturnType<typeof genesisState>) => BlockStore,
  stateCache: StateCacheSize = DEFAULT_STATE_CACHE,
  guard: ReplayGuard = 'per-block',
) {
  const actors: Actors = {
    validator: benchKey(),
    registrar: benchKey(),
    admin: benchKey(),
    bank: benchKey(),
    bankEnc: fastEncKey(),
  };
  const start = Date.now() - 1000;
  const genesis = genesisOf(actors, start, guard);
  const init = genesisState(genesis);
  const blockStore = store(genesis, init);
  await blockStore.open();
  let clock = start;
  let chain: Chain | undefined;
  const mempool = new Mempool(
    { chain: CHAIN, maxTxs: 1_000_000, maxTxTtlMs: genesis.params.maxTxTtlMs },
    { verifier: verifyFast, isCommitted: async (h) => chain!.committedRecently(h), now: () => clock },
  );
  chain = new Chain(genesis, blockStore, { mempool, verifier: verifyFast, stateCache });
  await chain.load();
  // Running totals of what the chain's blocks cost, read before and after each block.
  const counts: Counts = {
    tree: 0,
    nodeReads: 0,
    nodeReadMs: 0,
    valueReads: 0,
    valueReadMs: 0,
    writeOps: 0,
    writeSyncMs: 0,
    writeWaitMs: 0,
  };
  const timed =
    <A extends unknown[], R>(inner: (...args: A) => R, add: (ms: number) => void) =>
    (...args: A): R => {
      const t = performance.now();
      try {
        return inner(...args);
      } finally {
        add(performance.now() - t);
      }
    };
  // Time spent in the state tree: the root of a block's writes (built, then checked) and what its
  // commit writes to the tree's storage.
  const state = chain.state;
  state.rootAfter = timed(state.rootAfter.bind(state), (ms) => {
    counts.tree += ms;
  });
  state.prepare = timed(state.prepare.bind(state), (ms) => {
    counts.tree += ms;
  });
  // Synchronous reads below the state's caches (each a LevelDB `getSync`): count and time.
  const storage = (state as unknown as { storage: StateStorage }).storage;
  storage.node = timed(storage.node.bind(storage), (ms) => {
    counts.nodeReads++;
    counts.nodeReadMs += ms;
  });
  storage.value = timed(storage.value.bind(storage), (ms) => {
    counts.valueReads++;
    counts.valueReadMs += ms;
  });
  // The block's LevelDB batch (`writeLevelBatch` calls the database's `_batch`): operations and the
  // time until the call returns (copying them into LevelDB's batch on the main thread). The write
  // itself runs on LevelDB's thread while the next block is made; what the next commit still waits
  // for is `writeWaitMs` (`produceBlock`).
  const db = (blockStore as unknown as { db?: { _batch?: (ops: unknown[], o: unknown) => Promise<void> } })
    .db;
  const batchDirect = db?._batch?.bind(db);
  if (db && batchDirect)
    db._batch = async (ops, o) => {
      const t = performance.now();
      const done = batchDirect(ops, o);
      counts.writeSyncMs += performance.now() - t;
      counts.writeOps += ops.length;
      await done;
    };
  return {
    counts,
    actors,
    genesis,
    store: blockStore,
    mempool,
    chain,
    setClock: (t: number) => {
      clock = t;
    },
    clock: () => clock,
  };
}

type Opened = Awaited<ReturnType<typeof openChain>>;

/** What `openChain` counts across blocks (a block's figure is the difference over it). */
type Counts = Pick<
  BlockTiming,
  | 'tree'
  | 'nodeReads'
  | 'nodeReadMs'
  | 'valueReads'
  | 'valueReadMs'
  | 'writeOps'
  | 'writeSyncMs'
  | 'writeWaitMs'
>;

/** Per-block timings in ms. */
interface BlockTiming {
  generate: number;
  admit: number;
  build: number;
  commit: number;
  /** Of build and commit, the state tree's part. */
  tree: number;
  /** Garbage collection during the block (generation included). */
  gc: number;
  /** Tree nodes read below the node cache, and the ms those reads took. */
  nodeReads: number;
  nodeReadMs: number;
  /** State entries read below the value cache, and their ms. */
  valueReads: number;
  valueReadMs: number;
  /** The block's LevelDB batch: operations, main-thread ms; ms its commit waited for the last one. */
  writeOps: number;
  writeSyncMs: number;
  writeWaitMs: number;
  txs: number;
}

/**
 * Produces one block: builds the due stage transactions, admits them (their signatures marked as
 * checked, as the mempool does once), builds and commits the block.
 */
async function produceBlock(
  c: Opened,
  subjects: Subject[],
  batch: number,
  index: number,
  finished?: Finished,
): Promise<BlockTiming> {
  const time = c.genesis.time + (index + 1) * 1000;
  c.setClock(time);
  const before = { ...c.counts };
  const gcBefore = gc.ms;
  let t = performance.now();
  const txs: AnyTx[] = [];
  for (let stage = 0; stage < STAGES; stage++) {
    const b = index - stage;
    const first = b * batch;
    if (b < 0 || first >= subjects.length) continue;
    for (let i = first; i < Math.min(first + batch, subjects.length); i++) {
      txs.push(stageTx(stage, subjects[i]!, c.actors, time));
      if (stage === STAGES - 1) finished?.finish(subjects, i);
    }
  }
  const texts = txs.map((tx) => JSON.stringify(tx));
  const generate = performance.now() - t;
  t = performance.now();
  for (const text of texts) {
    const tx = JSON.parse(text) as AnyTx;
    c.mempool.markVerified(tx);
    await c.mempool.add(tx);
  }
  const admit = performance.now() - t;
  t = performance.now();
  const block = c.chain.buildBlock(c.actors.validator.pub, 0, time);
  if (block.txs.length !== txs.length)
    throw new Error(`block ${index}: ${txs.length - block.txs.length} txs refused`);
  const build = performance.now() - t;
  t = performance.now();
  // The previous block's write, if LevelDB has not finished it (the commit would wait the same).
  const waitFrom = performance.now();
  await c.chain.written();
  c.counts.writeWaitMs += performance.now() - waitFrom;
  const hash = blockHash(block.header);
  const sig = bytesToHex(c.actors.validator.sign(commitSigningBytes(CHAIN, block.header.height, 0, hash)));
  // Pipelined, as a PBFT validator commits: the block's LevelDB batch is written while the next
  // block is made (the next commit waits for it).
  await c.chain.commit(
    {
      block,
      cert: {
        height: block.header.height,
        view: 0,
        block: hash,
        votes: [{ validator: c.actors.validator.pub, sig }],
      },
    },
    { pipeline: true },
  );
  const commit = performance.now() - t;
  return {
    generate,
    admit,
    build,
    commit,
    gc: gc.ms - gcBefore,
    ...(Object.fromEntries(
      Object.entries(c.counts).map(([k, v]) => [k, v - before[k as keyof Counts]]),
    ) as Counts),
    txs: txs.length,
  };
}

/** Looks a transaction up the way `GET /v1/txs/:hash` does. */
async function lookupTx(store: BlockStore, hash: string): Promise<void> {
  const location = await store.getTxLocation(hash);
  if (!location) throw new Error(`tx ${hash} not found`);
  const certified = await store.getBlock(location.height);
  if (!certified?.block.txs[location.index]) throw new Error(`tx ${hash} not in its block`);
  blockHash(certified.block.header);
}

/** A subject's audit trail with proofs, the way the platform builds it. */
async function auditSubject(store: BlockStore, subject: string): Promise<number> {
  const refs = await store.txsBySubject(subject);
  const blocks = new Map<number, Awaited<ReturnType<BlockStore['getBlock']>>>();
  for (const ref of refs) {
    let certified = blocks.get(ref.height);
    if (!certified) {
      certified = await store.getBlock(ref.height);
      blocks.set(ref.height, certified);
    }
    buildTxProof(certified!, ref.index);
  }
  return refs.length;
}

/** Runs part 4 and writes bench-results/growth.json. */
export async function runGrowth(options: GrowthOptions): Promise<void> {
  gcObserver.observe({ entryTypes: ['gc'] });
  try {
    await growth(options);
  } finally {
    gcObserver.disconnect();
  }
}

/** Fresh chains the first checkpoint is measured on beside each later one (their median is taken). */
const REFERENCE_RUNS = 3;

async function growth(options: GrowthOptions): Promise<void> {
  const target = options.target ?? (options.quick ? 50_000 : 1_000_000);
  const blockTxs = 500;
  const batch = blockTxs / STAGES;
  const checkpoints = [1_000, 10_000, 50_000, 100_000, 300_000, 1_000_000].filter(
    (c) => c <= target && (c !== 50_000 || target === 50_000),
  );
  const window = 10;
  note(
    `growth: ${target.toLocaleString('en-US')} txs in blocks of ${blockTxs}, checkpoints ${checkpoints.join(', ')}`,
  );

  // Warm the JIT on a throwaway in-memory chain so the first checkpoint is not a cold start.
  {
    const warm = await openChain(
      (g, init) =>
        new MemoryBlockStore({
          genesisHash: genesisHash(g),
          time: g.time,
          stateRoot: init.state.root,
          writes: init.writes,
        }),
    );
    const subjects = Array.from({ length: 600 }, (_, i) => ({ id: `warm-${i}`, key: benchKey() }));
    for (let b = 0; b < subjects.length / batch + STAGES - 1; b++)
      await produceBlock(warm, subjects, batch, b);
  }

  const stateMode = options.state ?? 'disk';
  const stateCache =
    stateMode === 'heap'
      ? { values: Number.POSITIVE_INFINITY, nodes: Number.POSITIVE_INFINITY }
      : { ...DEFAULT_STATE_CACHE, nodes: options.treeNodeCache ?? DEFAULT_STATE_CACHE.nodes };
  note(`replay guard: ${options.replayGuard ?? 'per-block'}`);
  note(
    stateMode === 'heap'
      ? 'state: caches unbounded (every entry and tree node stays in the heap once touched)'
      : `state: on LevelDB behind bounded caches (${stateCache.values.toLocaleString('en-US')} entries, ${stateCache.nodes.toLocaleString('en-US')} tree nodes)`,
  );
  const started = performance.now();
  const rows: Record<string, unknown>[] = [];
  // The first checkpoint on a fresh chain in this (warm) process: measured beside every later
  // checkpoint, seconds after its blocks, and once more at the end. On a shared machine whose speed
  // moves by 2× within minutes, the ratio of two figures taken together is the one to trust.
  const firstAgain = async (): Promise<Record<string, unknown>> => {
    let row: Record<string, unknown> | undefined;
    await growChain(
      stateCache,
      options.replayGuard,
      checkpoints[0]!,
      checkpoints.slice(0, 1),
      window,
      blockTxs,
      (r) => {
        row = r;
      },
    );
    return row!;
  };
  const reference = async (): Promise<number> => {
    const runs: number[] = [];
    for (let i = 0; i < REFERENCE_RUNS; i++) runs.push((await firstAgain()).blockMs as number);
    return latencySummary(runs).p50;
  };
  await growChain(stateCache, options.replayGuard, target, checkpoints, window, blockTxs, async (r) => {
    if (rows.length > 0) {
      r.referenceMs = round(await reference(), 2);
      r.pairedFlatness = round((r.blockMs as number) / (r.referenceMs as number), 2);
    }
    rows.push(r);
    const b = r.perBlock as BlockTiming;
    note(
      `growth ${(r.txs as number).toLocaleString('en-US')} txs: block ${r.blockMs} ms (build ${b.build}, commit ${b.commit}), ` +
        `tx lookup p50 ${(r.txLookupMs as { p50: number }).p50} ms, audit p50 ${(r.auditMs as { p50: number }).p50} ms, ` +
        `reads below the caches per block: ${b.nodeReads} tree nodes (${b.nodeReadMs} ms), ${b.valueReads} entries (${b.valueReadMs} ms), ` +
        `GC ${b.gc} ms, LevelDB batch ${b.writeOps} ops (${b.writeSyncMs} ms on the main thread, ${b.writeWaitMs} ms waited for by the next commit), ` +
        `${r.bytesPerTx} B/tx, heap ${r.heapMiB} MiB, ${Math.round((performance.now() - started) / 1000)} s` +
        (r.referenceMs !== undefined
          ? `; ${checkpoints[0]!.toLocaleString('en-US')} txs measured beside it: ${r.referenceMs} ms, ratio ${r.pairedFlatness}×`
          : ''),
    );
  });
  const again = await firstAgain();
  note(
    `growth ${(again.txs as number).toLocaleString('en-US')} txs again, fresh chain at the end: block ${again.blockMs} ms`,
  );

  const first = rows[0]!;
  const last = rows[rows.length - 1]!;
  const flatness = round((last.blockMs as number) / (first.blockMs as number), 2);
  printTable(
    `Part 4 — growth (one validator in process, LevelDB, blocks of ${blockTxs} txs, 5-tx business flows; ms per full block, median of ${window} blocks)`,
    [
      'txs',
      'block ms',
      'admit',
      'build',
      'commit',
      'tx/s (1 core)',
      'of ceiling',
      'lookup p50',
      'lookup p99',
      'audit p50',
      'audit p99',
      'tree µs/tx',
      'B/tx',
      'heap MiB',
      `${checkpoints[0]!.toLocaleString('en-US')} beside it ms`,
      'ratio to it',
    ],
    rows.map((r) => {
      const b = r.perBlock as BlockTiming;
      const l = r.txLookupMs as { p50: number; p99: number };
      const a = r.auditMs as { p50: number; p99: number };
      return [
        r.txs as number,
        r.blockMs as number,
        b.admit,
        b.build,
        b.commit,
        r.txPerSecond as number,
        `${Math.round(((r.txPerSecond as number) / (options.verifyPerCore / 1.2)) * 100)}%`,
        l.p50,
        l.p99,
        a.p50,
        a.p99,
        round((b.tree * 1000) / blockTxs, 1),
        r.bytesPerTx as number,
        r.heapMiB as number,
        (r.referenceMs as number | undefined) ?? '-',
        (r.pairedFlatness as number | undefined) ?? '-',
      ];
    }),
  );
  const flatnessAtEnd = round((last.blockMs as number) / (again.blockMs as number), 2);
  process.stdout.write(
    `  per-block time at ${(last.txs as number).toLocaleString('en-US')} txs is ${flatness}× that at ${(first.txs as number).toLocaleString('en-US')} measured first, ` +
      `${flatnessAtEnd}× that at ${(first.txs as number).toLocaleString('en-US')} measured again at the end (${again.blockMs} ms), ` +
      `${last.pairedFlatness ?? '-'}× that at ${(first.txs as number).toLocaleString('en-US')} measured beside it (${last.referenceMs ?? '-'} ms, median of ${REFERENCE_RUNS} fresh chains) (target: within 2×)\n`,
  );
  const path = await writeResult(
    stateMode === 'heap' ? 'growth-heap' : 'growth',
    {
      target,
      blockTxs,
      state: stateMode,
      stateCache: stateMode === 'heap' ? 'unbounded' : stateCache,
      txMix: 'subject.register, request.open, record.put, grant, usage (one of each per subject)',
      blockIntervalSimulatedMs: 1000,
      signatureChecks:
        'marked checked at admission (the mempool verifies once; see crypto part); attestations verified in execution',
      window,
    },
    {
      checkpoints: rows,
      flatness,
      firstCheckpointAgain: again,
      flatnessAgainstEnd: flatnessAtEnd,
      flatnessBeside: last.pairedFlatness ?? null,
      referenceRuns: REFERENCE_RUNS,
      ceiling: {
        verifyPerCore: options.verifyPerCore,
        note: 'one validator, 1.2 signature checks per tx (the register attestation); ratio = tx/s ÷ (verifies/s/core ÷ 1.2)',
      },
    },
  );
  note(`wrote ${path}`);
}

/**
 * Grows a fresh chain on LevelDB (in a temporary folder, removed after) to the last of
 * `checkpoints`, handing each checkpoint's figures to `onCheckpoint`.
 */
async function growChain(
  stateCache: StateCacheSize,
  replayGuard: ReplayGuard | undefined,
  target: number,
  checkpoints: number[],
  window: number,
  blockTxs: number,
  onCheckpoint: (row: Record<string, unknown>) => void | Promise<void>,
): Promise<void> {
  const batch = blockTxs / STAGES;
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-growth-'));
  const c = await openChain(
    (g, init) =>
      new LevelBlockStore({
        path: join(dir, 'chain'),
        genesis: {
          genesisHash: genesisHash(g),
          time: g.time,
          stateRoot: init.state.root,
          writes: init.writes,
        },
      }),
    stateCache,
    replayGuard,
  );
  const subjectCount = target / STAGES;
  const subjects: Subject[] = [];
  const finished = new Finished(2_000);
  const recent: BlockTiming[] = [];
  let committed = 0;
  let next = 0;
  try {
    const blocks = Math.ceil(subjectCount / batch) + STAGES - 1;
    for (let index = 0; index < blocks && next < checkpoints.length; index++) {
      // Subjects are created just before their first block so memory holds only what is needed.
      while (subjects.length < Math.min(subjectCount, (index + 1) * batch))
        subjects.push({ id: `s-${subjects.length.toString(36).padStart(6, '0')}`, key: benchKey() });
      const timing = await produceBlock(c, subjects, batch, index, finished);
      committed += timing.txs;
      recent.push(timing);
      if (recent.length > window) recent.shift();
      if (committed >= checkpoints[next]!) {
        await onCheckpoint(await checkpoint(c, finished.sample, committed, recent, dir, blockTxs));
        next++;
      }
    }
  } finally {
    await c.store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function checkpoint(
  c: Opened,
  subjects: Subject[],
  txs: number,
  recent: BlockTiming[],
  dir: string,
  blockTxs: number,
): Promise<Record<string, unknown>> {
  // The first blocks are not full (the flow pipeline is still filling): scale each block's times
  // to a full block of `blockTxs`, so checkpoints compare like with like.
  const med = (k: Exclude<keyof BlockTiming, 'txs'>) =>
    round(latencySummary(recent.map((r) => (r[k] * blockTxs) / r.txs)).p50, 2);
  const perBlock = {
    generate: med('generate'),
    admit: med('admit'),
    build: med('build'),
    commit: med('commit'),
    tree: med('tree'),
    gc: med('gc'),
    nodeReads: med('nodeReads'),
    nodeReadMs: med('nodeReadMs'),
    valueReads: med('valueReads'),
    valueReadMs: med('valueReadMs'),
    writeOps: med('writeOps'),
    writeSyncMs: med('writeSyncMs'),
    writeWaitMs: med('writeWaitMs'),
  };
  const blockMs = round(perBlock.admit + perBlock.build + perBlock.commit, 2);
  // Transactions of completed flows: look up random ones by hash, audit random subjects.
  const done = subjects;
  const hashes: string[] = [];
  for (let i = 0; i < 100 && done.length > 0; i++) {
    const s = done[Math.floor(Math.random() * done.length)]!;
    hashes.push(Math.random() < 0.5 ? s.request! : s.grant!);
  }
  const lookups: number[] = [];
  for (const h of hashes) {
    const t = performance.now();
    await lookupTx(c.store, h);
    lookups.push(performance.now() - t);
  }
  const audits: number[] = [];
  for (let i = 0; i < 30 && done.length > 0; i++) {
    const s = done[Math.floor(Math.random() * done.length)]!;
    const t = performance.now();
    await auditSubject(c.store, s.id);
    audits.push(performance.now() - t);
  }
  const bytes = await dirSize(join(dir, 'chain'));
  // Live heap, not garbage awaiting collection (`npm run bench` runs node with --expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
  const mem = process.memoryUsage();
  return {
    txs,
    height: c.chain.height,
    blockMs,
    perBlock,
    txPerSecond: round((blockTxs / blockMs) * 1000),
    txLookupMs: latencySummary(lookups),
    auditMs: latencySummary(audits),
    storeBytes: bytes,
    bytesPerTx: round(bytes / txs),
    stateCached: c.chain.state.cachedEntries,
    heapMiB: round(mem.heapUsed / 1024 / 1024),
    rssMiB: round(mem.rss / 1024 / 1024),
  };
}
