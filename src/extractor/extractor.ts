/**
 * The extractor role's core: for a committed data request, run the plugin that serves each
 * requested type (timeout, bounded retries with back-off and jitter), seal the record to the
 * subject, store the ciphertext and submit a signed `record.put` — or a `record.fail` with a
 * reason code the institution can read. Independent of how the node delivers requests.
 *
 * Never logged: record fields, keys, plugin payloads, anything from the source's answer.
 * Logged: request ids, data types, pseudonymous subject ids, digests, error codes, timings.
 */

import { bytesToHex, fromHex, toBase64url } from '../common/bytes.js';
import { type SigningKeyPair, sha256Hex } from '../common/crypto.js';
import { DatagrantError, isDatagrantError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { CHAIN_RE, HASH_RE, SUBJECT_ID_RE } from '../ledger/patterns.js';
import { type AnyTx, DATA_TYPES, type DataType, MAX_RECEIPTS, type StorageReceipt } from '../ledger/tx.js';
import { DEFAULT_TX_TTL_MS, signTx, txHash } from '../ledger/tx-codec.js';
import {
  type DataQuery,
  type DataSource,
  type FetchResult,
  FIELD_NAME_PATTERN,
  type FieldValue,
  pluginError,
  RETRYABLE_PLUGIN_CODES,
  toFieldValue,
} from '../plugins/data-source.js';
import type { PayloadStore } from '../records/payload-store.js';
import { recordContext, type SealedRecord, sealRecord } from '../records/record-crypto.js';
import { parseSignedSourceStatement, type SignedSourceStatement } from '../records/source-statement.js';

/** Plain configuration of an extractor. */
export interface ExtractorOptions {
  /** Chain id, bound into signatures and record contexts. */
  chain: string;
  /** The node's Ed25519 key pair (raw keys); signs `record.put` / `record.fail`. */
  nodeKey: SigningKeyPair;
  /** Time allowed for one plugin attempt, in ms. */
  timeoutMs: number;
  /** Extra attempts after the first, for UNAVAILABLE and TIMEOUT only. */
  retries: number;
  /** Back-off before the first retry, in ms; doubles per retry, with jitter. */
  backoffMs: number;
  /** Largest back-off, in ms. */
  maxBackoffMs: number;
  /** Time allowed for storing the payload and for `submit`, each (default: `timeoutMs`). */
  submitTimeoutMs?: number;
  /**
   * Time allowed for one attempt at collecting storage receipts (`replicate`), in ms (default:
   * `submitTimeoutMs`). A failed attempt is retried `retries` times with back-off, then the type
   * ends in `record.fail` with EXTRACTOR_REPLICATION_FAILED.
   */
  replicateTimeoutMs?: number;
  /** Plugin fetches running at once across all requests (default 8). */
  concurrency?: number;
  /**
   * Most (request, type) jobs held at once, running or queued (default 10,000). Past it a job is
   * refused (`skipped`, why `overloaded`, logged with EXTRACTOR_OVERLOADED) rather than queued
   * without bound; it is picked up again when the request is rescanned.
   */
  maxJobs?: number;
  /** Lifetime of submitted transactions, in ms (default: the ledger default). */
  txTtlMs?: number;
}

/** Defaults a node can merge its config over. */
export const DEFAULT_EXTRACTOR_OPTIONS = {
  timeoutMs: 10_000,
  retries: 2,
  backoffMs: 500,
  maxBackoffMs: 5_000,
  concurrency: 8,
  maxJobs: 10_000,
} as const;

/** Collaborators of an extractor. */
export interface ExtractorModules {
  /** Data sources in priority order; the first that serves a type answers it. */
  sources: DataSource[];
  payloads: PayloadStore;
  /** Hands a signed transaction to the node (mempool / gossip). */
  submit: (tx: AnyTx) => Promise<void>;
  /**
   * Has the sealed ciphertext (already in `payloads`) stored by validators and resolves with their
   * storage receipts — at least f + 1 from distinct genesis validators, each checked — or rejects
   * when it cannot collect them. The node pushes to every validator at once and signs its own
   * receipt when it is one; `signal` fires when the extractor gives up (deadline or stop).
   */
  replicate: (digest: string, bytes: Uint8Array, signal: AbortSignal) => Promise<StorageReceipt[]>;
  logger: Logger;
  /** Unix ms; stamps `fetchedAt` and transaction expiry. */
  now: () => number;
  /** Uniform [0, 1) for back-off jitter (default `Math.random`). */
  random?: () => number;
  /** Ed25519 signer for the node's transactions (the portable one by default; the node passes OpenSSL's). */
  sign?: (message: Uint8Array, secretKey: Uint8Array) => Uint8Array;
}

/** A committed data request as the extractor needs it. */
export interface DataRequest {
  /** Hash (hex) of the `request.open` transaction. */
  id: string;
  /** Pseudonymous subject id. */
  subject: string;
  /** The subject's current X25519 public key (hex), as committed state holds it (she may have recovered). */
  subjectEncKey: string;
  /** Under the `on-consent` policy: the grantee's X25519 key (hex) named by the grant. */
  granteeEncKey?: string;
  types: DataType[];
  dataFrom?: string;
  dataTo?: string;
}

/** What happened to one requested type. */
export type ExtractionOutcome =
  | { type: DataType; status: 'put'; tx: string; digest: string; attempts: number }
  | { type: DataType; status: 'fail'; tx: string; reason: string; attempts: number }
  | {
      type: DataType;
      status: 'skipped';
      why: 'not-served' | 'duplicate' | 'stopped' | 'submit-failed' | 'overloaded';
    };

const FAIL_DETAIL: Record<string, string> = {
  PLUGIN_NOT_FOUND: 'the data source has no record of this type for the subject',
  PLUGIN_UNAVAILABLE: 'the data source was unavailable',
  PLUGIN_TIMEOUT: 'the data source did not answer in time',
  PLUGIN_BAD_RESPONSE: 'the data source answered in an unexpected form',
  PLUGIN_CONFIG_INVALID: 'the extractor plugin for this type is misconfigured',
  EXTRACTOR_SEAL_FAILED: 'the record could not be sealed to the subject key',
  EXTRACTOR_STORE_FAILED: 'the extractor could not store the sealed record',
  EXTRACTOR_REPLICATION_FAILED: 'the sealed record could not be stored on enough validators',
};

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;
const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
const DONE_MEMORY = 10_000;

/** Who a record's data key is wrapped to: always the subject, and the grantee under `on-consent`. */
interface RecipientKeys {
  subject: Uint8Array;
  grantee?: Uint8Array;
}

function badRequest(why: string): DatagrantError {
  return new DatagrantError('EXTRACTOR_BAD_REQUEST', `data request ${why}`);
}

/** Rendezvous score of one extractor key for a (request, type). */
function assignmentScore(requestId: string, type: DataType, key: string): string {
  return sha256Hex(new TextEncoder().encode(`datagrant/assign/v1|${requestId}|${type}|${key}`));
}

/**
 * All extractor keys serving a type, ordered by rendezvous hashing for this (request, type): the
 * first is the assigned extractor, the next ones are the fallbacks in order. Deterministic on
 * every node; removing one key only moves the pairs that key had.
 */
export function rankExtractors(requestId: string, type: DataType, servingKeys: readonly string[]): string[] {
  const unique = [...new Set(servingKeys)];
  const scored = unique.map((key) => ({ key, score: assignmentScore(requestId, type, key) }));
  scored.sort((a, b) => (a.score < b.score ? 1 : a.score > b.score ? -1 : a.key < b.key ? -1 : 1));
  return scored.map((s) => s.key);
}

/** The extractor key (hex) that should serve a (request, type); `EXTRACTOR_NONE_SERVING` when none serves it. */
export function assignedExtractor(requestId: string, type: DataType, servingKeys: readonly string[]): string {
  const first = rankExtractors(requestId, type, servingKeys)[0];
  if (first === undefined) throw new DatagrantError('EXTRACTOR_NONE_SERVING', `no extractor serves ${type}`);
  return first;
}

/** Runs `work` with a deadline; rejects with `error()` when it passes. */
async function withDeadline<T>(work: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A promise that rejects with the signal's reason once it aborts; `dispose` removes the listener. */
function rejectOnAbort(signal: AbortSignal): { promise: Promise<never>; dispose: () => void } {
  let onAbort = () => {};
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}

/** The extractor role. Long-lived: `start()`, then `handleRequest` per assigned request, then `stop()`. */
export class Extractor {
  readonly #options: Required<Omit<ExtractorOptions, 'nodeKey'>> & { nodeKey: SigningKeyPair };
  readonly #modules: ExtractorModules;
  readonly #log: Logger;
  readonly #byType = new Map<DataType, DataSource>();
  readonly #signer: string;
  readonly #inflight = new Map<string, Promise<ExtractionOutcome>>();
  readonly #done = new Map<string, true>();
  // Every abortable wait (plugin attempt, back-off, queue slot) registers here, so stop() cuts them all.
  readonly #active = new Set<AbortController>();
  readonly #queue: (() => void)[] = [];
  #running = 0;
  #started = false;

  /** Checks the options; `EXTRACTOR_CONFIG_INVALID` naming the bad one. */
  constructor(options: ExtractorOptions, modules: ExtractorModules) {
    const bad = (field: string, why: string) =>
      new DatagrantError('EXTRACTOR_CONFIG_INVALID', `extractor ${field} ${why}`, { field });
    const positive = (field: keyof ExtractorOptions, value: number, min: number) => {
      if (!Number.isInteger(value) || value < min) throw bad(field, `must be an integer >= ${min}`);
    };
    if (!CHAIN_RE.test(options.chain)) throw bad('chain', 'must be a chain id');
    if (options.nodeKey.publicKey.length !== 32 || options.nodeKey.secretKey.length !== 32) {
      throw bad('nodeKey', 'must be a raw Ed25519 key pair');
    }
    const merged = {
      ...options,
      submitTimeoutMs: options.submitTimeoutMs ?? options.timeoutMs,
      replicateTimeoutMs: options.replicateTimeoutMs ?? options.submitTimeoutMs ?? options.timeoutMs,
      concurrency: options.concurrency ?? DEFAULT_EXTRACTOR_OPTIONS.concurrency,
      maxJobs: options.maxJobs ?? DEFAULT_EXTRACTOR_OPTIONS.maxJobs,
      txTtlMs: options.txTtlMs ?? DEFAULT_TX_TTL_MS,
    };
    positive('timeoutMs', merged.timeoutMs, 1);
    positive('retries', merged.retries, 0);
    positive('backoffMs', merged.backoffMs, 0);
    positive('maxBackoffMs', merged.maxBackoffMs, merged.backoffMs);
    positive('submitTimeoutMs', merged.submitTimeoutMs, 1);
    positive('replicateTimeoutMs', merged.replicateTimeoutMs, 1);
    positive('concurrency', merged.concurrency, 1);
    positive('maxJobs', merged.maxJobs, 1);
    positive('txTtlMs', merged.txTtlMs, 1000);
    this.#options = merged;
    this.#modules = modules;
    this.#log = modules.logger.child({ module: 'extractor' });
    this.#signer = bytesToHex(options.nodeKey.publicKey);
    const names = new Set<string>();
    for (const source of modules.sources) {
      if (names.has(source.name)) throw bad('sources', `has two sources named ${source.name}`);
      names.add(source.name);
      for (const type of source.dataTypes) if (!this.#byType.has(type)) this.#byType.set(type, source);
    }
  }

  /** Data types this extractor serves (it announces them; the node routes requests by them). */
  get dataTypes(): DataType[] {
    return DATA_TYPES.filter((t) => this.#byType.has(t));
  }

  /** True when one of the sources serves `type`. */
  serves(type: DataType): boolean {
    return this.#byType.has(type);
  }

  /** The hex Ed25519 public key this extractor signs with. */
  get signer(): string {
    return this.#signer;
  }

  /** Accepts requests from now on. */
  async start(): Promise<void> {
    this.#started = true;
  }

  /** Stops accepting requests, aborts in-flight fetches and waits until every job has settled. */
  async stop(): Promise<void> {
    this.#started = false;
    for (const controller of this.#active)
      controller.abort(pluginError('PLUGIN_ABORTED', 'extractor stopping'));
    for (const wake of this.#queue.splice(0)) wake();
    await Promise.allSettled([...this.#inflight.values()]);
  }

  /** Health of every source, by name. */
  async health(): Promise<Record<string, { ok: boolean; detail?: string }>> {
    const entries = await Promise.all(
      this.#modules.sources.map(async (s) => {
        try {
          return [s.name, await s.health()] as const;
        } catch {
          return [s.name, { ok: false, detail: 'health check threw' }] as const;
        }
      }),
    );
    return Object.fromEntries(entries);
  }

  /**
   * Handles a committed request: every requested type this extractor serves ends in a submitted
   * `record.put` or `record.fail`, unless the extractor stops first. Concurrent calls for the same
   * (request, type) share one job; a (request, type) already submitted is skipped — unless
   * `options.retry` is set, for a caller that saw that the transaction submitted before never
   * committed (dropped, expired, refused) and is no longer pending: then it is extracted again.
   * Resolves with one outcome per requested type; rejects only on a malformed request
   * (`EXTRACTOR_BAD_REQUEST`).
   */
  async handleRequest(request: DataRequest, options: { retry?: boolean } = {}): Promise<ExtractionOutcome[]> {
    if (!HASH_RE.test(request.id)) throw badRequest('id must be a transaction hash');
    if (!SUBJECT_ID_RE.test(request.subject)) throw badRequest('subject must be a subject id');
    let subjectKey: Uint8Array;
    let granteeKey: Uint8Array | undefined;
    try {
      subjectKey = fromHex(request.subjectEncKey, 'subjectEncKey', 32);
      if (request.granteeEncKey !== undefined)
        granteeKey = fromHex(request.granteeEncKey, 'granteeEncKey', 32);
    } catch {
      throw badRequest('subjectEncKey and granteeEncKey must be hex X25519 public keys');
    }
    if (
      !Array.isArray(request.types) ||
      request.types.some((t) => !(DATA_TYPES as readonly string[]).includes(t))
    ) {
      throw badRequest('types must be data types');
    }
    for (const field of ['dataFrom', 'dataTo'] as const) {
      const v = request[field];
      if (v !== undefined && !DAY_RE.test(v)) throw badRequest(`${field} must be YYYY-MM-DD`);
    }
    const types = [...new Set(request.types)];
    const keys: RecipientKeys = { subject: subjectKey, ...(granteeKey ? { grantee: granteeKey } : {}) };
    return Promise.all(types.map((type) => this.#handleType(request, keys, type, options.retry === true)));
  }

  #handleType(
    request: DataRequest,
    keys: RecipientKeys,
    type: DataType,
    retry: boolean,
  ): Promise<ExtractionOutcome> {
    const source = this.#byType.get(type);
    if (source === undefined) return Promise.resolve({ type, status: 'skipped', why: 'not-served' });
    const key = `${request.id}/${type}`;
    const running = this.#inflight.get(key);
    if (running !== undefined) return running;
    if (this.#done.has(key)) {
      if (!retry) return Promise.resolve({ type, status: 'skipped', why: 'duplicate' });
      this.#done.delete(key);
    }
    if (!this.#started) return Promise.resolve({ type, status: 'skipped', why: 'stopped' });
    if (this.#inflight.size >= this.#options.maxJobs) {
      this.#log.warn(
        { code: 'EXTRACTOR_OVERLOADED', request: request.id, type, jobs: this.#inflight.size },
        'extractor job refused: too many jobs held',
      );
      return Promise.resolve({ type, status: 'skipped', why: 'overloaded' });
    }
    const job = this.#extract(request, keys, type, source).finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, job);
    return job.then((outcome) => {
      if (outcome.status === 'put' || outcome.status === 'fail') {
        this.#done.set(key, true);
        if (this.#done.size > DONE_MEMORY) this.#done.delete(this.#done.keys().next().value as string);
      }
      return outcome;
    });
  }

  async #extract(
    request: DataRequest,
    keys: RecipientKeys,
    type: DataType,
    source: DataSource,
  ): Promise<ExtractionOutcome> {
    const log = this.#log.child({ request: request.id, type, subject: request.subject, source: source.name });
    const started = this.#modules.now();
    let attempts = 0;
    let result: FetchResult | undefined;
    let failure: DatagrantError | undefined;
    try {
      await this.#acquire();
      try {
        for (;;) {
          attempts++;
          try {
            result = await this.#attempt(request, type, source);
            break;
          } catch (err) {
            const error = err as DatagrantError;
            if (error.code === 'PLUGIN_ABORTED') throw error;
            log.debug(
              { code: error.code, attempt: attempts, message: error.message },
              'plugin attempt failed',
            );
            if (RETRYABLE_PLUGIN_CODES.has(error.code) && attempts <= this.#options.retries) {
              await this.#sleep(this.#backoff(attempts));
              continue;
            }
            failure = error;
            break;
          }
        }
      } finally {
        this.#release();
      }
    } catch (err) {
      if (isDatagrantError(err, 'PLUGIN_ABORTED')) {
        log.info({ attempts }, 'extraction abandoned: extractor stopping');
        return { type, status: 'skipped', why: 'stopped' };
      }
      throw err;
    }

    if (result !== undefined) {
      const put = await this.#put(request, keys, type, source, result, attempts, log);
      if (!(put instanceof DatagrantError)) {
        log.info({ attempts, ms: this.#modules.now() - started }, 'record extracted');
        return put;
      }
      failure = put;
    }
    return this.#fail(request, type, source, failure!, attempts, log);
  }

  async #attempt(request: DataRequest, type: DataType, source: DataSource): Promise<FetchResult> {
    const controller = new AbortController();
    this.#active.add(controller);
    if (!this.#started) controller.abort(pluginError('PLUGIN_ABORTED', 'extractor stopping'));
    const timer = setTimeout(
      () =>
        controller.abort(
          pluginError('PLUGIN_TIMEOUT', `${source.name} did not answer within ${this.#options.timeoutMs} ms`),
        ),
      this.#options.timeoutMs,
    );
    const aborted = rejectOnAbort(controller.signal);
    try {
      const query = {
        subject: request.subject,
        type,
        ...(request.dataFrom === undefined ? {} : { dataFrom: request.dataFrom }),
        ...(request.dataTo === undefined ? {} : { dataTo: request.dataTo }),
      };
      const fetching = Promise.resolve().then(() =>
        source.fetch(query, { signal: controller.signal, logger: this.#log.child({ plugin: source.name }) }),
      );
      // Whatever the plugin does, the attempt ends when the signal fires.
      const result = await Promise.race([fetching, aborted.promise]);
      return this.#checkResult(result, source, query);
    } catch (err) {
      if (controller.signal.aborted && isDatagrantError(controller.signal.reason))
        throw controller.signal.reason;
      if (isDatagrantError(err) && err.code.startsWith('PLUGIN_')) throw err;
      throw pluginError('PLUGIN_BAD_RESPONSE', `${source.name} failed unexpectedly`);
    } finally {
      clearTimeout(timer);
      aborted.dispose();
      this.#active.delete(controller);
    }
  }

  #checkResult(result: FetchResult, source: DataSource, query: DataQuery): FetchResult {
    const bad = (why: string) => pluginError('PLUGIN_BAD_RESPONSE', `${source.name} returned ${why}`);
    if (result === null || typeof result !== 'object') throw bad('no result');
    if (!(result.raw instanceof Uint8Array)) throw bad('no raw response bytes');
    if (result.fields === null || typeof result.fields !== 'object' || Array.isArray(result.fields))
      throw bad('no fields');
    const fields: Record<string, FieldValue> = {};
    for (const [name, value] of Object.entries(result.fields)) {
      if (!FIELD_NAME_PATTERN.test(name)) throw bad('a field with an invalid name');
      const v = toFieldValue(value);
      if (v === undefined) throw bad(`a non-scalar value for field ${name}`);
      fields[name] = v;
    }
    const sourceText =
      typeof result.source === 'string' && result.source.length > 0 ? result.source : source.name;
    const checked: FetchResult = { fields, source: sourceText.slice(0, 200), raw: result.raw };
    if (result.statement !== undefined) {
      let signed: SignedSourceStatement;
      try {
        signed = parseSignedSourceStatement(result.statement);
      } catch {
        throw bad('a malformed source statement');
      }
      const s = signed.statement;
      if (
        s.subject !== query.subject ||
        s.type !== query.type ||
        s.from !== query.dataFrom ||
        s.to !== query.dataTo ||
        s.digest !== sha256Hex(result.raw)
      )
        throw bad('a source statement about another answer');
      checked.statement = signed;
    }
    return checked;
  }

  async #put(
    request: DataRequest,
    keys: RecipientKeys,
    type: DataType,
    source: DataSource,
    result: FetchResult,
    attempts: number,
    log: Logger,
  ): Promise<ExtractionOutcome | DatagrantError> {
    const fetchedAt = this.#modules.now();
    const context = recordContext(this.#options.chain, request.id, type);
    let sealed: SealedRecord;
    try {
      sealed = sealRecord(
        {
          type,
          subject: request.subject,
          fields: result.fields,
          source: result.source,
          fetchedAt,
          sourceDigest: sha256Hex(result.raw),
          ...(result.statement === undefined
            ? {}
            : { statement: result.statement, content: toBase64url(result.raw) }),
        },
        keys.subject,
        context,
        keys.grantee,
      );
    } catch (err) {
      const code = isDatagrantError(err, 'CANONICAL_UNSUPPORTED')
        ? 'PLUGIN_BAD_RESPONSE'
        : 'EXTRACTOR_SEAL_FAILED';
      return new DatagrantError(code, `${source.name}: record could not be sealed`);
    }
    if (sealed.size > MAX_PAYLOAD_BYTES) {
      return pluginError('PLUGIN_BAD_RESPONSE', `${source.name}: record is too large`);
    }
    // A failed write (a full or failing disk, a torn write) may be transient: retried with back-off.
    for (let attempt = 1; ; attempt++) {
      try {
        await withDeadline(
          this.#modules.payloads.put(sealed.digest, sealed.ciphertext),
          this.#options.submitTimeoutMs,
          () => new DatagrantError('EXTRACTOR_STORE_FAILED', 'payload store timed out'),
        );
        break;
      } catch (err) {
        const code = (err as DatagrantError).code;
        if (attempt > this.#options.retries) {
          log.error({ code, digest: sealed.digest, attempts: attempt }, 'storing the sealed record failed');
          return new DatagrantError('EXTRACTOR_STORE_FAILED', 'payload store failed');
        }
        log.warn({ code, digest: sealed.digest, attempt }, 'storing the sealed record failed; retrying');
        try {
          await this.#sleep(this.#backoff(attempt));
        } catch {
          return { type, status: 'skipped', why: 'stopped' };
        }
      }
    }
    // No record.put without f + 1 validators holding the bytes: the extractor's disk alone is not enough.
    const receipts = await this.#replicate(sealed.digest, sealed.ciphertext, log);
    if (!Array.isArray(receipts)) {
      await this.#modules.payloads.delete(sealed.digest).catch(() => undefined);
      return receipts === 'stopped' ? { type, status: 'skipped', why: 'stopped' } : receipts;
    }
    const now = this.#modules.now();
    const tx = signTx(
      {
        chain: this.#options.chain,
        kind: 'record.put',
        body: {
          request: request.id,
          type,
          digest: sealed.digest,
          size: sealed.size,
          key: sealed.key,
          source: result.source,
          fetchedAt,
          sourceCommitment: sealed.sourceCommitment,
          ...(sealed.sourceStatement === undefined ? {} : { sourceStatement: sealed.sourceStatement }),
          ...(sealed.granteeKey ? { granteeKey: sealed.granteeKey } : {}),
          // The ledger refuses the record if she recovered her keys meanwhile; a rescan seals it again.
          subjectKey: bytesToHex(keys.subject),
          receipts,
        },
        expires: now + this.#options.txTtlMs,
      },
      this.#options.nodeKey.publicKey,
      this.#options.nodeKey.secretKey,
      now,
      this.#modules.sign,
    );
    const hash = txHash(tx);
    if (!(await this.#submit(tx, log))) {
      await this.#modules.payloads.delete(sealed.digest).catch(() => undefined);
      return { type, status: 'skipped', why: 'submit-failed' };
    }
    log.info(
      { tx: hash, digest: sealed.digest, size: sealed.size, holders: receipts.length },
      'record.put submitted',
    );
    return { type, status: 'put', tx: hash, digest: sealed.digest, attempts };
  }

  /**
   * Collects storage receipts for a stored ciphertext: one `replicate` attempt per try, each with
   * its deadline, retried with back-off. `'stopped'` when the extractor stops meanwhile.
   */
  async #replicate(
    digest: string,
    bytes: Uint8Array,
    log: Logger,
  ): Promise<StorageReceipt[] | DatagrantError | 'stopped'> {
    const ms = this.#options.replicateTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      if (!this.#started) return 'stopped';
      const controller = new AbortController();
      this.#active.add(controller);
      const aborted = rejectOnAbort(controller.signal);
      let code: string;
      try {
        const receipts = await withDeadline(
          Promise.race([this.#modules.replicate(digest, bytes, controller.signal), aborted.promise]),
          ms,
          () => new DatagrantError('EXTRACTOR_REPLICATION_FAILED', `storage receipts not in within ${ms} ms`),
        );
        if (!Array.isArray(receipts) || receipts.length === 0)
          throw new DatagrantError('EXTRACTOR_REPLICATION_FAILED', 'no storage receipt came back');
        return receipts.slice(0, MAX_RECEIPTS);
      } catch (err) {
        if (!this.#started) return 'stopped';
        code = isDatagrantError(err) ? err.code : 'UNKNOWN';
      } finally {
        aborted.dispose();
        if (!controller.signal.aborted)
          controller.abort(new DatagrantError('EXTRACTOR_REPLICATION_FAILED', 'attempt over'));
        this.#active.delete(controller);
      }
      log.warn({ code, attempt, digest }, 'collecting storage receipts failed');
      if (attempt > this.#options.retries)
        return new DatagrantError('EXTRACTOR_REPLICATION_FAILED', 'too few validators stored the record');
      try {
        await this.#sleep(this.#backoff(attempt));
      } catch {
        return 'stopped';
      }
    }
  }

  async #fail(
    request: DataRequest,
    type: DataType,
    source: DataSource,
    failure: DatagrantError,
    attempts: number,
    log: Logger,
  ): Promise<ExtractionOutcome> {
    const reason = FAIL_DETAIL[failure.code] === undefined ? 'PLUGIN_BAD_RESPONSE' : failure.code;
    const detail =
      `${FAIL_DETAIL[reason]} (source ${source.name}, ${attempts} attempt${attempts === 1 ? '' : 's'})`.slice(
        0,
        300,
      );
    const now = this.#modules.now();
    const tx = signTx(
      {
        chain: this.#options.chain,
        kind: 'record.fail',
        body: { request: request.id, type, reason, detail },
        expires: now + this.#options.txTtlMs,
      },
      this.#options.nodeKey.publicKey,
      this.#options.nodeKey.secretKey,
      now,
      this.#modules.sign,
    );
    const hash = txHash(tx);
    if (!(await this.#submit(tx, log))) return { type, status: 'skipped', why: 'submit-failed' };
    log.warn({ tx: hash, reason, attempts }, 'record.fail submitted');
    return { type, status: 'fail', tx: hash, reason, attempts };
  }

  async #submit(tx: AnyTx, log: Logger): Promise<boolean> {
    try {
      await withDeadline(
        this.#modules.submit(tx),
        this.#options.submitTimeoutMs,
        () => new DatagrantError('EXTRACTOR_SUBMIT_TIMEOUT', 'submit timed out'),
      );
      return true;
    } catch (err) {
      log.error(
        { kind: tx.kind, code: isDatagrantError(err) ? err.code : 'UNKNOWN' },
        'submitting the transaction failed',
      );
      return false;
    }
  }

  #backoff(attempt: number): number {
    const base = Math.min(this.#options.maxBackoffMs, this.#options.backoffMs * 2 ** (attempt - 1));
    const random = this.#modules.random ?? Math.random;
    // "Equal jitter": at least half the back-off, so retries never bunch up at zero.
    return Math.round(base / 2 + (random() * base) / 2);
  }

  async #sleep(ms: number): Promise<void> {
    if (ms <= 0) return;
    const controller = new AbortController();
    this.#active.add(controller);
    if (!this.#started) controller.abort(pluginError('PLUGIN_ABORTED', 'extractor stopping'));
    const aborted = rejectOnAbort(controller.signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
        aborted.promise,
      ]);
    } finally {
      clearTimeout(timer);
      aborted.dispose();
      this.#active.delete(controller);
    }
  }

  async #acquire(): Promise<void> {
    while (this.#running >= this.#options.concurrency) {
      if (!this.#started) throw pluginError('PLUGIN_ABORTED', 'extractor stopping');
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    }
    if (!this.#started) throw pluginError('PLUGIN_ABORTED', 'extractor stopping');
    this.#running++;
  }

  #release(): void {
    this.#running--;
    this.#queue.shift()?.();
  }
}
