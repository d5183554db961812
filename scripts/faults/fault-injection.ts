/**
 * Fault injection for the fault suite (`npm run faults`). Exists only when the node is started
 * with `DATAGRANT_FAULT_INJECTION=1`: a block store whose writes can be made to fail (a full or
 * broken disk), and `POST /v1/admin/faults`, served to loopback clients only, to cut this node
 * off from some validators (libp2p connection gating), heal that, or fail the disk.
 */
import type { FastifyInstance } from 'fastify';
import { ErrorBodySchema } from '../../src/api/errors.js';
import { DatagrantError } from '../../src/common/errors.js';
import type { Logger } from '../../src/common/logger.js';
import type {
  BlockStore,
  CertifiedBlock,
  ChainTip,
  CommitEffects,
  CommittedState,
  SubjectTxRef,
  TxLocation,
} from '../../src/ledger/index.js';
import type { Network } from '../../src/p2p/index.js';

/** Environment variable that turns fault injection on (value `1`). */
export const FAULT_INJECTION_ENV = 'DATAGRANT_FAULT_INJECTION';

/** True when fault injection is turned on in `env`. */
export function faultInjectionEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[FAULT_INJECTION_ENV] === '1';
}

/** A block store that passes everything through until told to fail every write from then on. */
export class FaultyBlockStore implements BlockStore {
  private failing = false;

  constructor(private readonly inner: BlockStore) {}

  /** From now on every write (block commit, consensus write-ahead state) throws `STORE_WRITE_FAILED`. */
  failWrites(): void {
    this.failing = true;
  }

  /** Whether writes fail. */
  get writesFailing(): boolean {
    return this.failing;
  }

  private check(): void {
    if (this.failing)
      throw new DatagrantError('STORE_WRITE_FAILED', 'ENOSPC: no space left on device (injected fault)');
  }

  open(): Promise<void> {
    return this.inner.open();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  tip(): ChainTip {
    return this.inner.tip();
  }
  async commit(certified: CertifiedBlock, effects: CommitEffects): Promise<void> {
    this.check();
    return this.inner.commit(certified, effects);
  }
  getBlock(height: number): Promise<CertifiedBlock | undefined> {
    return this.inner.getBlock(height);
  }
  getBlockByHash(hash: string): Promise<CertifiedBlock | undefined> {
    return this.inner.getBlockByHash(hash);
  }
  getTxLocation(hash: string): Promise<TxLocation | undefined> {
    return this.inner.getTxLocation(hash);
  }
  txsBySubject(subject: string, options?: { limit?: number; afterHeight?: number }): Promise<SubjectTxRef[]> {
    return this.inner.txsBySubject(subject, options);
  }
  loadState(into: CommittedState): Promise<void> {
    return this.inner.loadState(into);
  }
  async putMeta(key: string, value: string): Promise<void> {
    this.check();
    return this.inner.putMeta(key, value);
  }
  getMeta(key: string): Promise<string | undefined> {
    return this.inner.getMeta(key);
  }
}

/** Body of `POST /v1/admin/faults`. */
export interface FaultCommand {
  /** Validator keys this node cuts itself off from (connections refused both ways). */
  partition?: string[];
  /** Reconnects to every validator. */
  heal?: boolean;
  /** Makes every later store write fail; the node then leaves consensus and stops. */
  diskFail?: boolean;
}

const KEY = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;

/** Registers `POST /v1/admin/faults` (call only when fault injection is enabled). */
export async function faultInjectionRoutes(
  app: FastifyInstance,
  modules: {
    network: Network | undefined;
    store: FaultyBlockStore;
    /** Every validator key of genesis (this node's included). */
    validators: readonly string[];
    self: string;
    logger: Logger;
  },
): Promise<void> {
  const { network, store, validators, self, logger } = modules;
  let cut: string[] = [];
  app.post<{ Body: FaultCommand }>(
    '/v1/admin/faults',
    {
      schema: {
        hide: true,
        body: {
          type: 'object',
          properties: {
            partition: { type: 'array', items: KEY, maxItems: 100 },
            heal: { type: 'boolean' },
            diskFail: { type: 'boolean' },
          },
          additionalProperties: false,
          minProperties: 1,
        },
        response: { 400: ErrorBodySchema, 403: ErrorBodySchema },
      },
    },
    async (request) => {
      const ip = request.ip ?? '';
      if (!(ip.startsWith('127.') || ip === '::1' || ip.startsWith('::ffff:127.')))
        throw new DatagrantError('API_FORBIDDEN', 'fault injection is served to loopback clients only');
      const command = request.body;
      if (command.heal) cut = [];
      if (command.partition) cut = command.partition.filter((k) => k !== self);
      if (command.heal || command.partition) {
        const blocked = new Set(cut);
        network?.setAllowedKeys(validators.filter((k) => !blocked.has(k)));
        logger.warn({ cut }, cut.length > 0 ? 'fault injected: partition' : 'fault healed: partition');
      }
      if (command.diskFail) {
        store.failWrites();
        logger.warn('fault injected: store writes fail from now on');
      }
      return { partitioned: cut, diskFailing: store.writesFailing };
    },
  );
}
