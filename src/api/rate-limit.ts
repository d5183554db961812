/**
 * Request rate limits of the HTTP API: token buckets per client IP (loopback gets its own, higher
 * budget but is not exempt) and per institution. Over the limit a request gets a coded 429
 * (`API_RATE_LIMITED`) with `Retry-After`. An institution's budget is spent only by requests to
 * signed routes that pass authentication (a 401 gives its token back), so nobody can exhaust a
 * bank's budget by forging its header.
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SIGNED_CALL_HEADERS } from '../common/http-signature.js';

/** One token bucket's shape: sustained rate and largest burst. */
export interface BucketLimit {
  ratePerSecond: number;
  burst: number;
}

/** Limits of the API. */
export interface RateLimitOptions {
  /** Per client IP (non-loopback). */
  perIp: BucketLimit;
  /** Per loopback client IP (local tools, tests, benchmarks). */
  loopback: BucketLimit;
  /** Per institution, on signed routes. */
  perInstitution: BucketLimit;
  /** Signed routes as `METHOD /route/:pattern`; a caller's (institution's or subject's) budget applies to these. */
  signedRoutes: readonly string[];
  /** Most keys tracked per bucket family; the least recently seen are forgotten first. */
  maxTracked: number;
}

/** Generous defaults: ordinary clients never meet them; floods do. */
export const DEFAULT_RATE_LIMIT: RateLimitOptions = {
  perIp: { ratePerSecond: 500, burst: 1000 },
  loopback: { ratePerSecond: 20_000, burst: 40_000 },
  perInstitution: { ratePerSecond: 1000, burst: 2000 },
  signedRoutes: [
    'POST /v1/requests',
    'GET /v1/requests/:id',
    'GET /v1/requests/:id/events',
    'GET /v1/requests/:id/document',
    'GET /v1/requests/:id/bundle',
    'GET /v1/subjects/:id/requests',
    'GET /v1/subjects/:id/audit',
  ],
  maxTracked: 10_000,
};

interface Bucket {
  tokens: number;
  at: number;
}

/** Token buckets by key, bounded in number (least recently used evicted). */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: BucketLimit,
    private readonly maxTracked: number,
    private readonly now: () => number = Date.now,
  ) {}

  private bucket(key: string): Bucket {
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.limit.burst, at: now };
      if (this.buckets.size >= this.maxTracked)
        this.buckets.delete(this.buckets.keys().next().value as string);
    } else {
      this.buckets.delete(key);
      bucket.tokens = Math.min(
        this.limit.burst,
        bucket.tokens + (Math.max(0, now - bucket.at) * this.limit.ratePerSecond) / 1000,
      );
      bucket.at = now;
    }
    this.buckets.set(key, bucket);
    return bucket;
  }

  /** Takes one token for `key`: 0 when granted, else the milliseconds until one is available. */
  take(key: string): number {
    const bucket = this.bucket(key);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    const rate = this.limit.ratePerSecond;
    return rate > 0 ? Math.ceil(((1 - bucket.tokens) * 1000) / rate) : 3_600_000;
  }

  /** Gives one token back (a request that turned out not to count). */
  refund(key: string): void {
    const bucket = this.buckets.get(key);
    if (bucket) bucket.tokens = Math.min(this.limit.burst, bucket.tokens + 1);
  }

  /** Keys tracked now. */
  get size(): number {
    return this.buckets.size;
  }
}

/** True for 127.0.0.0/8 and ::1, also IPv4-mapped. */
export function isLoopback(ip: string): boolean {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  return v4.startsWith('127.') || ip === '::1';
}

/** The signed-call header naming the caller (common/http-signature `SIGNED_CALL_HEADERS.caller`). */
const CALLER_HEADER = SIGNED_CALL_HEADERS.caller;
const CALLER = /^(?:institution|subject):[a-z0-9][a-z0-9-]{2,63}$/;
const CHARGED = Symbol('rate-limit-institution');

type Charged = FastifyRequest & { [CHARGED]?: string };

function refuse(reply: FastifyReply, waitMs: number, what: string): FastifyReply {
  return reply
    .status(429)
    .header('retry-after', String(Math.max(1, Math.ceil(waitMs / 1000))))
    .send({
      error: { code: 'API_RATE_LIMITED', message: `too many requests from this ${what}; retry later` },
    });
}

/** Installs the limits on `app` (before any route is registered). */
export function installRateLimit(
  app: FastifyInstance,
  options: Partial<RateLimitOptions> = {},
  now: () => number = Date.now,
): void {
  const d = DEFAULT_RATE_LIMIT;
  const o: RateLimitOptions = {
    perIp: options.perIp ?? d.perIp,
    loopback: options.loopback ?? d.loopback,
    perInstitution: options.perInstitution ?? d.perInstitution,
    signedRoutes: options.signedRoutes ?? d.signedRoutes,
    maxTracked: options.maxTracked ?? d.maxTracked,
  };
  const byIp = new TokenBuckets(o.perIp, o.maxTracked, now);
  const byLoopback = new TokenBuckets(o.loopback, 1024, now);
  const byInstitution = new TokenBuckets(o.perInstitution, o.maxTracked, now);
  const signed = new Set(o.signedRoutes);

  app.addHook('onRequest', async (request, reply) => {
    const ip = request.ip ?? 'unknown';
    const ipWait = (isLoopback(ip) ? byLoopback : byIp).take(ip);
    if (ipWait > 0) return refuse(reply, ipWait, 'address');
    const institution = request.headers[CALLER_HEADER];
    if (
      typeof institution === 'string' &&
      CALLER.test(institution) &&
      signed.has(`${request.method} ${request.routeOptions.url}`)
    ) {
      const wait = byInstitution.take(institution);
      if (wait > 0) return refuse(reply, wait, 'institution');
      (request as Charged)[CHARGED] = institution;
    }
    return undefined;
  });
  app.addHook('onResponse', async (request, reply) => {
    const charged = (request as Charged)[CHARGED];
    if (charged !== undefined && reply.statusCode === 401) byInstitution.refund(charged);
  });
}
