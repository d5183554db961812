/** Exponential back-off with jitter for redialing peers. */

/** Options of `Backoff`. */
export interface BackoffOptions {
  /** First delay, in milliseconds. */
  minMs: number;
  /** Largest delay, in milliseconds. */
  maxMs: number;
  /** Growth per failure (default 2). */
  factor?: number;
  /** Fraction of the delay added or removed at random (default 0.2). */
  jitter?: number;
  /** Source of randomness in [0, 1) (default Math.random). */
  random?: () => number;
}

/** Delay before the next attempt: grows by `factor` after each failure up to `maxMs`, back to `minMs` on reset. */
export class Backoff {
  private readonly minMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;
  private readonly random: () => number;
  private current: number;

  constructor(options: BackoffOptions) {
    this.minMs = options.minMs;
    this.maxMs = Math.max(options.maxMs, options.minMs);
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? 0.2;
    this.random = options.random ?? Math.random;
    this.current = this.minMs;
  }

  /** The delay to wait now; the one after will be longer. */
  next(): number {
    const base = this.current;
    this.current = Math.min(this.maxMs, this.current * this.factor);
    const spread = base * this.jitter * (2 * this.random() - 1);
    return Math.max(0, Math.round(base + spread));
  }

  /** Starts again from `minMs` (after a success). */
  reset(): void {
    this.current = this.minMs;
  }
}
