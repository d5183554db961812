/**
 * The replay guard of signed calls: remembers each (caller, nonce) until the end of the time
 * window its timestamp was accepted in, so a captured call is refused however often it is
 * replayed. The LevelDB guard writes every claim durably before it is granted and reloads the
 * window at start, so a restart does not reopen it. One guard serves every route of a node.
 */
import { Level } from 'level';
import { DatagrantError } from '../common/errors.js';
import { openMarkedStore, STORE_FORMAT_KEY, type StoreLocation } from '../common/store-format.js';

/** Remembers claimed keys until they expire. */
export interface ReplayGuard {
  /**
   * Claims `key` until `expiresAt` (unix ms): true the first time, false while an earlier claim of
   * the same key is unexpired. Durable before it resolves true.
   */
  claim(key: string, expiresAt: number): Promise<boolean>;
}

/** Bound on remembered keys; past it, claims are refused with API_REPLAY_GUARD_FULL until some expire. */
export const MAX_REPLAY_KEYS = 1_000_000;

/** A guard in memory: correct within one process only (tests, tools). */
export class MemoryReplayGuard implements ReplayGuard {
  protected readonly claimed = new Map<string, number>();

  constructor(protected readonly now: () => number = Date.now) {}

  async claim(key: string, expiresAt: number): Promise<boolean> {
    return this.claimNow(key, expiresAt);
  }

  /** Synchronous check-and-set, so two concurrent claims of one key cannot both win. */
  protected claimNow(key: string, expiresAt: number): boolean {
    const now = this.now();
    const old = this.claimed.get(key);
    if (old !== undefined && old > now) return false;
    if (this.claimed.size >= MAX_REPLAY_KEYS) this.prune(now);
    if (this.claimed.size >= MAX_REPLAY_KEYS)
      throw new DatagrantError('API_REPLAY_GUARD_FULL', 'too many signed calls in the window; retry later');
    this.claimed.set(key, expiresAt);
    return true;
  }

  /** Forgets expired claims; returns their keys. */
  protected prune(now: number): string[] {
    const gone: string[] = [];
    for (const [key, expiresAt] of this.claimed) {
      if (expiresAt <= now) {
        this.claimed.delete(key);
        gone.push(key);
      }
    }
    return gone;
  }

  /** Number of remembered keys. */
  get size(): number {
    return this.claimed.size;
  }
}

/** Options of `LevelReplayGuard`. */
export interface LevelReplayGuardOptions {
  /** Directory of its own LevelDB database. */
  location: string;
  /** How often expired claims are deleted from disk (default 60 s). */
  pruneEveryMs?: number;
  /** Home of the node, named in the `datagrant migrate` command of a refusal. */
  home?: string;
}

/** A guard whose claims survive restarts and crashes (synced LevelDB writes). */
export class LevelReplayGuard extends MemoryReplayGuard {
  readonly #db: Level<string, string>;
  readonly #at: StoreLocation;
  readonly #pruneEveryMs: number;
  #timer: NodeJS.Timeout | undefined;
  #pending: { type: 'put'; key: string; value: string }[] = [];
  #flushing: Promise<void> | undefined;

  constructor(options: LevelReplayGuardOptions, now: () => number = Date.now) {
    super(now);
    this.#db = new Level<string, string>(options.location, { valueEncoding: 'utf8' });
    this.#at = { kind: 'replay', path: options.location, ...(options.home ? { home: options.home } : {}) };
    this.#pruneEveryMs = options.pruneEveryMs ?? 60_000;
  }

  /**
   * Opens the database (a new one gets the format marker, any other must be in a format this code
   * reads: src/common/store-format.ts) and reloads the unexpired claims.
   */
  async start(): Promise<void> {
    await openMarkedStore<string>(this.#db, this.#at, { text: (v) => v, value: (t) => t });
    const now = this.now();
    const expired: string[] = [];
    for await (const [key, value] of this.#db.iterator()) {
      if (key === STORE_FORMAT_KEY.replay) continue;
      const expiresAt = Number(value);
      if (expiresAt > now) this.claimed.set(key, expiresAt);
      else expired.push(key);
    }
    if (expired.length > 0) await this.#db.batch(expired.map((key) => ({ type: 'del' as const, key })));
    this.#timer = setInterval(() => void this.#prune(), this.#pruneEveryMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#db.close();
  }

  override async claim(key: string, expiresAt: number): Promise<boolean> {
    if (this.#db.status !== 'open')
      throw new DatagrantError('API_NOT_READY', 'the replay guard is not open', { retryable: true });
    if (!this.claimNow(key, expiresAt)) return false;
    try {
      await this.#write(key, expiresAt);
    } catch (err) {
      // Not durable: refuse the call rather than grant a claim a restart would forget.
      this.claimed.delete(key);
      throw new DatagrantError('API_NOT_READY', `the replay guard cannot write: ${(err as Error).message}`);
    }
    return true;
  }

  /**
   * Group commit: the claims made while a synced write is being prepared share it, so signed
   * reads under load cost one fsync per batch, not one each.
   */
  #write(key: string, expiresAt: number): Promise<void> {
    this.#pending.push({ type: 'put', key, value: String(expiresAt) });
    this.#flushing ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        const batch = this.#pending;
        this.#pending = [];
        this.#flushing = undefined;
        this.#db.batch(batch, { sync: true }).then(resolve, reject);
      });
    });
    return this.#flushing;
  }

  async #prune(): Promise<void> {
    const gone = this.prune(this.now());
    if (gone.length === 0 || this.#db.status !== 'open') return;
    await this.#db.batch(gone.map((key) => ({ type: 'del' as const, key }))).catch(() => undefined);
  }
}
