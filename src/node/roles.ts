/**
 * How the node drives its roles from committed blocks: the extractor answers committed requests
 * (under the `on-consent` policy: committed grants, for the granted types only) for the data
 * types it serves — the assigned extractor at once, the others as fallbacks after a delay if
 * nothing arrived — and every node deletes payloads when their subject erases them.
 */
import type { Logger } from '../common/logger.js';
import { type Extractor, rankExtractors } from '../extractor/index.js';
import {
  type DataType,
  type ExtractionPolicy,
  type GrantState,
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

/** Deletes local ciphertexts when a committed `erase` covers them; the ledger keeps the digests. */
export class ErasureRole {
  private readonly listener = (event: CommittedBlockEvent) => this.onCommitted(event);

  constructor(private readonly modules: { chain: Chain; payloads: PayloadStore; logger: Logger }) {}

  async start(): Promise<void> {
    this.modules.chain.on('committed', this.listener);
  }

  async stop(): Promise<void> {
    this.modules.chain.off('committed', this.listener);
  }

  private onCommitted(event: CommittedBlockEvent): void {
    for (const tx of event.certified.block.txs) {
      if (tx.kind !== 'erase') continue;
      const request = this.modules.chain.state.get(stateKey.request(tx.body.request)) as
        | RequestState
        | undefined;
      if (!request) continue;
      for (const digest of Object.values(request.records)) {
        this.modules.payloads
          .delete(digest)
          .then(() => this.modules.logger.info({ digest, request: request.id }, 'payload erased'))
          .catch((err: unknown) => this.modules.logger.error({ err, digest }, 'payload erasure failed'));
      }
    }
  }
}
