/**
 * A datagrant node: wires storage, chain, mempool, consensus, network and the API from one
 * config, starts them in order and stops them in reverse.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { chainRoutes, type NodeStatusSource } from '../api/chain-routes.js';
import { createApi, DEFAULT_BODY_LIMIT } from '../api/server.js';
import { bytesToHex } from '../common/bytes.js';
import { signFast, verifyFast } from '../common/crypto-node.js';
import { DatagrantError } from '../common/errors.js';
import type { KeySet } from '../common/keyfile.js';
import { readKeyFile } from '../common/keyfile-fs.js';
import type { Logger } from '../common/logger.js';
import { type Genesis, genesisHash, genesisState, LevelBlockStore, parseGenesis } from '../ledger/index.js';
import { Chain } from './chain.js';
import type { NodeConfig } from './config.js';
import { DevProducer } from './dev-producer.js';
import { Mempool } from './mempool.js';

/** Reads and validates a genesis file. */
export async function readGenesis(path: string): Promise<Genesis> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new DatagrantError(
      'LEDGER_GENESIS_INVALID',
      `cannot read genesis ${path}: ${(err as Error).message}`,
    );
  }
  return parseGenesis(json);
}

/** One running node. */
export class DatagrantNode implements NodeStatusSource {
  genesis!: Genesis;
  keys!: KeySet;
  chain!: Chain;
  mempool!: Mempool;
  api!: FastifyInstance;
  private store!: LevelBlockStore;
  private producer: DevProducer | undefined;
  private lastCommitAt: number | null = null;
  private selfKey = '';
  apiUrl = '';

  constructor(
    readonly config: NodeConfig,
    private readonly logger: Logger,
  ) {}

  /** Opens storage, loads state, starts consensus and the API. */
  async start(): Promise<void> {
    const log = this.logger;
    this.genesis = await readGenesis(this.config.genesis);
    this.keys = await readKeyFile(this.config.key);
    this.selfKey = bytesToHex(this.keys.signing.publicKey);
    if (!this.genesis.validators.some((v) => v.key === this.selfKey)) {
      throw new DatagrantError('CONFIG_INVALID', 'this node key is not a validator in genesis');
    }
    const init = genesisState(this.genesis);
    this.store = new LevelBlockStore({
      path: join(this.config.data, 'chain'),
      genesis: {
        genesisHash: genesisHash(this.genesis),
        time: this.genesis.time,
        stateRoot: init.state.root,
        writes: init.writes,
      },
    });
    await this.store.open();
    this.mempool = new Mempool(
      {
        chain: this.genesis.chain,
        maxTxs: this.config.mempool.maxTxs,
        maxTxTtlMs: this.genesis.params.maxTxTtlMs,
      },
      {
        verifier: verifyFast,
        isCommitted: async (hash) => (await this.store.getTxLocation(hash)) !== undefined,
        now: Date.now,
      },
    );
    this.chain = new Chain(this.genesis, this.store, { mempool: this.mempool, verifier: verifyFast });
    await this.chain.load();
    this.chain.on('committed', (event) => {
      this.lastCommitAt = Date.now();
      log.debug(
        { height: event.certified.block.header.height, txs: event.txHashes.length },
        'block committed',
      );
    });
    log.info({ height: this.store.tip().height, stateKeys: this.chain.state.size }, 'chain loaded');

    if (this.genesis.validators.length === 1) {
      this.producer = new DevProducer(
        {
          minIntervalMs: this.config.consensus.minBlockIntervalMs,
          maxIntervalMs: this.config.consensus.blockIntervalMs,
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
      throw new DatagrantError('CONFIG_INVALID', 'multi-validator consensus is not wired into this build');
    }

    this.api = await createApi({
      bodyLimit: this.config.api.bodyLimit ?? DEFAULT_BODY_LIMIT,
      logger: log.child({ module: 'api' }),
    });
    await chainRoutes(this.api, {
      chain: this.chain,
      mempool: this.mempool,
      node: this,
      onAdmitted: () => this.producer?.poke(),
    });
    await this.producer.start();
    const address = await this.api.listen({ host: this.config.api.host, port: this.config.api.port });
    this.apiUrl = address;
    log.info({ api: address, validators: this.genesis.validators.length }, 'node started');
  }

  /** Stops in reverse order; safe to call twice. */
  async stop(): Promise<void> {
    await this.api?.close();
    await this.producer?.stop();
    await this.store?.close();
  }

  status(): ReturnType<NodeStatusSource['status']> {
    return {
      mode: this.genesis.validators.length === 1 ? 'dev' : 'pbft',
      view: 0,
      primary: this.selfKey,
      peers: [],
      lastCommitAt: this.lastCommitAt,
      self: this.selfKey,
    };
  }
}
