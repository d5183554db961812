/**
 * A datagrant node: wires storage, chain, mempool, consensus, network, roles and the API from
 * one config, starts them in order and stops them in reverse.
 */
import { join, resolve } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { adminRoutes } from '../api/admin-routes.js';
import { chainRoutes, type NodeStatusSource, type Readiness } from '../api/chain-routes.js';
import { type Caller, HttpAuthVerifier } from '../api/http-auth.js';
import { LevelReplayGuard } from '../api/replay-guard.js';
import { createApi, DEFAULT_BODY_LIMIT } from '../api/server.js';
import { webRoutes } from '../api/web-routes.js';
import { bytesToHex } from '../common/bytes.js';
import { signFast, verifyFast } from '../common/crypto-node.js';
import { DatagrantError } from '../common/errors.js';
import { SIGNED_CALL_HEADERS } from '../common/http-signature.js';
import type { KeySet } from '../common/keyfile.js';
import { readKeyFile } from '../common/keyfile-fs.js';
import type { Logger } from '../common/logger.js';
import { DEFAULT_EXTRACTOR_OPTIONS, Extractor } from '../extractor/index.js';
import {
  type AnyTx,
  type BlockStore,
  DEFAULT_STATE_CACHE,
  extractionPolicy,
  type GatewayInfo,
  type Genesis,
  gatewaysInForce,
  genesisHash,
  genesisState,
  LevelBlockStore,
  maxBlockBytes,
  quorumSize,
  type RecordState,
  stateKey,
  stateRootRule,
  type ValidatorInfo,
} from '../ledger/index.js';
import {
  Libp2pNetwork,
  type Libp2pNetworkOptions,
  type Network,
  peerIdFromValidatorKey as peerIdOf,
} from '../p2p/index.js';
import { DEFAULT_PLATFORM_OPTIONS, Platform } from '../platform/platform.js';
import { platformRoutes } from '../platform/routes.js';
import { createDataSource } from '../plugins/index.js';
import { checkDigest, LevelPayloadStore, type PayloadStore } from '../records/index.js';
import { BackupService } from './backup.js';
import { Chain } from './chain.js';
import type { NodeConfig } from './config.js';
import { DevProducer } from './dev-producer.js';
import { readGenesis } from './genesis-file.js';
import { Mempool } from './mempool.js';
import { NodeMetrics } from './metrics.js';
import { PbftDriver } from './pbft-driver.js';
import { MAX_STORED_PAYLOAD_BYTES, PayloadReplicator } from './replicator.js';
import { DEFAULT_RESCAN_EVERY_BLOCKS, ErasureRole, ExtractorRole } from './roles.js';
import { FileSigningState, SIGNING_STATE_FILE, type SigningStateStore } from './signing-state.js';
import { installSnapshotFile, SnapshotService, validatorLinks } from './snapshot.js';
import { TxGateway } from './tx-gateway.js';
import { decodeTxGossip, encodeTxGossip } from './tx-gossip.js';

export { readGenesis };

/** A long-lived part of the node. */
interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Blocks between two erasure sweeps of the payload store. */
const ERASURE_SWEEP_BLOCKS = 500;

/** Window in which a signed call's timestamp is accepted (and its nonce remembered). */
const SIGNED_CALL_SKEW_MS = 5 * 60 * 1000;

/**
 * Whether `key` is a validator of `genesis` or one of `gateways` (genesis', or once the chain is
 * loaded those in force: a council's `gateway.add` admits more). A key in neither is a validator
 * the council seats later (`validator.add`, `validator.rotate`): it starts from genesis, follows
 * the chain, and votes from the first height whose set holds it; until then no roles. Its peers
 * admit it once the change that seats it commits.
 */
function memberOf(
  genesis: Genesis,
  key: string,
  name: string,
  gateways: readonly GatewayInfo[] = genesis.gateways ?? [],
): { kind: 'validator'; info: ValidatorInfo; seated: boolean } | { kind: 'gateway'; info: GatewayInfo } {
  const validator = genesis.validators.find((v) => v.key === key);
  if (validator) return { kind: 'validator', info: validator, seated: true };
  const gateway = gateways.find((g) => g.key === key);
  if (gateway) return { kind: 'gateway', info: gateway };
  return { kind: 'validator', info: { name, key, roles: [], types: [] }, seated: false };
}

/** Time an extractor that is not first in line waits before covering for the first. */
/** How often `/readyz` probes the block store with a write, at most. */
const STORE_PROBE_MS = 2_000;
const EXTRACTOR_FALLBACK_MS = 15_000;

/**
 * How long a fallback extractor waits after the trigger before it extracts: past the worst case of
 * the assigned extractor (every attempt timing out, with the longest back-off between), so both do
 * not hit the source for one record while the first is still retrying.
 */
export function extractorFallbackMs(timeoutMs: number, retries: number): number {
  const worstCase = (retries + 1) * timeoutMs + retries * DEFAULT_EXTRACTOR_OPTIONS.maxBackoffMs;
  return Math.max(EXTRACTOR_FALLBACK_MS, worstCase + 5_000);
}

/** What a wrapper of the node's parts is told about the node. */
export interface NodeFacts {
  self: string;
  secretKey: Uint8Array;
  validators: string[];
  logger: Logger;
}

/**
 * Collaborators a node can be given instead of building its own. The shipped `datagrant` command
 * gives none; tests, fuzzing and the fault suite's own entry point (scripts/faults/faulty-node.ts)
 * use them, so no switch in the product turns a node into a test tool.
 */
export interface NodeModules {
  /** Builds the peer-to-peer network (default: libp2p from the config). */
  createNetwork?: (options: Libp2pNetworkOptions) => Network;
  /** Wraps the block store once it is built. */
  wrapBlockStore?: (store: BlockStore, node: NodeFacts) => BlockStore;
  /** Wraps the payload store (ciphertexts by digest) once it is built. */
  wrapPayloadStore?: (store: PayloadStore, node: NodeFacts) => PayloadStore;
  /** Wraps how the extractor hands its signed transactions to the node. */
  wrapExtractorSubmit?: (
    submit: (tx: AnyTx) => Promise<void>,
    node: NodeFacts,
  ) => (tx: AnyTx) => Promise<void>;
  /** Wraps the validator's signing-state store. */
  wrapSigningState?: (store: SigningStateStore, node: NodeFacts) => SigningStateStore;
  /** Wraps the network consensus runs over; the wrapper is started and stopped with the node. */
  wrapConsensusNetwork?: (network: Network, node: NodeFacts) => Network;
  /** Adds routes to the API before it listens. */
  extraRoutes?: (
    app: FastifyInstance,
    parts: { network: Network | undefined; store: BlockStore },
    node: NodeFacts,
  ) => Promise<void>;
}

/** How a node starts, besides its config. */
export interface NodeStartOptions {
  /**
   * A state snapshot file (`datagrant snapshot`) to start an empty store from: checked against the
   * genesis validators and the certified state root, then installed; the node syncs the blocks
   * after it. A store that holds blocks is refused (SNAPSHOT_STORE_NOT_EMPTY).
   */
  snapshot?: string;
}

/** One running node. */
export class DatagrantNode implements NodeStatusSource {
  genesis!: Genesis;
  keys!: KeySet;
  chain!: Chain;
  mempool!: Mempool;
  gateway!: TxGateway;
  api!: FastifyInstance;
  platform: Platform | undefined;
  network: Network | undefined;
  payloads!: PayloadStore;
  /** Stores payloads for extractors, collects storage receipts, fetches payloads from holders. */
  private replicator!: PayloadReplicator;
  private store!: BlockStore;
  /** Gossiped transactions dropped, by reason (not JSON or malformed; refused by the mempool). */
  readonly gossipDropped = { 'tx-malformed': 0, 'tx-refused': 0 };
  private producer: DevProducer | undefined;
  private erasure: ErasureRole | undefined;
  private consensus: PbftDriver | undefined;
  metrics!: NodeMetrics;
  private readonly started: Service[] = [];
  private lastCommitAt: number | null = null;
  /** The last `/readyz` store probe. */
  private storeProbe: { at: number; ok: boolean } | undefined;
  private selfKey = '';
  /** What genesis says this node is: a validator, or a gateway that never votes. */
  private member!:
    | { kind: 'validator'; info: ValidatorInfo; seated: boolean }
    | { kind: 'gateway'; info: GatewayInfo };
  /** The membership last given to the network (`membership`), to notice a change. */
  private admitted = '';
  /** Whether this unseated node was told the council admitted it as a gateway. */
  private gatewayNoticed = false;
  apiUrl = '';

  constructor(
    readonly config: NodeConfig,
    private readonly logger: Logger,
    private readonly modules: NodeModules = {},
  ) {}

  /** Opens storage (from a snapshot, if given), loads state, starts network, consensus, roles and the API. */
  async start(options: NodeStartOptions = {}): Promise<void> {
    const log = this.logger;
    const config = this.config;
    this.genesis = await readGenesis(config.genesis);
    this.keys = await readKeyFile(config.key);
    this.selfKey = bytesToHex(this.keys.signing.publicKey);
    this.member = memberOf(this.genesis, this.selfKey, config.name);
    let self = this.member.info;
    if (this.member.kind === 'validator' && !this.member.seated && this.genesis.validators.length < 2)
      throw new DatagrantError(
        'CONFIG_INVALID',
        'this node key is neither a validator nor a gateway in genesis, and a lone dev validator chain seats no other',
      );
    if (this.member.kind === 'gateway' && this.genesis.validators.length < 2) {
      throw new DatagrantError(
        'CONFIG_INVALID',
        'a gateway follows a PBFT chain; this genesis has a lone dev validator, which runs no network',
      );
    }
    const holdsInstitutionKeys = (config.platform?.institutions.length ?? 0) > 0;
    const refuseInstitutionKeys = (): never => {
      // A validator replicates everything; if it also held a bank's key it could open every record
      // granted to that bank without a usage. Only the bank's own gateway may hold it.
      throw new DatagrantError(
        'CONFIG_INVALID',
        "config.platform.institutions: a validator must not hold an institution's key; run the institution's own gateway (a gateway the council adds: start it once its gateway.add commits)",
      );
    };
    // A key genesis does not know may be a gateway the council added: known once the chain loads.
    if (this.member.kind === 'validator' && this.member.seated && holdsInstitutionKeys)
      refuseInstitutionKeys();

    const init = genesisState(this.genesis);
    const facts: NodeFacts = {
      self: this.selfKey,
      secretKey: this.keys.signing.secretKey,
      validators: this.genesis.validators.map((v) => v.key),
      logger: log,
    };
    const levelStore = new LevelBlockStore({
      path: join(config.data, 'chain'),
      home: config.home,
      genesis: {
        genesisHash: genesisHash(this.genesis),
        time: this.genesis.time,
        stateRoot: init.state.root,
        writes: init.writes,
      },
    });
    this.store = this.modules.wrapBlockStore?.(levelStore, facts) ?? levelStore;
    await this.run({ start: () => this.store.open(), stop: () => this.store.close() });
    if (options.snapshot !== undefined) {
      const installed = await installSnapshotFile({
        file: resolve(options.snapshot),
        genesis: this.genesis,
        store: levelStore,
        verifier: verifyFast,
      });
      log.info(
        { height: installed.header.height, stateKeys: installed.entries, from: installed.header.node },
        'started from a state snapshot: blocks before it are not held here',
      );
    }
    const payloads = new LevelPayloadStore({ location: join(config.data, 'payloads'), home: config.home });
    this.payloads = this.modules.wrapPayloadStore?.(payloads, facts) ?? payloads;
    await this.run({ start: () => payloads.open(), stop: () => payloads.close() });

    this.mempool = new Mempool(
      {
        chain: this.genesis.chain,
        maxTxs: config.mempool.maxTxs,
        maxTxTtlMs: this.genesis.params.maxTxTtlMs,
        minQueueTxs: this.genesis.params.maxBlockTxs,
        maxTxBytes: maxBlockBytes(this.genesis.params),
      },
      {
        verifier: verifyFast,
        // In memory: a LevelDB read per admitted transaction costs about half a signature check.
        isCommitted: async (hash) => this.chain.committedRecently(hash),
        now: Date.now,
      },
    );
    this.chain = new Chain(this.genesis, this.store, {
      mempool: this.mempool,
      verifier: verifyFast,
      stateCache: {
        values: config.state?.cacheEntries ?? DEFAULT_STATE_CACHE.values,
        nodes: config.state?.cacheTreeNodes ?? DEFAULT_STATE_CACHE.nodes,
      },
    });
    await this.chain.load();
    if (this.member.kind === 'validator' && !this.member.seated) {
      this.member = memberOf(
        this.genesis,
        this.selfKey,
        config.name,
        gatewaysInForce(this.chain.state, this.genesis.gateways ?? []),
      );
      self = this.member.info;
      if (this.member.kind === 'validator' && holdsInstitutionKeys) refuseInstitutionKeys();
    }
    this.chain.on('committed', () => {
      this.lastCommitAt = Date.now();
      this.admitMembers();
    });
    this.metrics = new NodeMetrics({
      height: () => this.chain.height,
      view: () => this.consensus?.status().view ?? 0,
      peers: () => this.network?.peers().length ?? 0,
      mempool: () => this.mempool.size,
      votesDropped: () => this.consensus?.dropped() ?? {},
      networkDropped: () => ({ ...(this.network?.stats().dropped ?? {}), ...this.gossipDropped }),
    });
    log.info({ height: this.store.tip().height }, 'chain loaded');

    if (this.genesis.validators.length > 1 || this.member.kind === 'gateway')
      this.network = this.createNetwork();
    this.replicator = new PayloadReplicator(
      {
        chain: this.genesis.chain,
        self: this.selfKey,
        secretKey: this.keys.signing.secretKey,
        validators: this.genesis.validators,
      },
      {
        network: this.network,
        payloads: this.payloads,
        height: () => this.chain.height,
        erased: (digest) =>
          (this.chain.state.get(stateKey.record(digest)) as RecordState | undefined)?.erased === true,
        sign: signFast,
        verifier: verifyFast,
        logger: log.child({ module: 'replicator' }),
      },
    );
    this.gateway = new TxGateway({
      chain: this.chain,
      mempool: this.mempool,
      gossip: (txs) => {
        // Requests keep their own topic (the patent's multicast to extractors).
        const requests = txs.filter((tx) => tx.kind === 'request.open');
        if (requests.length > 0) this.publish('requests', requests);
        if (requests.length < txs.length)
          this.publish(
            'txs',
            txs.filter((tx) => tx.kind !== 'request.open'),
          );
      },
      onAdmitted: () => {
        this.producer?.poke();
        this.consensus?.poke();
      },
    });
    if (this.network) {
      for (const topic of ['txs', 'requests'] as const) {
        this.network.subscribe(topic, (data) => {
          const txs = decodeTxGossip(data);
          if (txs === undefined) {
            this.gossipDropped['tx-malformed']++;
            return;
          }
          for (const tx of txs) {
            this.gateway.submit(tx, { gossip: false }).catch((err: unknown) => {
              const code = (err as { code?: unknown }).code;
              if (code === 'LEDGER_TX_MALFORMED' || code === 'LEDGER_TX_TOO_LARGE')
                this.gossipDropped['tx-malformed']++;
              else this.gossipDropped['tx-refused']++;
            });
          }
        });
      }
      if (this.member.kind === 'validator')
        this.network.handle('store', (req, from) => this.replicator.serve(req, from));
      this.network.handle('payload', async (req) => {
        const digest = new TextDecoder().decode(req);
        checkDigest(digest);
        if (this.erasure?.erased(digest))
          throw new DatagrantError('PAYLOAD_ERASED', 'the subject erased this payload');
        const bytes = await this.payloads.get(digest);
        if (!bytes) throw new DatagrantError('PAYLOAD_NOT_FOUND', 'no payload with this digest here');
        return bytes;
      });
      await this.run(this.network);
    }

    if (this.genesis.validators.length === 1 && this.member.kind === 'validator') {
      this.producer = new DevProducer(
        {
          minIntervalMs: config.consensus.minBlockIntervalMs,
          maxIntervalMs: config.consensus.blockIntervalMs,
          publicKey: this.keys.signing.publicKey,
          secretKey: this.keys.signing.secretKey,
        },
        {
          chain: this.chain,
          mempool: this.mempool,
          sign: signFast,
          now: Date.now,
          logger: log.child({ module: 'producer' }),
        },
      );
    } else {
      let consensusNetwork = this.network!;
      const wrapped =
        this.member.kind === 'validator'
          ? this.modules.wrapConsensusNetwork?.(consensusNetwork, facts)
          : undefined;
      if (wrapped) {
        await this.run(wrapped);
        consensusNetwork = wrapped;
      }
      const voting = this.member.kind === 'validator';
      this.consensus = new PbftDriver(
        {
          // A gateway runs the core as an observer: it signs nothing and is never in a quorum.
          ...(voting ? { self: this.selfKey, secretKey: this.keys.signing.secretKey } : {}),
          timing: {
            blockIntervalMs: config.consensus.blockIntervalMs,
            ...(config.consensus.viewTimeoutMs ? { viewTimeoutMs: config.consensus.viewTimeoutMs } : {}),
            ...(config.consensus.maxClockSkewMs ? { maxClockSkewMs: config.consensus.maxClockSkewMs } : {}),
          },
          minBlockIntervalMs: config.consensus.minBlockIntervalMs,
        },
        {
          chain: this.chain,
          mempool: this.mempool,
          network: consensusNetwork,
          metrics: this.metrics,
          // A proposal names its transactions; send the ones still waiting to be gossiped first.
          beforePropose: () => this.gateway.flushGossip(),
          logger: log.child({ module: 'consensus' }),
          signing: (() => {
            const file = new FileSigningState(
              resolve(config.home, config.signingState ?? SIGNING_STATE_FILE),
            );
            return this.modules.wrapSigningState?.(file, facts) ?? file;
          })(),
          onFatal: () => {
            process.exitCode = 70;
            void this.stop();
          },
        },
      );
    }

    this.erasure = new ErasureRole(
      {
        sweepEveryBlocks: ERASURE_SWEEP_BLOCKS,
        // A record.put must commit within a transaction's lifetime of its payload being stored.
        orphanAfterMs: this.genesis.params.maxTxTtlMs + 10 * 60 * 1000,
      },
      {
        chain: this.chain,
        payloads: this.payloads,
        logger: log.child({ module: 'erasure' }),
        now: Date.now,
      },
    );
    await this.run(this.erasure);
    if (
      this.member.kind === 'validator' &&
      this.member.info.roles.includes('extractor') &&
      config.extractor
    ) {
      const sources = config.extractor.sources.map((s) => createDataSource(s, { baseDir: config.home }));
      const submitTx = async (tx: AnyTx) => {
        await this.gateway.submit(tx);
      };
      const extractorTimeoutMs = config.extractor.timeoutMs ?? DEFAULT_EXTRACTOR_OPTIONS.timeoutMs;
      const extractorRetries = config.extractor.retries ?? DEFAULT_EXTRACTOR_OPTIONS.retries;
      const extractor = new Extractor(
        {
          chain: this.genesis.chain,
          nodeKey: this.keys.signing,
          timeoutMs: extractorTimeoutMs,
          retries: extractorRetries,
          backoffMs: DEFAULT_EXTRACTOR_OPTIONS.backoffMs,
          maxBackoffMs: DEFAULT_EXTRACTOR_OPTIONS.maxBackoffMs,
        },
        {
          sources,
          payloads: this.payloads,
          submit: this.modules.wrapExtractorSubmit?.(submitTx, facts) ?? submitTx,
          replicate: (digest, bytes, signal) => this.replicator.replicate(digest, bytes, signal),
          logger: log,
          now: Date.now,
          sign: signFast,
        },
      );
      await this.run(
        new ExtractorRole(
          {
            selfKey: this.selfKey,
            fallbackMs: extractorFallbackMs(extractorTimeoutMs, extractorRetries),
            policy: extractionPolicy(this.genesis.params),
            rescanEveryBlocks: DEFAULT_RESCAN_EVERY_BLOCKS,
          },
          {
            chain: this.chain,
            extractor,
            pending: this.mempool,
            logger: log.child({ module: 'extractor-role' }),
            metrics: {
              rescans: this.metrics.extractorRescans,
              reruns: this.metrics.extractorReruns,
              pendingSkips: this.metrics.extractorPendingSkips,
            },
            now: Date.now,
            // Not before this node has caught up: a syncing node would re-run what is committed already.
            caughtUp: () => this.consensus === undefined || !this.consensus.behind,
          },
        ),
      );
    }

    const { enabled: rateLimited, ...rateLimit } = config.api.rateLimit ?? {};
    this.api = await createApi({
      bodyLimit: config.api.bodyLimit ?? DEFAULT_BODY_LIMIT,
      ...(config.api.maxEventStreams ? { maxEventStreams: config.api.maxEventStreams } : {}),
      logger: log.child({ module: 'api' }),
      rateLimit: rateLimited === false ? false : rateLimit,
    });
    // One verifier and one replay guard for every signed call this node serves.
    const replay = new LevelReplayGuard({ location: join(config.data, 'replay'), home: config.home });
    await this.run(replay);
    const auth = new HttpAuthVerifier(
      { maxSkewMs: SIGNED_CALL_SKEW_MS, audience: this.selfKey, chain: this.genesis.chain },
      { callerKey: (caller) => this.callerKey(caller), verifier: verifyFast, replay, now: Date.now },
    );
    const identify = async (request: FastifyRequest) =>
      request.headers[SIGNED_CALL_HEADERS.signature] === undefined
        ? undefined
        : auth.verify(request.method, request.url, request.rawBody ?? '', request.headers);
    await chainRoutes(this.api, {
      chain: this.chain,
      mempool: this.mempool,
      node: this,
      submit: (tx) => this.gateway.submit(tx),
      identify,
    });
    // The operator's backup of this running node (node/backup.ts), from the unwrapped stores.
    const backup = new BackupService(
      {
        chain: this.genesis.chain,
        genesisHash: genesisHash(this.genesis),
        node: config.name,
        nodeKey: this.selfKey,
      },
      {
        stores: { chain: levelStore, payloads },
        now: Date.now,
        logger: log.child({ module: 'backup' }),
      },
    );
    const snapshot = new SnapshotService(
      {
        chain: this.genesis.chain,
        genesisHash: genesisHash(this.genesis),
        node: config.name,
        nodeKey: this.selfKey,
        rule: stateRootRule(this.genesis.params),
      },
      {
        store: levelStore,
        links: (height) => validatorLinks(this.chain.validatorEpochs(), height, levelStore),
        now: Date.now,
        logger: log.child({ module: 'snapshot' }),
      },
    );
    await adminRoutes(this.api, { identify, backup, snapshot });
    await webRoutes(this.api, { connectOrigins: config.api.registrarOrigins ?? [] });
    await this.modules.extraRoutes?.(this.api, { network: this.network, store: this.store }, facts);
    if ((self.roles as readonly string[]).includes('platform')) {
      const institutions = new Map<string, KeySet>();
      for (const entry of config.platform?.institutions ?? [])
        institutions.set(
          entry.id,
          await readKeyFile(entry.key, process.env.DATAGRANT_PASSPHRASE || undefined),
        );
      const platform = new Platform(DEFAULT_PLATFORM_OPTIONS, {
        chain: this.chain,
        gateway: this.gateway,
        payloads: this.payloads,
        fetchRemote: (digest) => this.fetchPayload(digest),
        institutions,
        now: Date.now,
        logger: log.child({ module: 'platform' }),
        sign: signFast,
      });
      this.platform = platform;
      await platformRoutes(this.api, { platform, auth });
    }
    this.metrics.route(this.api);
    await this.run(this.producer ?? this.consensus!);
    const address = await this.api.listen({ host: config.api.host, port: config.api.port });
    this.started.push({ start: async () => {}, stop: () => this.api.close() });
    this.apiUrl = address;
    log.info(
      { api: address, kind: this.member.kind, roles: self.roles, validators: this.genesis.validators.length },
      'node started',
    );
  }

  /** Stops everything started, in reverse order; safe to call twice. */
  async stop(): Promise<void> {
    while (this.started.length > 0) {
      const service = this.started.pop()!;
      try {
        await service.stop();
      } catch (err) {
        this.logger.error({ err }, 'stop failed');
      }
    }
  }

  status(): ReturnType<NodeStatusSource['status']> {
    const consensus = this.consensus?.status();
    return {
      mode: this.producer ? 'dev' : 'pbft',
      kind: this.member.kind,
      voting: this.producer !== undefined || (this.consensus?.isVoting ?? false),
      ...(this.consensus?.doubleSignCheckUntil !== undefined
        ? { doubleSignCheckUntil: this.consensus.doubleSignCheckUntil }
        : {}),
      view: consensus?.view ?? 0,
      primary: consensus?.primary ?? this.selfKey,
      peers: this.network?.peers() ?? [],
      lastCommitAt: this.lastCommitAt,
      self: this.selfKey,
    };
  }

  /**
   * The checks behind `/readyz`: synced (consensus not behind), peers (a quorum of validators
   * reachable, this one included when it is a validator), and the block store taking a durable
   * write (probed at most every 2 s).
   */
  async readiness(): Promise<Readiness> {
    const validators = this.chain.validatorsAt(this.chain.height + 1).map((v) => v.key);
    const connected = new Set(this.network?.peers() ?? []);
    const reachable = validators.filter((k) => k === this.selfKey || connected.has(k)).length;
    const peers = this.producer !== undefined || reachable >= quorumSize(validators.length);
    const now = Date.now();
    if (this.storeProbe === undefined || now - this.storeProbe.at > STORE_PROBE_MS) {
      let ok = true;
      try {
        await this.store.putMeta('readyz-probe', String(now));
      } catch {
        ok = false;
      }
      this.storeProbe = { at: now, ok };
    }
    return { synced: !(this.consensus?.behind ?? false), peers, storeWritable: this.storeProbe.ok };
  }

  /**
   * The active signing key (hex) of a caller of a signed call: an institution, a subject, or this
   * node's operator (`node:<this node's name>`, this node's own key; no other node's).
   */
  private callerKey(caller: Caller): string | undefined {
    if (caller.kind === 'node') return caller.id === this.config.name ? this.selfKey : undefined;
    const state = this.chain.state;
    if (caller.kind === 'institution') {
      const inst = state.get(stateKey.institution(caller.id)) as
        | { signKey: string; active: boolean }
        | undefined;
      return inst?.active ? inst.signKey : undefined;
    }
    return (state.get(stateKey.subject(caller.id)) as { signKey: string } | undefined)?.signKey;
  }

  liveness(): Record<string, number | null> {
    return this.consensus?.liveness() ?? {};
  }

  private async run(service: Service): Promise<void> {
    await service.start();
    this.started.push(service);
  }

  private createNetwork(): Network {
    const config = this.config;
    const options: Libp2pNetworkOptions = {
      secretKey: this.keys.signing.secretKey,
      listen: config.p2p.listen,
      ...(config.p2p.announce ? { announce: config.p2p.announce } : {}),
      bootstrap: config.p2p.peers.map((p) => `${p.addr}/p2p/${peerIdOf(p.key)}`),
      // Who may connect is the chain's decision: validators and the gateways genesis admits.
      allowedKeys: this.membership().members,
      topicSenders: { consensus: this.membership().validators },
      maxMessageBytes: 16 * 1024 * 1024,
      // A `store` request carries a whole ciphertext (other requests are small).
      maxRequestBytes: MAX_STORED_PAYLOAD_BYTES,
      protocolPrefix: `/datagrant/${this.genesis.chain}`,
      // Every validator dials every other, so a publish reaches all of them directly; eager relays
      // would only be duplicates (about half the gossip CPU). Lazy gossip still repairs a missing link.
      relay: false,
    };
    return this.modules.createNetwork?.(options) ?? new Libp2pNetwork(options, { logger: this.logger });
  }

  /**
   * Who the network admits now: the validators of the committed height, the next one and any set
   * scheduled after it (a seated validator connects to sync before its first height; a retired
   * one stays until the height after its last), then the gateways in force (genesis's, plus those
   * the council added, less those it retired); and who may send consensus messages (the same
   * validators).
   */
  private membership(): { members: string[]; validators: string[] } {
    const h = this.chain.height;
    const sets = [
      this.chain.validatorsAt(h),
      this.chain.validatorsAt(h + 1),
      ...this.chain
        .validatorEpochs()
        .filter((e) => e.from > h + 1)
        .map((e) => e.validators),
    ];
    const validators = [...new Set(sets.flatMap((set) => set.map((v) => v.key)))];
    const gateways = gatewaysInForce(this.chain.state, this.genesis.gateways ?? []).map((g) => g.key);
    return { members: [...new Set([...validators, ...gateways])], validators };
  }

  /** After a commit: hands the network a membership a validator-set or gateway change altered. */
  private admitMembers(): void {
    if (!this.network) return;
    const m = this.membership();
    if (
      this.member.kind === 'validator' &&
      !this.member.seated &&
      !this.gatewayNoticed &&
      gatewaysInForce(this.chain.state, this.genesis.gateways ?? []).some((g) => g.key === this.selfKey)
    ) {
      // Roles are fixed at start: a gateway the council admitted after this node started serves
      // them from its next start (it syncs meanwhile, and never votes).
      this.gatewayNoticed = true;
      this.logger.warn({}, 'the council admitted this node as a gateway: restart it to serve its roles');
    }
    const id = `${m.members.join(',')}|${m.validators.join(',')}`;
    if (this.admitted === '') this.admitted = id;
    if (id === this.admitted) return;
    this.admitted = id;
    this.logger.info(
      { validators: m.validators.length, members: m.members.length },
      'network membership changed',
    );
    this.network.setAllowedKeys(m.members, { consensus: m.validators });
  }

  private publish(topic: 'txs' | 'requests', txs: AnyTx[]): void {
    for (const message of encodeTxGossip(txs)) this.network?.publish(topic, message).catch(() => {});
  }

  /**
   * Asks other nodes for a ciphertext by digest: the record's holders (the validators whose
   * storage receipts it carries) first, then every other peer; the first that matches wins.
   */
  private async fetchPayload(digest: string): Promise<Uint8Array | undefined> {
    const record = this.chain.state.get(stateKey.record(digest)) as RecordState | undefined;
    return this.replicator.fetch(digest, record?.holders ?? []);
  }
}
