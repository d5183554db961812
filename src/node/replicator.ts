/**
 * Payload availability between nodes: a validator stores ciphertexts extractors hand it and
 * answers with a signed storage receipt (`serve`, the `store` protocol); an extractor node pushes
 * a fresh ciphertext to every validator at once and collects receipts until f + 1 distinct
 * validators (itself among them) hold it (`replicate`); and any node fetches a ciphertext it lacks
 * from the record's holders first (`fetch`, the `payload` protocol's client side).
 *
 * A validator stores only for a genesis extractor (the only signers the ledger takes a record
 * from), only up to `maxPayloadBytes`, never a digest the subject erased, and at most
 * `maxConcurrentStores` at once (the rest are refused busy, not queued). A stored payload gets its
 * `~added` time like any other, so one whose record never commits is collected by the erasure
 * sweep as an orphan, on every holder alike.
 */
import { sha256Hex } from '../common/crypto.js';
import { DatagrantError, isDatagrantError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import {
  receiptQuorum,
  type SignatureVerifier,
  type StorageReceipt,
  type ValidatorInfo,
} from '../ledger/index.js';
import type { Network } from '../p2p/index.js';
import {
  decodeStorageReceipt,
  encodeStorageReceipt,
  type PayloadStore,
  signStorageReceipt,
  verifyStorageReceipt,
} from '../records/index.js';

/** Largest ciphertext a validator stores (the ledger's `record.put` size limit). */
export const MAX_STORED_PAYLOAD_BYTES = 16 * 1024 * 1024;

/** Plain configuration of the replicator. */
export interface PayloadReplicatorOptions {
  chain: string;
  /** This node's Ed25519 public key (hex). */
  self: string;
  /** This node's Ed25519 secret key: signs its receipts (only used when it is a validator). */
  secretKey: Uint8Array;
  /** The genesis validators. */
  validators: readonly ValidatorInfo[];
  /** Stores served at once (default 4); more are refused with PAYLOAD_STORE_BUSY. */
  maxConcurrentStores?: number;
  /** Time allowed for one store request to one validator, in ms (default 30 s). */
  storeTimeoutMs?: number;
  /** Once f + 1 receipts are in, how long to wait for more before returning (default 250 ms). */
  graceMs?: number;
  /** Time allowed for one fetch from one peer, in ms (default 5 s). */
  fetchTimeoutMs?: number;
}

/** Collaborators of the replicator. */
export interface PayloadReplicatorModules {
  /** The transport; undefined on a lone dev validator (which is its own f + 1). */
  network: Network | undefined;
  payloads: PayloadStore;
  /** The committed tip height, stamped into this node's receipts. */
  height: () => number;
  /** Whether the ledger says the subject erased `digest`. */
  erased: (digest: string) => boolean;
  sign: (message: Uint8Array, secretKey: Uint8Array) => Uint8Array;
  verifier: SignatureVerifier;
  logger: Logger;
}

/** Stores, replicates and fetches ciphertexts for one node. */
export class PayloadReplicator {
  readonly #options: Required<PayloadReplicatorOptions>;
  readonly #modules: PayloadReplicatorModules;
  readonly #validators: Set<string>;
  readonly #extractors: Set<string>;
  #storing = 0;

  constructor(options: PayloadReplicatorOptions, modules: PayloadReplicatorModules) {
    this.#options = {
      maxConcurrentStores: 4,
      storeTimeoutMs: 30_000,
      graceMs: 250,
      fetchTimeoutMs: 5000,
      ...options,
    };
    this.#modules = modules;
    this.#validators = new Set(options.validators.map((v) => v.key));
    this.#extractors = new Set(
      options.validators.filter((v) => v.roles.includes('extractor')).map((v) => v.key),
    );
  }

  /** Distinct validators whose receipts a record needs: f + 1. */
  get quorum(): number {
    return receiptQuorum(this.#validators.size);
  }

  /** This node's own receipt for a ciphertext it holds (it must be a validator). */
  #ownReceipt(digest: string, size: number): StorageReceipt {
    return signStorageReceipt(
      {
        validator: this.#options.self,
        digest,
        size,
        chain: this.#options.chain,
        height: this.#modules.height(),
      },
      this.#options.secretKey,
      this.#modules.sign,
    );
  }

  /**
   * Answers a `store` request from `from`: the request is the ciphertext itself; the answer is
   * this validator's signed receipt for it, after the bytes are durably in its payload store.
   * Errors (coded, sent back to the caller): PAYLOAD_STORE_REFUSED (this node is no validator),
   * PAYLOAD_STORE_FORBIDDEN (the sender is no extractor), PAYLOAD_BAD_BYTES / PAYLOAD_TOO_LARGE,
   * PAYLOAD_STORE_BUSY, PAYLOAD_ERASED.
   */
  async serve(req: Uint8Array, from: string): Promise<Uint8Array> {
    if (!this.#validators.has(this.#options.self))
      throw new DatagrantError('PAYLOAD_STORE_REFUSED', 'only a validator stores payloads for records');
    if (!this.#extractors.has(from))
      throw new DatagrantError('PAYLOAD_STORE_FORBIDDEN', 'only an extractor may have payloads stored');
    if (req.length === 0) throw new DatagrantError('PAYLOAD_BAD_BYTES', 'empty payload');
    if (req.length > MAX_STORED_PAYLOAD_BYTES)
      throw new DatagrantError('PAYLOAD_TOO_LARGE', `payload is over ${MAX_STORED_PAYLOAD_BYTES} bytes`);
    if (this.#storing >= this.#options.maxConcurrentStores)
      throw new DatagrantError('PAYLOAD_STORE_BUSY', 'too many payloads being stored; try another validator');
    this.#storing++;
    try {
      const digest = sha256Hex(req);
      if (this.#modules.erased(digest))
        throw new DatagrantError('PAYLOAD_ERASED', 'the subject erased this payload');
      await this.#modules.payloads.put(digest, req);
      return encodeStorageReceipt(this.#ownReceipt(digest, req.length));
    } finally {
      this.#storing--;
    }
  }

  /**
   * Has `bytes` (whose digest is `digest`, already in this node's store) stored by validators:
   * this node's own receipt when it is a validator, and one `store` request to every other
   * validator at once, each answer checked (signed by the validator asked, for this digest, size
   * and chain). Resolves once f + 1 distinct validators hold it, with whatever else arrived within
   * `graceMs`; rejects with EXTRACTOR_REPLICATION_FAILED when every validator has answered or
   * failed short of that, and with the signal's reason when it fires.
   */
  async replicate(digest: string, bytes: Uint8Array, signal?: AbortSignal): Promise<StorageReceipt[]> {
    const { self, chain } = this.#options;
    const failed = (why: string) => new DatagrantError('EXTRACTOR_REPLICATION_FAILED', why, { digest });
    if (sha256Hex(bytes) !== digest) throw failed('bytes do not hash to the digest');
    const receipts: StorageReceipt[] = [];
    if (this.#validators.has(self)) {
      if (!(await this.#modules.payloads.has(digest))) await this.#modules.payloads.put(digest, bytes);
      receipts.push(this.#ownReceipt(digest, bytes.length));
    }
    const network = this.#modules.network;
    const others = [...this.#validators].filter((v) => v !== self);
    const quorum = this.quorum;
    if (network === undefined || others.length === 0) {
      if (receipts.length >= quorum) return receipts;
      throw failed('no validator to store on');
    }
    if (signal?.aborted) throw signal.reason;
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const log = this.#modules.logger;
    try {
      return await new Promise<StorageReceipt[]>((resolve, reject) => {
        let pending = others.length;
        let graceTimer: ReturnType<typeof setTimeout> | undefined;
        const finish = () => {
          clearTimeout(graceTimer);
          if (receipts.length >= quorum) resolve([...receipts]);
          else reject(failed(`${receipts.length} of the ${quorum} validators needed stored it`));
        };
        controller.signal.addEventListener('abort', () => {
          clearTimeout(graceTimer);
          reject(signal?.reason ?? failed('aborted'));
        });
        if (receipts.length >= quorum) graceTimer = setTimeout(finish, this.#options.graceMs);
        for (const peer of others) {
          network
            .request(peer, 'store', bytes, {
              signal: controller.signal,
              timeoutMs: this.#options.storeTimeoutMs,
            })
            .then((answer) => {
              const receipt = decodeStorageReceipt(answer);
              if (
                !verifyStorageReceipt(
                  receipt,
                  { validator: peer, digest, size: bytes.length, chain },
                  this.#modules.verifier,
                )
              )
                throw new DatagrantError('PAYLOAD_RECEIPT_INVALID', 'the receipt does not verify');
              receipts.push(receipt);
              if (receipts.length === quorum) graceTimer = setTimeout(finish, this.#options.graceMs);
            })
            .catch((err: unknown) => {
              const code = isDatagrantError(err)
                ? ((err.meta.remoteCode as string | undefined) ?? err.code)
                : 'UNKNOWN';
              if (!controller.signal.aborted)
                log.debug({ peer, digest, code }, 'a validator did not store the payload');
            })
            .finally(() => {
              if (--pending === 0) finish();
            });
        }
      });
    } finally {
      signal?.removeEventListener('abort', onAbort);
      // Whatever is still in flight is no longer needed: the record goes out with what came in.
      if (!controller.signal.aborted) controller.abort(failed('done'));
    }
  }

  /**
   * Fetches a ciphertext this node lacks: from `holders` first (the validators whose receipts the
   * record carries; connected ones before the others), then from every other connected peer; the
   * first answer that hashes to `digest` wins and is kept in this node's store.
   */
  async fetch(digest: string, holders: readonly string[] = []): Promise<Uint8Array | undefined> {
    const network = this.#modules.network;
    if (network === undefined) return undefined;
    const self = this.#options.self;
    const connected = network.peers();
    const isConnected = new Set(connected);
    const held = holders.filter((h) => h !== self);
    const order = [
      ...held.filter((h) => isConnected.has(h)),
      ...held.filter((h) => !isConnected.has(h)),
      ...connected.filter((p) => !held.includes(p)),
    ];
    for (const peer of [...new Set(order)]) {
      try {
        const bytes = await network.request(peer, 'payload', new TextEncoder().encode(digest), {
          timeoutMs: this.#options.fetchTimeoutMs,
        });
        if (sha256Hex(bytes) === digest) {
          await this.#modules.payloads.put(digest, bytes);
          return bytes;
        }
      } catch {
        // Try the next peer.
      }
    }
    return undefined;
  }
}
