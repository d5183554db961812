/**
 * The one way transactions enter the node: admission to the mempool, gossip to the other
 * validators, and waiting until a transaction is committed or refused.
 */
import { DatagrantError } from '../common/errors.js';
import type { AnyTx, CommittedBlockEvent, CommittedTx, TxSubmitter } from '../ledger/index.js';
import type { Chain } from './chain.js';
import type { Mempool } from './mempool.js';

/**
 * How long an admitted transaction may wait for others before it is gossiped (ms). Each gossip
 * message costs every validator a frame, a decryption and a delivery whatever it carries, so a
 * short wait turns a stream of small requests into a few batches.
 */
export const GOSSIP_LINGER_MS = 10;
/** Gossiped at once when this many are waiting. */
const GOSSIP_FLUSH_TXS = 256;

export type { CommittedTx };

/** Admits, gossips and tracks transactions. */
export class TxGateway implements TxSubmitter {
  private readonly waiters = new Map<string, Set<(result: CommittedTx) => void>>();
  private outbox: AnyTx[] = [];
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly modules: {
      chain: Chain;
      mempool: Mempool;
      /**
       * Sends admitted transactions to the other validators. Those admitted within
       * `gossipLingerMs` of each other (e.g. one batch request, or many requests under load) are
       * handed over together, in admission order, so they can travel as one message.
       */
      gossip?: (txs: AnyTx[]) => void;
      /** Longest wait before admitted transactions are gossiped (default `GOSSIP_LINGER_MS`). */
      gossipLingerMs?: number;
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
    if (this.outbox.length >= GOSSIP_FLUSH_TXS) this.flushGossip();
    else if (this.flushTimer === undefined)
      this.flushTimer = setTimeout(() => this.flushGossip(), this.modules.gossipLingerMs ?? GOSSIP_LINGER_MS);
  }

  /** Gossips every admitted transaction still waiting (e.g. before this node proposes a block). */
  flushGossip(): void {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.outbox.length === 0) return;
    const txs = this.outbox;
    this.outbox = [];
    this.modules.gossip!(txs);
  }

  /**
   * Resolves when `hash` is committed; rejects with the ledger's code if the block builder
   * refused it, or `LEDGER_TX_TIMEOUT` after `timeoutMs`.
   */
  async waitCommitted(hash: string, timeoutMs = 20_000): Promise<CommittedTx> {
    // The waiter is registered before the store is read, so a commit that lands while the read is
    // in flight is seen by one or the other.
    return new Promise<CommittedTx>((resolve, reject) => {
      let settled = false;
      const done = (result: CommittedTx) => {
        if (settled) return;
        settled = true;
        cleanup();
        resolve(result);
      };
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        cleanup();
        reject(err);
      };
      const poll = setInterval(() => {
        const rejected = this.modules.mempool.rejection(hash);
        if (rejected) fail(new DatagrantError(rejected.code, rejected.message, { hash }));
      }, 50);
      const timer = setTimeout(() => {
        fail(
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
      this.modules.chain.store.getTxLocation(hash).then(
        (location) => {
          if (location) done({ hash, ...location });
        },
        (err: unknown) => fail(err instanceof Error ? err : new Error(String(err))),
      );
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
