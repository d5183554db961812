/**
 * How the node drives its roles from committed blocks: the extractor answers committed requests
 * (under the `on-consent` policy: committed grants, for the granted types only) for the data
 * types it serves — the assigned extractor at once, the others as fallbacks after a delay if
 * nothing arrived — and every node deletes payloads when their subject erases them.
 */
import type { Logger } from '../common/logger.js';
import { type Extractor, rankExtractors } from '../extractor/index.js';
import {
  type ChainView,
  type DataType,
  type ExtractionPolicy,
  type GrantState,
  type RecordState,
  type RequestState,
  type SubjectState,
  stateKey,
} from '../ledger/index.js';
import type { PayloadStore } from '../records/index.js';
import type { Chain, CommittedBlockEvent } from './chain.js';

/** Routes committed requests to the local extractor. */
export class ExtractorRole {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly listener = (event: CommittedBlockEvent) => this.onCommitted(event);

  constructor(
    private readonly options: { selfKey: string; fallbackMs: number; policy: ExtractionPolicy },
    private readonly modules: { chain: Chain; extractor: Extractor; logger: Logger },
  ) {}

  async start(): Promise<void> {
    await this.modules.extractor.start();
    this.modules.chain.on('committed', this.listener);
  }

  async stop(): Promise<void> {
    this.modules.chain.off('committed', this.listener);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.modules.extractor.stop();
  }

  private servingKeys(type: DataType): string[] {
    return this.modules.chain.genesis.validators
      .filter((v) => v.roles.includes('extractor') && v.types.includes(type))
      .map((v) => v.key);
  }

  private onCommitted(event: CommittedBlockEvent): void {
    const onConsent = this.options.policy === 'on-consent';
    event.certified.block.txs.forEach((tx, i) => {
      let id: string;
      let types: readonly DataType[];
      if (!onConsent && tx.kind === 'request.open') {
        id = event.txHashes[i]!;
        types = tx.body.types;
      } else if (onConsent && tx.kind === 'grant') {
        id = tx.body.request;
        types = tx.body.types;
      } else return;
      const byDelay = new Map<number, DataType[]>();
      for (const type of types) {
        if (!this.modules.extractor.serves(type)) continue;
        const rank = rankExtractors(id, type, this.servingKeys(type)).indexOf(this.options.selfKey);
        if (rank < 0) continue;
        const delay = rank * this.options.fallbackMs;
        byDelay.set(delay, [...(byDelay.get(delay) ?? []), type]);
      }
      for (const [delay, types] of byDelay) {
        if (delay === 0) this.handle(id, types);
        else {
          const timer = setTimeout(() => {
            this.timers.delete(timer);
            this.handle(id, types, true);
          }, delay);
          this.timers.add(timer);
        }
      }
    });
  }

  private handle(id: string, types: DataType[], fallback = false): void {
    const state = this.modules.chain.state;
    const request = state.get(stateKey.request(id)) as RequestState | undefined;
    if (!request || request.erased) return;
    let granteeEncKey: string | undefined;
    if (this.options.policy === 'on-consent') {
      const grant = request.grant
        ? (state.get(stateKey.grant(request.grant)) as GrantState | undefined)
        : undefined;
      if (!grant || grant.revoked) return;
      granteeEncKey = grant.granteeKey;
    } else if (request.decision !== 'pending') return;
    const open = fallback ? types.filter((t) => !request.records[t] && !request.failures[t]) : types;
    if (open.length === 0) return;
    const subject = state.get(stateKey.subject(request.subject)) as SubjectState | undefined;
    if (!subject) return;
    this.modules.logger.debug({ request: id, types: open, fallback }, 'extracting');
    this.modules.extractor
      .handleRequest({
        id,
        subject: request.subject,
        subjectEncKey: subject.encKey,
        ...(granteeEncKey ? { granteeEncKey } : {}),
        types: open,
        ...(request.dataFrom ? { dataFrom: request.dataFrom } : {}),
        ...(request.dataTo ? { dataTo: request.dataTo } : {}),
      })
      .catch((err: unknown) => this.modules.logger.warn({ err, request: id }, 'extraction failed'));
  }
}

/** Options of the erasure role. */
export interface ErasureOptions {
  /** Blocks between two sweeps of the whole payload store (besides the one at start-up). */
  sweepEveryBlocks: number;
  /** A payload with no committed record after this long is an orphan and is collected (ms). */
  orphanAfterMs: number;
}

/**
 * Erasure, guaranteed: a committed `erase` deletes the request's ciphertexts at once, and an
 * idempotent sweep — at start-up and every `sweepEveryBlocks` blocks — deletes every payload whose
 * record is erased (so a node that was down, or restored from a backup, erases on its next start)
 * and every orphan (a ciphertext no committed record names after `orphanAfterMs`, e.g. from an
 * extraction whose record.put never committed). After deleting, the store is compacted so the
 * bytes leave the disk. The ledger keeps the digests.
 */
export class ErasureRole {
  private readonly listener = (event: CommittedBlockEvent) => this.onCommitted(event);
  private sweeping: Promise<{ erased: number; orphaned: number }> | undefined;
  private blocksSinceSweep = 0;

  constructor(
    private readonly options: ErasureOptions,
    private readonly modules: { chain: ChainView; payloads: PayloadStore; logger: Logger; now: () => number },
  ) {}

  async start(): Promise<void> {
    await this.sweep();
    this.modules.chain.on('committed', this.listener);
  }

  async stop(): Promise<void> {
    this.modules.chain.off('committed', this.listener);
    await this.sweeping?.catch(() => undefined);
  }

  /** Whether the ledger says the payload `digest` was erased. */
  erased(digest: string): boolean {
    return (
      (this.modules.chain.state.get(stateKey.record(digest)) as RecordState | undefined)?.erased === true
    );
  }

  /** Deletes every erased and orphaned payload, then compacts; one sweep at a time. */
  sweep(): Promise<{ erased: number; orphaned: number }> {
    this.sweeping ??= this.runSweep().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async runSweep(): Promise<{ erased: number; orphaned: number }> {
    const { chain, payloads, logger, now } = this.modules;
    const cutoff = now() - this.options.orphanAfterMs;
    const doomed: { digest: string; why: 'erased' | 'orphaned' }[] = [];
    for await (const { digest, addedAt } of payloads.list()) {
      const record = chain.state.get(stateKey.record(digest)) as RecordState | undefined;
      if (record?.erased) doomed.push({ digest, why: 'erased' });
      else if (!record && addedAt < cutoff) doomed.push({ digest, why: 'orphaned' });
    }
    for (const { digest } of doomed) await payloads.delete(digest);
    if (doomed.length > 0) await payloads.compact();
    const result = {
      erased: doomed.filter((d) => d.why === 'erased').length,
      orphaned: doomed.filter((d) => d.why === 'orphaned').length,
    };
    if (doomed.length > 0) logger.info(result, 'erasure sweep deleted payloads');
    this.blocksSinceSweep = 0;
    return result;
  }

  private onCommitted(event: CommittedBlockEvent): void {
    const digests: string[] = [];
    for (const tx of event.certified.block.txs) {
      if (tx.kind !== 'erase') continue;
      const request = this.modules.chain.state.get(stateKey.request(tx.body.request)) as
        | RequestState
        | undefined;
      if (request) digests.push(...Object.values(request.records));
    }
    if (digests.length > 0) {
      void (async () => {
        for (const digest of digests) await this.modules.payloads.delete(digest);
        await this.modules.payloads.compact();
        this.modules.logger.info({ payloads: digests.length }, 'payloads erased');
      })().catch((err: unknown) =>
        // The next sweep deletes them: erasure does not depend on this one succeeding.
        this.modules.logger.error({ err }, 'payload erasure failed; the next sweep retries'),
      );
    }
    if (++this.blocksSinceSweep >= this.options.sweepEveryBlocks)
      this.sweep().catch((err: unknown) => this.modules.logger.error({ err }, 'erasure sweep failed'));
  }
}
