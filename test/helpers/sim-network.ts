/**
 * A simulated, in-memory `Network` for deterministic tests: `SimNetwork` instances joined to one
 * `SimHub` reach each other directly, with optional delay, gossip loss (from a seeded generator),
 * partitions and an injectable scheduler, so a test can drive them from a manual clock.
 *
 * It keeps the contract of `Libp2pNetwork`: the same limits, error codes, duplicate suppression,
 * refusal of keys outside the validator set and counters. It does not relay, so `from` is always
 * the publisher.
 */
import { bytesToHex } from '../../src/common/bytes.js';
import { sha256Hex, signingPublicKey } from '../../src/common/crypto.js';
import { DatagrantError } from '../../src/common/errors.js';
import { decodeResponse, encodeErrorResponse, remoteError } from '../../src/p2p/framing.js';
import {
  copyStats,
  emptyStats,
  type MessageHandler,
  type Network,
  type NetworkStats,
  type ProtocolName,
  type RequestHandler,
  type RequestOptions,
  type Topic,
  topicSenderSets,
} from '../../src/p2p/network.js';

/** Runs `fn` after `delayMs` of (real or simulated) time; the returned function cancels it. */
export type Scheduler = (delayMs: number, fn: () => void) => () => void;

/** Options of `SimHub`. */
export interface SimHubOptions {
  /** One-way delay of every message, fixed or per link (default 0, still asynchronous). */
  delayMs?: number | ((from: string, to: string) => number);
  /** Probability in [0, 1] that one gossip copy to one peer is lost (default 0). Requests are not dropped. */
  dropRate?: number;
  /** Seed of the generator behind `dropRate` (default 1). */
  seed?: number;
  /** Timer used for delays and timeouts (default `setTimeout`). */
  schedule?: Scheduler;
  /** Clock for the duplicate window, in milliseconds (default `Date.now`). */
  now?: () => number;
}

/** A small deterministic PRNG (mulberry32) returning numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The shared medium of a set of `SimNetwork`s. */
export class SimHub {
  private readonly members = new Map<string, SimNetwork>();
  private readonly delay: (from: string, to: string) => number;
  private readonly dropRate: number;
  private readonly random: () => number;
  private groupOf: Map<string, number> | undefined;
  /** The scheduler every member uses. */
  readonly schedule: Scheduler;
  /** The clock every member uses. */
  readonly now: () => number;

  constructor(options: SimHubOptions = {}) {
    const d = options.delayMs ?? 0;
    this.delay = typeof d === 'number' ? () => d : d;
    this.dropRate = options.dropRate ?? 0;
    this.random = seededRandom(options.seed ?? 1);
    this.schedule =
      options.schedule ??
      ((ms, fn) => {
        const timer = setTimeout(fn, ms);
        return () => clearTimeout(timer);
      });
    this.now = options.now ?? Date.now;
  }

  /** Splits the members into groups (validator keys); keys in no group are cut off from everyone. */
  partition(groups: readonly (readonly string[])[]): void {
    const map = new Map<string, number>();
    groups.forEach((group, i) => {
      for (const key of group) map.set(key, i);
    });
    this.groupOf = map;
  }

  /** Removes any partition. */
  heal(): void {
    this.groupOf = undefined;
  }

  /** The running member with `key`, if any. */
  member(key: string): SimNetwork | undefined {
    const net = this.members.get(key);
    return net?.isRunning() === true ? net : undefined;
  }

  /** True when a and b are both running, not partitioned apart and each allows the other. */
  connected(a: string, b: string): boolean {
    if (a === b) return false;
    const na = this.member(a);
    const nb = this.member(b);
    if (na === undefined || nb === undefined) return false;
    if (this.groupOf !== undefined) {
      const ga = this.groupOf.get(a);
      if (ga === undefined || ga !== this.groupOf.get(b)) return false;
    }
    return na.allows(b) && nb.allows(a);
  }

  /** Keys of the running members connected to `key`. */
  neighbours(key: string): string[] {
    return [...this.members.keys()].filter((other) => this.connected(key, other));
  }

  /** @internal Registers a started network; the members it refuses, and that refuse it, count it. */
  attach(net: SimNetwork): void {
    const existing = this.members.get(net.key);
    if (existing !== undefined && existing !== net && existing.isRunning()) {
      throw new DatagrantError('P2P_BAD_CONFIG', 'a running SimNetwork with this key is already on the hub');
    }
    this.members.set(net.key, net);
    for (const other of this.members.values()) {
      if (other === net || !other.isRunning()) continue;
      if (!other.allows(net.key)) other.countRefused();
      if (!net.allows(other.key)) net.countRefused();
    }
  }

  /** @internal One-way delay from `from` to `to`. */
  delayOf(from: string, to: string): number {
    return Math.max(0, this.delay(from, to));
  }

  /** @internal Whether one gossip copy is lost. */
  lose(): boolean {
    return this.dropRate > 0 && this.random() < this.dropRate;
  }
}

/** Options of `SimNetwork` (same meanings and defaults as for `Libp2pNetwork`). */
export interface SimNetworkOptions {
  /** 32-byte Ed25519 node secret key; the network's key is its public key. */
  secretKey: Uint8Array;
  /** Validator keys (hex) this node accepts. */
  allowedKeys: readonly string[];
  /** Per topic, the only keys whose gossip is accepted on it (see `Libp2pNetworkOptions.topicSenders`). */
  topicSenders?: Partial<Record<Topic, readonly string[]>>;
  maxMessageBytes?: number;
  maxRequestBytes?: number;
  maxResponseBytes?: number;
  requestTimeoutMs?: number;
  seenTtlMs?: number;
}

/** Collaborators of `SimNetwork`. */
export interface SimNetworkModules {
  hub: SimHub;
}

const MIB = 1024 * 1024;

/** The simulated implementation of `Network` (see the module comment). */
export class SimNetwork implements Network {
  /** This node's validator key (hex). */
  readonly key: string;
  private readonly hub: SimHub;
  private allowed: Set<string>;
  private readonly senders: Map<Topic, Set<string>>;
  private readonly maxMessageBytes: number;
  private readonly maxRequestBytes: number;
  private readonly maxResponseBytes: number;
  private readonly requestTimeoutMs: number;
  private readonly seenTtlMs: number;
  private readonly subscribers = new Map<Topic, MessageHandler[]>();
  private readonly handlers = new Map<ProtocolName, RequestHandler>();
  private readonly seen = new Map<string, number>();
  private readonly pending = new Set<(err: DatagrantError) => void>();
  private readonly counters: NetworkStats = emptyStats();
  private running = false;

  constructor(options: SimNetworkOptions, modules: SimNetworkModules) {
    this.key = bytesToHex(signingPublicKey(options.secretKey));
    this.hub = modules.hub;
    this.allowed = new Set(options.allowedKeys);
    this.senders = topicSenderSets(options.topicSenders);
    this.maxMessageBytes = options.maxMessageBytes ?? MIB;
    this.maxRequestBytes = options.maxRequestBytes ?? MIB;
    this.maxResponseBytes = options.maxResponseBytes ?? 16 * MIB;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.seenTtlMs = options.seenTtlMs ?? 60_000;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.hub.attach(this);
  }

  async stop(): Promise<void> {
    this.running = false;
    const failures = [...this.pending];
    this.pending.clear();
    for (const fail of failures) fail(new DatagrantError('P2P_STREAM_ERROR', 'the network stopped'));
  }

  /** True between `start` and `stop`. */
  isRunning(): boolean {
    return this.running;
  }

  /** True when `key` is in this node's validator set. */
  allows(key: string): boolean {
    return this.allowed.has(key);
  }

  /** @internal Counts a refused connection attempt. */
  countRefused(): void {
    this.counters.refusedConnections++;
  }

  async publish(topic: Topic, data: Uint8Array): Promise<void> {
    this.requireRunning();
    if (data.length > this.maxMessageBytes) {
      throw new DatagrantError('P2P_MESSAGE_TOO_LARGE', 'message is larger than maxMessageBytes', {
        size: data.length,
        maxMessageBytes: this.maxMessageBytes,
      });
    }
    this.counters.published++;
    if (!this.markSeen(topic, data)) return;
    for (const peer of this.topicPeers(topic)) {
      if (this.hub.lose()) continue;
      const copy = data.slice();
      this.hub.schedule(this.hub.delayOf(this.key, peer), () => {
        if (!this.hub.connected(this.key, peer)) return;
        this.hub.member(peer)?.receive(topic, copy, this.key);
      });
    }
  }

  /** @internal Delivers one gossip message from neighbour `from`. */
  receive(topic: Topic, data: Uint8Array, from: string): void {
    if (!this.allowed.has(from) || this.senders.get(topic)?.has(from) === false) {
      this.counters.dropped['not-validator']++;
      return;
    }
    if (data.length > this.maxMessageBytes) {
      this.counters.dropped.oversize++;
      return;
    }
    const handlers = this.subscribers.get(topic);
    if (handlers === undefined || !this.markSeen(topic, data)) return;
    this.counters.delivered++;
    for (const handler of handlers) {
      try {
        handler(data, from);
      } catch {
        this.counters.dropped['handler-error']++;
      }
    }
  }

  subscribe(topic: Topic, handler: MessageHandler): void {
    const list = this.subscribers.get(topic);
    if (list === undefined) this.subscribers.set(topic, [handler]);
    else list.push(handler);
  }

  /** True when this node has a handler for `topic`. */
  isSubscribed(topic: Topic): boolean {
    return this.subscribers.has(topic);
  }

  handle(protocol: ProtocolName, handler: RequestHandler): void {
    this.handlers.set(protocol, handler);
  }

  async request(
    peer: string,
    protocol: ProtocolName,
    req: Uint8Array,
    opts: RequestOptions = {},
  ): Promise<Uint8Array> {
    this.requireRunning();
    this.counters.requestsSent++;
    try {
      return await this.exchange(peer, protocol, req, opts);
    } catch (err) {
      this.counters.requestsFailed++;
      throw err;
    }
  }

  peers(): string[] {
    return this.running ? this.hub.neighbours(this.key) : [];
  }

  topicPeers(topic: Topic): string[] {
    return this.peers().filter((peer) => this.hub.member(peer)?.isSubscribed(topic) === true);
  }

  listenAddresses(): string[] {
    return this.running ? [`/sim/${this.key}`] : [];
  }

  setAllowedKeys(keys: readonly string[]): void {
    this.allowed = new Set(keys);
  }

  stats(): NetworkStats {
    return copyStats(this.counters);
  }

  /** @internal Serves one request from `from`; resolves with a response body as the wire would carry it. */
  async serve(
    protocol: ProtocolName,
    req: Uint8Array,
    from: string,
  ): Promise<{ ok: true; data: Uint8Array } | { ok: false; body: Uint8Array }> {
    try {
      if (req.length > this.maxRequestBytes) {
        throw new DatagrantError('P2P_REQUEST_TOO_LARGE', 'request is larger than maxRequestBytes');
      }
      const handler = this.handlers.get(protocol);
      if (handler === undefined) throw new DatagrantError('P2P_NO_HANDLER', `no handler for ${protocol}`);
      const res = await handler(req, from);
      if (!(res instanceof Uint8Array))
        throw new DatagrantError('P2P_HANDLER_FAILED', 'handler returned no bytes');
      if (res.length > this.maxResponseBytes) {
        throw new DatagrantError('P2P_RESPONSE_TOO_LARGE', 'response is larger than maxResponseBytes');
      }
      this.counters.requestsServed++;
      return { ok: true, data: res.slice() };
    } catch (err) {
      this.counters.requestsRejected++;
      return { ok: false, body: encodeErrorResponse(err) };
    }
  }

  private exchange(
    peer: string,
    protocol: ProtocolName,
    req: Uint8Array,
    opts: RequestOptions,
  ): Promise<Uint8Array> {
    if (!this.allowed.has(peer)) {
      return Promise.reject(
        new DatagrantError('P2P_NOT_VALIDATOR', 'peer is not in the validator set', { peer }),
      );
    }
    if (req.length > this.maxRequestBytes) {
      return Promise.reject(
        new DatagrantError('P2P_REQUEST_TOO_LARGE', 'request is larger than maxRequestBytes', {
          size: req.length,
          maxRequestBytes: this.maxRequestBytes,
        }),
      );
    }
    if (opts.signal?.aborted === true) {
      return Promise.reject(new DatagrantError('P2P_ABORTED', 'request aborted', { peer }));
    }
    if (!this.hub.connected(this.key, peer)) {
      return Promise.reject(new DatagrantError('P2P_PEER_UNREACHABLE', 'peer is not connected', { peer }));
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      let settled = false;
      let cancelTimeout = (): void => undefined;
      const onAbort = (): void => fail(new DatagrantError('P2P_ABORTED', 'request aborted', { peer }));
      const finish = (): boolean => {
        if (settled) return false;
        settled = true;
        cancelTimeout();
        this.pending.delete(fail);
        opts.signal?.removeEventListener('abort', onAbort);
        return true;
      };
      function fail(err: DatagrantError): void {
        if (finish()) reject(err);
      }
      const succeed = (data: Uint8Array): void => {
        if (finish()) resolve(data);
      };
      this.pending.add(fail);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      cancelTimeout = this.hub.schedule(opts.timeoutMs ?? this.requestTimeoutMs, () =>
        fail(new DatagrantError('P2P_TIMEOUT', 'request timed out', { peer, protocol })),
      );
      const copy = req.slice();
      this.hub.schedule(this.hub.delayOf(this.key, peer), () => {
        const target = this.hub.member(peer);
        if (target === undefined || !this.hub.connected(this.key, peer)) {
          fail(new DatagrantError('P2P_STREAM_ERROR', 'the peer went away', { peer }));
          return;
        }
        void target.serve(protocol, copy, this.key).then((result) => {
          this.hub.schedule(this.hub.delayOf(peer, this.key), () => {
            if (!this.hub.connected(this.key, peer)) {
              fail(new DatagrantError('P2P_STREAM_ERROR', 'the peer went away', { peer }));
              return;
            }
            if (result.ok) {
              if (result.data.length > this.maxResponseBytes) {
                fail(
                  new DatagrantError('P2P_RESPONSE_TOO_LARGE', 'frame is larger than the limit', { peer }),
                );
              } else {
                succeed(result.data);
              }
              return;
            }
            const envelope = decodeResponse(result.body);
            if (envelope.ok) succeed(envelope.data);
            else fail(remoteError(peer, envelope.code, envelope.message));
          });
        });
      });
    });
  }

  private requireRunning(): void {
    if (!this.running) throw new DatagrantError('P2P_NOT_STARTED', 'the network is not started');
  }

  /** Records a message id; false when it was already seen within the duplicate window. */
  private markSeen(topic: Topic, data: Uint8Array): boolean {
    const now = this.hub.now();
    if (this.seen.size > 10_000) {
      for (const [id, expiry] of this.seen) if (expiry <= now) this.seen.delete(id);
    }
    const id = `${topic}:${sha256Hex(data)}`;
    const expiry = this.seen.get(id);
    if (expiry !== undefined && expiry > now) return false;
    this.seen.set(id, now + this.seenTtlMs);
    return true;
  }
}
