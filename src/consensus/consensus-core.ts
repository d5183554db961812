/**
 * The PBFT-style consensus core: synchronous and free of I/O. Each input (a message, a timer, a
 * certified block from sync) returns a `StepOutput` telling the shell what to persist, commit,
 * send, schedule and sync.
 *
 * Protocol, per height h (one block per height, heights strictly in sequence):
 * - The primary of view v is `validators[(h + v) % n]`, in the order of the set in force at h, so
 *   the first proposer rotates with the height and a faulty primary costs one view at a time.
 * - View 0: the primary proposes; a validator prepares the first valid proposal of the view; with
 *   2f+1 prepares for block B it is *prepared* (remembers the certificate) and commit-votes B; 2f+1
 *   commit votes for B in any one view make B final, with those votes as its commit certificate.
 * - On timeout a validator asks for view v+1 with a view-change carrying its highest prepared
 *   certificate; timeouts double with each view. The primary of v+1 gathers 2f+1 view-changes and
 *   sends a new-view re-proposing the highest prepared block among them (or a fresh block when
 *   there is none). View-changes name prepared blocks by hash only: a new primary without the body
 *   asks the shell to fetch it (`fetchBlock`) from the certificate's voters, and it arrives through
 *   `onBlockBody`. Any block that may have committed was prepared by f+1 honest validators, one of
 *   whom is in every such quorum, so it is re-proposed, and no other block can gather 2f+1 prepares.
 * - A validator that sees view-changes from f+1 others for later views joins the view-change, so
 *   one slow timer cannot keep it behind.
 * - Everything a validator signed for the current height (its view, votes, proposal, prepared
 *   certificate) is in the WAL snapshot emitted before the signatures leave, so a restart cannot
 *   make it sign a second, different thing.
 * - The validator set may change between heights (`ConsensusApp.validatorsAt`): everything about a
 *   height (members, f, quorum, primaries, certificates) uses the set in force at that height, and
 *   the whole argument above holds per height. A change enacted in block h applies from h + 2, so a
 *   node knows the set of the next height before it starts it. A node outside the set of its
 *   current height follows the chain without signing anything; it votes from the first height whose
 *   set holds its key and stops at the first one that does not.
 */
import { fromHex } from '../common/bytes.js';
import { DatagrantError } from '../common/errors.js';
import {
  type Block,
  type CertifiedBlock,
  type CommitCertificate,
  checkCertificateBy,
  commitSigningBytes,
  txRootOf,
} from '../ledger/block.js';
import type { ConsensusApp } from './consensus-app.js';
import { type DropReason, emptyDropCounters } from './drop-reason.js';
import { type ActiveSet, HeightSets } from './height-sets.js';
import { decodeBlock, decodeMessage } from './message-codec.js';
import {
  blockHashOf,
  type ConsensusMessage,
  type DecidedMessage,
  type NewViewMessage,
  type PreparedCertificate,
  type ProposalMessage,
  type SignedMessage,
  type Signer,
  signingBytesOf,
  signNewView,
  signProposal,
  signViewChange,
  signVote,
  type ViewChangeMessage,
  type VoteMessage,
  type VotePhase,
  voteSigningBytes,
} from './messages.js';
import {
  type ChainTip,
  type ConsensusInit,
  type ConsensusModules,
  type ConsensusOptions,
  type ConsensusTiming,
  DEFAULT_TIMING,
} from './options.js';
import type { OutMessage, StepOutput, TimerKind, TimerRequest } from './step-output.js';
import { VoteTally } from './vote-tally.js';
import type { ConsensusWal } from './wal.js';

/** A snapshot of where the core is, for status pages and tests. */
export interface ConsensusStatus {
  /** Height being decided (last committed + 1). */
  height: number;
  view: number;
  /** False while waiting for the new-view of `view`. */
  active: boolean;
  /** Validator key of the primary of the current view. */
  primary: string;
  /** Whether this node votes at `height` (its key is in the set in force there). */
  voting: boolean;
  /** Size of the validator set at `height`. */
  validators: number;
  tip: ChainTip;
  /** View of the highest prepared certificate at this height, if any. */
  preparedView: number | null;
  /** Highest height peers are known to have committed, when above this node's tip. */
  syncTarget: number | null;
}

const MAX_VIEW_EXPONENT = 20;
const rootCache = new WeakMap<Block, string>();

function txRootOfBlock(block: Block): string {
  let root = rootCache.get(block);
  if (root === undefined) {
    root = txRootOf(block.txs);
    rootCache.set(block, root);
  }
  return root;
}

/** The consensus state machine of one node. Call `start()` once, then feed it inputs one at a time. */
export class ConsensusCore {
  private readonly options: ConsensusOptions;
  private readonly app: ConsensusApp;
  private readonly modules: ConsensusModules;
  private readonly chain: string;
  private readonly sets: HeightSets;
  /** The set in force at `height`. */
  private set: ActiveSet;
  /** Whether this node signs at `height`: it has a signer and its key is in `set`. */
  private voting = false;
  private readonly timing: ConsensusTiming;
  private readonly self: string | undefined;
  private readonly signer: Signer | undefined;
  private readonly viewWindow: number;
  private readonly bufferPerValidator: number;
  private readonly counters = emptyDropCounters();
  private readonly verified = new WeakSet<object>();

  private tip: ChainTip;
  private last: CertifiedBlock | undefined;
  private restored = false;

  // State of the height being decided.
  private height: number;
  private view = 0;
  private active = true;
  /** False between a commit and the next step: the shell has not applied the block yet, so the app must not be called. */
  private started = false;
  private prepareVote: string | null = null;
  private commitVote: string | null = null;
  private ownProposal: ProposalMessage | NewViewMessage | null = null;
  private ownPrepare: VoteMessage | null = null;
  private ownCommit: VoteMessage | null = null;
  private ownViewChange: ViewChangeMessage | null = null;
  private prepared: { cert: PreparedCertificate; block: Block | null } | null = null;
  /** Set once the new-view of the current view (> 0) is accepted: the block it forces, or null for a fresh one. */
  private constraint: { forced: string | null } | null = null;
  /** Hash of the proposal accepted in the current view. */
  private accepted: string | null = null;
  private blocks = new Map<string, Block>();
  private verdicts = new Map<string, boolean>();
  private prepares = new Map<number, VoteTally>();
  private commits = new Map<number, VoteTally>();
  private viewChanges = new Map<string, ViewChangeMessage>();

  // Across heights.
  private future: ConsensusMessage[] = [];
  private futureCount = new Map<string, number>();
  private highestSeen = new Map<string, number>();
  private syncTarget = 0;
  private syncAsked = 0;
  private viewTimerSeq = 0;
  private retransmitSeq = 0;
  private retransmitDelay: number;
  private answered = new Set<string>();
  /** The body a new primary needs to re-propose (a prepared block it never saw), and who has it. */
  private wanted: { hash: string; from: string[] } | null = null;

  private out: StepOutput = { send: [], timers: [] };
  private dirty = false;

  /** Builds a core from configuration, collaborators and the state to resume from (see `ConsensusInit`). */
  constructor(options: ConsensusOptions, modules: ConsensusModules, init: ConsensusInit) {
    this.options = options;
    this.modules = modules;
    this.app = modules.app;
    this.chain = options.genesis.chain;
    const source = modules.app.validatorsAt?.bind(modules.app);
    this.sets = new HeightSets(
      options.genesis.validators.map((v) => v.key),
      source,
      options.unsafeQuorumForTesting,
    );
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.viewWindow = options.viewWindow ?? 64;
    this.bufferPerValidator = options.futureBufferPerValidator ?? 16;
    if (options.self !== undefined) {
      // A key outside the genesis set is fine: it follows the chain until a set holds it.
      if (modules.signer === undefined) {
        throw new DatagrantError('CONSENSUS_NO_SIGNER', 'a validator core needs a signer');
      }
      this.self = options.self;
      this.signer = modules.signer;
    }
    this.tip = init.tip;
    this.last = init.last;
    this.height = init.tip.height + 1;
    this.set = this.sets.at(this.height);
    this.voting = this.self !== undefined && this.set.members.has(this.self);
    this.retransmitDelay = this.timing.retransmitMs;
    if (init.wal !== undefined) this.restore(init.wal);
  }

  /** Drop counters by reason (a copy). */
  get dropped(): Record<DropReason, number> {
    return { ...this.counters };
  }

  /** Where the core is now. */
  status(): ConsensusStatus {
    return {
      height: this.height,
      view: this.view,
      active: this.active,
      primary: this.primary(this.view),
      voting: this.voting,
      validators: this.set.keys.length,
      tip: { ...this.tip },
      preparedView: this.prepared?.cert.view ?? null,
      syncTarget: this.syncTarget >= this.height ? this.syncTarget : null,
    };
  }

  /** The current WAL snapshot (what the last `persist` output held, or would hold). */
  wal(): ConsensusWal {
    return {
      v: 1,
      chain: this.chain,
      height: this.height,
      view: this.view,
      active: this.active,
      prepareVote: this.prepareVote,
      commitVote: this.commitVote,
      proposal: this.ownProposal,
      prepared: this.prepared,
    };
  }

  /** First step: schedules the timers and re-sends whatever the restored WAL says this node already signed. */
  start(): StepOutput {
    return this.step(() => {
      if (this.restored) this.sendOwn();
    });
  }

  /** A message from the network: wire bytes or parsed JSON, untrusted. Malformed input is dropped and counted. */
  onMessage(input: unknown): StepOutput {
    return this.step(() => {
      const decoded = decodeMessage(input);
      this.count(decoded.ok ? this.handleMessage(decoded.message) : 'malformed');
    });
  }

  /**
   * A message the shell already decoded with `decodeMessage` (e.g. in a gossip validator), so it is
   * not decoded twice. Never pass anything that did not come out of `decodeMessage`.
   */
  onDecodedMessage(message: ConsensusMessage): StepOutput {
    return this.step(() => this.count(this.handleMessage(message)));
  }

  /**
   * A cheap check of a proposal before the shell spends anything completing it (a compact
   * proposal's transactions are fetched from its proposer only if this passes): for this height or
   * the next, for a view not left behind and inside the window, from the primary of that (height,
   * view), correctly signed. Returns why not, or undefined. Reads the core's state, changes nothing.
   */
  screenProposal(proposal: ProposalMessage): DropReason | undefined {
    if (proposal.chain !== this.chain) return 'wrong-chain';
    if (proposal.height < this.height) return 'stale-height';
    if (proposal.height > this.height + 1 || proposal.view > this.view + this.viewWindow) return 'future';
    if (proposal.height === this.height && proposal.view < this.view) return 'stale-view';
    const set = this.knownSet(proposal.height);
    // The next height's set is not known between a commit and the step that starts the next
    // height; the full checks run when the proposal is handled.
    if (set === undefined) return undefined;
    if (proposal.sender !== primaryOf(set, proposal.height, proposal.view)) return 'not-primary';
    if (!this.verifySignature(proposal, set)) return 'bad-signature';
    return undefined;
  }

  /**
   * A block body fetched by hash after a `fetchBlock` request. Untrusted: decoded here, and taken
   * only when it is the block asked for (its header hashes to it) and its body matches its header.
   */
  onBlockBody(input: unknown): StepOutput {
    return this.step(() => this.count(this.handleBlockBody(input)));
  }

  /** A block this core holds for the current height (or the last committed one), by hash; to answer peers' fetches. */
  blockBody(hash: string): Block | undefined {
    const known = this.blocks.get(hash);
    if (known !== undefined) return known;
    if (this.prepared?.cert.block === hash && this.prepared.block !== null) return this.prepared.block;
    if (this.last?.cert.block === hash) return this.last.block;
    return undefined;
  }

  /** The block body this core is waiting for, if any. */
  wantedBlock(): string | undefined {
    return this.wanted?.hash;
  }

  /**
   * `screenProposal` for a new-view: its proposal passes the screen, it is from the same primary,
   * and its own signature verifies. The view-changes that justify it are checked when it is handled.
   */
  screenNewView(newView: NewViewMessage): DropReason | undefined {
    if (newView.view === 0 || newView.proposal.sender !== newView.sender) return 'bad-new-view';
    if (newView.proposal.height !== newView.height || newView.proposal.view !== newView.view)
      return 'bad-new-view';
    const screened = this.screenProposal(newView.proposal);
    if (screened !== undefined) return screened;
    const set = this.knownSet(newView.height);
    return set === undefined || this.verifySignature(newView, set) ? undefined : 'bad-signature';
  }

  /** A timer this core asked for has fired. */
  onTimer(timer: TimerRequest): StepOutput {
    return this.step(() => this.handleTimer(timer));
  }

  /**
   * A block with its commit certificate fetched by sync (feed them in height order). Untrusted: its
   * shape is decoded and its certificate checked here; refused ones are counted.
   */
  onCertifiedBlock(block: Block, cert: CommitCertificate): StepOutput {
    return this.step(() => {
      const decoded = decodeMessage({ type: 'decided', chain: this.chain, block, cert });
      this.count(decoded.ok ? this.handleMessage(decoded.message) : 'malformed');
    });
  }

  // ---- step plumbing

  private step(body: () => void): StepOutput {
    this.out = { send: [], timers: [] };
    this.dirty = false;
    if (!this.started) this.startHeight();
    body();
    const out = this.out;
    if (this.dirty) out.persist = this.wal();
    this.out = { send: [], timers: [] };
    return out;
  }

  private count(reason: DropReason | undefined): void {
    if (reason !== undefined) this.counters[reason]++;
  }

  private send(message: ConsensusMessage, to?: string): void {
    const item: OutMessage = to === undefined ? { message } : { to, message };
    this.out.send.push(item);
  }

  private timer(kind: TimerKind, delayMs: number, seq = 0): void {
    this.out.timers.push({ kind, height: this.height, view: this.view, seq, delayMs });
  }

  private primary(view: number): string {
    return primaryOf(this.set, this.height, view);
  }

  private isPrimary(view: number): boolean {
    return this.voting && this.primary(view) === this.self;
  }

  /**
   * The set at `height` when the app may be asked for it: up to the applied height + 2, which is
   * the tip + 2 once the current height started and the tip + 1 between a commit and the step
   * that starts the next height (the shell has not applied the block yet).
   */
  private knownSet(height: number): ActiveSet | undefined {
    const limit = this.tip.height + (this.started ? 2 : 1);
    return height <= limit ? this.sets.at(height) : this.sets.cached(height);
  }

  /** The newest set this node can know: a hint for heights beyond it, when deciding to sync. */
  private latestSet(): ActiveSet {
    return this.sets.at(this.tip.height + (this.started ? 2 : 1));
  }

  private viewTimeout(view: number): number {
    const base = this.timing.viewTimeoutMs * 2 ** Math.min(view, MAX_VIEW_EXPONENT);
    return Math.min(base, this.timing.maxViewTimeoutMs) + this.timing.blockIntervalMs;
  }

  // ---- restore and height transitions

  private restore(wal: ConsensusWal): void {
    if (wal.chain !== this.chain)
      throw new DatagrantError('CONSENSUS_WAL_INVALID', 'the WAL is for another chain');
    if (wal.height < this.height) return;
    if (wal.height > this.height) {
      throw new DatagrantError(
        'CONSENSUS_WAL_AHEAD',
        `the WAL is for height ${wal.height} but the block store ends at ${this.tip.height}: commits must be stored no later than the WAL`,
      );
    }
    this.view = wal.view;
    this.active = wal.active;
    this.prepared = wal.prepared;
    if (wal.prepared?.block) this.learnBlock(wal.prepared.block);
    // A node outside the set of the WAL's height signed nothing there.
    if (!this.voting) return;
    if (wal.proposal !== null && wal.proposal.view === wal.view) {
      const proposal = wal.proposal.type === 'new-view' ? wal.proposal.proposal : wal.proposal;
      const hash = this.learnBlock(proposal.block);
      this.verdicts.set(hash, true);
      this.ownProposal = wal.proposal;
      this.accepted = hash;
      if (wal.view > 0) this.constraint = { forced: proposal.block.header.view < wal.view ? hash : null };
    }
    if (wal.prepareVote !== null) this.castVote('prepare', wal.prepareVote);
    if (wal.commitVote !== null) this.castVote('commit', wal.commitVote);
    if (!this.active) this.signOwnViewChange();
    this.out = { send: [], timers: [] };
    this.restored = true;
  }

  private startHeight(): void {
    this.started = true;
    // The shell has applied the tip: the next height's set is known now, for buffered messages.
    this.sets.at(this.height + 1);
    this.setViewTimer();
    this.resetRetransmit();
    if (this.view === 0 && this.active && this.isPrimary(0) && this.ownProposal === null) {
      if (this.timing.blockIntervalMs > 0) this.timer('propose', this.timing.blockIntervalMs);
      else this.propose();
    }
    const buffered = this.future;
    this.future = [];
    this.futureCount.clear();
    for (const message of buffered) this.count(this.handleMessage(message));
    if (this.started) this.tryNewView();
  }

  private decide(block: Block, cert: CommitCertificate): void {
    const hash = cert.block;
    this.out.commits ??= [];
    this.out.commits.push({ block, cert });
    // Votes for the decided height still in flight come from validators about to decide it too:
    // answer laggards only once they retransmit (the first retransmit tick clears this).
    this.answered = new Set(this.set.keys);
    this.tip = { height: block.header.height, hash, time: block.header.time };
    this.last = { block, cert };
    this.height = this.tip.height + 1;
    // The app has applied up to the tip's parent, so it knows the sets up to the new height.
    this.sets.prune(this.tip.height);
    this.set = this.sets.at(this.height);
    this.voting = this.self !== undefined && this.set.members.has(this.self);
    this.view = 0;
    this.active = true;
    this.started = false;
    this.prepareVote = null;
    this.commitVote = null;
    this.ownProposal = null;
    this.ownPrepare = null;
    this.ownCommit = null;
    this.ownViewChange = null;
    this.prepared = null;
    this.constraint = null;
    this.accepted = null;
    this.blocks = new Map();
    this.verdicts = new Map();
    this.prepares = new Map();
    this.commits = new Map();
    this.viewChanges = new Map();
    this.wanted = null;
    this.dirty = true;
    // The shell applies the block after this step; the next step starts the height (see `started`).
    this.timer('start', 0);
  }

  private enterView(view: number, active: boolean): void {
    this.view = view;
    this.active = active;
    this.prepareVote = null;
    this.commitVote = null;
    this.ownProposal = null;
    this.ownPrepare = null;
    this.ownCommit = null;
    this.ownViewChange = null;
    this.constraint = null;
    this.accepted = null;
    for (const v of this.prepares.keys()) if (v < view) this.prepares.delete(v);
    this.dirty = true;
    this.setViewTimer();
    this.resetRetransmit();
  }

  private setViewTimer(): void {
    if (!this.voting) return;
    this.timer('view', this.viewTimeout(this.view), ++this.viewTimerSeq);
  }

  private resetRetransmit(): void {
    this.retransmitDelay = this.timing.retransmitMs;
    this.timer('retransmit', this.retransmitDelay, ++this.retransmitSeq);
  }

  // ---- timers

  private handleTimer(timer: TimerRequest): void {
    if (timer.height !== this.height) return;
    switch (timer.kind) {
      case 'start':
        return;
      case 'propose':
        if (timer.view === 0 && this.view === 0 && this.isPrimary(0) && this.ownProposal === null)
          this.propose();
        return;
      case 'view':
        if (timer.view === this.view && timer.seq === this.viewTimerSeq) this.startViewChange(this.view + 1);
        return;
      case 'retransmit':
        if (timer.seq === this.retransmitSeq) this.retransmit();
        return;
    }
  }

  private retransmit(): void {
    this.answered.clear();
    this.sendOwn();
    if (this.wanted !== null) this.out.fetchBlock = { ...this.wanted, from: [...this.wanted.from] };
    if (this.syncTarget >= this.height) this.out.syncTo = Math.max(this.out.syncTo ?? 0, this.syncTarget);
    this.retransmitDelay = Math.min(this.retransmitDelay * 2, this.timing.maxRetransmitMs);
    this.timer('retransmit', this.retransmitDelay, ++this.retransmitSeq);
  }

  private sendOwn(): void {
    if (this.ownProposal !== null) this.send(this.ownProposal);
    if (this.ownPrepare !== null) this.send(this.ownPrepare);
    if (this.ownCommit !== null) this.send(this.ownCommit);
    if (!this.active && this.ownViewChange !== null) this.send(this.ownViewChange);
  }

  // ---- proposing

  private blockTime(): number {
    return Math.max(this.modules.clock.now(), this.tip.time + 1);
  }

  /** Asks the app for a fresh block; undefined when it fails (the view then times out like a silent primary's). */
  private build(): Block | undefined {
    try {
      return this.app.propose({
        height: this.height,
        view: this.view,
        prev: this.tip.hash,
        time: this.blockTime(),
        proposer: this.self!,
      });
    } catch {
      return undefined;
    }
  }

  private propose(): void {
    const self = this.self!;
    const block = this.build();
    if (block === undefined) return;
    const proposal = signProposal(this.chain, this.height, this.view, block, self, this.signer!);
    this.ownProposal = proposal;
    this.dirty = true;
    this.send(proposal);
    this.acceptOwn(proposal, true);
  }

  private acceptOwn(proposal: ProposalMessage, valid: boolean): void {
    const hash = this.learnBlock(proposal.block);
    if (valid) this.verdicts.set(hash, true);
    this.accepted = hash;
    this.castVote('prepare', hash);
    this.progress();
  }

  /** As primary of a view after 0, with a quorum of view-changes for it: sends the new-view. */
  private tryNewView(): void {
    if (this.active || !this.started || !this.isPrimary(this.view) || this.ownProposal !== null) return;
    const viewChanges = [...this.viewChanges.values()].filter((vc) => vc.view === this.view);
    if (viewChanges.length < this.set.quorum) return;
    const cert = highestPrepared(viewChanges);
    const forced = cert?.block ?? null;
    if (forced !== null && !this.blocks.has(forced)) {
      // The prepared block is named by hash only: ask its voters, each of whom had it.
      if (this.wanted?.hash !== forced) {
        this.wanted = {
          hash: forced,
          from: cert!.votes.map((v) => v.validator).filter((v) => v !== this.self),
        };
        this.out.fetchBlock = { ...this.wanted, from: [...this.wanted.from] };
      }
      return;
    }
    this.wanted = null;
    // With a forced block this node's app refuses, or when the app cannot build one, wait: the view
    // times out and the next primary tries.
    const block = forced === null ? this.build() : this.blocks.get(forced);
    if (block === undefined || (forced !== null && !this.validBlock(forced))) return;
    const proposal = signProposal(this.chain, this.height, this.view, block, this.self!, this.signer!);
    const newView = signNewView(viewChanges, proposal, this.signer!);
    this.ownProposal = newView;
    this.active = true;
    this.constraint = { forced };
    this.dirty = true;
    this.setViewTimer();
    this.resetRetransmit();
    this.send(newView);
    this.acceptOwn(proposal, forced === null);
  }

  // ---- voting

  private castVote(phase: VotePhase, hash: string): void {
    const vote = signVote(phase, this.chain, this.height, this.view, hash, this.self!, this.signer!);
    this.tally(phase, this.view, true).add(vote.sender, hash, vote.sig);
    if (phase === 'prepare') {
      this.prepareVote = hash;
      this.ownPrepare = vote;
    } else {
      this.commitVote = hash;
      this.ownCommit = vote;
    }
    this.dirty = true;
    this.send(vote);
  }

  private tally(phase: VotePhase, view: number, create: true): VoteTally;
  private tally(phase: VotePhase, view: number, create: false): VoteTally | undefined;
  private tally(phase: VotePhase, view: number, create: boolean): VoteTally | undefined {
    const tallies = phase === 'prepare' ? this.prepares : this.commits;
    let tally = tallies.get(view);
    if (tally === undefined && create) {
      tally = new VoteTally();
      tallies.set(view, tally);
    }
    return tally;
  }

  /** Moves the height forward as far as the votes allow: decide, become prepared, commit-vote. */
  private progress(): void {
    if (this.tryDecide()) return;
    if (!this.active) return;
    const hash = this.tally('prepare', this.view, false)?.quorumBlock(this.set.quorum);
    if (hash === undefined) return;
    if (this.prepared === null || this.prepared.cert.view < this.view) {
      const votes = this.tally('prepare', this.view, true).certificate(hash, this.set.quorum);
      this.prepared = { cert: { view: this.view, block: hash, votes }, block: this.blocks.get(hash) ?? null };
      this.dirty = true;
    } else if (this.prepared.block === null && this.blocks.has(hash)) {
      this.prepared = { cert: this.prepared.cert, block: this.blocks.get(hash)! };
      this.dirty = true;
    }
    if (this.commitVote === null && this.voting && this.validBlock(hash)) {
      this.castVote('commit', hash);
      this.tryDecide();
    }
  }

  private tryDecide(): boolean {
    for (const [view, tally] of this.commits) {
      const hash = tally.quorumBlock(this.set.quorum);
      if (hash === undefined) continue;
      const block = this.blocks.get(hash);
      if (block === undefined) {
        // Final, but this node never got the block: peers that committed it will serve it.
        this.noteBehind(this.height, true);
        continue;
      }
      this.decide(block, {
        height: this.height,
        view,
        block: hash,
        votes: tally.certificate(hash, this.set.quorum),
      });
      return true;
    }
    return false;
  }

  // ---- blocks

  private learnBlock(block: Block): string {
    const hash = blockHashOf(block);
    if (!this.blocks.has(hash)) this.blocks.set(hash, block);
    return hash;
  }

  private validBlock(hash: string): boolean {
    const known = this.verdicts.get(hash);
    if (known !== undefined) return known;
    const block = this.blocks.get(hash);
    if (block === undefined || !this.started) return false;
    let verdict: boolean;
    try {
      verdict = this.app.validate(block).ok;
    } catch {
      verdict = false;
    }
    this.verdicts.set(hash, verdict);
    return verdict;
  }

  /** Header and body checks that need no application state; why not, or null. */
  private checkBody(block: Block): string | null {
    const { header, txs } = block;
    if (header.chain !== this.chain) return 'chain';
    if (header.txCount !== txs.length || txs.length > this.options.genesis.params.maxBlockTxs)
      return 'txCount';
    if (txRootOfBlock(block) !== header.txRoot) return 'txRoot';
    return null;
  }

  private checkProposal(proposal: ProposalMessage, hash: string): string | null {
    const { header } = proposal.block;
    if (header.height !== this.height) return 'height';
    if (header.prev !== this.tip.hash) return 'prev';
    if (header.time <= this.tip.time) return 'time not after the previous block';
    const now = this.modules.clock.now();
    if (header.time > now + this.timing.maxClockSkewMs) return 'time in the future';
    const forced = this.constraint?.forced ?? null;
    if (forced !== null) {
      // A re-proposed prepared block keeps the time it was first proposed with, however old.
      if (hash !== forced) return 'not the block the new-view forces';
    } else if (header.view !== proposal.view || header.proposer !== proposal.sender) {
      return 'view or proposer';
    } else if (header.time < now - this.timing.maxClockSkewMs) {
      // Bounded below too: a primary cannot stamp fresh blocks with lagging times.
      return 'time in the past';
    }
    return this.checkBody(proposal.block);
  }

  // ---- signatures

  /** Whether `message` is signed by its sender, a member of `set`. */
  private verifySignature(message: SignedMessage, set: ActiveSet): boolean {
    const key = set.members.get(message.sender);
    if (key === undefined) return false;
    if (this.verified.has(message)) return true;
    const ok = this.verifyRaw(message.sig, signingBytesOf(message), key);
    if (ok) this.verified.add(message);
    return ok;
  }

  private verifyRaw(sig: string, bytes: Uint8Array, key: Uint8Array): boolean {
    try {
      return this.modules.verifier(fromHex(sig, 'sig', 64), bytes, key);
    } catch {
      return false;
    }
  }

  private validPrepared(cert: PreparedCertificate, beforeView: number): boolean {
    if (cert.view >= beforeView) return false;
    const bytes = voteSigningBytes('prepare', this.chain, this.height, cert.view, cert.block);
    const seen = new Set<string>();
    for (const vote of cert.votes) {
      const key = this.set.members.get(vote.validator);
      if (key === undefined || seen.has(vote.validator)) return false;
      seen.add(vote.validator);
      if (!this.verifyRaw(vote.sig, bytes, key)) return false;
    }
    return seen.size >= this.set.quorum;
  }

  private validViewChange(vc: ViewChangeMessage): boolean {
    if (!this.verifySignature(vc, this.set)) return false;
    return vc.prepared === null || this.validPrepared(vc.prepared, vc.view);
  }

  // ---- messages

  private handleMessage(message: ConsensusMessage): DropReason | undefined {
    if (message.chain !== this.chain) return 'wrong-chain';
    if (message.type === 'decided') return this.handleDecided(message.block, message.cert);
    if (message.height < this.height) {
      const set = message.height === this.tip.height ? this.sets.at(message.height) : undefined;
      if (!(set ?? this.set).members.has(message.sender)) return 'unknown-validator';
      if (set !== undefined) this.answerLaggard(message.sender, message.height);
      return 'stale-height';
    }
    // Beyond the heights whose set is known, the newest known set stands in (only to note who is ahead).
    const set = this.knownSet(message.height) ?? this.latestSet();
    if (!set.members.has(message.sender)) return 'unknown-validator';
    if (message.height > this.height || !this.started) return this.buffer(message, set);
    switch (message.type) {
      case 'proposal':
        return this.handleProposal(message);
      case 'prepare':
      case 'commit':
        return this.handleVote(message);
      case 'view-change':
        return this.handleViewChange(message);
      case 'new-view':
        return this.handleNewView(message);
    }
    return undefined;
  }

  /** Messages for the next height wait for it; any later height is evidence this node is behind. */
  private buffer(message: Exclude<ConsensusMessage, DecidedMessage>, set: ActiveSet): DropReason | undefined {
    if (!this.verifySignature(message, set)) return 'bad-signature';
    this.noteHeight(message.sender, message.height);
    const count = this.futureCount.get(message.sender) ?? 0;
    if (message.height > this.height + 1 || count >= this.bufferPerValidator) return 'future';
    // Only the next height's own set can vouch for a message kept for it.
    if (this.knownSet(message.height) !== set) return 'future';
    this.futureCount.set(message.sender, count + 1);
    this.future.push(message);
    return undefined;
  }

  /** A validator still voting on the height this node just committed gets the block and its certificate. */
  private answerLaggard(sender: string, height: number): void {
    if (this.last === undefined || height !== this.tip.height || this.answered.has(sender)) return;
    if (sender === this.self) return;
    this.answered.add(sender);
    const { block, cert } = this.last;
    this.send({ type: 'decided', chain: this.chain, block, cert }, sender);
  }

  private noteHeight(sender: string, height: number): void {
    if ((this.highestSeen.get(sender) ?? 0) >= height) return;
    this.highestSeen.set(sender, height);
    // Counted among the members of the newest known set, and judged by its f.
    const set = this.latestSet();
    const heights: number[] = [];
    for (const [validator, seen] of this.highestSeen) {
      if (set.members.has(validator)) heights.push(seen);
      else if (!this.set.members.has(validator)) this.highestSeen.delete(validator);
    }
    heights.sort((a, b) => b - a);
    if (heights.length <= set.f) return;
    // f+1 validators are at this height or above, so at least one honest one committed the one below.
    const committed = heights[set.f]! - 1;
    // One height behind is normal for a moment (votes race the commit); ask on the next retransmit.
    this.noteBehind(committed, committed > this.height);
  }

  private noteBehind(committed: number, now: boolean): void {
    if (committed < this.height) return;
    this.syncTarget = Math.max(this.syncTarget, committed);
    if (now && committed > this.syncAsked) {
      this.syncAsked = committed;
      this.out.syncTo = Math.max(this.out.syncTo ?? 0, committed);
    }
  }

  private handleProposal(proposal: ProposalMessage): DropReason | undefined {
    if (proposal.view < this.view) return 'stale-view';
    // A proposal for a later view only counts inside its new-view.
    if (proposal.view > this.view || (proposal.view > 0 && this.constraint === null)) return 'future';
    if (proposal.sender !== this.primary(proposal.view)) return 'not-primary';
    const hash = blockHashOf(proposal.block);
    if (this.accepted === hash) return 'duplicate';
    if (!this.verifySignature(proposal, this.set)) return 'bad-signature';
    if (this.accepted !== null) return 'equivocation';
    if (this.checkProposal(proposal, hash) !== null) return 'bad-proposal';
    this.learnBlock(proposal.block);
    // After a restart the WAL may hold a prepare for another block of this view: never sign a second one.
    if (this.prepareVote !== null && this.prepareVote !== hash) {
      this.progress();
      return 'equivocation';
    }
    if (!this.validBlock(hash)) {
      this.progress();
      return 'invalid-block';
    }
    this.accepted = hash;
    if (this.prepareVote === null && this.voting) this.castVote('prepare', hash);
    this.progress();
    return undefined;
  }

  private handleVote(vote: VoteMessage): DropReason | undefined {
    if (vote.type === 'prepare' && vote.view < this.view) return 'stale-view';
    if (vote.view > this.view + this.viewWindow) return 'future';
    const existing = this.tally(vote.type, vote.view, false)?.get(vote.sender);
    if (existing !== undefined && existing.block === vote.block) return 'duplicate';
    if (!this.verifySignature(vote, this.set)) return 'bad-signature';
    if (existing !== undefined) return 'equivocation';
    this.tally(vote.type, vote.view, true).add(vote.sender, vote.block, vote.sig);
    this.progress();
    return undefined;
  }

  private handleViewChange(vc: ViewChangeMessage): DropReason | undefined {
    if (vc.view < this.view || (vc.view === this.view && this.active)) return 'stale-view';
    const existing = this.viewChanges.get(vc.sender);
    if (existing !== undefined && existing.view >= vc.view) {
      return existing.view === vc.view ? 'duplicate' : 'stale-view';
    }
    if (!this.verifySignature(vc, this.set)) return 'bad-signature';
    if (vc.prepared !== null && !this.validPrepared(vc.prepared, vc.view)) return 'bad-view-change';
    this.viewChanges.set(vc.sender, vc);
    this.followViewChanges();
    this.tryNewView();
    return undefined;
  }

  /** f+1 validators asking for later views include an honest one: join the highest view f+1 of them reached. */
  private followViewChanges(): void {
    const later = [...this.viewChanges.values()]
      .filter((vc) => vc.view > this.view && vc.sender !== this.self)
      .map((vc) => vc.view)
      .sort((a, b) => b - a);
    if (later.length > this.set.f) this.startViewChange(later[this.set.f]!);
  }

  private startViewChange(view: number): void {
    this.enterView(view, false);
    if (!this.voting) return;
    this.signOwnViewChange();
    this.send(this.ownViewChange!);
    this.tryNewView();
  }

  private signOwnViewChange(): void {
    const vc = signViewChange(
      this.chain,
      this.height,
      this.view,
      this.prepared?.cert ?? null,
      this.self!,
      this.signer!,
    );
    this.ownViewChange = vc;
    this.viewChanges.set(this.self!, vc);
  }

  private handleNewView(newView: NewViewMessage): DropReason | undefined {
    const { proposal } = newView;
    if (
      newView.view === 0 ||
      proposal.chain !== this.chain ||
      proposal.height !== newView.height ||
      proposal.view !== newView.view ||
      proposal.sender !== newView.sender
    ) {
      return 'bad-new-view';
    }
    if (newView.view < this.view) return 'stale-view';
    // Already in this view with its new-view: only the proposal can still be news (a retransmission).
    if (newView.view === this.view && this.active && this.constraint !== null)
      return this.handleProposal(proposal);
    if (newView.sender !== this.primary(newView.view)) return 'not-primary';
    if (!this.verifySignature(newView, this.set)) return 'bad-signature';
    const forced = this.justify(newView);
    if (forced === undefined) return 'bad-new-view';
    if (newView.view > this.view) this.enterView(newView.view, true);
    else {
      // Waiting in this view since the view-change: the new primary gets a full view from now.
      this.active = true;
      this.dirty = true;
      this.setViewTimer();
      this.resetRetransmit();
    }
    this.constraint = { forced };
    return this.handleProposal(proposal);
  }

  /** The block a new-view must re-propose (null: any fresh block), or undefined when it is not justified. */
  private justify(newView: NewViewMessage): string | null | undefined {
    const senders = new Set<string>();
    for (const vc of newView.viewChanges) {
      if (vc.chain !== this.chain || vc.height !== this.height || vc.view !== newView.view) return undefined;
      if (!this.set.members.has(vc.sender) || senders.has(vc.sender)) return undefined;
      senders.add(vc.sender);
      if (!this.validViewChange(vc)) return undefined;
    }
    if (senders.size < this.set.quorum) return undefined;
    return highestPrepared(newView.viewChanges)?.block ?? null;
  }

  private handleBlockBody(input: unknown): DropReason | undefined {
    const decoded = decodeBlock(input);
    if (!decoded.ok) return 'malformed';
    const block = decoded.block;
    if (this.wanted === null || blockHashOf(block) !== this.wanted.hash) return 'unwanted-block';
    if (this.checkBody(block) !== null) return 'bad-proposal';
    this.learnBlock(block);
    this.wanted = null;
    this.tryNewView();
    return undefined;
  }

  /** Whether f+1 members of the newest known set signed `cert` (for a height beyond the known sets). */
  private plausibleAhead(height: number, cert: CommitCertificate): boolean {
    const set = this.latestSet();
    const bytes = commitSigningBytes(this.chain, height, cert.view, cert.block);
    const seen = new Set<string>();
    for (const vote of cert.votes) {
      const key = set.members.get(vote.validator);
      if (key === undefined || seen.has(vote.validator)) continue;
      if (!this.verifyRaw(vote.sig, bytes, key)) return false;
      seen.add(vote.validator);
      if (seen.size > set.f) return true;
    }
    return false;
  }

  private handleDecided(block: Block, cert: CommitCertificate): DropReason | undefined {
    const { header } = block;
    if (header.chain !== this.chain) return 'wrong-chain';
    if (header.height < this.height) return 'stale-height';
    if (cert.height !== header.height) return 'bad-certificate';
    const set = this.knownSet(header.height);
    if (set === undefined) {
      // Too far ahead to know its set: f+1 signatures of the newest known set make it worth a sync
      // (the synced blocks are checked in full, each against its own set).
      if (!this.plausibleAhead(header.height, cert)) return 'bad-certificate';
      this.noteBehind(header.height, true);
      return undefined;
    }
    if (checkCertificateBy(this.chain, set.keys, header, cert, this.modules.verifier) !== null) {
      return 'bad-certificate';
    }
    if (header.height > this.height) {
      this.noteBehind(header.height, true);
      return undefined;
    }
    if (header.prev !== this.tip.hash || this.checkBody(block) !== null) return 'bad-certificate';
    this.decide(block, cert);
    return undefined;
  }
}

/** The primary of (height, view) under `set`. */
function primaryOf(set: ActiveSet, height: number, view: number): string {
  return set.keys[(height + view) % set.keys.length]!;
}

/** The highest prepared certificate among view-changes (ties broken by block hash), or null. */
function highestPrepared(viewChanges: readonly ViewChangeMessage[]): PreparedCertificate | null {
  let best: PreparedCertificate | null = null;
  for (const vc of viewChanges) {
    const p = vc.prepared;
    if (p === null) continue;
    if (best === null || p.view > best.view || (p.view === best.view && p.block > best.block)) best = p;
  }
  return best;
}
