/**
 * The contract between the node and its transport. Consensus, mempool, platform and extractor
 * talk to peers only through `Network`; no libp2p type crosses this seam, so the same code runs
 * over real libp2p (`Libp2pNetwork`) or the in-memory `SimNetwork`.
 */

/** Gossip topics: transactions, data requests (the patent's multicast) and consensus messages. */
export const TOPICS = ['txs', 'requests', 'consensus'] as const;

/** One of TOPICS. */
export type Topic = (typeof TOPICS)[number];

/**
 * Request-response protocols: block sync, the transactions of a proposal by hash (for a validator
 * that did not get them by gossip), a block body by hash (for a new primary re-proposing a block it
 * never saw), payload fetch by digest, and payload store (an extractor hands
 * a validator a ciphertext to hold; the answer is the validator's signed storage receipt).
 */
export const PROTOCOL_NAMES = ['sync', 'txs', 'block', 'payload', 'store'] as const;

/** One of PROTOCOL_NAMES. */
export type ProtocolName = (typeof PROTOCOL_NAMES)[number];

/**
 * Receives one gossip message. `from` is the validator key (Ed25519 public key, lower-case hex)
 * of the neighbour that delivered it. Gossip carries no transport signature, so `from` is not
 * necessarily the author: anything that matters must carry its own application signature.
 */
export type MessageHandler = (data: Uint8Array, from: string) => void;

/**
 * Answers one request from validator `from`. A thrown error becomes an error response (its
 * `code` is passed on when it is a DatagrantError); it never crashes the node.
 */
export type RequestHandler = (req: Uint8Array, from: string) => Promise<Uint8Array>;

/** Per-call options of `Network.request`. */
export interface RequestOptions {
  /** Cancels the request; it then rejects with `P2P_ABORTED`. */
  signal?: AbortSignal;
  /** Overrides the network's default request timeout; on expiry the request rejects with `P2P_TIMEOUT`. */
  timeoutMs?: number;
}

/**
 * Why an inbound gossip message was not delivered to the local handlers (`not-validator`: the
 * neighbour may not connect, or may not send on that topic).
 */
export const DROP_REASONS = ['oversize', 'not-validator', 'rate-limited', 'handler-error'] as const;

/** One of DROP_REASONS (`handler-error` counts messages a local handler threw on). */
export type DropReason = (typeof DROP_REASONS)[number];

/** Counters a network keeps since it was created; every field only grows. */
export interface NetworkStats {
  /** Messages handed to `publish`. */
  published: number;
  /** Inbound gossip messages delivered to local handlers. */
  delivered: number;
  /** Inbound gossip messages dropped, by reason. */
  dropped: Record<DropReason, number>;
  /** Connections refused because the peer is not in the validator set. */
  refusedConnections: number;
  /** Outbound requests: sent, and those that ended in an error of any kind. */
  requestsSent: number;
  requestsFailed: number;
  /** Inbound requests answered with a success response. */
  requestsServed: number;
  /** Inbound requests answered with an error response (handler error, no handler, too large). */
  requestsRejected: number;
}

/** Per-topic sender restrictions as sets (topics without one accept every allowed key). */
export function topicSenderSets(
  senders: Partial<Record<Topic, readonly string[]>> | undefined,
): Map<Topic, Set<string>> {
  const out = new Map<Topic, Set<string>>();
  for (const [topic, keys] of Object.entries(senders ?? {}) as [Topic, readonly string[]][])
    out.set(topic, new Set(keys));
  return out;
}

/** Stats with every counter at zero. */
export function emptyStats(): NetworkStats {
  return {
    published: 0,
    delivered: 0,
    dropped: { oversize: 0, 'not-validator': 0, 'rate-limited': 0, 'handler-error': 0 },
    refusedConnections: 0,
    requestsSent: 0,
    requestsFailed: 0,
    requestsServed: 0,
    requestsRejected: 0,
  };
}

/** A deep copy of stats, so callers can keep a snapshot. */
export function copyStats(stats: NetworkStats): NetworkStats {
  return { ...stats, dropped: { ...stats.dropped } };
}

/**
 * Error codes raised by `Network` implementations (all as DatagrantError):
 * - `P2P_NOT_STARTED`: publish or request before `start()` or after `stop()`.
 * - `P2P_MESSAGE_TOO_LARGE`: publish of more than `maxMessageBytes`.
 * - `P2P_REQUEST_TOO_LARGE` / `P2P_RESPONSE_TOO_LARGE`: a request or response over its limit.
 * - `P2P_NOT_VALIDATOR`: a request addressed to a key outside the validator set.
 * - `P2P_PEER_UNREACHABLE`: no connection could be made to the peer.
 * - `P2P_TIMEOUT` / `P2P_ABORTED`: the request timed out or its signal fired.
 * - `P2P_REMOTE_ERROR`: the peer answered with an error; `meta.remoteCode` holds its code
 *   (`P2P_NO_HANDLER` when it serves no handler for the protocol, `P2P_HANDLER_FAILED` for
 *   an error without a code).
 * - `P2P_STREAM_ERROR`: the stream broke mid-request (the peer went away or reset it).
 * - `P2P_PROTOCOL_ERROR`: the peer broke the framing.
 * - `P2P_BAD_CONFIG`: invalid options, raised by constructors and `start`.
 * - `P2P_START_FAILED`: libp2p could not start (e.g. the listen port is taken).
 */
export const P2P_ERROR_CODES = [
  'P2P_NOT_STARTED',
  'P2P_MESSAGE_TOO_LARGE',
  'P2P_REQUEST_TOO_LARGE',
  'P2P_RESPONSE_TOO_LARGE',
  'P2P_NOT_VALIDATOR',
  'P2P_PEER_UNREACHABLE',
  'P2P_TIMEOUT',
  'P2P_ABORTED',
  'P2P_REMOTE_ERROR',
  'P2P_NO_HANDLER',
  'P2P_HANDLER_FAILED',
  'P2P_STREAM_ERROR',
  'P2P_PROTOCOL_ERROR',
  'P2P_BAD_CONFIG',
  'P2P_START_FAILED',
] as const;

/** The peer-to-peer transport of a validator node. */
export interface Network {
  /** Starts listening, dials the bootstrap peers and joins the subscribed topics. */
  start(): Promise<void>;
  /** Closes every connection and stops all timers; pending requests reject. */
  stop(): Promise<void>;
  /**
   * Gossips `data` on `topic` to the other validators. Best effort: delivery and order are not
   * guaranteed, and publishing with no peer subscribed returns quietly. Identical bytes published
   * again on the same topic within the duplicate window are not sent twice. Throws only
   * `P2P_MESSAGE_TOO_LARGE` (over `maxMessageBytes`) and `P2P_NOT_STARTED`.
   */
  publish(topic: Topic, data: Uint8Array): Promise<void>;
  /** Adds a handler for `topic` (may be called before or after `start`). Not called for own messages. */
  subscribe(topic: Topic, handler: MessageHandler): void;
  /** Serves `protocol` with `handler` (one per protocol; a later call replaces it). */
  handle(protocol: ProtocolName, handler: RequestHandler): void;
  /** Sends one request to validator `peer` (key hex) and resolves with its response. */
  request(peer: string, protocol: ProtocolName, req: Uint8Array, opts?: RequestOptions): Promise<Uint8Array>;
  /** Keys of the validators currently connected. */
  peers(): string[];
  /** Keys of the connected validators known to be subscribed to `topic`. */
  topicPeers(topic: Topic): string[];
  /** Addresses this node listens on, as strings (multiaddrs for libp2p). */
  listenAddresses(): string[];
  /**
   * Replaces the members admitted (a validator-set change), and, when given, who may send on each
   * topic; peers no longer admitted are disconnected.
   */
  setAllowedKeys(keys: readonly string[], topicSenders?: Partial<Record<Topic, readonly string[]>>): void;
  /** Counters for monitoring and tests. */
  stats(): NetworkStats;
}
