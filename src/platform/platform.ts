/**
 * The platform role (the patent's financial service platform): opens institutions' requests on
 * chain, tracks their state, and — only under a live grant — fetches the ciphertexts, checks
 * their digests, decrypts with the grantee's key, assembles the institution's document and
 * records a `usage` transaction before handing it over. Also serves subjects their pending
 * requests and their audit trail with inclusion proofs.
 */
import { EventEmitter } from 'node:events';
import { sha256Hex } from '../common/crypto.js';
import { DatagrantError, isDatagrantError } from '../common/errors.js';
import type { KeySet } from '../common/keyfile.js';
import type { Logger } from '../common/logger.js';
import { openRecordAs, type PayloadStore, type RecordPlaintext, recordContext } from '../extractor/index.js';
import {
  type AnyTx,
  buildTxProof,
  type CertifiedBlock,
  type GrantState,
  type InstitutionState,
  type RecordState,
  type RequestState,
  type RequestStatus,
  requestStatus,
  signTx,
  stateKey,
  type TxBody,
  type TxProof,
} from '../ledger/index.js';
import type { Chain, CommittedBlockEvent } from '../node/chain.js';
import type { TxGateway } from '../node/tx-gateway.js';
import { assembleDocument, type Provenance } from './document.js';

/** What an institution asks for. */
export type RequestInput = Omit<TxBody<'request.open'>, 'consentBy'> & { consentBy?: number };

/** A request as institutions and subjects see it (no keys, no plaintext). */
export interface RequestView {
  id: string;
  status: RequestStatus;
  institution: string;
  subject: string;
  types: string[];
  purpose: string;
  format: string;
  fields: Record<string, string>;
  dataFrom?: string;
  dataTo?: string;
  consentBy: number;
  openedAt: number;
  height: number;
  /** Records on the request; `key` is the data key wrapped to the subject (public ledger data). */
  records: Omit<RecordState, 'subject' | 'request'>[];
  failures: { type: string; reason: string; detail: string }[];
  grant?: Omit<GrantState, 'keys'>;
  denyReason?: string;
}

/** One entry of a subject's audit trail. */
export interface AuditEntry {
  hash: string;
  kind: string;
  height: number;
  time: number;
  signer: string;
  request?: string;
  grant?: string;
  summary: Record<string, unknown>;
  proof: TxProof;
}

/** A delivered document. */
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
  /** How long to wait for the usage transaction to commit before refusing delivery. */
  usageTimeoutMs: number;
}

/** Default platform options. */
export const DEFAULT_PLATFORM_OPTIONS: PlatformOptions = {
  defaultConsentMs: 7 * 24 * 3600 * 1000,
  usageTimeoutMs: 20_000,
};

/** The platform service. */
export class Platform extends EventEmitter<PlatformEvents> {
  constructor(
    private readonly options: PlatformOptions,
    private readonly modules: {
      chain: Chain;
      gateway: TxGateway;
      payloads: PayloadStore;
      /** Fetches a ciphertext from other nodes by digest (verified by the caller). */
      fetchRemote: (digest: string) => Promise<Uint8Array | undefined>;
      /** Institutions this platform acts for, with their keys. */
      institutions: ReadonlyMap<string, KeySet>;
      now: () => number;
      logger: Logger;
      /** Ed25519 signer for the institutions' transactions (the portable one by default; the node passes OpenSSL's). */
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

  /** Whether this platform holds keys for `institution`. */
  serves(institution: string): boolean {
    return this.modules.institutions.has(institution);
  }

  /** Active institution's signing key (hex). */
  institutionKey(id: string): string | undefined {
    const inst = this.modules.chain.state.get(stateKey.institution(id)) as InstitutionState | undefined;
    return inst?.active ? inst.signKey : undefined;
  }

  /** Opens a request on chain for `institution`, signed with its key; resolves once committed. */
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
      status: requestStatus(request, grant, this.modules.now()),
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
    };
    if (grant) {
      const { keys: _keys, ...summary } = grant;
      view.grant = summary;
    }
    return view;
  }

  /**
   * Delivers the document of a granted request to its institution, recording a `usage` tx first.
   * Errors: PLATFORM_REQUEST_NOT_FOUND (404), PLATFORM_NOT_GRANTEE (403), PLATFORM_GRANT_REQUIRED
   * (403, with the ledger's reason), PLATFORM_ERASED (410), PLATFORM_PAYLOAD_UNAVAILABLE (502),
   * PLATFORM_PAYLOAD_TAMPERED (502), PLATFORM_INSTITUTION_NOT_SERVED (403).
   */
  async document(
    institution: string,
    requestId: string,
    format?: 'json' | 'csv' | 'xml',
  ): Promise<DeliveredDocument> {
    const state = this.modules.chain.state;
    const request = state.get(stateKey.request(requestId)) as RequestState | undefined;
    if (!request) throw new DatagrantError('PLATFORM_REQUEST_NOT_FOUND', 'no such request');
    if (request.institution !== institution)
      throw new DatagrantError('PLATFORM_NOT_GRANTEE', 'this request belongs to another institution');
    if (request.erased) throw new DatagrantError('PLATFORM_ERASED', 'the subject erased this data');
    const grant = request.grant
      ? (state.get(stateKey.grant(request.grant)) as GrantState | undefined)
      : undefined;
    const now = this.modules.now();
    const status = requestStatus(request, grant, now);
    if (!grant || !(status === 'granted' || status === 'delivered')) {
      throw new DatagrantError(
        'PLATFORM_GRANT_REQUIRED',
        `no live grant for this request (status: ${status})`,
        { status },
      );
    }
    const keys = this.institutionKeys(institution);
    const chain = this.modules.chain.genesis.chain;
    const records: RecordPlaintext[] = [];
    const provenance: Provenance[] = [];
    for (const entry of grant.keys) {
      const record = state.get(stateKey.record(entry.record)) as RecordState | undefined;
      if (!record || record.erased)
        throw new DatagrantError('PLATFORM_ERASED', 'a granted record was erased');
      const ciphertext = await this.ciphertext(record.digest);
      records.push(
        openRecordAs(
          ciphertext,
          entry.key,
          keys.encryption.secretKey,
          recordContext(chain, request.id, record.type),
        ),
      );
      provenance.push({
        type: record.type,
        digest: record.digest,
        source: record.source,
        fetchedAt: record.fetchedAt,
        sourceDigest: record.sourceDigest,
        extractor: record.extractor,
      });
    }
    const rendered = assembleDocument(
      {
        request: request.id,
        subject: request.subject,
        institution,
        purpose: grant.purpose,
        generatedAt: now,
        fields: request.fields,
        records,
        provenance,
      },
      format ?? request.format,
    );
    const digest = sha256Hex(new TextEncoder().encode(rendered.body));
    const usage = signTx(
      { chain, kind: 'usage', body: { grant: grant.id, document: digest, format: format ?? request.format } },
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
    this.modules.logger.info({ request: request.id, usage: committed.hash, digest }, 'document delivered');
    return {
      body: rendered.body,
      contentType: rendered.contentType,
      digest,
      usageTx: committed.hash,
      usageHeight: committed.height,
      retainUntil: now + grant.retainDays * 24 * 3600 * 1000,
      grant: grant.id,
    };
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
  async audit(subject: string): Promise<AuditEntry[]> {
    const state = this.modules.chain.state;
    return (await this.subjectTxs(subject)).map(({ hash, tx, certified, index }) => {
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
    const store = this.modules.chain.store;
    const refs = await store.txsBySubject(subject);
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
        'this platform does not act for that institution',
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
    if (sha256Hex(bytes) !== digest) {
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
    default:
      return { ...(tx.body as Record<string, unknown>) };
  }
}
