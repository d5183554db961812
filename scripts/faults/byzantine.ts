/**
 * A Byzantine validator, for the fault suite: a wrapper around the PBFT driver's send path (the
 * `Network` the driver publishes through) that, besides the honest messages, sends what a
 * faulty or malicious validator would. Turned on with `DATAGRANT_BYZANTINE=<behaviours>`:
 *
 * - `equivocate`: a second, different (valid) block for every proposal, same height and view;
 *   both go out in random order, so peers see them in different orders.
 * - `double-vote`: a second prepare/commit vote for another block hash in the same (height, view).
 * - `bad-sig`: copies of its messages with corrupted signatures, and votes for other blocks
 *   carrying the original signature.
 * - `flood`: garbage on every gossip topic and on the request-response protocols, steadily.
 * - `replay`: old messages of its own sent again, long after their height.
 *
 * Honest nodes must drop all of this (counted by reason) and keep agreeing.
 */
import { bytesToHex, utf8ToBytes } from '../../src/common/bytes.js';
import { signFast } from '../../src/common/crypto-node.js';
import { DatagrantError } from '../../src/common/errors.js';
import type { Logger } from '../../src/common/logger.js';
import {
  blockHashOf,
  type ConsensusMessage,
  type ProposalMessage,
  signProposal,
  signVote,
  type VoteMessage,
} from '../../src/consensus/index.js';
import type {
  MessageHandler,
  Network,
  NetworkStats,
  ProtocolName,
  RequestHandler,
  RequestOptions,
  Topic,
} from '../../src/p2p/index.js';

/** Environment variable naming the Byzantine behaviours (comma-separated). */
export const BYZANTINE_ENV = 'DATAGRANT_BYZANTINE';

/** Every behaviour. */
export const BYZANTINE_BEHAVIOURS = ['equivocate', 'double-vote', 'bad-sig', 'flood', 'replay'] as const;

/** One of BYZANTINE_BEHAVIOURS. */
export type ByzantineBehaviour = (typeof BYZANTINE_BEHAVIOURS)[number];

/** Parses `DATAGRANT_BYZANTINE` (`all` for every behaviour); empty set when unset. */
export function parseByzantine(value: string | undefined): Set<ByzantineBehaviour> {
  const out = new Set<ByzantineBehaviour>();
  if (!value) return out;
  for (const part of value.split(',').map((s) => s.trim())) {
    if (part === '') continue;
    if (part === 'all') for (const b of BYZANTINE_BEHAVIOURS) out.add(b);
    else if ((BYZANTINE_BEHAVIOURS as readonly string[]).includes(part)) out.add(part as ByzantineBehaviour);
    else
      throw new DatagrantError(
        'CONFIG_INVALID',
        `${BYZANTINE_ENV}: unknown behaviour ${part} (known: ${BYZANTINE_BEHAVIOURS.join(', ')}, all)`,
      );
  }
  return out;
}

/** Options of the Byzantine wrapper. */
export interface ByzantineOptions {
  behaviours: ReadonlySet<ByzantineBehaviour>;
  /** This validator's key (hex) and Ed25519 secret key: its lies are properly signed. */
  self: string;
  secretKey: Uint8Array;
  /** Pause between flood bursts. */
  floodIntervalMs?: number;
  /** Randomness in [0, 1) (Math.random by default). */
  random?: () => number;
}

const REPLAY_BUFFER = 500;

/** The driver's view of the network, with lies added on the way out. */
export class ByzantineNetwork implements Network {
  /** How many of each lie were sent. */
  readonly actions: Record<string, number> = {};
  private readonly random: () => number;
  private readonly history: ConsensusMessage[] = [];
  private readonly altBlocks = new Map<string, string>();
  private seq = 1_000_000_000;
  private floodTimer: NodeJS.Timeout | undefined;
  private reportTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: ByzantineOptions,
    private readonly modules: { inner: Network; logger: Logger },
  ) {
    this.random = options.random ?? Math.random;
  }

  private has(b: ByzantineBehaviour): boolean {
    return this.options.behaviours.has(b);
  }

  private count(action: string, n = 1): void {
    this.actions[action] = (this.actions[action] ?? 0) + n;
  }

  /** Starts the flood and the periodic report; the inner network is started by the node. */
  async start(): Promise<void> {
    this.modules.logger.warn(
      { behaviours: [...this.options.behaviours] },
      'BYZANTINE mode: this validator lies',
    );
    if (this.has('flood')) {
      this.floodTimer = setInterval(() => this.flood(), this.options.floodIntervalMs ?? 100);
      this.floodTimer.unref();
    }
    this.reportTimer = setInterval(
      () => this.modules.logger.warn({ actions: this.actions }, 'byzantine actions so far'),
      10_000,
    );
    this.reportTimer.unref();
  }

  /** Stops the flood (the inner network is stopped by the node). */
  async stop(): Promise<void> {
    clearInterval(this.floodTimer);
    clearInterval(this.reportTimer);
  }

  private signer = (bytes: Uint8Array): Uint8Array => signFast(bytes, this.options.secretKey);

  /** Transaction refs of proposals that travelled compact (`"t"`), so copies travel the same way. */
  private readonly refs = new WeakMap<object, unknown>();

  private send(topic: Topic, message: unknown): void {
    const refs = message !== null && typeof message === 'object' ? this.refs.get(message) : undefined;
    const bytes = utf8ToBytes(
      `{"r":${++this.seq},"m":${JSON.stringify(message)}${refs === undefined ? '' : `,"t":${JSON.stringify(refs)}`}}`,
    );
    this.modules.inner.publish(topic, bytes).catch(() => {});
  }

  private shuffled<T>(items: T[]): T[] {
    return this.random() < 0.5 ? items : items.reverse();
  }

  async publish(topic: Topic, data: Uint8Array): Promise<void> {
    if (topic !== 'consensus') return this.modules.inner.publish(topic, data);
    let message: ConsensusMessage;
    let refs: unknown;
    try {
      const envelope = JSON.parse(new TextDecoder().decode(data)) as { m: ConsensusMessage; t?: unknown };
      message = envelope.m;
      refs = envelope.t;
    } catch {
      return this.modules.inner.publish(topic, data);
    }
    // A compact proposal names its transactions; its conflicting copies name the same ones.
    const withRefs = <T extends object>(m: T): T => {
      if (refs !== undefined) this.refs.set(m, refs);
      return m;
    };
    withRefs(message);
    const out: unknown[] = [message];
    if (message.type === 'proposal' && this.has('equivocate')) {
      out.push(withRefs(this.equivocation(message)));
      this.count('equivocating-proposal');
    }
    if ((message.type === 'prepare' || message.type === 'commit') && this.has('double-vote')) {
      out.push(this.doubleVote(message));
      this.count('double-vote');
    }
    if (this.has('bad-sig') && (message.type === 'prepare' || message.type === 'commit')) {
      out.push({ ...message, sig: corrupt(message.sig) });
      out.push({ ...message, block: randomHex(this.random) });
      this.count('bad-signature', 2);
    } else if (this.has('bad-sig') && message.type === 'proposal') {
      out.push(withRefs({ ...message, sig: corrupt(message.sig) }));
      this.count('bad-signature');
    }
    if (this.has('replay') && this.history.length > 20 && this.random() < 0.5) {
      const old = this.history[Math.floor(this.random() * (this.history.length - 10))]!;
      out.push(old);
      this.count('replay');
    }
    this.history.push(message);
    if (this.history.length > REPLAY_BUFFER) this.history.shift();
    const [first, ...rest] = this.shuffled(out);
    // The honest message keeps the driver's own bytes; the others get fresh sequence numbers.
    if (first === message) await this.modules.inner.publish(topic, data);
    else this.send(topic, first);
    for (const m of rest) {
      if (m === message) await this.modules.inner.publish(topic, data);
      else this.send(topic, m);
    }
  }

  /** Another valid block for the same height and view (a different time), properly signed. */
  private equivocation(message: ProposalMessage): ProposalMessage {
    const header = {
      ...message.block.header,
      time: message.block.header.time + 1 + Math.floor(this.random() * 5),
    };
    const block = { header, txs: message.block.txs };
    this.altBlocks.set(`${message.height}:${message.view}`, blockHashOf(block));
    if (this.altBlocks.size > 100) this.altBlocks.delete(this.altBlocks.keys().next().value as string);
    return signProposal(message.chain, message.height, message.view, block, this.options.self, this.signer);
  }

  /** A second vote in the same (height, view) for another block, properly signed. */
  private doubleVote(message: VoteMessage): VoteMessage {
    const alt = this.altBlocks.get(`${message.height}:${message.view}`) ?? randomHex(this.random);
    const other = alt === message.block ? randomHex(this.random) : alt;
    return signVote(
      message.type,
      message.chain,
      message.height,
      message.view,
      other,
      this.options.self,
      this.signer,
    );
  }

  private flood(): void {
    const inner = this.modules.inner;
    const r = this.random;
    const topics: Topic[] = ['consensus', 'txs', 'requests'];
    const garbage: Uint8Array[] = [
      randomBytes(1 + Math.floor(r() * 2000), r),
      utf8ToBytes(JSON.stringify({ r: r(), m: { type: 'prepare', height: 'x', sig: 5 } })),
      utf8ToBytes(`{"r":1,"m":${'['.repeat(5000)}${']'.repeat(5000)}}`),
      utf8ToBytes(
        JSON.stringify({ v: 1, chain: 'nope', kind: 'grant', body: { x: '\u0000\uffff' }, n: r() }),
      ),
      utf8ToBytes(`{"r":${r()},"m":{"type":"decided","chain":"x","block":{},"cert":null}}`),
      utf8ToBytes('x'.repeat(100_000 + Math.floor(r() * 100_000))),
    ];
    for (const bytes of garbage) {
      const topic = topics[Math.floor(r() * topics.length)]!;
      inner.publish(topic, bytes).catch(() => {});
    }
    this.count('flood-gossip', garbage.length);
    const peers = inner.peers();
    if (peers.length > 0) {
      const peer = peers[Math.floor(r() * peers.length)]!;
      const protocol: ProtocolName = r() < 0.5 ? 'sync' : 'payload';
      const req = r() < 0.5 ? randomBytes(1 + Math.floor(r() * 500), r) : utf8ToBytes('{"from":-1e308}');
      inner.request(peer, protocol, req, { timeoutMs: 2000 }).catch(() => {});
      this.count('flood-request');
    }
    if (this.has('replay') && this.history.length > 0) {
      this.send('consensus', this.history[Math.floor(r() * this.history.length)]);
      this.count('replay');
    }
  }

  subscribe(topic: Topic, handler: MessageHandler): void {
    this.modules.inner.subscribe(topic, handler);
  }
  handle(protocol: ProtocolName, handler: RequestHandler): void {
    this.modules.inner.handle(protocol, handler);
  }
  request(peer: string, protocol: ProtocolName, req: Uint8Array, opts?: RequestOptions): Promise<Uint8Array> {
    return this.modules.inner.request(peer, protocol, req, opts);
  }
  peers(): string[] {
    return this.modules.inner.peers();
  }
  topicPeers(topic: Topic): string[] {
    return this.modules.inner.topicPeers(topic);
  }
  listenAddresses(): string[] {
    return this.modules.inner.listenAddresses();
  }
  setAllowedKeys(keys: readonly string[]): void {
    this.modules.inner.setAllowedKeys(keys);
  }
  stats(): NetworkStats {
    return this.modules.inner.stats();
  }
}

function corrupt(sig: string): string {
  const last = sig.at(-1) === '0' ? '1' : '0';
  return sig.slice(0, -1) + last;
}

function randomBytes(n: number, random: () => number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * 256);
  return out;
}

function randomHex(random: () => number): string {
  return bytesToHex(randomBytes(32, random));
}
