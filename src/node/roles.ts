/**
 * How the node drives its roles from committed blocks: the extractor answers committed requests
 * (under the `on-consent` policy: committed grants, for the granted types only) for the data
 * types it serves — the assigned extractor at once, the others as fallbacks after a delay if
 * nothing arrived — and reconciles: at start-up and every few blocks it rescans the open
 * requests and re-runs what was lost (a restart mid-extraction, a `record.put` dropped or expired
 * before commit, a submit that failed). A subject's `record.refresh` (records wrapped to a key she
 * recovered away from) reopens types: they are extracted again, sealed to her current key. Every
 * node deletes payloads when their subject erases them, or when a refresh sets them aside.
 */
import type { Logger } from '../common/logger.js';
import { type DataRequest, type Extractor, rankExtractors } from '../extractor/index.js';
import {
  type ChainView,
  type DataType,
  type ExtractionPolicy,
  type GrantState,
  type RecordState,
  type RequestState,
  requestPolicy,
  type SubjectState,
  stateKey,
} from '../ledger/index.js';
import type { PayloadStore } from '../records/index.js';
import type { Chain, CommittedBlockEvent } from './chain.js';
import type { Mempool } from './mempool.js';

/** Committed blocks between two rescans of the open requests, by default. */
export const DEFAULT_RESCAN_EVERY_BLOCKS = 20;
/** Re-runs of one (request, type) a node makes at most, by default. */
export const DEFAULT_MAX_RERUNS = 5;
/** How many (request, type) re-run counts are remembered, oldest forgotten first. */
const RERUN_MEMORY = 10_000;

/** Options of the extractor role. */
export interface ExtractorRoleOptions {
  /** This node's validator key (hex). */
  selfKey: string;
  /** Delay per rank: the extractor ranked `r` for a (request, type) covers after `r * fallbackMs` (ms). */
  fallbackMs: number;
  policy: ExtractionPolicy;
  /** Committed blocks between two rescans, besides the one at start-up (default 20). */
  rescanEveryBlocks?: number;
  /**
   * Re-runs of one (request, type) by rescans, at most (default 5): a record the ledger keeps
   * refusing is not fetched from the source again and again.
   */
  maxReruns?: number;
}

/** Counters the extractor role feeds (the node passes its prom-client counters). */
export interface ExtractorRoleMetrics {
  /** One per rescan. */
  rescans: { inc(): void };
  /** One per (request, type) a rescan re-ran, by whether this node is its assigned extractor. */
  reruns: { inc(labels: { as: 'assigned' | 'fallback' }): void };
  /** One per (request, type) not extracted because its record.put / record.fail was already pending. */
  pendingSkips: { inc(): void };
}

/** Collaborators of the extractor role. */
export interface ExtractorRoleModules {
  chain: Chain;
  extractor: Extractor;
  /** The node's mempool (every node's transactions gossip to it): what is already on its way. */
  pending: Pick<Mempool, 'pendingRecordTx'>;
  logger: Logger;
  metrics?: ExtractorRoleMetrics;
  /** Unix ms, compared with block times (default `Date.now`). */
  now?: () => number;
  /**
   * Whether the node has caught up with the chain (default: always). A node still syncing would
   * re-run records already committed in blocks it has not fetched yet, hitting the source for
   * nothing; its start-up rescan waits for the first block it commits once caught up.
   */
  caughtUp?: () => boolean;
}

/** What a request asks of this extractor now, per the committed state. */
interface OpenJob {
  request: Omit<DataRequest, 'types'>;
  /** Block time of the trigger: the request (`on-request`) or the grant (`on-consent`). */
  since: number;
  /** Types with neither a committed record nor a committed failure (granted ones under `on-consent`). */
  open: DataType[];
}

/** What `rescan` did. */
export interface RescanResult {
  /** Open requests looked at. */
  requests: number;
  /** (request, type) pairs re-run. */
  reruns: number;
  /** (request, type) pairs left alone because their transaction is pending. */
  pending: number;
}

/**
 * Routes committed requests to the local extractor and reconciles what was lost. Before any
 * extraction — first, fallback or re-run — a (request, type) is skipped if the committed state
 * already has its record or failure (a committed failure is final), if a `record.put` or
 * `record.fail` for it is pending in the mempool (whoever signed it), or if this role already has
 * it running; a fallback waits its rank delay after the trigger's block time. So the source is hit
 * once per record unless a transaction was lost.
 */
export class ExtractorRole {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly listener = (event: CommittedBlockEvent) => this.onCommitted(event);
  /** `request/type` pairs handed to the extractor and not settled yet. */
  private readonly running = new Set<string>();
  /** Extractions handed to the extractor and not answered yet. */
  private readonly jobs = new Set<Promise<void>>();
  /** Re-runs per `request/type` by rescans. */
  private readonly reruns = new Map<string, number>();
  private blocksSinceRescan = 0;
  /** The start-up rescan has not run yet (it waits until the node has caught up). */
  private startRescanDue = true;

  constructor(
    private readonly options: ExtractorRoleOptions,
    private readonly modules: ExtractorRoleModules,
  ) {}

  async start(): Promise<void> {
    await this.modules.extractor.start();
    this.modules.chain.on('committed', this.listener);
    // With a caught-up check, the start-up rescan waits for the first block committed once caught
    // up (a node that just started does not know yet how far behind it is).
    if (this.modules.caughtUp === undefined) this.rescan();
  }

  private caughtUp(): boolean {
    return this.modules.caughtUp?.() ?? true;
  }

  async stop(): Promise<void> {
    this.modules.chain.off('committed', this.listener);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.modules.extractor.stop();
  }

  /** Resolves once every extraction handed to the extractor so far has answered. */
  async settled(): Promise<void> {
    while (this.jobs.size > 0) await Promise.allSettled([...this.jobs]);
  }

  /**
   * Looks at every open request and re-runs the (request, type) pairs this extractor is due to
   * answer — assigned to it, or a fallback whose rank delay since the trigger has passed — that
   * have no committed record or failure and nothing pending. Runs at start-up and every
   * `rescanEveryBlocks` committed blocks; costs what is open, not the chain's history.
   */
  rescan(): RescanResult {
    this.blocksSinceRescan = 0;
    this.startRescanDue = false;
    const { chain, extractor, logger, metrics } = this.modules;
    const now = this.now();
    const ids = chain.state.openRequestIds();
    const result: RescanResult = { requests: ids.length, reruns: 0, pending: 0 };
    for (const id of ids) {
      const look = this.look(id, now);
      if (look === 'settled') {
        chain.state.settleRequest(id);
        continue;
      }
      if (look === undefined) continue;
      const due: DataType[] = [];
      const roles: ('assigned' | 'fallback')[] = [];
      for (const type of look.open) {
        if (!extractor.serves(type)) continue;
        const rank = this.rank(id, type);
        if (rank < 0 || now < look.since + rank * this.options.fallbackMs) continue;
        const key = `${id}/${type}`;
        if (this.running.has(key)) continue;
        if (this.isPending(id, type)) {
          result.pending++;
          metrics?.pendingSkips.inc();
          continue;
        }
        const count = this.reruns.get(key) ?? 0;
        if (count >= (this.options.maxReruns ?? DEFAULT_MAX_RERUNS)) continue;
        if (count + 1 === (this.options.maxReruns ?? DEFAULT_MAX_RERUNS))
          logger.warn({ request: id, type, reruns: count + 1 }, 'last re-run of this extraction');
        this.countRerun(key, count + 1);
        due.push(type);
        roles.push(rank === 0 ? 'assigned' : 'fallback');
      }
      if (due.length === 0) continue;
      for (const as of roles) metrics?.reruns.inc({ as });
      result.reruns += due.length;
      logger.info({ request: id, types: due, as: roles }, 're-running extraction');
      this.run(look, due, true);
    }
    metrics?.rescans.inc();
    if (result.reruns > 0 || result.pending > 0) logger.info(result, 'extractor rescan');
    else logger.debug(result, 'extractor rescan');
    return result;
  }

  private now(): number {
    return (this.modules.now ?? Date.now)();
  }

  private servingKeys(type: DataType): string[] {
    const chain = this.modules.chain;
    return chain
      .validatorsAt(chain.height + 1)
      .filter((v) => v.roles.includes('extractor') && v.types.includes(type))
      .map((v) => v.key);
  }

  /** This extractor's rank for (request, type): 0 assigned, 1.. fallbacks, -1 not serving it. */
  private rank(id: string, type: DataType): number {
    return rankExtractors(id, type, this.servingKeys(type)).indexOf(this.options.selfKey);
  }

  private isPending(id: string, type: DataType): boolean {
    return this.modules.pending.pendingRecordTx(id, type) !== undefined;
  }

  private countRerun(key: string, count: number): void {
    this.reruns.delete(key);
    this.reruns.set(key, count);
    if (this.reruns.size > RERUN_MEMORY) this.reruns.delete(this.reruns.keys().next().value as string);
  }

  private onCommitted(event: CommittedBlockEvent): void {
    const state = this.modules.chain.state;
    // Each request follows the extraction policy it was opened under.
    const onConsent = (id: string) => {
      const request = state.get(stateKey.request(id)) as RequestState | undefined;
      return requestPolicy(request ?? {}, this.options.policy) === 'on-consent';
    };
    event.certified.block.txs.forEach((tx, i) => {
      let id: string;
      let types: readonly DataType[];
      // A refresh reopens types this node may have answered before: they are extracted again.
      let retry = false;
      if (tx.kind === 'request.open' && !onConsent(event.txHashes[i]!)) {
        id = event.txHashes[i]!;
        types = tx.body.types;
      } else if (tx.kind === 'grant' && onConsent(tx.body.request)) {
        id = tx.body.request;
        types = tx.body.types;
      } else if (tx.kind === 'record.refresh') {
        id = tx.body.request;
        types = tx.body.types;
        retry = true;
        for (const type of types) this.reruns.delete(`${id}/${type}`);
      } else return;
      const byDelay = new Map<number, DataType[]>();
      for (const type of types) {
        if (!this.modules.extractor.serves(type)) continue;
        const rank = this.rank(id, type);
        if (rank < 0) continue;
        const delay = rank * this.options.fallbackMs;
        byDelay.set(delay, [...(byDelay.get(delay) ?? []), type]);
      }
      for (const [delay, types] of byDelay) {
        if (delay === 0) this.handle(id, types, retry);
        else {
          const timer = setTimeout(() => {
            this.timers.delete(timer);
            this.handle(id, types, retry);
          }, delay);
          this.timers.add(timer);
        }
      }
    });
    const due =
      this.startRescanDue ||
      ++this.blocksSinceRescan >= (this.options.rescanEveryBlocks ?? DEFAULT_RESCAN_EVERY_BLOCKS);
    if (due && this.caughtUp()) {
      try {
        this.rescan();
      } catch (err) {
        // Runs inside the commit event: a failing rescan must not fail the commit; the next one retries.
        this.modules.logger.error({ err }, 'extractor rescan failed');
      }
    }
  }

  /**
   * First run (assigned) or fallback run of `types` of a request just committed; `retry` for types
   * a `record.refresh` reopened (the extractor may have answered them before).
   */
  private handle(id: string, types: readonly DataType[], retry = false): void {
    const look = this.look(id, this.now());
    if (look === undefined || look === 'settled') return;
    const wanted = types.filter((t) => {
      if (!look.open.includes(t) || this.running.has(`${id}/${t}`)) return false;
      if (!this.isPending(id, t)) return true;
      this.modules.metrics?.pendingSkips.inc();
      this.modules.logger.debug({ request: id, type: t }, 'record already pending; not extracting');
      return false;
    });
    if (wanted.length === 0) return;
    this.modules.logger.debug({ request: id, types: wanted, retry }, 'extracting');
    this.run(look, wanted, retry);
  }

  /** Hands `types` of a request to the extractor; they count as running until it answers. */
  private run(job: OpenJob, types: DataType[], retry: boolean): void {
    const { extractor, logger } = this.modules;
    const id = job.request.id;
    for (const type of types) this.running.add(`${id}/${type}`);
    const answered = extractor
      .handleRequest({ ...job.request, types }, { retry })
      .then((outcomes) => {
        for (const o of outcomes)
          if (o.status === 'skipped' && (o.why === 'submit-failed' || o.why === 'overloaded'))
            logger.warn(
              { request: id, type: o.type, why: o.why },
              'extraction not submitted; a rescan retries it',
            );
      })
      .catch((err: unknown) => logger.warn({ err, request: id }, 'extraction failed'))
      .finally(() => {
        for (const type of types) this.running.delete(`${id}/${type}`);
        this.jobs.delete(answered);
      });
    this.jobs.add(answered);
  }

  /**
   * What the committed state says of request `id` for extraction at `now`: `settled` for good
   * (gone, erased, denied, decided, expired, revoked, or every type answered), undefined when
   * there is nothing to do yet (on-consent: not granted yet), else the open job.
   */
  private look(id: string, now: number): OpenJob | 'settled' | undefined {
    const state = this.modules.chain.state;
    const request = state.get(stateKey.request(id)) as RequestState | undefined;
    if (!request || request.erased || request.decision === 'denied') return 'settled';
    let granteeEncKey: string | undefined;
    let since: number;
    let types: readonly DataType[];
    if (requestPolicy(request, this.options.policy) === 'on-consent') {
      if (request.decision === 'pending') return request.consentBy <= now ? 'settled' : undefined;
      const grant = request.grant
        ? (state.get(stateKey.grant(request.grant)) as GrantState | undefined)
        : undefined;
      if (!grant || grant.revoked || grant.expires <= now) return 'settled';
      granteeEncKey = grant.granteeKey;
      since = grant.grantedAt;
      types = grant.types.filter((t) => request.types.includes(t));
    } else {
      if (request.decision !== 'pending' || request.consentBy <= now) return 'settled';
      since = request.openedAt;
      types = request.types;
    }
    // Types a `record.refresh` reopened are due again from its block time: fallbacks wait from there.
    since = Math.max(since, request.reopenedAt ?? 0);
    const open = types.filter((t) => request.records[t] === undefined && request.failures[t] === undefined);
    if (open.length === 0) return 'settled';
    const subject = state.get(stateKey.subject(request.subject)) as SubjectState | undefined;
    if (!subject) return undefined;
    return {
      request: {
        id,
        subject: request.subject,
        subjectEncKey: subject.encKey,
        ...(granteeEncKey ? { granteeEncKey } : {}),
        ...(request.dataFrom ? { dataFrom: request.dataFrom } : {}),
        ...(request.dataTo ? { dataTo: request.dataTo } : {}),
      },
      since,
      open,
    };
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
      if (tx.kind !== 'erase' && tx.kind !== 'record.refresh') continue;
      const request = this.modules.chain.state.get(stateKey.request(tx.body.request)) as
        | RequestState
        | undefined;
      if (!request) continue;
      if (tx.kind === 'erase') digests.push(...Object.values(request.records));
      // The records a refresh set aside: erased on the ledger, so their ciphertexts go now.
      else
        digests.push(
          ...tx.body.types.flatMap((t) => request.superseded?.[t] ?? []).filter((d) => this.erased(d)),
        );
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
