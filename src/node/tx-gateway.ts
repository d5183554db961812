/**
 * The one way transactions enter the node: admission to the mempool, gossip to the other
 * validators, and waiting until a transaction is committed or refused.
 */
import { DatagrantError } from '../common/errors.js';
import type { AnyTx } from '../ledger/index.js';
import type { Chain, CommittedBlockEvent } from './chain.js';
import type { Mempool } from './mempool.js';

/** Where a committed transaction landed. */
export interface CommittedTx {
  hash: string;
  height: number;
  index: number;
}

/** Admits, gossips and tracks transactions. */
export class TxGateway {
  private readonly waiters = new Map<string, Set<(result: CommittedTx) => void>>();
  private outbox: AnyTx[] = [];
  private flushScheduled = false;

  constructor(
    private readonly modules: {
      chain: Chain;
      mempool: Mempool;
      /**
       * Sends admitted transactions to the other validators. Those admitted in the same turn of
       * the event loop (e.g. one batch request, or many requests under load) are handed over
       * together, in admission order, so they can travel as one message.
       */
      gossip?: (txs: AnyTx[]) => void;
      /** Called after admission (e.g. to wake the block producer). */
      onAdmitted?: () => void;
    },
  ) {
    modules.chain.on('committed', (event) => this.onCommitted(event));
  }

  /** Admits a transaction (throws a coded error if refused) and gossips it; returns its hash. */
  async submit(input: unknown, options: { gossip?: boolean } = {}): Promise<string> {
    const hash = await this.modules.mempool.add(input);
    if (options.gossip !== false && this.modules.gossip) this.queueGossip(this.modules.mempool.get(hash)!);
    this.modules.onAdmitted?.();
    return hash;
  }

  private queueGossip(tx: AnyTx): void {
    this.outbox.push(tx);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const txs = this.outbox;
      this.outbox = [];
      this.modules.gossip!(txs);
    });
  }

  /**
   * Resolves when `hash` is committed; rejects with the ledger's code if the block builder
   * refused it, or `LEDGER_TX_TIMEOUT` after `timeoutMs`.
   */
  async waitCommitted(hash: string, timeoutMs = 20_000): Promise<CommittedTx> {
    const location = await this.modules.chain.store.getTxLocation(hash);
    if (location) return { hash, ...location };
    return new Promise<CommittedTx>((resolve, reject) => {
      const done = (result: CommittedTx) => {
        cleanup();
        resolve(result);
      };
      const poll = setInterval(() => {
        const rejected = this.modules.mempool.rejection(hash);
        if (rejected) {
          cleanup();
          reject(new DatagrantError(rejected.code, rejected.message, { hash }));
        }
      }, 50);
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new DatagrantError('LEDGER_TX_TIMEOUT', `tx ${hash} was not committed within ${timeoutMs} ms`, {
            hash,
          }),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearInterval(poll);
        clearTimeout(timer);
        const set = this.waiters.get(hash);
        set?.delete(done);
        if (set?.size === 0) this.waiters.delete(hash);
      };
      let set = this.waiters.get(hash);
      if (!set) {
        set = new Set();
        this.waiters.set(hash, set);
      }
      set.add(done);
    });
  }

  /** Submits and waits for the commit. */
  async submitAndWait(input: unknown, timeoutMs?: number): Promise<CommittedTx> {
    const hash = await this.submit(input);
    return this.waitCommitted(hash, timeoutMs);
  }

  private onCommitted(event: CommittedBlockEvent): void {
    if (this.waiters.size === 0) return;
    const height = event.certified.block.header.height;
    event.txHashes.forEach((hash, index) => {
      const set = this.waiters.get(hash);
      if (set) for (const fn of [...set]) fn({ hash, height, index });
    });
  }
}
