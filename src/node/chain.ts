/**
 * The chain as the node runs it: committed state in memory over the block store, block building
 * for proposers, validation for voters, and commit with an event per block. Consensus (the
 * one-validator dev producer or PBFT) decides *which* block commits; this decides what it means.
 */
import { EventEmitter } from 'node:events';
import { DatagrantError } from '../common/errors.js';
import { DEFAULT_TIMING } from '../consensus/index.js';
import {
  type AnyTx,
  type Block,
  type BlockContext,
  type BlockEffects,
  type BlockStore,
  blockHash,
  blockTxBytes,
  buildBlockTxs,
  type CertifiedBlock,
  type ChainView,
  type CommittedBlockEvent,
  checkCertificateBy,
  effectiveParams,
  executeBlock,
  type Genesis,
  type LedgerConfig,
  ledgerConfigOf,
  maxBlockBytes,
  type SignatureVerifier,
  type StateCacheSize,
  scheduledEpochs,
  stateKey,
  stateRootRule,
  txHash,
  txRootOf,
  type ValidatorEpoch,
  type ValidatorInfo,
  validatorFieldsMatch,
  validatorHeaderFields,
  validatorsInForce,
} from '../ledger/index.js';
import type { Mempool } from './mempool.js';
import { IndexedCommittedState } from './request-index.js';

export type { CommittedBlockEvent };

/** Typed events of the chain. */
export interface ChainEvents {
  committed: [CommittedBlockEvent];
  /** A pipelined commit's write failed: the chain is ahead of its store and commits no more. */
  'write-failed': [DatagrantError];
}

/** Why a proposed block is invalid, or null. */
export interface BlockFault {
  code: string;
  message: string;
}

/** Committed state, block building, validation and commit. */
export class Chain extends EventEmitter<ChainEvents> implements ChainView {
  /** Committed state, with an index of the requests still open for records (see `IndexedCommittedState`). */
  readonly state: IndexedCommittedState;
  readonly config: LedgerConfig;
  private readonly executed = new Map<string, BlockEffects>();
  /** The pipelined commit whose write is in flight (see `commit`), and a write that failed. */
  private inFlight: Promise<void> | undefined;
  private failure: DatagrantError | undefined;
  /** What a `committed` listener threw after a pipelined write, for the next commit to report. */
  private listenerError: unknown;

  constructor(
    readonly genesis: Genesis,
    readonly store: BlockStore,
    private readonly modules: { mempool: Mempool; verifier: SignatureVerifier; stateCache?: StateCacheSize },
  ) {
    super();
    this.config = ledgerConfigOf(genesis);
    this.state = new IndexedCommittedState(
      undefined,
      0,
      stateRootRule(genesis.params),
      store.stateStorage(),
      modules.stateCache,
    );
  }

  /** Loads committed state from the store (the store must be open). */
  async load(): Promise<void> {
    const tip = this.store.tip();
    await this.state.open(tip.stateRoot, tip.height);
  }

  /** Height of the last committed block (0 before the first). */
  get height(): number {
    return this.store.tip().height;
  }

  /**
   * True when a transaction with this hash is committed and not yet expired: the ledger's own
   * replay guard, held in memory. (An expired transaction is refused before this matters.)
   */
  committedRecently(hash: string): boolean {
    return this.state.get(stateKey.seen(hash)) !== undefined;
  }

  private checked = (tx: AnyTx): boolean => this.modules.mempool.isVerified(tx);

  /**
   * The validator set certifying `height`, from committed state: known for every height up to the
   * committed height + VALIDATOR_SET_DELAY (a change enacted later starts later).
   */
  validatorsAt(height: number): readonly ValidatorInfo[] {
    return validatorsInForce(this.state, this.config, height);
  }

  /** Every validator set scheduled after genesis's, ascending (empty while the set never changed). */
  validatorEpochs(): readonly ValidatorEpoch[] {
    return scheduledEpochs(this.state);
  }

  /** Builds the next block from the mempool; refused transactions leave the mempool with their reason. */
  buildBlock(proposer: string, view: number, time: number): Block {
    const tip = this.store.tip();
    const blockTime = Math.max(time, tip.time + 1);
    const ctx: BlockContext = { height: tip.height + 1, time: blockTime, proposer };
    const params = effectiveParams(this.state, this.config);
    const built = buildBlockTxs(
      this.state,
      this.modules.mempool.values(),
      ctx,
      this.config,
      params.maxBlockTxs,
      { verifier: this.modules.verifier },
      this.checked,
      maxBlockBytes(params),
    );
    for (const { tx, rejection } of built.dropped)
      this.modules.mempool.reject(txHash(tx), rejection.code, rejection.message);
    const header = {
      chain: this.genesis.chain,
      height: ctx.height,
      prev: tip.hash,
      txRoot: txRootOf(built.txs),
      txCount: built.txs.length,
      stateRoot: built.stateRoot,
      proposer,
      view,
      time: blockTime,
      ...validatorHeaderFields(this.genesis, scheduledEpochs(this.state), ctx.height),
    };
    this.executed.set(blockHash(header), built);
    return { header, txs: built.txs };
  }

  /**
   * Validates a block proposed for the next height: header fields, tx root, every transaction
   * applying in order, and the state root. Caches the effects for the commit.
   */
  validateBlock(
    block: Block,
    now?: number,
    maxClockSkewMs = DEFAULT_TIMING.maxClockSkewMs,
  ): BlockFault | null {
    const tip = this.store.tip();
    const h = block.header;
    if (h.chain !== this.genesis.chain)
      return { code: 'CONSENSUS_WRONG_CHAIN', message: 'block is for another chain' };
    if (h.height !== tip.height + 1)
      return { code: 'CONSENSUS_WRONG_HEIGHT', message: `expected height ${tip.height + 1}` };
    if (h.prev !== tip.hash)
      return { code: 'CONSENSUS_WRONG_PREV', message: 'block does not extend the committed tip' };
    if (!(h.time > tip.time)) return { code: 'CONSENSUS_BAD_TIME', message: 'block time does not advance' };
    if (now !== undefined && h.time > now + maxClockSkewMs) {
      return { code: 'CONSENSUS_BAD_TIME', message: 'block time is too far in the future' };
    }
    if (!this.validatorsAt(h.height).some((v) => v.key === h.proposer))
      return { code: 'CONSENSUS_BAD_PROPOSER', message: 'proposer is not a validator' };
    if (!validatorFieldsMatch(h, validatorHeaderFields(this.genesis, scheduledEpochs(this.state), h.height)))
      return {
        code: 'CONSENSUS_BAD_VALIDATORS',
        message: 'the header names other validator sets than the ones in force',
      };
    // The limits in force (a council may lower them below genesis' caps).
    const params = effectiveParams(this.state, this.config);
    if (h.txCount !== block.txs.length || block.txs.length > params.maxBlockTxs) {
      return { code: 'CONSENSUS_BAD_TX_COUNT', message: 'tx count mismatch or over the limit' };
    }
    if (txRootOf(block.txs) !== h.txRoot)
      return { code: 'CONSENSUS_BAD_TX_ROOT', message: 'tx root mismatch' };
    if (blockTxBytes(block.txs) > maxBlockBytes(params))
      return { code: 'CONSENSUS_BLOCK_TOO_LARGE', message: 'block is over the byte budget' };
    const hash = blockHash(h);
    if (this.executed.has(hash)) return null;
    const result = executeBlock(
      this.state,
      block.txs,
      { height: h.height, time: h.time, proposer: h.proposer },
      this.config,
      { verifier: this.modules.verifier },
      this.checked,
    );
    if (!result.ok) {
      return { code: 'CONSENSUS_BAD_TX', message: `tx ${result.index} is invalid: ${result.rejection.code}` };
    }
    if (result.stateRoot !== h.stateRoot)
      return { code: 'CONSENSUS_BAD_STATE_ROOT', message: 'state root mismatch' };
    for (const tx of block.txs) this.modules.mempool.markVerified(tx);
    this.executed.set(hash, result);
    return null;
  }

  /**
   * Commits a certified block for the next height: validates it (unless already validated),
   * checks the certificate, persists block, indexes, state (and `meta`, durably) in one batch,
   * then emits `committed`.
   *
   * `pipeline` (how PBFT validators commit): returns once the block is applied in memory and its
   * batch is handed to the store, without waiting for the write, so consensus goes on to the next
   * height meanwhile; one batch is in flight at most, the next commit waits for it. `committed` is
   * still emitted only once the block is written, in height order. A write that fails then leaves
   * this chain ahead of its store: every later commit refuses with LEDGER_STORE_WRITE_FAILED (the
   * validator leaves consensus and exits, as for any failed write). Without `pipeline` (the dev
   * producer) or with `meta`, it returns once the write is done, and a failed write leaves the
   * chain at the height before, to commit again (the dev node stays up and reports its store).
   */
  async commit(
    certified: CertifiedBlock,
    options: { checkCertificate?: boolean; meta?: { key: string; value: string }; pipeline?: boolean } = {},
  ): Promise<CommittedBlockEvent> {
    await this.written();
    const { block, cert } = certified;
    const hash = blockHash(block.header);
    if (options.checkCertificate) {
      const fault = checkCertificateBy(
        this.genesis.chain,
        this.validatorsAt(block.header.height).map((v) => v.key),
        block.header,
        cert,
        this.modules.verifier,
      );
      if (fault) throw new DatagrantError('CONSENSUS_BAD_CERTIFICATE', `certificate refused: ${fault}`);
    }
    const fault = this.validateBlock(block);
    if (fault) throw new DatagrantError(fault.code, fault.message);
    const effects = this.executed.get(hash)!;
    const txHashes = block.txs.map((tx) => txHash(tx));
    const height = block.header.height;
    const tree = this.state.prepare(effects.writes, effects.stateRoot, height);
    const write = this.store.commit(certified, {
      writes: effects.writes,
      subjects: effects.outcomes.map((o) => o.subject),
      hashes: txHashes,
      ...(tree ? { tree } : {}),
      ...(options.meta ? { meta: options.meta } : {}),
    });
    const event = { certified, hash, txHashes };
    if (!options.pipeline || options.meta) {
      try {
        await write;
      } catch (err) {
        this.state.discard();
        throw err;
      }
      this.applied(effects, height, txHashes);
      this.emit('committed', event);
      return event;
    }
    this.applied(effects, height, txHashes, true);
    this.inFlight = write.then(
      () => {
        this.state.written(height);
        try {
          this.emit('committed', event);
        } catch (err) {
          // A listener that throws is its caller's error, as from a commit that is not pipelined:
          // the next commit reports it (nothing is left as an unhandled rejection).
          this.listenerError = err;
        }
      },
      (err: unknown) => {
        this.failure = new DatagrantError(
          'LEDGER_STORE_WRITE_FAILED',
          `block ${height} was not written: ${(err as Error)?.message ?? String(err)}`,
        );
        this.emit('write-failed', this.failure);
      },
    );
    return event;
  }

  private applied(effects: BlockEffects, height: number, txHashes: string[], unwritten = false): void {
    this.state.apply(effects.writes, effects.stateRoot, height, unwritten);
    this.executed.clear();
    this.modules.mempool.removeCommitted(txHashes);
  }

  /**
   * Waits until the store holds every block committed so far (a pipelined commit's write); throws
   * LEDGER_STORE_WRITE_FAILED when one of those writes failed.
   */
  async written(): Promise<void> {
    if (this.inFlight) await this.inFlight;
    if (this.failure) throw this.failure;
    if (this.listenerError !== undefined) {
      const err = this.listenerError;
      this.listenerError = undefined;
      throw err;
    }
  }
}
