/**
 * The I/O shell around the pure PBFT core: feeds it messages, timer ticks and synced blocks one
 * at a time; for each step stores commits and the consensus write-ahead state durably BEFORE the
 * step's messages leave the node; gossips messages; runs timers; fetches missing certified blocks
 * from peers. It also paces proposals: an idle primary proposes every `blockIntervalMs`, a busy
 * one as soon as `minBlockIntervalMs` has passed.
 *
 * Proposals travel compact: validators already hold a proposal's transactions from gossip, so the
 * block goes without them and names each by hash and signature (`{"r":seq,"m":msg,"t":[[hash,sig],…]}`);
 * a receiver takes the very objects in its mempool (already decoded, hashed and verified) and
 * fetches only what it lacks from the proposer over the `txs` protocol. A new-view's proposal
 * travels the same way. Every other message, and proposals of empty blocks, travel whole
 * (`{"r":seq,"m":msg}`), as do full proposals from peers.
 *
 * View-changes name a prepared block by hash only; a new primary that lacks the body fetches it
 * from the certificate's voters over the `block` protocol (`{"hash":…}` answered with the block), so
 * no consensus message grows with the block beyond the proposal's transaction references.
 */
import { utf8ToBytes } from '../common/bytes.js';
import { signFast, verifyFast } from '../common/crypto-node.js';
import { DatagrantError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import {
  blockHashOf,
  ConsensusCore,
  type ConsensusMessage,
  type ConsensusStatus,
  type ConsensusTiming,
  DEFAULT_TIMING,
  decodeMessage,
  decodeWal,
  type StepOutput,
  type TimerRequest,
} from '../consensus/index.js';
import { type AnyTx, type CertifiedBlock, decodeTx, txHash } from '../ledger/index.js';
import type { Network } from '../p2p/index.js';
import type { Chain } from './chain.js';
import type { Mempool } from './mempool.js';
import type { NodeMetrics } from './metrics.js';
import type { SigningStateStore } from './signing-state.js';

const WAL_KEY = 'consensus-wal';
/** Most blocks one sync response carries. */
const SYNC_BATCH = 32;
/** Largest sync response, in bytes. */
const SYNC_MAX_BYTES = 8 * 1024 * 1024;
/** How long a starting node tries to hear the network's tip from f + 1 peers. */
const START_SYNC_WAIT_MS = 10_000;
/** How long a validator waits for a proposer to send the transactions it lacks. */
const TXS_FETCH_TIMEOUT_MS = 5_000;
const HASH_HEX = /^[0-9a-f]{64}$/;
/** Recent certificates a double-sign check looks through for this validator's own votes. */
const RECENT_BLOCKS_CHECKED = 10;
/** Most compact proposals completed at once (each fetches its missing transactions). */
const MAX_TX_FETCHES = 4;
/** How long a new primary waits for one voter to send a prepared block's body. */
const BLOCK_FETCH_TIMEOUT_MS = 10_000;

type ProposalMessage = Extract<ConsensusMessage, { type: 'proposal' }>;
type NewViewMessage = Extract<ConsensusMessage, { type: 'new-view' }>;

/** A transaction named in a compact proposal: its hash and signature. */
type TxRef = readonly [hash: string, sig: string];

function isTxRefs(value: unknown, max: number): value is TxRef[] {
  return (
    Array.isArray(value) &&
    value.length <= max &&
    value.every(
      (r) =>
        Array.isArray(r) &&
        r.length === 2 &&
        typeof r[0] === 'string' &&
        HASH_HEX.test(r[0]) &&
        typeof r[1] === 'string' &&
        r[1].length <= 256,
    )
  );
}

/** Driver options. */
export interface PbftDriverOptions {
  /**
   * This validator's key and secret key. Both absent on a gateway: the core then runs as a
   * non-voting observer that signs and sends nothing, commits blocks from the votes it hears and
   * catches up by sync, verifying every certificate.
   */
  self?: string;
  secretKey?: Uint8Array;
  timing: Partial<ConsensusTiming>;
  /** Shortest pause before a primary proposes while transactions wait. */
  minBlockIntervalMs: number;
}

/** Runs consensus for one validator node. */
export class PbftDriver {
  private core!: ConsensusCore;
  private voting = false;
  private walAhead: ReturnType<typeof decodeWal> | undefined;
  private doubleSignUntil: number | undefined;
  /** The last committed block, for a core built at start (the core keeps its own after that). */
  private last: CertifiedBlock | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private proposeTimer: { timer: TimerRequest; setAt: number } | undefined;
  private running = false;
  private syncing = false;
  private syncTarget = 0;
  private sendSeq = 0;
  private lastView = 0;
  private readonly lastHeard = new Map<string, number>();
  /** Transactions of this node's latest proposal, served to validators that lack some. */
  private proposed = new Map<string, AnyTx>();
  /** Compact proposals this shell dropped (the core counts the rest). */
  private readonly shellDropped = {
    'proposal-refs-malformed': 0,
    'proposal-txs-unavailable': 0,
    'proposal-screened-out': 0,
    'proposal-fetch-busy': 0,
  };
  /** Blocks whose missing transactions are being fetched (at most MAX_TX_FETCHES at once). */
  private readonly fetching = new Set<string>();
  /** The block body being fetched by hash for the core, if any. */
  private fetchingBody: string | undefined;

  constructor(
    private readonly options: PbftDriverOptions,
    private readonly modules: {
      chain: Chain;
      mempool: Mempool;
      network: Network;
      metrics?: NodeMetrics;
      /** Called just before this node builds a proposal. */
      beforePropose?: () => void;
      logger: Logger;
      /** Called when the node can no longer safely take part (e.g. its disk refuses writes). */
      onFatal: (err: unknown) => void;
      /** Where this validator's signing state (its write-ahead snapshot) is kept, apart from the blocks. */
      signing: SigningStateStore;
    },
  ) {}

  async start(): Promise<void> {
    const { chain, network, signing } = this.modules;
    const store = chain.store;
    const tip = store.tip();
    this.last = tip.height > 0 ? await store.getBlock(tip.height) : undefined;
    let saved = await signing.load();
    if (!saved.present) {
      // Homes written before the signing state had its own file kept it in the block store.
      const legacy = await store.getMeta(WAL_KEY);
      if (legacy !== undefined) {
        await signing.save(legacy);
        saved = { present: true, wal: legacy };
      }
    }
    const wal = saved.wal ? decodeWal(JSON.parse(saved.wal)) : undefined;
    const validator = this.options.self !== undefined;
    // Blocks lost but signing state kept: follow until the tip reaches the WAL's height, then resume it.
    this.walAhead = wal !== undefined && wal.height > tip.height + 1 ? wal : undefined;
    this.voting = validator && saved.present && this.walAhead === undefined;
    this.core = this.makeCore(this.voting, this.voting ? wal : undefined);
    if (validator && !saved.present)
      this.modules.logger.warn(
        'no signing state: following the chain without voting until past every height this key may have signed',
      );
    this.lastView = this.core.status().view;
    network.subscribe('consensus', (data, from) => {
      this.lastHeard.set(from, Date.now());
      let envelope: unknown;
      try {
        envelope = JSON.parse(new TextDecoder().decode(data));
      } catch {
        envelope = data;
      }
      const wrapped = envelope !== null && typeof envelope === 'object' && 'm' in envelope;
      const inner = wrapped ? (envelope as { m: unknown }).m : envelope;
      if (wrapped && 't' in (envelope as object)) this.receiveCompact(inner, (envelope as { t: unknown }).t);
      else this.enqueue(() => this.core.onMessage(inner));
    });
    network.handle('sync', (req) => this.serveSync(req));
    network.handle('txs', (req) => this.serveTxs(req));
    network.handle('block', (req) => this.serveBlock(req));
    this.running = true;
    this.modules.chain.on('write-failed', this.onWriteFailed);
    this.enqueue(() => this.core.start());
    if (this.walAhead) void this.catchUpToWal(this.walAhead);
    else if (this.options.self !== undefined && !this.voting) void this.doubleSignCheck();
    else void this.syncOnStart();
  }

  /**
   * Asks the peers for their tips once some are connected and syncs to the highest that at least
   * f + 1 of them report (so one that lies cannot make this node wait for heights nobody has): a
   * node restarted behind a chain that is idle, or between blocks, catches up now instead of when
   * the next consensus message for a later height reaches it (a view timeout away, when idle).
   */
  private async syncOnStart(): Promise<void> {
    const { chain, network } = this.modules;
    const f = Math.floor((chain.validatorsAt(chain.height + 1).length - 1) / 3);
    const deadline = Date.now() + START_SYNC_WAIT_MS;
    while (this.running && Date.now() < deadline) {
      const claims = network.peers().length > f ? await this.peerTips(network.peers()) : [];
      if (claims.length > f) {
        const target = claims.sort((a, b) => b - a)[f]!;
        if (!this.running || target <= chain.height) return;
        if (this.syncTarget < target) this.syncTarget = target;
        if (!this.syncing) void this.sync();
        return;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The tips the given peers report (those that answer in time). */
  private async peerTips(peers: string[]): Promise<number[]> {
    // A `from` past any tip: the answer carries the tip and no blocks.
    const ask = utf8ToBytes(JSON.stringify({ from: Number.MAX_SAFE_INTEGER }));
    const answers = await Promise.all(
      peers.map(async (peer) => {
        try {
          const raw = await this.modules.network.request(peer, 'sync', ask, { timeoutMs: 5_000 });
          const tip = (JSON.parse(new TextDecoder().decode(raw)) as { tip?: unknown }).tip;
          return Number.isSafeInteger(tip) ? (tip as number) : undefined;
        } catch {
          return undefined;
        }
      }),
    );
    return answers.filter((tip): tip is number => tip !== undefined);
  }

  /** A core over the committed tip: voting with this node's key, or a non-voting observer. */
  private makeCore(voting: boolean, wal?: ReturnType<typeof decodeWal>): ConsensusCore {
    const { chain } = this.modules;
    const tip = chain.store.tip();
    return new ConsensusCore(
      {
        genesis: chain.genesis,
        ...(voting ? { self: this.options.self! } : {}),
        timing: this.options.timing,
      },
      {
        app: {
          propose: (ctx) => {
            this.modules.beforePropose?.();
            return chain.buildBlock(ctx.proposer, ctx.view, ctx.time);
          },
          validate: (block) => {
            const fault = chain.validateBlock(
              block,
              Date.now(),
              this.options.timing.maxClockSkewMs ?? DEFAULT_TIMING.maxClockSkewMs,
            );
            return fault ? { ok: false, fault: fault.code } : { ok: true };
          },
          // From applied state: a change enacted at h is in force from h + 2, so the set of every
          // height up to the applied height + 2 is final when asked.
          validatorsAt: (height) => chain.validatorsAt(height).map((v) => v.key),
        },
        clock: { now: Date.now },
        verifier: verifyFast,
        ...(voting ? { signer: (bytes: Uint8Array) => signFast(bytes, this.options.secretKey!) } : {}),
      },
      {
        tip: { height: tip.height, hash: tip.hash, time: tip.time },
        ...(this.last ? { last: this.last } : {}),
        ...(wal ? { wal } : {}),
      },
    );
  }

  /**
   * The double-sign check of a validator that lost its signing state (like CometBFT's
   * `double_sign_check_height`): before the loss it can only have signed at heights up to one past
   * the network's tip, so it learns the highest tip its peers report, follows the chain (verifying
   * every certificate) until that height and the next are committed, reports any of its own
   * signatures in recent certificates, and only then starts voting, from a fresh signing state.
   */
  private async doubleSignCheck(): Promise<void> {
    const { chain, network, logger } = this.modules;
    let highest = -1;
    while (this.running && highest < 0) {
      // The highest any peer reports: a peer that overstates only delays this validator's voting.
      for (const tip of await this.peerTips(network.peers())) highest = Math.max(highest, tip);
      if (highest < 0) await new Promise((r) => setTimeout(r, 500));
    }
    const until = Math.max(highest, chain.height) + 1;
    this.doubleSignUntil = until;
    logger.info(
      { until },
      'double-sign check: waiting for the chain to pass every height this key may have signed',
    );
    while (this.running && chain.height < until) {
      if (this.syncTarget < until) this.syncTarget = until;
      if (!this.syncing) void this.sync();
      await new Promise((r) => setTimeout(r, 200));
    }
    if (!this.running) return;
    let own = 0;
    for (let h = Math.max(1, chain.height - RECENT_BLOCKS_CHECKED + 1); h <= chain.height; h++) {
      const certified = await chain.store.getBlock(h);
      if (certified?.cert.votes.some((v) => v.validator === this.options.self)) own++;
    }
    if (own > 0)
      logger.warn(
        { blocks: own, checked: RECENT_BLOCKS_CHECKED },
        'double-sign check: this key signed recent blocks (was another copy of this validator running?)',
      );
    await this.modules.signing.save(null);
    this.enqueue(() => {
      this.last = undefined;
      this.core = this.makeCore(true);
      this.voting = true;
      this.doubleSignUntil = undefined;
      logger.info({ height: chain.height + 1 }, 'double-sign check passed: voting from this height on');
      return this.core.start();
    });
  }

  /**
   * A validator whose block store is behind its signing state (blocks lost, signing state kept):
   * it follows the chain without voting until its tip reaches the height its WAL was written at,
   * then resumes voting with that WAL, so it cannot sign anything that contradicts it.
   */
  private async catchUpToWal(wal: ReturnType<typeof decodeWal>): Promise<void> {
    const { chain, logger } = this.modules;
    const target = wal.height - 1;
    logger.info(
      { walHeight: wal.height, tip: chain.height },
      'block store behind the signing state: syncing before voting',
    );
    this.doubleSignUntil = target;
    while (this.running && chain.height < target) {
      if (this.syncTarget < target) this.syncTarget = target;
      if (!this.syncing) void this.sync();
      await new Promise((r) => setTimeout(r, 200));
    }
    if (!this.running) return;
    this.enqueue(() => {
      this.last = undefined;
      this.core = this.makeCore(true, wal);
      this.voting = true;
      this.doubleSignUntil = undefined;
      this.walAhead = undefined;
      return this.core.start();
    });
  }

  /** Whether this node knows it is behind the chain (peers committed heights it has not fetched yet). */
  get behind(): boolean {
    return this.syncing || this.syncTarget > this.modules.chain.height;
  }

  /** Whether this node votes now (false for a gateway, and during a double-sign check). */
  get isVoting(): boolean {
    return this.voting;
  }

  /** The height a double-sign check waits for, while it runs. */
  get doubleSignCheckUntil(): number | undefined {
    return this.doubleSignUntil;
  }

  /** A pipelined block write failed: this validator stops at once, as for any failed write. */
  private readonly onWriteFailed = (err: Error): void => {
    if (!this.running) return;
    this.running = false;
    this.modules.logger.fatal({ err }, 'a committed block was not written; leaving consensus');
    this.modules.onFatal(err);
  };

  async stop(): Promise<void> {
    this.running = false;
    this.modules.chain.off('write-failed', this.onWriteFailed);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await this.queue.catch(() => {});
  }

  /** Where consensus is now. */
  status(): ConsensusStatus {
    return this.core.status();
  }

  /** Consensus messages dropped by reason. */
  dropped(): Record<string, number> {
    return { ...(this.core ? this.core.dropped : {}), ...this.shellDropped };
  }

  /** Last time a consensus message arrived through each neighbour. */
  liveness(): Record<string, number | null> {
    return Object.fromEntries(this.lastHeard);
  }

  /** Called when a transaction is admitted: a waiting primary may propose early. */
  poke(): void {
    const pending = this.proposeTimer;
    if (!pending || !this.running) return;
    const wait = pending.setAt + this.options.minBlockIntervalMs - Date.now();
    if (wait <= 0) this.fire(pending.timer);
    else this.schedule({ ...pending.timer }, wait, 'propose-early');
  }

  private enqueue(input: () => StepOutput): void {
    this.queue = this.queue.then(async () => {
      if (!this.running) return;
      let out: StepOutput;
      try {
        out = input();
      } catch (err) {
        this.modules.logger.error({ err }, 'consensus step failed');
        return;
      }
      try {
        await this.apply(out);
      } catch (err) {
        this.running = false;
        this.modules.logger.fatal({ err }, 'cannot persist consensus state; leaving consensus');
        this.modules.onFatal(err);
      }
    });
  }

  private async apply(out: StepOutput): Promise<void> {
    const { chain, network, metrics } = this.modules;
    const commits = out.commits ?? [];
    // What this validator signed is durable in its signing state before anything leaves the node.
    if (out.persist && this.voting) await this.modules.signing.save(JSON.stringify(out.persist));
    for (const certified of commits) {
      // Pipelined: the next height goes on while this block's batch is written (a failed write
      // makes the next commit throw, which leaves consensus below).
      await chain.commit(certified, { pipeline: true });
      metrics?.commitLatency.observe(Math.max(0, Date.now() - certified.block.header.time) / 1000);
      metrics?.txsCommitted.inc(certified.block.txs.length);
    }
    const view = this.core.status().view;
    if (view > this.lastView) metrics?.viewChanges.inc(view - this.lastView);
    this.lastView = view;
    for (const { message } of out.send) {
      network
        .publish('consensus', this.encodeOutgoing(message))
        .catch((err: unknown) => this.modules.logger.debug({ err }, 'consensus publish failed'));
    }
    for (const timer of out.timers) {
      if (timer.kind === 'propose') {
        this.proposeTimer = { timer, setAt: Date.now() };
        if (this.modules.mempool.size > 0)
          this.schedule(timer, Math.min(timer.delayMs, this.options.minBlockIntervalMs), 'propose-early');
      }
      this.schedule(timer, timer.delayMs, timer.kind);
    }
    if (out.fetchBlock !== undefined) void this.fetchBody(out.fetchBlock.hash, out.fetchBlock.from);
    if (out.syncTo !== undefined && out.syncTo > this.syncTarget) this.syncTarget = out.syncTo;
    if (this.syncTarget > chain.height && !this.syncing) void this.sync();
  }

  private schedule(timer: TimerRequest, delayMs: number, slot: string): void {
    const old = this.timers.get(slot);
    if (old) clearTimeout(old);
    const handle = setTimeout(() => {
      this.timers.delete(slot);
      this.fire(timer);
    }, delayMs);
    this.timers.set(slot, handle);
  }

  private fire(timer: TimerRequest): void {
    if (timer.kind === 'propose') {
      // The idle and the early timer share one proposal: whichever fires first takes it.
      const pending = this.proposeTimer;
      if (!pending) return;
      this.proposeTimer = undefined;
      for (const slot of ['propose', 'propose-early']) {
        const t = this.timers.get(slot);
        if (t) clearTimeout(t);
        this.timers.delete(slot);
      }
      this.enqueue(() => this.core.onTimer(pending.timer));
      return;
    }
    this.enqueue(() => this.core.onTimer(timer));
  }

  // ---- compact proposals

  private encodeOutgoing(message: ConsensusMessage): Uint8Array {
    // A sequence number makes retransmissions distinct bytes, so gossip's duplicate filter lets them through.
    const seq = ++this.sendSeq;
    const proposal =
      message.type === 'proposal' ? message : message.type === 'new-view' ? message.proposal : undefined;
    if (proposal === undefined || proposal.block.txs.length === 0)
      return utf8ToBytes(`{"r":${seq},"m":${JSON.stringify(message)}}`);
    const refs: TxRef[] = [];
    this.proposed = new Map();
    for (const tx of proposal.block.txs as readonly AnyTx[]) {
      const hash = txHash(tx);
      this.proposed.set(hash, tx);
      refs.push([hash, tx.sig]);
    }
    const bareProposal = { ...proposal, block: { ...proposal.block, txs: [] } };
    const bare = message.type === 'new-view' ? { ...message, proposal: bareProposal } : bareProposal;
    return utf8ToBytes(`{"r":${seq},"m":${JSON.stringify(bare)},"t":${JSON.stringify(refs)}}`);
  }

  /** A compact proposal or new-view: fills in its transactions from the mempool, fetching what is missing. */
  private receiveCompact(inner: unknown, refs: unknown): void {
    const decoded = decodeMessage(inner);
    const max = this.modules.chain.genesis.params.maxBlockTxs;
    const message = decoded.ok ? decoded.message : undefined;
    const proposal =
      message?.type === 'proposal' ? message : message?.type === 'new-view' ? message.proposal : undefined;
    if (
      message === undefined ||
      proposal === undefined ||
      proposal.block.txs.length !== 0 ||
      !isTxRefs(refs, max)
    ) {
      this.shellDropped['proposal-refs-malformed']++;
      return;
    }
    const compact = message as ProposalMessage | NewViewMessage;
    const screened =
      compact.type === 'new-view' ? this.core.screenNewView(compact) : this.core.screenProposal(proposal);
    if (screened !== undefined) {
      // Not from the primary, not signed, or for another height: nothing is fetched for it.
      this.shellDropped['proposal-screened-out']++;
      return;
    }
    const { mempool } = this.modules;
    const txs: (AnyTx | undefined)[] = refs.map(([hash, sig]) => {
      const tx = mempool.lookup(hash) ?? this.proposed.get(hash);
      return tx !== undefined && tx.sig === sig ? tx : undefined;
    });
    // The mempool's own objects: decoded, hashed and signature-checked once already.
    if (txs.every((tx) => tx !== undefined)) {
      this.deliverFilled(compact, txs as AnyTx[]);
      return;
    }
    const hash = blockHashOf(proposal.block);
    if (this.fetching.has(hash)) return; // the fetch in flight delivers this very block
    if (this.fetching.size >= MAX_TX_FETCHES) {
      this.shellDropped['proposal-fetch-busy']++;
      return;
    }
    this.fetching.add(hash);
    void this.fetchMissing(compact, refs, txs).finally(() => this.fetching.delete(hash));
  }

  private deliverFilled(message: ProposalMessage | NewViewMessage, txs: AnyTx[]): void {
    const fill = (p: ProposalMessage): ProposalMessage => ({ ...p, block: { ...p.block, txs } });
    const full =
      message.type === 'proposal' ? fill(message) : { ...message, proposal: fill(message.proposal) };
    this.enqueue(() => this.core.onDecodedMessage(full));
  }

  /** Asks the proposer — and only the proposer, who must have them — for what the mempool lacks. */
  private async fetchMissing(
    message: ProposalMessage | NewViewMessage,
    refs: readonly TxRef[],
    txs: (AnyTx | undefined)[],
  ): Promise<void> {
    const { network, logger } = this.modules;
    for (const peer of [message.sender].filter((p) => p !== this.options.self)) {
      const missing = refs.filter((_, i) => txs[i] === undefined).map(([hash]) => hash);
      if (missing.length === 0) break;
      try {
        const raw = await network.request(peer, 'txs', utf8ToBytes(JSON.stringify({ hashes: missing })), {
          timeoutMs: TXS_FETCH_TIMEOUT_MS,
        });
        const list = JSON.parse(new TextDecoder().decode(raw)) as unknown;
        if (!Array.isArray(list)) continue;
        const got = new Map<string, AnyTx>();
        for (const item of list) {
          try {
            const tx = decodeTx(item);
            got.set(txHash(tx), tx);
          } catch {
            // A malformed answer fills nothing; the block is refused if it stays incomplete.
          }
        }
        refs.forEach(([hash, sig], i) => {
          const tx = got.get(hash);
          if (txs[i] === undefined && tx !== undefined && tx.sig === sig) txs[i] = tx;
        });
      } catch (err) {
        logger.debug({ err, peer }, 'proposal transactions request failed');
      }
    }
    if (!this.running) return;
    if (txs.some((tx) => tx === undefined)) this.shellDropped['proposal-txs-unavailable']++;
    else this.deliverFilled(message, txs as AnyTx[]);
  }

  /** Answers `{"hashes":[…]}` with the transactions of those this node holds (pending or just proposed). */
  private async serveTxs(req: Uint8Array): Promise<Uint8Array> {
    let hashes: unknown;
    try {
      hashes = (JSON.parse(new TextDecoder().decode(req)) as { hashes?: unknown }).hashes;
    } catch {
      throw new DatagrantError('TXS_BAD_REQUEST', 'txs request is not JSON');
    }
    const max = this.modules.chain.genesis.params.maxBlockTxs;
    if (
      !Array.isArray(hashes) ||
      hashes.length > max ||
      !hashes.every((h) => typeof h === 'string' && HASH_HEX.test(h))
    )
      throw new DatagrantError('TXS_BAD_REQUEST', `hashes must be at most ${max} transaction hashes`);
    const out: AnyTx[] = [];
    for (const hash of hashes as string[]) {
      const tx = this.modules.mempool.get(hash) ?? this.proposed.get(hash);
      if (tx) out.push(tx);
    }
    return utf8ToBytes(JSON.stringify(out));
  }

  // ---- block bodies by hash

  /** Answers `{"hash":…}` with that block, if this node's core holds it for the current or last height. */
  private async serveBlock(req: Uint8Array): Promise<Uint8Array> {
    let hash: unknown;
    try {
      hash = (JSON.parse(new TextDecoder().decode(req)) as { hash?: unknown }).hash;
    } catch {
      throw new DatagrantError('BLOCK_BAD_REQUEST', 'block request is not JSON');
    }
    if (typeof hash !== 'string' || !HASH_HEX.test(hash))
      throw new DatagrantError('BLOCK_BAD_REQUEST', 'hash must be a block hash');
    const block = this.core.blockBody(hash);
    if (block === undefined) throw new DatagrantError('BLOCK_NOT_FOUND', 'no such block here');
    return utf8ToBytes(JSON.stringify(block));
  }

  /** Fetches the block body the core asked for from the validators named, one at a time, until it has it. */
  private async fetchBody(hash: string, from: readonly string[]): Promise<void> {
    if (this.fetchingBody === hash) return;
    this.fetchingBody = hash;
    const { network, logger } = this.modules;
    try {
      for (const peer of [...from].sort(() => Math.random() - 0.5)) {
        if (!this.running || this.core.wantedBlock() !== hash) return;
        try {
          const raw = await network.request(peer, 'block', utf8ToBytes(JSON.stringify({ hash })), {
            timeoutMs: BLOCK_FETCH_TIMEOUT_MS,
          });
          const body = JSON.parse(new TextDecoder().decode(raw)) as unknown;
          this.enqueue(() => this.core.onBlockBody(body));
          await this.queue;
        } catch (err) {
          logger.debug({ err, peer, block: hash }, 'block body request failed');
        }
      }
    } finally {
      this.fetchingBody = undefined;
    }
  }

  // ---- block sync

  private async serveSync(req: Uint8Array): Promise<Uint8Array> {
    let from: number;
    try {
      const parsed = JSON.parse(new TextDecoder().decode(req)) as { from?: unknown };
      from = Number(parsed.from);
    } catch {
      throw new DatagrantError('SYNC_BAD_REQUEST', 'sync request is not JSON');
    }
    if (!Number.isSafeInteger(from) || from < 1)
      throw new DatagrantError('SYNC_BAD_REQUEST', 'from must be a height >= 1');
    const store = this.modules.chain.store;
    const base = store.tip().base;
    // A node started from a snapshot has nothing below it: the asker goes to another peer.
    if (base !== undefined && from < base)
      throw new DatagrantError(
        'SYNC_BLOCK_NOT_HELD',
        `this node started from a snapshot at height ${base} and holds no block below it`,
      );
    // Measured in UTF-8 bytes (free text may be non-ASCII), as the answer goes on the wire.
    const blocks: string[] = [];
    let bytes = 0;
    for (let h = from; h <= store.tip().height && blocks.length < SYNC_BATCH; h++) {
      const b = await store.getBlock(h);
      if (!b) break;
      const json = JSON.stringify(b);
      bytes += Buffer.byteLength(json, 'utf8');
      if (bytes > SYNC_MAX_BYTES && blocks.length > 0) break;
      blocks.push(json);
    }
    return utf8ToBytes(`{"tip":${store.tip().height},"blocks":[${blocks.join(',')}]}`);
  }

  private async sync(): Promise<void> {
    this.syncing = true;
    const { chain, network, logger } = this.modules;
    try {
      while (this.running && chain.height < this.syncTarget) {
        const peers = network.peers();
        if (peers.length === 0) break;
        const start = chain.height;
        let progressed = false;
        for (const peer of peers.sort(() => Math.random() - 0.5)) {
          let response: { tip: number; blocks: CertifiedBlock[] };
          try {
            const raw = await network.request(
              peer,
              'sync',
              utf8ToBytes(JSON.stringify({ from: start + 1 })),
              { timeoutMs: 10_000 },
            );
            response = JSON.parse(new TextDecoder().decode(raw)) as { tip: number; blocks: CertifiedBlock[] };
            if (!Array.isArray(response.blocks)) continue;
          } catch (err) {
            logger.debug({ err, peer }, 'sync request failed');
            continue;
          }
          for (const b of response.blocks) {
            if (!b || typeof b !== 'object' || !b.block || !b.cert) break;
            this.enqueue(() => this.core.onCertifiedBlock(b.block, b.cert));
          }
          await this.queue;
          if (chain.height > start) {
            progressed = true;
            logger.info({ from: start + 1, to: chain.height, peer }, 'synced blocks');
            break;
          }
        }
        if (!progressed) break;
      }
    } finally {
      this.syncing = false;
    }
  }
}
