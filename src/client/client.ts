/**
 * The bank client: what an institution's application system uses to work with datagrant while
 * keeping its keys on its own side. It signs the institution's calls and its own `request.open`
 * and `usage` transactions (nodes only relay them), follows a request's state, and fetches the
 * sealed bundle of a granted request — verified against genesis, decrypted and assembled into
 * JSON, CSV or XML here, never on a node. Portable: `fetch` and the noble-based crypto only.
 */
import { bytesToHex } from '../common/bytes.js';
import { DatagrantError, isDatagrantError } from '../common/errors.js';
import { institutionCaller, signCall } from '../common/http-signature.js';
import type { KeySet } from '../common/keyfile.js';
import type { Genesis } from '../ledger/genesis.js';
import { LightClient, nodeLied, requestViewFaults, type ViewFault } from '../ledger/light-client.js';
import {
  bundleDigest,
  type GrantState,
  grantedRecordDigests,
  type RequestState,
  stateKey,
} from '../ledger/records.js';
import type { Tx, TxBody } from '../ledger/tx.js';
import { signTx, txHash } from '../ledger/tx-codec.js';
import type { RequestInput, RequestView } from '../platform/views.js';
import type { RecordPlaintext } from '../records/record-crypto.js';
import {
  documentDigest,
  documentOf,
  type Grantee,
  openBundle,
  provenSources,
  type VerifiedBundle,
  verifyBundle,
} from './bundle.js';

/** Options of a client. */
export interface DatagrantClientOptions {
  /** Base URL of a platform node: any validator serving the platform role, or the bank's own gateway. */
  api: string;
  /** The institution's id on chain. */
  institution: string;
  /** The institution's keys (signing and encryption); they never leave this process. */
  keys: KeySet;
  /**
   * Keys it rotated away from (`institution.rotate`): a grant made before a rotation is wrapped to
   * the encryption key then registered, so its documents open with that key.
   */
  previousKeys?: KeySet[];
  /** The chain's genesis: the only thing the client trusts. */
  genesis: Genesis;
  /** Time allowed for one HTTP call (default 30 s). */
  timeoutMs?: number;
  /** Time allowed for a transaction to commit (default 30 s). */
  commitTimeoutMs?: number;
  /** A `fetch` to use (default the global one). */
  fetch?: typeof fetch;
  now?: () => number;
}

/** A document assembled on the institution's side from a verified bundle. */
export interface ClientDocument {
  body: string;
  contentType: string;
  /** SHA-256 (hex) of `body`. */
  digest: string;
  /** The institution's own usage transaction, committed before the bundle was released. */
  usageTx: string;
  usageHeight: number;
  grant: string;
  bundleDigest: string;
  /** Until when the grant allows the institution to keep the data (unix ms). */
  retainUntil: number;
  records: RecordPlaintext[];
  bundle: VerifiedBundle;
}

/** Options of `document` and `fetchBundle`. */
export interface DeliveryOptions {
  format?: 'json' | 'csv' | 'xml';
  /** Re-fetch the bundle of a usage already committed instead of recording a new one. */
  usage?: string;
}

const DAY_MS = 24 * 3600 * 1000;
/** Failures after which a relayed transaction may still commit: follow it by hash. */
const AMBIGUOUS = new Set([
  'CLIENT_UNREACHABLE',
  'LEDGER_TX_TIMEOUT',
  'LEDGER_TX_DUPLICATE',
  'API_TIMEOUT',
  'API_INTERNAL',
]);

/** A client of one institution against one node. */
export class DatagrantClient {
  readonly #options: DatagrantClientOptions;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  #audience: string | undefined;

  constructor(options: DatagrantClientOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#now = options.now ?? Date.now;
  }

  /** Who this client acts as. */
  get grantee(): Grantee {
    return {
      institution: this.#options.institution,
      signKey: bytesToHex(this.#options.keys.signing.publicKey),
      encKey: bytesToHex(this.#options.keys.encryption.publicKey),
      previous: (this.#options.previousKeys ?? []).map((k) => ({
        signKey: bytesToHex(k.signing.publicKey),
        encKey: bytesToHex(k.encryption.publicKey),
      })),
    };
  }

  get chain(): string {
    return this.#options.genesis.chain;
  }

  /** The node's status (`GET /v1/status`); checks it is on this client's chain. */
  async status(): Promise<{ chain: string; self: string; height: number } & Record<string, unknown>> {
    const status = await this.#json<{ chain: string; self: string; height: number }>('GET', '/v1/status');
    if (status.chain !== this.chain)
      throw new DatagrantError(
        'CLIENT_WRONG_CHAIN',
        `the node is on chain ${status.chain}, not ${this.chain}`,
      );
    return status;
  }

  /**
   * Opens a request about a subject: signs `request.open` with the institution's key, hands it to
   * the node to relay, and resolves once it is committed, with the request's view. If the relay's
   * answer is lost (a timeout, the node going away), it follows that same transaction by its hash
   * rather than signing a second request.
   */
  async openRequest(input: RequestInput & { consentInMs?: number }): Promise<RequestView> {
    const { consentInMs, ...body } = input;
    const now = this.#now();
    const tx = this.#sign('request.open', {
      ...body,
      consentBy: body.consentBy ?? now + (consentInMs ?? 7 * DAY_MS),
    });
    try {
      await this.#json<{ request: string }>('POST', '/v1/requests', { tx });
    } catch (err) {
      const code = isDatagrantError(err) ? err.code : '';
      if (!AMBIGUOUS.has(code)) throw err;
      await this.#waitCommitted(txHash(tx));
    }
    return this.request(txHash(tx));
  }

  /** A request's current view (a signed read: only its institution and its subject are served it). */
  async request(id: string): Promise<RequestView> {
    return this.#json<RequestView>('GET', `/v1/requests/${id}`, undefined, true);
  }

  /**
   * Follows a request live: yields `{ event, view }` for the view at the start (`state`) and each
   * time a committed transaction changes it (`request.open`, `record.put`, `grant`, …), from the
   * node's server-sent event stream (a signed call). Ends when `signal` aborts or the node closes it.
   */
  async *follow(
    id: string,
    options: { signal?: AbortSignal } = {},
  ): AsyncGenerator<{ event: string; view: RequestView }> {
    const path = `/v1/requests/${id}/events`;
    const headers = signCall(
      {
        method: 'GET',
        path,
        body: '',
        caller: institutionCaller(this.#options.institution),
        audience: await this.#audienceOf(),
        chain: this.chain,
        timestamp: this.#now(),
      },
      this.#options.keys.signing.secretKey,
    );
    let response: Response;
    try {
      response = await this.#fetch(new URL(path, this.#options.api), {
        headers,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      if (options.signal?.aborted) return;
      throw new DatagrantError(
        'CLIENT_UNREACHABLE',
        `cannot reach ${this.#options.api}: ${(err as Error).message}`,
      );
    }
    if (!response.ok || !response.body) {
      const e = (
        (await response.json().catch(() => undefined)) as { error?: { code?: string; message?: string } }
      )?.error;
      throw new DatagrantError(e?.code ?? 'CLIENT_HTTP_ERROR', e?.message ?? `HTTP ${response.status}`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
          const event = /^event: (.*)$/m.exec(message)?.[1];
          const data = /^data: (.*)$/m.exec(message)?.[1];
          if (event !== undefined && data !== undefined)
            yield { event, view: JSON.parse(data) as RequestView };
        }
      }
    } catch (err) {
      if (options.signal?.aborted) return;
      throw err;
    } finally {
      reader.releaseLock();
    }
  }

  /** Polls a request until its status is one of `statuses`; CLIENT_TIMEOUT after `timeoutMs`. */
  async waitFor(
    id: string,
    statuses: readonly string[],
    options: { timeoutMs?: number; intervalMs?: number } = {},
  ): Promise<RequestView> {
    const deadline = this.#now() + (options.timeoutMs ?? 60_000);
    for (;;) {
      const view = await this.request(id);
      if (statuses.includes(view.status)) return view;
      if (this.#now() > deadline)
        throw new DatagrantError(
          'CLIENT_TIMEOUT',
          `request ${id} is ${view.status}, not ${statuses.join('/')}`,
        );
      await new Promise((r) => setTimeout(r, options.intervalMs ?? 200));
    }
  }

  /**
   * Records one use of the request's grant (the institution's own `usage`, naming exactly the
   * records the grant releases now), waits for it to commit, then fetches the sealed bundle
   * released against it and verifies it against genesis. With `usage`, re-fetches the bundle of
   * a use already committed (nothing is spent). Errors: the ledger's refusal of the usage
   * (e.g. LEDGER_GRANT_USED_UP), CLIENT_NOT_GRANTED, or a BUNDLE_ERROR_CODES code.
   */
  async fetchBundle(id: string, options: DeliveryOptions = {}): Promise<VerifiedBundle> {
    let usage = options.usage;
    if (usage === undefined) {
      const view = await this.request(id);
      if (!view.grant || !(view.status === 'granted' || view.status === 'delivered'))
        throw new DatagrantError('CLIENT_NOT_GRANTED', `request ${id} is ${view.status}`, {
          status: view.status,
        });
      const granted = new Set<string>(view.grant.types);
      let digests = view.records.filter((r) => granted.has(r.type)).map((r) => r.digest);
      // What the use spends is proven against genesis, not taken from the node's view.
      const proven = await this.#provenGrant(id, view);
      if (proven) digests = proven.digests;
      const tx = this.#sign('usage', {
        grant: view.grant.id,
        bundle: bundleDigest(this.chain, view.grant.id, digests),
        format: (options.format ?? view.format) as 'json' | 'csv' | 'xml',
      });
      usage = (await this.submit(tx)).hash;
    }
    try {
      const raw = await this.#json<unknown>(
        'GET',
        `/v1/requests/${id}/bundle?usage=${usage}`,
        undefined,
        true,
      );
      // Records are checked against the data sources in force, proven: a council adds and retires them.
      const sources = await provenSources(
        this.light,
        (path) => this.#json<unknown>('GET', path, undefined, true),
        { code: 'CLIENT_NODE_LIED', node: this.#options.api },
      );
      const verify = () => verifyBundle(raw, this.light, this.grantee, { request: id, usage, sources });
      try {
        return verify();
      } catch (err) {
        if (!isDatagrantError(err, 'CLIENT_PROOF_INVALID') || err.meta?.proof !== 'LIGHT_VALIDATORS_UNKNOWN')
          throw err;
        // A proof past a validator-set change: follow the sets from genesis, then check again.
        await this.light.followValidatorSets((path) => this.#json<unknown>('GET', path, undefined, true), {
          code: 'CLIENT_NODE_LIED',
          node: this.#options.api,
        });
        return verify();
      }
    } catch (err) {
      // The use is recorded: whoever retries must fetch its bundle again, not spend another use.
      if (isDatagrantError(err))
        throw new DatagrantError(err.code, `${err.message} (retry with { usage: '${usage}' })`, {
          ...err.meta,
          usage,
        });
      throw err;
    }
  }

  #lightClient: LightClient | undefined;

  /** The light client this client proves the node's answers with (made from genesis). */
  get light(): LightClient {
    this.#lightClient ??= new LightClient(this.#options.genesis);
    return this.#lightClient;
  }

  /**
   * The grant and request of `view` as the chain holds them, proven against genesis: the grant
   * must be this institution's, for this request, live (not revoked, paused, expired or used up)
   * at the proven height, and the view must agree with both (read again once before the node is
   * called a liar: a block may commit in between); the records released are the proven request's
   * of the granted types. CLIENT_NODE_LIED naming the node otherwise; `undefined` on a chain
   * whose headers commit to no provable state.
   */
  async #provenGrant(id: string, view: RequestView): Promise<{ digests: string[] } | undefined> {
    const blame = { code: 'CLIENT_NODE_LIED', node: this.#options.api };
    const get = (path: string) => this.#json<unknown>('GET', path, undefined, true);
    const lied = (what: string, meta: Record<string, unknown> = {}) =>
      nodeLied(blame, `showed request ${id} otherwise than the chain holds it: ${what}`, {
        request: id,
        ...meta,
      });
    let faults: ViewFault[] = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      if (attempt > 0) view = await this.request(id);
      if (!view.grant) throw lied('the chain holds a grant the node does not show');
      const grantId = view.grant.id;
      const [g, r] = await Promise.all([
        this.light.provenEntry<GrantState>(
          get,
          `/v1/state/grants/${grantId}`,
          stateKey.grant(grantId),
          blame,
        ),
        this.light.provenEntry<RequestState>(get, `/v1/state/requests/${id}`, stateKey.request(id), blame),
      ]);
      if (!g || !r) return undefined;
      const grant = g.value;
      const request = r.value;
      if (!grant || !request) throw lied('no such grant or request on the chain');
      if (
        grant.request !== id ||
        grant.institution !== this.#options.institution ||
        request.grant !== grantId
      )
        throw lied("the grant is not this request's, or not to this institution");
      const live = !grant.revoked && !grant.paused && grant.used < grant.uses && grant.expires > g.time;
      if (!live)
        throw lied(
          `the grant is ${grant.revoked ? 'revoked' : grant.paused ? 'paused' : 'expired or used up'}`,
        );
      faults = requestViewFaults(view, request, grant, {
        time: Math.min(g.time, r.time),
        now: this.#now(),
        policy: this.#options.genesis.params.extraction ?? 'on-request',
      });
      if (faults.length === 0) return { digests: grantedRecordDigests(request, grant) };
    }
    throw lied(faults.map((f) => f.what).join(', '), { faults });
  }

  /** The encryption secret key whose public key a grant names (current or rotated away from). */
  #encryptionKeyFor(granteeKey: string): Uint8Array {
    for (const keys of [this.#options.keys, ...(this.#options.previousKeys ?? [])])
      if (bytesToHex(keys.encryption.publicKey) === granteeKey) return keys.encryption.secretKey;
    throw new DatagrantError(
      'CLIENT_KEY_MISSING',
      `the grant is wrapped to encryption key ${granteeKey.slice(0, 16)}…, which is neither this client's key nor one of its previousKeys`,
    );
  }

  /** Fetches, verifies and opens the bundle, and assembles the document on this side. */
  async document(id: string, options: DeliveryOptions = {}): Promise<ClientDocument> {
    const bundle = await this.fetchBundle(id, options);
    const records = openBundle(bundle, this.#encryptionKeyFor(bundle.grant.tx.body.granteeKey));
    const rendered = documentOf(bundle, records, {
      now: this.#now(),
      ...(options.format ? { format: options.format } : {}),
    });
    return {
      body: rendered.body,
      contentType: rendered.contentType,
      digest: documentDigest(rendered),
      usageTx: bundle.usage.id,
      usageHeight: bundle.usage.height,
      grant: bundle.grant.id,
      bundleDigest: bundle.digest,
      retainUntil: bundle.usage.time + bundle.grant.tx.body.retainDays * DAY_MS,
      records,
      bundle,
    };
  }

  /** Submits a signed transaction and waits until it is committed; throws the ledger's code if refused. */
  async submit(tx: Tx): Promise<{ hash: string; height: number }> {
    await this.#json<{ hash: string }>('POST', '/v1/txs', tx);
    return this.#waitCommitted(txHash(tx));
  }

  async #waitCommitted(hash: string): Promise<{ hash: string; height: number }> {
    const deadline = this.#now() + (this.#options.commitTimeoutMs ?? 30_000);
    for (;;) {
      let status: { status: string; height?: number; error?: { code: string; message: string } } | undefined;
      try {
        status = await this.#json('GET', `/v1/txs/${hash}`);
      } catch (err) {
        if (!isDatagrantError(err, 'LEDGER_TX_NOT_FOUND')) throw err;
      }
      if (status?.status === 'committed') return { hash, height: status.height! };
      if (status?.status === 'rejected')
        throw new DatagrantError(status.error!.code, status.error!.message, { hash });
      if (this.#now() > deadline)
        throw new DatagrantError('CLIENT_TIMEOUT', `tx ${hash} was not committed in time`, { hash });
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  #sign<K extends 'request.open' | 'usage'>(kind: K, body: TxBody<K>): Tx<K> {
    const keys = this.#options.keys;
    return signTx(
      { chain: this.chain, kind, body },
      keys.signing.publicKey,
      keys.signing.secretKey,
      this.#now(),
    );
  }

  async #audienceOf(): Promise<string> {
    this.#audience ??= (await this.status()).self;
    return this.#audience;
  }

  async #json<T>(method: 'GET' | 'POST', path: string, body?: unknown, signed = false): Promise<T> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = text === undefined ? {} : { 'content-type': 'application/json' };
    if (signed) {
      Object.assign(
        headers,
        signCall(
          {
            method,
            path,
            body: text ?? '',
            caller: institutionCaller(this.#options.institution),
            audience: await this.#audienceOf(),
            chain: this.chain,
            timestamp: this.#now(),
          },
          this.#options.keys.signing.secretKey,
        ),
      );
    }
    let response: Response;
    try {
      response = await this.#fetch(new URL(path, this.#options.api), {
        method,
        headers,
        ...(text === undefined ? {} : { body: text }),
        signal: AbortSignal.timeout(this.#options.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new DatagrantError(
        'CLIENT_UNREACHABLE',
        `cannot reach ${this.#options.api}: ${(err as Error).message}`,
      );
    }
    const raw = await response.text();
    let json: unknown;
    try {
      json = raw.length > 0 ? JSON.parse(raw) : undefined;
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new DatagrantError(e?.code ?? 'CLIENT_HTTP_ERROR', e?.message ?? `HTTP ${response.status}`, {
        status: response.status,
      });
    }
    return json as T;
  }
}
