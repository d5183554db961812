/**
 * The one-validator dev chain's block producer: with a single validator the quorum is one, so
 * the node proposes, signs its own commit vote and commits. A block is cut as soon as the
 * mempool fills a block, at least every `minIntervalMs` while transactions wait, and every
 * `maxIntervalMs` otherwise (empty blocks show liveness). Uses the same Chain and store as PBFT.
 */
import { bytesToHex } from '../common/bytes.js';
import type { Logger } from '../common/logger.js';
import { blockHash, commitSigningBytes } from '../ledger/index.js';
import type { Chain } from './chain.js';
import type { Mempool } from './mempool.js';

/** Dev producer options. */
export interface DevProducerOptions {
  minIntervalMs: number;
  maxIntervalMs: number;
  /** Validator Ed25519 key pair (raw). */
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** Produces and commits blocks alone; only valid when genesis has exactly one validator. */
export class DevProducer {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private lastBlockAt = 0;
  private due = 0;
  private producing: Promise<void> = Promise.resolve();

  constructor(
    private readonly options: DevProducerOptions,
    private readonly modules: {
      chain: Chain;
      mempool: Mempool;
      sign: (message: Uint8Array, secretKey: Uint8Array) => Uint8Array;
      now: () => number;
      logger: Logger;
    },
  ) {}

  async start(): Promise<void> {
    this.running = true;
    this.lastBlockAt = this.modules.now();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.producing;
  }

  /** Asks for a block soon (called when a transaction arrives). */
  poke(): void {
    if (!this.running || this.timer === undefined) return;
    const { mempool, chain, now } = this.modules;
    const wait = mempool.size >= chain.genesis.params.maxBlockTxs ? 0 : this.options.minIntervalMs;
    if (now() + wait < this.due) this.schedule(wait);
  }

  private schedule(delay?: number): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    const wait =
      delay ?? (this.modules.mempool.size > 0 ? this.options.minIntervalMs : this.options.maxIntervalMs);
    this.due = this.modules.now() + wait;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.producing = this.produce().finally(() => this.schedule());
    }, wait);
    this.timer.unref?.();
  }

  private async produce(): Promise<void> {
    const { chain, sign, now, logger } = this.modules;
    const key = bytesToHex(this.options.publicKey);
    try {
      const block = chain.buildBlock(key, 0, now());
      const hash = blockHash(block.header);
      const sig = sign(
        commitSigningBytes(chain.genesis.chain, block.header.height, 0, hash),
        this.options.secretKey,
      );
      await chain.commit({
        block,
        cert: {
          height: block.header.height,
          view: 0,
          block: hash,
          votes: [{ validator: key, sig: bytesToHex(sig) }],
        },
      });
      this.lastBlockAt = now();
    } catch (err) {
      logger.error({ err, sinceLastBlockMs: now() - this.lastBlockAt }, 'block production failed');
    }
  }
}
