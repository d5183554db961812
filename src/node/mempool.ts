/**
 * The mempool: admits transactions from the API and gossip after decoding, a local expiry
 * check and one signature verification (remembered, so block execution does not verify again),
 * and hands them to the block builder in arrival order. Bounded in count.
 */
import { DatagrantError } from '../common/errors.js';
import {
  type AnyTx,
  type DataType,
  decodeTx,
  type SignatureVerifier,
  txBytes,
  txHash,
  verifyTxSignature,
} from '../ledger/index.js';
import { VerifiedSignatures } from './verified-signatures.js';

/** Mempool options. */
export interface MempoolOptions {
  chain: string;
  maxTxs: number;
  maxTxTtlMs: number;
  /** How many verified signatures are remembered (default 200,000), oldest forgotten first. */
  maxVerified?: number;
  /**
   * Admission control: the pool holds at most this many seconds of the chain's recent commit
   * throughput (default 2), so an overloaded node refuses the excess at once, before spending a
   * signature check on it, instead of letting every queue and every latency grow until the work
   * of admitting starves consensus. Never below `minQueueTxs`; never above `maxTxs`.
   */
  maxQueueSeconds?: number;
  /** Floor of the admission bound (default 2,000, one full block by default). */
  minQueueTxs?: number;
  /** Largest transaction admitted, in canonical bytes (the block byte budget: a larger one could never be proposed). */
  maxTxBytes?: number;
}

/** What the mempool needs from the node. */
export interface MempoolModules {
  verifier: SignatureVerifier;
  /** True when the transaction is already in a committed block. */
  isCommitted: (hash: string) => Promise<boolean>;
  now: () => number;
}

/** Why a transaction left the mempool without being committed. */
export interface RejectedTx {
  code: string;
  message: string;
  at: number;
}

const VERIFIED_LIMIT = 200_000;
const QUEUE_SECONDS = 2;
const MIN_QUEUE_TXS = 2_000;
/** Commit throughput is measured over the blocks of this window (ms). */
const RATE_WINDOW_MS = 5_000;
const REJECTED_LIMIT = 10_000;
/**
 * How long a transaction the ledger refused is not admitted again. Resubmitting it at once would
 * only make every validator gossip and execute it again for the same refusal; after the window the
 * chain may have moved on (e.g. what it depended on committed), so it gets another chance.
 */
const REFUSED_READMIT_MS = 2_000;

/** Pending transactions in arrival order. */
export class Mempool {
  private readonly pending = new Map<string, AnyTx>();
  /** Hashes of the pending `record.put` / `record.fail` transactions, by `request/type`. */
  private readonly recordTxs = new Map<string, Set<string>>();
  private readonly verified: VerifiedSignatures;
  private readonly rejected = new Map<string, RejectedTx>();
  /**
   * Transactions refused only because the pool was full, decoded but not verified: a proposal
   * that names one can still be filled in here instead of asking the proposer for it.
   */
  private readonly overflow = new Map<string, AnyTx>();
  /** Recent commits (time, tx count), oldest first, and their total, for the admission bound. */
  private readonly commits: { at: number; txs: number }[] = [];
  private committedInWindow = 0;

  constructor(
    private readonly options: MempoolOptions,
    private readonly modules: MempoolModules,
  ) {
    this.verified = new VerifiedSignatures(options.maxVerified ?? VERIFIED_LIMIT);
  }

  /** Number of pending transactions. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Decodes and admits a transaction; returns its hash. Throws a coded DatagrantError:
   * LEDGER_TX_MALFORMED, LEDGER_WRONG_CHAIN, LEDGER_TX_EXPIRED, LEDGER_TX_TTL_TOO_LONG,
   * LEDGER_BAD_SIGNATURE, LEDGER_TX_DUPLICATE (already pending, or refused by the ledger in the
   * last `REFUSED_READMIT_MS`), LEDGER_TX_REPLAYED (already committed), LEDGER_MEMPOOL_FULL,
   * LEDGER_TX_TOO_LARGE (over the block byte budget).
   */
  async add(input: unknown): Promise<string> {
    const tx = decodeTx(input);
    const hash = txHash(tx);
    const max = this.options.maxTxBytes;
    if (max !== undefined && txBytes(tx).length > max) {
      throw new DatagrantError('LEDGER_TX_TOO_LARGE', `tx is larger than a block may be (${max} bytes)`, {
        hash,
        maxBytes: max,
      });
    }
    if (tx.chain !== this.options.chain) {
      throw new DatagrantError(
        'LEDGER_WRONG_CHAIN',
        `tx is for chain ${tx.chain}, this is ${this.options.chain}`,
      );
    }
    const now = this.modules.now();
    if (tx.expires <= now) throw new DatagrantError('LEDGER_TX_EXPIRED', 'tx has expired');
    if (tx.expires > now + this.options.maxTxTtlMs) {
      throw new DatagrantError(
        'LEDGER_TX_TTL_TOO_LONG',
        `tx expiry is more than ${this.options.maxTxTtlMs} ms ahead`,
      );
    }
    const existing = this.pending.get(hash);
    if (existing) {
      if (existing.sig === tx.sig)
        throw new DatagrantError('LEDGER_TX_DUPLICATE', 'tx is already pending', { hash });
      throw new DatagrantError('LEDGER_TX_REPLAYED', 'a tx with this hash is already pending', { hash });
    }
    const refused = this.rejected.get(hash);
    if (refused && now - refused.at < REFUSED_READMIT_MS) {
      throw new DatagrantError(
        'LEDGER_TX_DUPLICATE',
        `the ledger refused this tx a moment ago (${refused.code}); it is not admitted again yet`,
        { hash, refused: refused.code },
      );
    }
    // Refuse before the signature check: a full pool must shed load cheaply, not verify it first.
    if (!this.hasRoom(now)) {
      this.keepOverflow(hash, tx);
      throw this.fullError(now);
    }
    if (!this.isVerified(tx)) {
      if (!verifyTxSignature(tx, this.modules.verifier)) {
        throw new DatagrantError('LEDGER_BAD_SIGNATURE', 'signature does not verify for signer');
      }
      this.markVerified(tx);
    }
    if (await this.modules.isCommitted(hash)) {
      throw new DatagrantError('LEDGER_TX_REPLAYED', 'tx is already committed', { hash });
    }
    if (!this.hasRoom(now)) throw this.fullError(now);
    this.pending.set(hash, tx);
    this.indexRecordTx(hash, tx, true);
    this.rejected.delete(hash);
    return hash;
  }

  /**
   * A pending, unexpired `record.put` or `record.fail` for (request, type), whoever signed it: an
   * extractor asks before fetching, so that a record already on its way is not fetched again.
   */
  pendingRecordTx(request: string, type: DataType): AnyTx | undefined {
    const hashes = this.recordTxs.get(`${request}/${type}`);
    if (hashes === undefined) return undefined;
    const now = this.modules.now();
    for (const hash of hashes) {
      const tx = this.pending.get(hash);
      if (tx !== undefined && tx.expires > now) return tx;
    }
    return undefined;
  }

  private indexRecordTx(hash: string, tx: AnyTx, add: boolean): void {
    if (tx.kind !== 'record.put' && tx.kind !== 'record.fail') return;
    const key = `${tx.body.request}/${tx.body.type}`;
    let hashes = this.recordTxs.get(key);
    if (add) {
      if (hashes === undefined) {
        hashes = new Set();
        this.recordTxs.set(key, hashes);
      }
      hashes.add(hash);
    } else if (hashes?.delete(hash) && hashes.size === 0) this.recordTxs.delete(key);
  }

  private removePending(hash: string): boolean {
    const tx = this.pending.get(hash);
    if (tx === undefined) return false;
    this.pending.delete(hash);
    this.indexRecordTx(hash, tx, false);
    return true;
  }

  /** Pending transactions, oldest first. */
  values(): IterableIterator<AnyTx> {
    return this.pending.values();
  }

  /**
   * A pending transaction, or one refused a moment ago only because the pool was full (its
   * signature NOT checked): for filling in proposals, whose validation checks what is unverified.
   */
  lookup(hash: string): AnyTx | undefined {
    return this.pending.get(hash) ?? this.overflow.get(hash);
  }

  has(hash: string): boolean {
    return this.pending.has(hash);
  }

  get(hash: string): AnyTx | undefined {
    return this.pending.get(hash);
  }

  /** How many pending transactions the pool admits now (see `maxQueueSeconds`). */
  admissionLimit(now = this.modules.now()): number {
    while (this.commits.length > 0 && now - this.commits[0]!.at > RATE_WINDOW_MS)
      this.committedInWindow -= this.commits.shift()!.txs;
    const perSecond = (this.committedInWindow * 1000) / RATE_WINDOW_MS;
    const bound = Math.max(
      this.options.minQueueTxs ?? MIN_QUEUE_TXS,
      Math.ceil(perSecond * (this.options.maxQueueSeconds ?? QUEUE_SECONDS)),
    );
    return Math.min(this.options.maxTxs, bound);
  }

  private hasRoom(now: number): boolean {
    return this.pending.size < this.admissionLimit(now);
  }

  private fullError(now: number): DatagrantError {
    return new DatagrantError(
      'LEDGER_MEMPOOL_FULL',
      `mempool is full (${this.pending.size} pending, admitting at most ${this.admissionLimit(now)}); retry later`,
      { pending: this.pending.size },
    );
  }

  private keepOverflow(hash: string, tx: AnyTx): void {
    if (this.overflow.size >= (this.options.minQueueTxs ?? MIN_QUEUE_TXS))
      this.overflow.delete(this.overflow.keys().next().value as string);
    this.overflow.set(hash, tx);
  }

  /** Removes committed transactions (and counts them towards the commit throughput). */
  removeCommitted(hashes: readonly string[]): void {
    for (const hash of hashes) {
      this.removePending(hash);
      this.overflow.delete(hash);
    }
    if (hashes.length === 0) return;
    this.commits.push({ at: this.modules.now(), txs: hashes.length });
    this.committedInWindow += hashes.length;
  }

  /** Removes a transaction the ledger refused, remembering why for status queries. */
  reject(hash: string, code: string, message: string): void {
    if (!this.removePending(hash)) return;
    if (this.rejected.size >= REJECTED_LIMIT)
      this.rejected.delete(this.rejected.keys().next().value as string);
    this.rejected.set(hash, { code, message, at: this.modules.now() });
  }

  /** Why a transaction was dropped, if it was. */
  rejection(hash: string): RejectedTx | undefined {
    return this.rejected.get(hash);
  }

  /** True when this exact transaction (hash and signature) was verified here before. */
  isVerified(tx: AnyTx): boolean {
    return this.verified.has(txHash(tx), tx.sig);
  }

  /** Records that a transaction's signature verified (e.g. while validating a proposal). */
  markVerified(tx: AnyTx): void {
    this.verified.add(txHash(tx), tx.sig);
  }
}
