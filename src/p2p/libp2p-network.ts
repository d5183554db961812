/**
 * The real transport: libp2p over TCP with Noise and Yamux, identify, gossipsub for the three
 * topics and a length-prefixed single-request/single-response protocol per `ProtocolName`.
 *
 * Only validators may connect: the connection gater refuses any peer whose Ed25519 key is not in
 * `allowedKeys`, and the topic validator drops (and counts) gossip from anyone else, gossip over
 * `maxMessageBytes`, and peers over their rate. Gossip is unsigned at the transport (the
 * application signs what matters) and deduplicated by content hash.
 */
import { createHash } from 'node:crypto';
import { type GossipsubEvents, type GossipsubMessage, gossipsub } from '@chainsafe/libp2p-gossipsub';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { type Identify, identify } from '@libp2p/identify';
import {
  type IncomingStreamData,
  type Libp2p,
  type Message,
  type PeerId,
  type PubSub,
  type Stream,
  StrictNoSign,
  TopicValidatorResult,
} from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { bytesToHex } from '../common/bytes.js';
import { signingPublicKey } from '../common/crypto.js';
import { DatagrantError, isDatagrantError } from '../common/errors.js';
import { type Logger, silentLogger } from '../common/logger.js';
import { Backoff } from './backoff.js';
import {
  decodeResponse,
  encodeErrorResponse,
  encodeFrame,
  encodeOkResponse,
  readFrame,
  remoteError,
} from './framing.js';
import {
  copyStats,
  emptyStats,
  type MessageHandler,
  type Network,
  type NetworkStats,
  PROTOCOL_NAMES,
  type ProtocolName,
  type RequestHandler,
  type RequestOptions,
  TOPICS,
  type Topic,
  topicSenderSets,
} from './network.js';
import { libp2pPrivateKey, peerIdFromValidatorKey } from './peer-identity.js';
import { PeerRateLimiter } from './rate-limiter.js';

/** Options of `Libp2pNetwork`; sizes in bytes, times in milliseconds. */
export interface Libp2pNetworkOptions {
  /** The validator's 32-byte Ed25519 node secret key; the libp2p peer id is derived from it. */
  secretKey: Uint8Array;
  /** Multiaddrs to listen on, e.g. `/ip4/127.0.0.1/tcp/0`. */
  listen: string[];
  /**
   * Multiaddrs this node tells its peers to dial (default: the listen addresses), e.g. its
   * public address when it listens on `0.0.0.0` or behind a port mapping.
   */
  announce?: string[];
  /** Multiaddrs ending in `/p2p/<peerId>` (see `bootstrapAddress`), redialed while not connected. Own address is skipped. */
  bootstrap?: string[];
  /** Node keys (lower-case hex) allowed to connect: validators and gateways admitted by the chain. */
  allowedKeys: readonly string[];
  /**
   * Per topic, the only keys whose gossip is accepted on it (default: every allowed key). Gateways
   * connect, sync and relay transactions but never vote, so only validators send on `consensus`.
   */
  topicSenders?: Partial<Record<Topic, readonly string[]>>;
  /** Largest gossip message (default 1 MiB). Larger inbound messages are dropped and counted. */
  maxMessageBytes?: number;
  /** Largest request body (default 1 MiB). */
  maxRequestBytes?: number;
  /** Largest response body (default 16 MiB). */
  maxResponseBytes?: number;
  /** Default timeout of `request` (default 10 s). */
  requestTimeoutMs?: number;
  /** How long an inbound request may take to read and answer before its stream is reset (default 30 s). */
  handlerTimeoutMs?: number;
  /** Gossipsub heartbeat (default 700 ms); tests use about 100 ms so meshes form fast. */
  heartbeatIntervalMs?: number;
  /** Window in which identical bytes on a topic count as a duplicate (default 60 s). */
  seenTtlMs?: number;
  /** Gossipsub mesh degree D (default 4; Dlo = D - 1, Dhi = 2D), suited to small validator sets. */
  meshDegree?: number;
  /**
   * Whether received gossip is relayed at once to mesh peers (default true). In a validator set
   * where every validator is connected to every other, publishing already reaches all of them, so
   * eager relaying only sends duplicates; with `false` nothing is relayed eagerly (no mesh) and a
   * peer that missed a message gets it through lazy gossip (IHAVE/IWANT) at the next heartbeat.
   */
  relay?: boolean;
  /** Per-peer outbound gossip queue bound (default 16 MiB); beyond it messages to that peer are dropped. */
  maxOutboundQueueBytes?: number;
  /** Inbound gossip flood guard per peer: sustained messages per second and burst (default 5000 and 10000). */
  rateLimit?: { perSecond: number; burst: number };
  /** Redial back-off bounds (default 250 ms to 10 s). */
  redialMinMs?: number;
  redialMaxMs?: number;
  /** Dial timeout (default 5 s). */
  dialTimeoutMs?: number;
  /** Concurrent outbound requests per peer and protocol (default 16); more wait in a queue. */
  maxStreamsPerPeer?: number;
  /** Prefix of topic names and protocol ids (default `/datagrant`; a chain id may be appended). */
  protocolPrefix?: string;
}

/** Collaborators of `Libp2pNetwork`. */
export interface Libp2pNetworkModules {
  /** Parent logger; the network logs through a `p2p` child. */
  logger?: Logger;
}

const MIB = 1024 * 1024;

const DEFAULTS = {
  maxMessageBytes: MIB,
  maxRequestBytes: MIB,
  maxResponseBytes: 16 * MIB,
  requestTimeoutMs: 10_000,
  handlerTimeoutMs: 30_000,
  heartbeatIntervalMs: 700,
  seenTtlMs: 60_000,
  meshDegree: 4,
  relay: true,
  maxOutboundQueueBytes: 16 * MIB,
  rateLimit: { perSecond: 5000, burst: 10_000 },
  redialMinMs: 250,
  redialMaxMs: 10_000,
  dialTimeoutMs: 5000,
  maxStreamsPerPeer: 16,
  protocolPrefix: '/datagrant',
};

type Settings = Required<
  Omit<
    Libp2pNetworkOptions,
    'secretKey' | 'listen' | 'announce' | 'bootstrap' | 'allowedKeys' | 'topicSenders'
  >
>;

interface Services extends Record<string, unknown> {
  identify: Identify;
  pubsub: PubSub<GossipsubEvents>;
}

interface Slots {
  active: number;
  waiters: (() => void)[];
}

interface DialTarget {
  peerId: PeerId;
  addrs: Multiaddr[];
  backoff: Backoff;
  nextAt: number;
  dialing: boolean;
}

function parseBootstrap(text: string): Multiaddr {
  let ma: Multiaddr;
  try {
    ma = multiaddr(text);
  } catch {
    throw new DatagrantError('P2P_BAD_CONFIG', 'bootstrap address is not a multiaddr', { address: text });
  }
  if (ma.getPeerId() === null) {
    throw new DatagrantError('P2P_BAD_CONFIG', 'bootstrap address must end in /p2p/<peerId>', {
      address: text,
    });
  }
  return ma;
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function positive(value: number, field: string): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new DatagrantError('P2P_BAD_CONFIG', `${field} must be a positive number`, { field });
  }
  return value;
}

function settingsOf(options: Libp2pNetworkOptions): Settings {
  const s: Settings = {
    maxMessageBytes: options.maxMessageBytes ?? DEFAULTS.maxMessageBytes,
    maxRequestBytes: options.maxRequestBytes ?? DEFAULTS.maxRequestBytes,
    maxResponseBytes: options.maxResponseBytes ?? DEFAULTS.maxResponseBytes,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    handlerTimeoutMs: options.handlerTimeoutMs ?? DEFAULTS.handlerTimeoutMs,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? DEFAULTS.heartbeatIntervalMs,
    seenTtlMs: options.seenTtlMs ?? DEFAULTS.seenTtlMs,
    meshDegree: options.meshDegree ?? DEFAULTS.meshDegree,
    relay: options.relay ?? DEFAULTS.relay,
    maxOutboundQueueBytes: options.maxOutboundQueueBytes ?? DEFAULTS.maxOutboundQueueBytes,
    rateLimit: options.rateLimit ?? DEFAULTS.rateLimit,
    redialMinMs: options.redialMinMs ?? DEFAULTS.redialMinMs,
    redialMaxMs: options.redialMaxMs ?? DEFAULTS.redialMaxMs,
    dialTimeoutMs: options.dialTimeoutMs ?? DEFAULTS.dialTimeoutMs,
    maxStreamsPerPeer: options.maxStreamsPerPeer ?? DEFAULTS.maxStreamsPerPeer,
    protocolPrefix: options.protocolPrefix ?? DEFAULTS.protocolPrefix,
  };
  for (const [field, value] of Object.entries(s)) {
    if (typeof value === 'number') positive(value, field);
  }
  positive(s.rateLimit.perSecond, 'rateLimit.perSecond');
  positive(s.rateLimit.burst, 'rateLimit.burst');
  if (s.meshDegree < 2) throw new DatagrantError('P2P_BAD_CONFIG', 'meshDegree must be at least 2');
  if (!/^\/[A-Za-z0-9/._-]*[A-Za-z0-9._-]$/.test(s.protocolPrefix)) {
    throw new DatagrantError('P2P_BAD_CONFIG', 'protocolPrefix must look like /name or /name/sub');
  }
  return s;
}

/** A validator set indexed both ways: key hex to peer id and peer id string to key hex. */
class ValidatorSet {
  readonly keyByPeer = new Map<string, string>();
  readonly peerByKey = new Map<string, PeerId>();

  constructor(keys: readonly string[]) {
    for (const key of keys) {
      const peerId = peerIdFromString(peerIdFromValidatorKey(key));
      this.keyByPeer.set(peerId.toString(), key);
      this.peerByKey.set(key, peerId);
    }
  }
}

/** The libp2p implementation of `Network` (see the module comment). */
export class Libp2pNetwork implements Network {
  private readonly settings: Settings;
  private readonly secretKey: Uint8Array;
  private readonly listen: string[];
  private readonly announce: string[];
  private readonly bootstrap: Multiaddr[];
  private readonly selfPeerId: string;
  private readonly log: Logger;
  private validators: ValidatorSet;
  private readonly counters: NetworkStats = emptyStats();
  private readonly subscribers = new Map<Topic, MessageHandler[]>();
  private readonly handlers = new Map<ProtocolName, RequestHandler>();
  private readonly topicByName = new Map<string, Topic>();
  private readonly targets = new Map<string, DialTarget>();
  private readonly slots = new Map<string, Slots>();
  private readonly limiter: PeerRateLimiter;
  private node: Libp2p<Services> | undefined;
  private redialTimer: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;
  private readonly senders: Map<Topic, Set<string>>;

  constructor(options: Libp2pNetworkOptions, modules: Libp2pNetworkModules = {}) {
    this.settings = settingsOf(options);
    if (!(options.secretKey instanceof Uint8Array) || options.secretKey.length !== 32) {
      throw new DatagrantError('P2P_BAD_CONFIG', 'secretKey must be 32 bytes');
    }
    this.secretKey = options.secretKey;
    this.selfPeerId = peerIdFromValidatorKey(bytesToHex(signingPublicKey(options.secretKey)));
    if (!Array.isArray(options.listen))
      throw new DatagrantError('P2P_BAD_CONFIG', 'listen must be a list of multiaddrs');
    this.listen = [...options.listen];
    this.announce = [...(options.announce ?? [])];
    for (const address of this.announce) {
      try {
        multiaddr(address);
      } catch {
        throw new DatagrantError('P2P_BAD_CONFIG', 'announce address is not a multiaddr', { address });
      }
    }
    this.validators = new ValidatorSet(options.allowedKeys);
    this.senders = topicSenderSets(options.topicSenders);
    this.bootstrap = (options.bootstrap ?? []).map(parseBootstrap);
    this.log = (modules.logger ?? silentLogger).child({ module: 'p2p' });
    this.limiter = new PeerRateLimiter({
      ratePerSecond: this.settings.rateLimit.perSecond,
      burst: this.settings.rateLimit.burst,
    });
    for (const topic of TOPICS) this.topicByName.set(this.topicName(topic), topic);
  }

  /** The gossipsub topic string for `topic`, e.g. `/datagrant/txs/1`. */
  topicName(topic: Topic): string {
    return `${this.settings.protocolPrefix}/${topic}/1`;
  }

  /** The libp2p protocol id for `protocol`, e.g. `/datagrant/sync/1`. */
  protocolId(protocol: ProtocolName): string {
    return `${this.settings.protocolPrefix}/${protocol}/1`;
  }

  /** This node's libp2p peer id (derived from its node key; known before start). */
  peerId(): string {
    return this.selfPeerId;
  }

  async start(): Promise<void> {
    if (this.node !== undefined) return;
    this.starting ??= this.doStart().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const s = this.settings;
    const privateKey = await libp2pPrivateKey(this.secretKey);
    const D = s.relay ? s.meshDegree : 0;
    const node = await createLibp2p<Services>({
      start: false,
      privateKey,
      addresses: { listen: this.listen, ...(this.announce.length > 0 ? { announce: this.announce } : {}) },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: {
        denyDialPeer: (peerId) => this.refuse(peerId, 'outbound'),
        denyInboundEncryptedConnection: (peerId) => this.refuse(peerId, 'inbound'),
        denyOutboundEncryptedConnection: (peerId) => this.refuse(peerId, 'outbound'),
      },
      connectionManager: { dialTimeout: s.dialTimeoutMs },
      services: {
        identify: identify(),
        pubsub: gossipsub({
          globalSignaturePolicy: StrictNoSign,
          msgIdFn: (msg: Message) => this.messageId(msg),
          emitSelf: false,
          allowPublishToZeroTopicPeers: true,
          ignoreDuplicatePublishError: true,
          fallbackToFloodsub: false,
          floodPublish: true,
          doPX: false,
          allowedTopics: [...this.topicByName.keys()],
          D,
          Dlo: s.relay ? Math.max(1, D - 1) : 0,
          Dhi: 2 * D,
          Dout: D >= 3 ? 1 : 0,
          Dscore: s.relay ? Math.max(1, Math.floor(D / 2)) : 0,
          // Without a mesh, every topic peer is a candidate for IHAVE: that is the repair path.
          Dlazy: s.relay ? D : s.meshDegree,
          heartbeatInterval: s.heartbeatIntervalMs,
          seenTTL: s.seenTtlMs,
          maxOutboundBufferSize: s.maxOutboundQueueBytes,
          idontwantMinDataSize: 16 * 1024,
          maxInboundDataLength: 4 * s.maxMessageBytes + 64 * 1024,
          decodeRpcLimits: {
            maxSubscriptions: 64,
            maxMessages: 512,
            maxIhaveMessageIDs: 5000,
            maxIwantMessageIDs: 5000,
            maxIdontwantMessageIDs: 5000,
            maxControlMessages: 1000,
            maxPeerInfos: 0,
          },
          // All validators may share a host in a testnet; the gater already keeps Sybils out.
          scoreParams: { IPColocationFactorWeight: 0 },
        }),
      },
    });
    for (const protocol of PROTOCOL_NAMES) {
      // Our own queue keeps outbound streams at maxStreamsPerPeer; libp2p's limits leave room
      // for streams that are still closing.
      await node.handle(this.protocolId(protocol), (data) => void this.serve(protocol, data), {
        maxInboundStreams: 2 * s.maxStreamsPerPeer,
        maxOutboundStreams: 4 * s.maxStreamsPerPeer,
      });
    }
    node.addEventListener('peer:connect', (evt) => this.onConnect(evt.detail));
    node.addEventListener('peer:disconnect', (evt) => this.onDisconnect(evt.detail));
    const pubsub = node.services.pubsub;
    for (const name of this.topicByName.keys()) {
      pubsub.topicValidators.set(name, (peer, msg) => this.validate(peer, msg));
    }
    pubsub.addEventListener('gossipsub:message', (evt) => this.deliver(evt.detail));
    try {
      await node.start();
    } catch (err) {
      await Promise.resolve(node.stop()).catch(() => undefined);
      throw new DatagrantError('P2P_START_FAILED', 'libp2p did not start', { reason: String(err) });
    }
    for (const topic of this.subscribers.keys()) pubsub.subscribe(this.topicName(topic));
    this.node = node;
    this.loadBootstrap();
    this.redialTimer = setInterval(() => this.redialTick(), Math.min(250, s.redialMinMs));
    this.redialTimer.unref();
    this.redialTick();
    this.log.info({ peerId: node.peerId.toString(), addrs: this.listenAddresses() }, 'p2p started');
  }

  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const node = this.node;
    if (node === undefined) return;
    this.node = undefined;
    if (this.redialTimer !== undefined) clearInterval(this.redialTimer);
    this.redialTimer = undefined;
    this.targets.clear();
    await node.stop();
    this.log.info('p2p stopped');
  }

  async publish(topic: Topic, data: Uint8Array): Promise<void> {
    const node = this.running();
    if (data.length > this.settings.maxMessageBytes) {
      throw new DatagrantError('P2P_MESSAGE_TOO_LARGE', 'message is larger than maxMessageBytes', {
        size: data.length,
        maxMessageBytes: this.settings.maxMessageBytes,
      });
    }
    this.counters.published++;
    try {
      await node.services.pubsub.publish(this.topicName(topic), data);
    } catch (err) {
      // Best effort by contract: no peers, a duplicate or a full peer queue is not the caller's problem.
      this.log.debug({ topic, err: String(err) }, 'publish not sent');
    }
  }

  subscribe(topic: Topic, handler: MessageHandler): void {
    const list = this.subscribers.get(topic);
    if (list !== undefined) {
      list.push(handler);
      return;
    }
    this.subscribers.set(topic, [handler]);
    this.node?.services.pubsub.subscribe(this.topicName(topic));
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
    const node = this.running();
    this.counters.requestsSent++;
    try {
      return await this.exchange(node, peer, protocol, req, opts);
    } catch (err) {
      this.counters.requestsFailed++;
      throw err;
    }
  }

  peers(): string[] {
    const node = this.node;
    if (node === undefined) return [];
    const out: string[] = [];
    for (const peerId of node.getPeers()) {
      const key = this.validators.keyByPeer.get(peerId.toString());
      if (key !== undefined) out.push(key);
    }
    return out;
  }

  topicPeers(topic: Topic): string[] {
    const node = this.node;
    if (node === undefined) return [];
    const out: string[] = [];
    for (const peerId of node.services.pubsub.getSubscribers(this.topicName(topic))) {
      const key = this.validators.keyByPeer.get(peerId.toString());
      if (key !== undefined && node.getConnections(peerId).length > 0) out.push(key);
    }
    return out;
  }

  listenAddresses(): string[] {
    return this.node?.getMultiaddrs().map((ma) => ma.toString()) ?? [];
  }

  setAllowedKeys(keys: readonly string[], topicSenders?: Partial<Record<Topic, readonly string[]>>): void {
    this.validators = new ValidatorSet(keys);
    for (const [topic, senders] of topicSenderSets(topicSenders)) this.senders.set(topic, senders);
    const node = this.node;
    if (node === undefined) return;
    for (const [id, target] of this.targets) {
      if (!this.validators.keyByPeer.has(id)) this.targets.delete(id);
      else target.backoff.reset();
    }
    this.loadBootstrap();
    for (const peerId of node.getPeers()) {
      if (!this.validators.keyByPeer.has(peerId.toString())) {
        this.log.info({ peer: peerId.toString() }, 'disconnecting peer no longer in the validator set');
        node.hangUp(peerId).catch(() => undefined);
      }
    }
  }

  stats(): NetworkStats {
    return copyStats(this.counters);
  }

  private running(): Libp2p<Services> {
    if (this.node === undefined) throw new DatagrantError('P2P_NOT_STARTED', 'the network is not started');
    return this.node;
  }

  private messageId(msg: Message): Uint8Array {
    // Content addressed: the same bytes on the same topic are one message, whoever relays them.
    return createHash('sha256').update(msg.topic).update(Uint8Array.of(0)).update(msg.data).digest();
  }

  private refuse(peerId: PeerId, direction: 'inbound' | 'outbound'): boolean {
    if (this.validators.keyByPeer.has(peerId.toString())) return false;
    this.counters.refusedConnections++;
    this.log.debug({ peer: peerId.toString(), direction }, 'refused connection from a non-validator');
    return true;
  }

  private validate(peer: PeerId, msg: Message): TopicValidatorResult {
    const key = this.validators.keyByPeer.get(peer.toString());
    const topic = this.topicByName.get(msg.topic);
    if (key === undefined || (topic !== undefined && this.senders.get(topic)?.has(key) === false)) {
      this.counters.dropped['not-validator']++;
      return TopicValidatorResult.Reject;
    }
    if (msg.data.length > this.settings.maxMessageBytes) {
      this.counters.dropped.oversize++;
      return TopicValidatorResult.Reject;
    }
    if (!this.limiter.take(key)) {
      this.counters.dropped['rate-limited']++;
      return TopicValidatorResult.Ignore;
    }
    return TopicValidatorResult.Accept;
  }

  private deliver(detail: GossipsubMessage): void {
    const topic = this.topicByName.get(detail.msg.topic);
    const from = this.validators.keyByPeer.get(detail.propagationSource.toString());
    if (topic === undefined || from === undefined) return;
    const handlers = this.subscribers.get(topic);
    if (handlers === undefined) return;
    this.counters.delivered++;
    for (const handler of handlers) {
      try {
        handler(detail.msg.data, from);
      } catch (err) {
        this.counters.dropped['handler-error']++;
        this.log.warn({ topic, err: String(err) }, 'gossip handler threw');
      }
    }
  }

  private onConnect(peerId: PeerId): void {
    const id = peerId.toString();
    const key = this.validators.keyByPeer.get(id);
    if (key === undefined) return;
    const target = this.targets.get(id) ?? this.addTarget(peerId, []);
    target.backoff.reset();
    this.log.info({ peer: key.slice(0, 16) }, 'validator connected');
  }

  private onDisconnect(peerId: PeerId): void {
    const id = peerId.toString();
    const key = this.validators.keyByPeer.get(id);
    this.limiter.forget(key ?? id);
    const target = this.targets.get(id);
    if (target !== undefined) target.nextAt = Date.now() + target.backoff.next();
    if (key !== undefined) this.log.info({ peer: key.slice(0, 16) }, 'validator disconnected');
  }

  private addTarget(peerId: PeerId, addrs: Multiaddr[]): DialTarget {
    const target: DialTarget = {
      peerId,
      addrs,
      backoff: new Backoff({ minMs: this.settings.redialMinMs, maxMs: this.settings.redialMaxMs }),
      nextAt: 0,
      dialing: false,
    };
    this.targets.set(peerId.toString(), target);
    return target;
  }

  private loadBootstrap(): void {
    for (const ma of this.bootstrap) {
      const id = ma.getPeerId()!;
      if (id === this.selfPeerId) continue;
      if (!this.validators.keyByPeer.has(id)) {
        this.log.warn({ address: ma.toString() }, 'bootstrap peer is not in the validator set; skipped');
        continue;
      }
      const existing = this.targets.get(id);
      if (existing === undefined) this.addTarget(peerIdFromString(id), [ma]);
      else if (!existing.addrs.some((known) => known.equals(ma))) existing.addrs.push(ma);
    }
  }

  private redialTick(): void {
    const node = this.node;
    if (node === undefined) return;
    const now = Date.now();
    for (const [id, target] of this.targets) {
      if (target.dialing || now < target.nextAt) continue;
      if (!this.validators.keyByPeer.has(id)) continue;
      if (node.getConnections(target.peerId).length > 0) continue;
      target.dialing = true;
      const dest = target.addrs.length > 0 ? target.addrs : target.peerId;
      node
        .dial(dest, { signal: AbortSignal.timeout(this.settings.dialTimeoutMs) })
        .then(
          () => target.backoff.reset(),
          (err: unknown) => {
            target.nextAt = Date.now() + target.backoff.next();
            this.log.debug({ peer: id, err: String(err) }, 'dial failed');
          },
        )
        .finally(() => {
          target.dialing = false;
        });
    }
  }

  private async exchange(
    node: Libp2p<Services>,
    peer: string,
    protocol: ProtocolName,
    req: Uint8Array,
    opts: RequestOptions,
  ): Promise<Uint8Array> {
    const peerId = this.validators.peerByKey.get(peer);
    if (peerId === undefined)
      throw new DatagrantError('P2P_NOT_VALIDATOR', 'peer is not in the validator set', { peer });
    if (req.length > this.settings.maxRequestBytes) {
      throw new DatagrantError('P2P_REQUEST_TOO_LARGE', 'request is larger than maxRequestBytes', {
        size: req.length,
        maxRequestBytes: this.settings.maxRequestBytes,
      });
    }
    if (isAborted(opts.signal)) throw new DatagrantError('P2P_ABORTED', 'request aborted', { peer });
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, opts.timeoutMs ?? this.settings.requestTimeoutMs);
    let stream: Stream | undefined;
    const onAbort = (): void => controller.abort();
    controller.signal.addEventListener('abort', () => stream?.abort(new Error('request cancelled')));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let phase: 'dial' | 'exchange' = 'dial';
    let release: (() => void) | undefined;
    try {
      release = await this.acquire(`${protocol}:${peer}`, controller.signal);
      // An open connection is reused directly; dialProtocol's connection-manager path costs more.
      const open = node.getConnections(peerId).find((c) => c.status === 'open');
      const protocolId = this.protocolId(protocol);
      stream =
        open !== undefined
          ? await open.newStream(protocolId, { signal: controller.signal })
          : await node.dialProtocol(peerId, protocolId, { signal: controller.signal });
      if (controller.signal.aborted) stream.abort(new Error('request cancelled'));
      phase = 'exchange';
      await stream.sink([encodeFrame(req)]);
      const body = await readFrame(
        stream.source,
        this.settings.maxResponseBytes + 1,
        'P2P_RESPONSE_TOO_LARGE',
      );
      const done = stream;
      const free = release;
      release = undefined;
      done
        .close()
        .catch((err: unknown) => done.abort(err instanceof Error ? err : new Error(String(err))))
        .finally(free);
      const envelope = decodeResponse(body);
      if (!envelope.ok) throw remoteError(peer, envelope.code, envelope.message);
      return envelope.data;
    } catch (err) {
      if (stream !== undefined && stream.status === 'open') stream.abort(new Error('request failed'));
      if (isAborted(opts.signal)) throw new DatagrantError('P2P_ABORTED', 'request aborted', { peer });
      if (timedOut) throw new DatagrantError('P2P_TIMEOUT', 'request timed out', { peer, protocol });
      if (isDatagrantError(err)) throw err;
      if (phase === 'dial') {
        throw new DatagrantError('P2P_PEER_UNREACHABLE', 'could not open a stream to the peer', {
          peer,
          reason: String(err),
        });
      }
      throw new DatagrantError('P2P_STREAM_ERROR', 'the stream failed', { peer, reason: String(err) });
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      release?.();
    }
  }

  /** Waits for one of the `maxStreamsPerPeer` request slots of `id`; resolves with its release function. */
  private acquire(id: string, signal: AbortSignal): Promise<() => void> {
    let slot = this.slots.get(id);
    if (slot === undefined) {
      slot = { active: 0, waiters: [] };
      this.slots.set(id, slot);
    }
    const s = slot;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      s.active--;
      const next = s.waiters.shift();
      if (next !== undefined) next();
      else if (s.active === 0) this.slots.delete(id);
    };
    if (s.active < this.settings.maxStreamsPerPeer) {
      s.active++;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        signal.removeEventListener('abort', onAbort);
        s.active++;
        resolve(release);
      };
      const onAbort = (): void => {
        const i = s.waiters.indexOf(grant);
        if (i >= 0) s.waiters.splice(i, 1);
        reject(new Error('aborted while queued'));
      };
      s.waiters.push(grant);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private async serve(protocol: ProtocolName, { stream, connection }: IncomingStreamData): Promise<void> {
    const s = this.settings;
    const from = this.validators.keyByPeer.get(connection.remotePeer.toString());
    if (from === undefined) {
      stream.abort(new Error('not a validator'));
      return;
    }
    const timer = setTimeout(() => stream.abort(new Error('request handling timed out')), s.handlerTimeoutMs);
    try {
      let response: Uint8Array;
      try {
        const req = await readFrame(stream.source, s.maxRequestBytes, 'P2P_REQUEST_TOO_LARGE');
        const handler = this.handlers.get(protocol);
        if (handler === undefined) throw new DatagrantError('P2P_NO_HANDLER', `no handler for ${protocol}`);
        const res = await handler(req, from);
        if (!(res instanceof Uint8Array))
          throw new DatagrantError('P2P_HANDLER_FAILED', 'handler returned no bytes');
        if (res.length > s.maxResponseBytes) {
          throw new DatagrantError('P2P_RESPONSE_TOO_LARGE', 'response is larger than maxResponseBytes');
        }
        response = encodeOkResponse(res);
        this.counters.requestsServed++;
      } catch (err) {
        if (stream.status !== 'open') throw err;
        response = encodeErrorResponse(err);
        this.counters.requestsRejected++;
        if (isDatagrantError(err)) this.log.debug({ protocol, code: err.code }, 'request rejected');
        // Only the error's class is logged: its message could carry request data.
        else
          this.log.warn(
            { protocol, error: err instanceof Error ? err.name : typeof err },
            'request handler threw',
          );
      }
      await stream.sink([encodeFrame(response)]);
      await stream.close();
    } catch (err) {
      this.log.debug({ protocol, err: String(err) }, 'request stream failed');
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    } finally {
      clearTimeout(timer);
    }
  }
}
