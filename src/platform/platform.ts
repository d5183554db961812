/**
 * The platform role (the patent's financial service platform). It is data-blind: it relays the
 * institutions' own signed `request.open` transactions, tracks requests, and — only to the grantee
 * institution, only under a live grant, only against that institution's own committed `usage` —
 * hands out the sealed bundle (ciphertexts, the data keys wrapped to the grantee, inclusion proofs).
 * It never holds plaintext or a key that opens it. A bank that wants the platform to assemble its
 * document inside its own walls runs its own gateway with its key (`institutions`): only there
 * does `document` sign the bank's usage, open the bundle with the bank client's code and assemble.
 * Also serves subjects their pending requests and their audit trail with inclusion proofs.
 */
import { EventEmitter } from 'node:events';
import { documentDigest, documentOf, openBundle, verifyBundle } from '../client/bundle.js';
import { toBase64url } from '../common/bytes.js';
import { verifyFast } from '../common/crypto-node.js';
import { DatagrantError, isDatagrantError } from '../common/errors.js';
import type { KeySet } from '../common/keyfile.js';
import type { Logger } from '../common/logger.js';
import {
  type AnyTx,
  buildTxProof,
  bundleDigest,
  type CertifiedBlock,
  type ChainView,
  type CommittedBlockEvent,
  decodeTx,
  extractionPolicy,
  type GrantState,
  grantedRecordDigests,
  type InstitutionState,
  LightClient,
  type RecordState,
  type RequestState,
  requestStatus,
  signTx,
  sourcesInForce,
  stateKey,
  type TxProof,
  type TxSubmitter,
} from '../ledger/index.js';
import type { BundleRecord, SealedBundle } from '../records/bundle.js';
import type { PayloadStore } from '../records/payload-store.js';
import { recordDigest } from '../records/record-crypto.js';
import type { AuditEntry, RequestInput, RequestView } from './views.js';

export type { AuditEntry, RequestInput, RequestView };

/** A document assembled on the grantee's own gateway. */
export interface DeliveredDocument {
  body: string;
  contentType: string;
  digest: string;
  usageTx: string;
  usageHeight: number;
  retainUntil: number;
  grant: string;
}

/** Events: `request` fires with a request id whenever a committed tx changes that request. */
export interface PlatformEvents {
  request: [string, string];
}

/** Platform options. */
export interface PlatformOptions {
  /** Default time given to the subject to decide, when the institution does not say. */
  defaultConsentMs: number;
  /** How long to wait for a relayed transaction (or the gateway's usage) to commit. */
  usageTimeoutMs: number;
}

/** Default platform options. */
export const DEFAULT_PLATFORM_OPTIONS: PlatformOptions = {
  defaultConsentMs: 7 * 24 * 3600 * 1000,
  usageTimeoutMs: 20_000,
};

const DAY_MS = 24 * 3600 * 1000;
/** Audit entries per page when the caller does not say. */
export const DEFAULT_AUDIT_PAGE = 500;
/** Most audit entries per page. */
export const MAX_AUDIT_PAGE = 1000;
/** Entries a page may run past its limit to end at a block boundary. */
const MAX_TXS_PER_HEIGHT_EXTRA = 256;

/** One page of a subject's audit trail; `next` is the height to ask `after` for the next page. */
export interface AuditPage {
  entries: AuditEntry[];
  next?: number;
}

/** The platform service. */
export class Platform extends EventEmitter<PlatformEvents> {
  constructor(
    private readonly options: PlatformOptions,
    private readonly modules: {
      chain: ChainView;
      gateway: TxSubmitter;
      payloads: PayloadStore;
      /** Fetches a ciphertext from other nodes by digest (verified by the caller). */
      fetchRemote: (digest: string) => Promise<Uint8Array | undefined>;
      /**
       * Institutions whose keys this node holds: only ever the bank's own gateway, never a
       * validator (the node refuses such a config). Empty on a data-blind platform.
       */
      institutions: ReadonlyMap<string, KeySet>;
      now: () => number;
      logger: Logger;
      /** Ed25519 signer for a held institution's transactions (portable by default; the node passes OpenSSL's). */
      sign?: (message: Uint8Array, secretKey: Uint8Array) => Uint8Array;
    },
  ) {
    super();
    modules.chain.on('committed', (event) => this.onCommitted(event));
  }

  /** Read access to committed state (for simple lookups by routes). */
  stateReader(): { get(key: string): unknown } {
    return this.modules.chain.state;
  }

  /** Whether this node holds the keys of `institution` (the bank's own gateway). */
  holdsKeysOf(institution: string): boolean {
    return this.modules.institutions.has(institution);
  }

  /** Active institution's signing key (hex). */
  institutionKey(id: string): string | undefined {
    const inst = this.modules.chain.state.get(stateKey.institution(id)) as InstitutionState | undefined;
    return inst?.active ? inst.signKey : undefined;
  }

  /**
   * Relays an institution's own signed `request.open` (the patent's multicast) and resolves once it
   * is committed. The node adds nothing and signs nothing. Errors: PLATFORM_NOT_A_TX, and the
   * ledger's refusal of the transaction.
   */
  async relayRequest(input: unknown): Promise<{ request: string; height: number }> {
    const tx = decodeTx(input);
    if (tx.kind !== 'request.open')
      throw new DatagrantError('PLATFORM_NOT_A_TX', 'POST /v1/requests relays a signed request.open');
    const committed = await this.modules.gateway.submitAndWait(tx, this.options.usageTimeoutMs);
    return { request: committed.hash, height: committed.height };
  }

  /**
   * On the institution's own gateway only: opens a request signed with the institution's key it
   * holds; resolves once committed. PLATFORM_INSTITUTION_NOT_SERVED anywhere else.
   */
  async openRequest(institution: string, input: RequestInput): Promise<{ request: string; height: number }> {
    const keys = this.institutionKeys(institution);
    const now = this.modules.now();
    const tx = signTx(
      {
        chain: this.modules.chain.genesis.chain,
        kind: 'request.open',
        body: { ...input, consentBy: input.consentBy ?? now + this.options.defaultConsentMs },
      },
      keys.signing.publicKey,
      keys.signing.secretKey,
      now,
      this.modules.sign,
    );
    const committed = await this.modules.gateway.submitAndWait(tx);
    return { request: committed.hash, height: committed.height };
  }

  /** The request's current view, or PLATFORM_REQUEST_NOT_FOUND. */
  view(requestId: string): RequestView {
    const state = this.modules.chain.state;
    const request = state.get(stateKey.request(requestId)) as RequestState | undefined;
    if (!request) throw new DatagrantError('PLATFORM_REQUEST_NOT_FOUND', 'no such request');
    const grant = request.grant
      ? (state.get(stateKey.grant(request.grant)) as GrantState | undefined)
      : undefined;
    const records = Object.values(request.records)
      .map((digest) => state.get(stateKey.record(digest)) as RecordState | undefined)
      .filter((r): r is RecordState => r !== undefined)
      .map(({ subject: _s, request: _r, ...rest }) => rest);
    const view: RequestView = {
      id: request.id,
      status: requestStatus(request, grant, this.modules.now(), this.policy),
      institution: request.institution,
      subject: request.subject,
      types: request.types,
      purpose: request.purpose,
      format: request.format,
      fields: request.fields,
      ...(request.dataFrom ? { dataFrom: request.dataFrom } : {}),
      ...(request.dataTo ? { dataTo: request.dataTo } : {}),
      consentBy: request.consentBy,
      openedAt: request.openedAt,
      height: request.height,
      records,
      failures: Object.entries(request.failures).map(([type, f]) => ({
        type,
        reason: f.reason,
        detail: f.detail,
      })),
      ...(request.denyReason ? { denyReason: request.denyReason } : {}),
      ...(request.policy ? { policy: request.policy } : {}),
    };
    if (grant) {
      const { keys: _keys, ...summary } = grant;
      view.grant = summary;
    }
    return view;
  }

  /**
   * The sealed bundle released against the grantee's own committed `usage` of this request's
   * grant: the records that usage named, their ciphertexts, the data keys wrapped to the grantee
   * and inclusion proofs. Spends nothing and reveals nothing the grantee's key does not open, so
   * asking again (or replaying the call anywhere) yields only the same sealed bytes. Errors:
   * PLATFORM_REQUEST_NOT_FOUND (404), PLATFORM_NOT_GRANTEE (403), PLATFORM_ERASED (410),
   * PLATFORM_USAGE_REQUIRED (403: no such committed usage by the grantee for this grant),
   * PLATFORM_GRANT_REQUIRED (403: revoked, paused or expired), PLATFORM_PAYLOAD_UNAVAILABLE and
   * PLATFORM_PAYLOAD_TAMPERED (502).
   */
  #light: LightClient | undefined;

  /**
   * A light client over this node's own chain, following its validator sets through the certified
   * blocks the node holds, so a bundle's proofs are checked as a bank checks them.
   */
  async #followedLight(): Promise<LightClient> {
    const chain = this.modules.chain;
    this.#light ??= new LightClient(chain.genesis, { verifier: verifyFast });
    await this.#light.followValidatorSets(
      async (path) => {
        if (path === '/v1/gov/validator-sets') return { epochs: chain.validatorEpochs() };
        const height = Number(path.slice(path.lastIndexOf('/') + 1));
        const block = await chain.store.getBlock(height);
        if (!block) throw new DatagrantError('LEDGER_BLOCK_NOT_HELD', `this node holds no block ${height}`);
        return block;
      },
      { code: 'PLATFORM_CHAIN_INCONSISTENT', node: 'this node' },
    );
    return this.#light;
  }

  async bundle(institution: string, requestId: string, usageHash: string): Promise<SealedBundle> {
    const { request, grant } = this.liveGrant(institution, requestId);
    const blocks = new Map<number, Promise<CertifiedBlock | undefined>>();
    const committedTx = (hash: string) => this.committedTx(hash, blocks);
    const usage = await committedTx(usageHash);
    const inst = this.modules.chain.state.get(
      stateKey.institution(institution),
    ) as unknown as InstitutionState;
    if (
      usage === undefined ||
      usage.tx.kind !== 'usage' ||
      usage.tx.signer !== inst.signKey ||
      usage.tx.body.grant !== grant.id
    ) {
      throw new DatagrantError(
        'PLATFORM_USAGE_REQUIRED',
        "a bundle is released only against the grantee's own committed usage of this grant",
      );
    }
    const chain = this.modules.chain.genesis.chain;
    const digests = usedRecords(chain, grant.id, grantedRecordDigests(request, grant), usage.tx.body.bundle);
    if (digests === undefined)
      throw new DatagrantError('PLATFORM_USAGE_REQUIRED', 'the usage names records this grant does not hold');
    const state = this.modules.chain.state;
    const keyByRecord = new Map(grant.keys.map((k) => [k.record, k.key]));
    const records: BundleRecord[] = [];
    for (const digest of digests) {
      const record = state.get(stateKey.record(digest)) as RecordState | undefined;
      if (!record || record.erased)
        throw new DatagrantError('PLATFORM_ERASED', 'a granted record was erased');
      const key = keyByRecord.get(digest) ?? record.granteeKey;
      const proof = (await committedTx(record.tx))?.proof;
      if (!key || !proof)
        throw new DatagrantError(
          'PLATFORM_PAYLOAD_UNAVAILABLE',
          'the record is not fully committed here yet',
        );
      const ciphertext = await this.ciphertext(digest);
      records.push({ type: record.type, digest, ciphertext: toBase64url(ciphertext), key, proof });
    }
    const [requestTx, grantTx] = await Promise.all([
      this.committedTx(request.id),
      this.committedTx(grant.id),
    ]);
    if (!requestTx || !grantTx)
      throw new DatagrantError('PLATFORM_PAYLOAD_UNAVAILABLE', 'the request is not fully committed here yet');
    this.modules.logger.info({ request: request.id, usage: usageHash }, 'sealed bundle released');
    return {
      v: 1,
      chain,
      request: request.id,
      grant: grant.id,
      usage: usageHash,
      digest: usage.tx.body.bundle,
      proofs: { request: requestTx.proof, grant: grantTx.proof, usage: usage.proof },
      records,
    };
  }

  /**
   * On the institution's own gateway only (it holds the bank's key): records the bank's usage,
   * takes the sealed bundle released against it, verifies and opens it with the bank client's code
   * and assembles the document. PLATFORM_INSTITUTION_NOT_SERVED on any other node, which holds no
   * key that opens anything.
   */
  async document(
    institution: string,
    requestId: string,
    format?: 'json' | 'csv' | 'xml',
  ): Promise<DeliveredDocument> {
    const keys = this.institutionKeys(institution);
    const { request, grant } = this.liveGrant(institution, requestId);
    const chain = this.modules.chain.genesis.chain;
    const now = this.modules.now();
    const usage = signTx(
      {
        chain,
        kind: 'usage',
        body: {
          grant: grant.id,
          bundle: bundleDigest(chain, grant.id, grantedRecordDigests(request, grant)),
          format: format ?? request.format,
        },
      },
      keys.signing.publicKey,
      keys.signing.secretKey,
      now,
      this.modules.sign,
    );
    let committed: { hash: string; height: number };
    try {
      committed = await this.modules.gateway.submitAndWait(usage, this.options.usageTimeoutMs);
    } catch (err) {
      if (isDatagrantError(err) && err.code.startsWith('LEDGER_')) {
        throw new DatagrantError('PLATFORM_GRANT_REQUIRED', `the ledger refused the usage: ${err.code}`, {
          reason: err.code,
        });
      }
      throw err;
    }
    const inst = this.modules.chain.state.get(
      stateKey.institution(institution),
    ) as unknown as InstitutionState;
    const verified = verifyBundle(
      await this.bundle(institution, requestId, committed.hash),
      await this.#followedLight(),
      { institution, signKey: inst.signKey, encKey: inst.encKey },
      {
        request: requestId,
        usage: committed.hash,
        // This node's own committed state: the data sources a council left in force.
        sources: sourcesInForce(this.modules.chain.state, this.modules.chain.genesis.sources ?? []),
      },
    );
    const rendered = documentOf(verified, openBundle(verified, keys.encryption.secretKey), {
      now,
      ...(format ? { format } : {}),
    });
    const digest = documentDigest(rendered);
    this.modules.logger.info({ request: request.id, usage: committed.hash, digest }, 'document delivered');
    return {
      body: rendered.body,
      contentType: rendered.contentType,
      digest,
      usageTx: committed.hash,
      usageHeight: committed.height,
      retainUntil: now + grant.retainDays * DAY_MS,
      grant: grant.id,
    };
  }

  private get policy() {
    return extractionPolicy(this.modules.chain.genesis.params);
  }

  /** The request and its grant, checked to be `institution`'s and live (used-up is fine: a use paid). */
  private liveGrant(institution: string, requestId: string): { request: RequestState; grant: GrantState } {
    const state = this.modules.chain.state;
    const request = state.get(stateKey.request(requestId)) as RequestState | undefined;
    if (!request) throw new DatagrantError('PLATFORM_REQUEST_NOT_FOUND', 'no such request');
    if (request.institution !== institution)
      throw new DatagrantError('PLATFORM_NOT_GRANTEE', 'this request belongs to another institution');
    if (request.erased) throw new DatagrantError('PLATFORM_ERASED', 'the subject erased this data');
    const grant = request.grant
      ? (state.get(stateKey.grant(request.grant)) as GrantState | undefined)
      : undefined;
    const status = requestStatus(request, grant, this.modules.now(), this.policy);
    if (!grant || !(status === 'granted' || status === 'delivered' || status === 'used-up')) {
      throw new DatagrantError(
        'PLATFORM_GRANT_REQUIRED',
        `no live grant for this request (status: ${status})`,
        { status },
      );
    }
    return { request, grant };
  }

  /** A committed transaction with its inclusion proof, or undefined; `blocks` caches blocks read for one answer. */
  private async committedTx(
    hash: string,
    blocks?: Map<number, Promise<CertifiedBlock | undefined>>,
  ): Promise<{ tx: AnyTx; proof: TxProof } | undefined> {
    const store = this.modules.chain.store;
    const location = await store.getTxLocation(hash);
    if (!location) return undefined;
    let block = blocks?.get(location.height);
    if (block === undefined) {
      block = store.getBlock(location.height);
      blocks?.set(location.height, block);
    }
    const certified = await block;
    if (!certified) return undefined;
    return { tx: certified.block.txs[location.index]!, proof: buildTxProof(certified, location.index) };
  }

  /** Requests about a subject, newest first; `pendingOnly` keeps those awaiting a decision. */
  async subjectRequests(subject: string, pendingOnly: boolean): Promise<RequestView[]> {
    const out: RequestView[] = [];
    for (const entry of await this.subjectTxs(subject)) {
      if (entry.tx.kind !== 'request.open') continue;
      const view = this.view(entry.hash);
      if (!pendingOnly || view.status === 'waiting-for-consent' || view.status === 'waiting-for-data')
        out.push(view);
    }
    return out.reverse();
  }

  /** Every transaction concerning a subject, oldest first, each with its inclusion proof. */
  async audit(subject: string, page: { limit?: number; after?: number } = {}): Promise<AuditPage> {
    const limit = page.limit ?? DEFAULT_AUDIT_PAGE;
    const refs = await this.modules.chain.store.txsBySubject(subject, {
      limit: limit + MAX_TXS_PER_HEIGHT_EXTRA,
      ...(page.after !== undefined ? { afterHeight: page.after } : {}),
    });
    // A page ends at a block boundary, so that `next` (a height) loses no entry of that block.
    let end = Math.min(limit, refs.length);
    while (end < refs.length && end > 0 && refs[end]!.height === refs[end - 1]!.height) end++;
    const more = end < refs.length;
    const entries = await this.auditEntries(await this.resolveTxs(refs.slice(0, end)));
    return { entries, ...(more ? { next: refs[end - 1]!.height } : {}) };
  }

  private async auditEntries(
    txs: { hash: string; tx: AnyTx; certified: CertifiedBlock; index: number }[],
  ): Promise<AuditEntry[]> {
    const state = this.modules.chain.state;
    return txs.map(({ hash, tx, certified, index }) => {
      const body = tx.body as Record<string, unknown>;
      const grantId = typeof body.grant === 'string' ? body.grant : undefined;
      const grant = grantId ? (state.get(stateKey.grant(grantId)) as GrantState | undefined) : undefined;
      const request =
        tx.kind === 'request.open' ? hash : typeof body.request === 'string' ? body.request : grant?.request;
      return {
        hash,
        kind: tx.kind,
        height: certified.block.header.height,
        time: certified.block.header.time,
        signer: tx.signer,
        ...(request ? { request } : {}),
        ...(grantId ? { grant: grantId } : tx.kind === 'grant' ? { grant: hash } : {}),
        summary: summarize(tx),
        proof: buildTxProof(certified, index),
      };
    });
  }

  private async subjectTxs(
    subject: string,
  ): Promise<{ hash: string; tx: AnyTx; certified: CertifiedBlock; index: number }[]> {
    return this.resolveTxs(await this.modules.chain.store.txsBySubject(subject));
  }

  private async resolveTxs(
    refs: { hash: string; height: number; index: number }[],
  ): Promise<{ hash: string; tx: AnyTx; certified: CertifiedBlock; index: number }[]> {
    const store = this.modules.chain.store;
    const blocks = new Map<number, CertifiedBlock>();
    const out = [];
    for (const ref of refs) {
      let certified = blocks.get(ref.height);
      if (!certified) {
        certified = await store.getBlock(ref.height);
        if (!certified) continue;
        blocks.set(ref.height, certified);
      }
      out.push({ hash: ref.hash, tx: certified.block.txs[ref.index]!, certified, index: ref.index });
    }
    return out;
  }

  private institutionKeys(institution: string): KeySet {
    const keys = this.modules.institutions.get(institution);
    if (!keys)
      throw new DatagrantError(
        'PLATFORM_INSTITUTION_NOT_SERVED',
        "this node holds no key of that institution: fetch the sealed bundle and open it on the institution's side (datagrant/client)",
      );
    return keys;
  }

  private async ciphertext(digest: string): Promise<Uint8Array> {
    let bytes = await this.modules.payloads.get(digest);
    if (!bytes) {
      bytes = await this.modules.fetchRemote(digest);
      if (!bytes)
        throw new DatagrantError('PLATFORM_PAYLOAD_UNAVAILABLE', 'no node could serve the encrypted record');
    }
    if (recordDigest(bytes) !== digest) {
      throw new DatagrantError(
        'PLATFORM_PAYLOAD_TAMPERED',
        'the encrypted record does not match its on-chain digest',
      );
    }
    return bytes;
  }

  private onCommitted(event: CommittedBlockEvent): void {
    const state = this.modules.chain.state;
    event.certified.block.txs.forEach((tx, i) => {
      const body = tx.body as Record<string, unknown>;
      let request: string | undefined;
      if (tx.kind === 'request.open') request = event.txHashes[i];
      else if (typeof body.request === 'string') request = body.request;
      else if (typeof body.grant === 'string')
        request = (state.get(stateKey.grant(body.grant)) as GrantState | undefined)?.request;
      if (request) this.emit('request', request, tx.kind);
    });
  }
}

/** The public, key-free summary of a transaction for the audit trail. */
export function summarize(tx: AnyTx): Record<string, unknown> {
  switch (tx.kind) {
    case 'record.put': {
      const { key: _key, ...rest } = tx.body;
      return rest;
    }
    case 'grant': {
      const { keys, ...rest } = tx.body;
      return { ...rest, records: keys.map((k) => k.record) };
    }
    case 'subject.register':
      return { subject: tx.body.subject, registrar: tx.body.registrar };
    case 'subject.recover':
      return { subject: tx.body.subject, registrar: tx.body.registrar, issued: tx.body.issued };
    default:
      return { ...(tx.body as Record<string, unknown>) };
  }
}

/**
 * The records a usage paid for: the subset of the grant's current records whose bundle digest is
 * the usage's (records are only ever added, so it is the set the grant held when the usage
 * committed). At most one subset per digest; a grant has at most a handful of records.
 */
function usedRecords(chain: string, grant: string, current: string[], digest: string): string[] | undefined {
  const n = current.length;
  for (let mask = (1 << n) - 1; mask > 0; mask--) {
    const subset = current.filter((_, i) => (mask & (1 << i)) !== 0);
    if (bundleDigest(chain, grant, subset) === digest) return subset;
  }
  return undefined;
}
