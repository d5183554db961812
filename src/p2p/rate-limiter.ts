/** Per-peer token buckets: the flood guard on inbound gossip. */

/** Options of `PeerRateLimiter`. */
export interface PeerRateLimiterOptions {
  /** Tokens added per second (sustained messages per second per peer). */
  ratePerSecond: number;
  /** Bucket size (largest burst). */
  burst: number;
  /** Clock in milliseconds (default Date.now). */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Allows each peer `ratePerSecond` messages on average with bursts up to `burst`. */
export class PeerRateLimiter {
  private readonly rate: number;
  private readonly burst: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: PeerRateLimiterOptions) {
    this.rate = options.ratePerSecond;
    this.burst = Math.max(1, options.burst);
    this.now = options.now ?? Date.now;
  }

  /** Takes one token for `peer`; false when its bucket is empty. */
  take(peer: string): boolean {
    const now = this.now();
    let bucket = this.buckets.get(peer);
    if (bucket === undefined) {
      bucket = { tokens: this.burst, at: now };
      this.buckets.set(peer, bucket);
    }
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) * this.rate) / 1000);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Forgets a peer (on disconnect), so the map stays bounded by the connected set. */
  forget(peer: string): void {
    this.buckets.delete(peer);
  }
}
