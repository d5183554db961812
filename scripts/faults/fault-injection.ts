/**
 * Fault injection for the fault suite (`npm run faults`). Exists only when the node is started
 * with `DATAGRANT_FAULT_INJECTION=1`: a block store whose writes can be made to fail (a full or
 * broken disk), a payload store whose next writes are lost (acknowledged, never stored) or fail
 * half-way, an extractor whose next `record.put` transactions are dropped on the way out, and
 * `POST /v1/admin/faults`, served to loopback clients only, to cut this node off from some
 * validators (libp2p connection gating), heal that, fail the disk, or arm the payload faults.
 */
import type { FastifyInstance } from 'fastify';
import { ErrorBodySchema } from '../../src/api/errors.js';
import { DatagrantError } from '../../src/common/errors.js';
import type { Logger } from '../../src/common/logger.js';
import type {
  AnyTx,
  BlockStore,
  CertifiedBlock,
  ChainTip,
  CommitEffects,
  CommittedState,
  StateStorage,
  SubjectTxRef,
  TxLocation,
} from '../../src/ledger/index.js';
import type { Network } from '../../src/p2p/index.js';
import type { PayloadStore } from '../../src/records/payload-store.js';

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
  stateStorage(): StateStorage {
    return this.inner.stateStorage();
  }
  async putMeta(key: string, value: string): Promise<void> {
    this.check();
    return this.inner.putMeta(key, value);
  }
  getMeta(key: string): Promise<string | undefined> {
    return this.inner.getMeta(key);
  }
}

/** How the next payload writes go wrong. */
export type PayloadWriteFault = 'lose' | 'tear';

/**
 * A payload store whose next `n` writes go wrong: `lose` acknowledges the write and stores nothing
 * (a disk that drops acknowledged writes); `tear` stores nothing and fails with an I/O error, as a
 * write torn by a crash (LevelDB never keeps half a batch, so a torn write leaves no value).
 */
export class FaultyPayloadStore implements PayloadStore {
  private fault: PayloadWriteFault | undefined;
  private remaining = 0;
  /** Writes that went wrong so far. */
  injected = 0;

  constructor(private readonly inner: PayloadStore) {}

  /** Arms `fault` for the next `count` writes. */
  arm(fault: PayloadWriteFault, count: number): void {
    this.fault = fault;
    this.remaining = count;
  }

  async put(digest: string, bytes: Uint8Array): Promise<void> {
    if (this.fault !== undefined && this.remaining > 0) {
      this.remaining--;
      this.injected++;
      if (this.fault === 'lose') return;
      throw new DatagrantError('STORE_WRITE_FAILED', 'EIO: payload write torn (injected fault)');
    }
    return this.inner.put(digest, bytes);
  }
  get(digest: string): Promise<Uint8Array | undefined> {
    return this.inner.get(digest);
  }
  delete(digest: string): Promise<void> {
    return this.inner.delete(digest);
  }
  has(digest: string): Promise<boolean> {
    return this.inner.has(digest);
  }
  list(): AsyncIterable<{ digest: string; addedAt: number }> {
    return this.inner.list();
  }
  compact(): Promise<void> {
    return this.inner.compact();
  }
}

/** Drops the next `n` `record.put` transactions an extractor submits (they seem sent, and are lost). */
export class RecordPutDropper {
  private remaining = 0;
  /** Transactions dropped so far. */
  dropped = 0;

  /** Drops the next `count` record.put submissions. */
  arm(count: number): void {
    this.remaining = count;
  }

  /** Wraps the extractor's submit. */
  wrap(submit: (tx: AnyTx) => Promise<void>): (tx: AnyTx) => Promise<void> {
    return async (tx) => {
      if (tx.kind === 'record.put' && this.remaining > 0) {
        this.remaining--;
        this.dropped++;
        return;
      }
      return submit(tx);
    };
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
  /** Makes the next `count` payload writes go wrong. */
  payloadWrites?: { fault: PayloadWriteFault; count: number };
  /** Drops the next `n` record.put transactions this node's extractor submits. */
  dropRecordPuts?: number;
  /** Changes nothing: only answers what has been injected so far. */
  status?: boolean;
}

const KEY = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;

/** Registers `POST /v1/admin/faults` (call only when fault injection is enabled). */
export async function faultInjectionRoutes(
  app: FastifyInstance,
  modules: {
    network: Network | undefined;
    store: FaultyBlockStore;
    payloads: FaultyPayloadStore | undefined;
    recordPuts: RecordPutDropper;
    /** Every validator key of genesis (this node's included). */
    validators: readonly string[];
    self: string;
    logger: Logger;
  },
): Promise<void> {
  const { network, store, payloads, recordPuts, validators, self, logger } = modules;
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
            payloadWrites: {
              type: 'object',
              properties: {
                fault: { type: 'string', enum: ['lose', 'tear'] },
                count: { type: 'integer', minimum: 0, maximum: 1000 },
              },
              required: ['fault', 'count'],
              additionalProperties: false,
            },
            dropRecordPuts: { type: 'integer', minimum: 0, maximum: 1000 },
            status: { type: 'boolean' },
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
      if (command.payloadWrites) {
        payloads?.arm(command.payloadWrites.fault, command.payloadWrites.count);
        logger.warn(command.payloadWrites, 'fault injected: payload writes');
      }
      if (command.dropRecordPuts !== undefined) {
        recordPuts.arm(command.dropRecordPuts);
        logger.warn({ count: command.dropRecordPuts }, 'fault injected: record.put dropped');
      }
      return {
        partitioned: cut,
        diskFailing: store.writesFailing,
        payloadWritesInjected: payloads?.injected ?? 0,
        recordPutsDropped: recordPuts.dropped,
      };
    },
  );
}
