/**
 * The `http-json` plugin: GETs a URL built from a template, parses the JSON answer and maps
 * JSON paths to record fields. Uses the global `fetch` with the extractor's abort signal.
 *
 * A source that signs its answers is configured with `signature: { source, header?, key? }`.
 * It sends, with each 2xx answer, the header `header` (default `datagrant-source-signature`)
 * holding `t=<unix ms>;sig=<128 hex>`: the time it answered and its Ed25519 signature over the
 * source statement (records/source-statement.ts, docs/formats.md) `{v: 1, source, subject, type,
 * from?, to?, digest, time}` — `source` the configured genesis id, `subject` and `type` as asked
 * (the data type's datagrant name, not `typeNames`), `from` / `to` the period asked for (left out
 * when not asked), `digest` the SHA-256 of the exact body bytes, `time` the header's `t`. The
 * plugin rebuilds that statement from what it asked and received and hands it on with the
 * signature; an answer without the header (or with a malformed one) is PLUGIN_BAD_RESPONSE. With
 * `key` (the source's public key, as registered in genesis) it also checks the signature at once.
 */
import { type Static, Type } from '@sinclair/typebox';
import { sha256Hex } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';
import { HASH_PATTERN, ID_PATTERN } from '../ledger/patterns.js';
import { DATA_TYPES, type DataType } from '../ledger/tx.js';
import {
  parseSourceStatement,
  type SignedSourceStatement,
  verifySourceStatement,
} from '../records/source-statement.js';
import {
  abortError,
  type DataQuery,
  type DataSource,
  type FetchContext,
  type FetchResult,
  FIELD_NAME_PATTERN,
  type FieldValue,
  pluginError,
  toFieldValue,
} from './data-source.js';
import { JSON_PATH_PATTERN, lookupJsonPath, parseJsonPath } from './json-path.js';

const strict = { additionalProperties: false } as const;
const DataTypeSchema = Type.Union(DATA_TYPES.map((t) => Type.Literal(t)));

/** A field mapping: output field name → JSON path in the source's answer. */
export const FieldMappingSchema = Type.Record(
  Type.String({ pattern: FIELD_NAME_PATTERN.source }),
  Type.String({ pattern: JSON_PATH_PATTERN, maxLength: 200 }),
  { minProperties: 1, maxProperties: 64, additionalProperties: false },
);

/** Source names: short, printable, no spaces (they appear in logs and failure details). */
export const SOURCE_NAME_SCHEMA = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$' });

/** Config of an `http-json` source. */
export const HttpJsonSourceConfigSchema = Type.Object(
  {
    kind: Type.Literal('http-json'),
    /** Unique name; defaults to `http-json:<host>`. */
    name: Type.Optional(SOURCE_NAME_SCHEMA),
    /** URL template with `{subject}`, `{type}`, `{dataFrom}`, `{dataTo}` placeholders (URL-encoded when filled). */
    url: Type.String({ minLength: 1, maxLength: 2000 }),
    /** Data types served. */
    dataTypes: Type.Array(DataTypeSchema, { minItems: 1, maxItems: DATA_TYPES.length, uniqueItems: true }),
    /** Request headers (e.g. an API token); never logged. */
    headers: Type.Optional(
      Type.Record(
        Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$" }),
        Type.String({ maxLength: 4096 }),
        { additionalProperties: false },
      ),
    ),
    /** Field mapping used for every type without its own entry in `fieldsByType`. */
    fields: Type.Optional(FieldMappingSchema),
    /** Field mapping per data type. */
    fieldsByType: Type.Optional(
      Type.Partial(Type.Object(Object.fromEntries(DATA_TYPES.map((t) => [t, FieldMappingSchema])), strict)),
    ),
    /** The source's own name of a data type, substituted for `{type}`; defaults to the type itself. */
    typeNames: Type.Optional(
      Type.Partial(
        Type.Object(
          Object.fromEntries(DATA_TYPES.map((t) => [t, Type.String({ minLength: 1, maxLength: 64 })])),
          strict,
        ),
      ),
    ),
    /** URL that answers 2xx when the source is up; without it, `health()` only reports the config. */
    healthUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
    /** Largest answer accepted, in bytes (default 1 MiB). */
    maxResponseBytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024 })),
    /** The source signs its answers: how to read its signature (see the module comment). */
    signature: Type.Optional(
      Type.Object(
        {
          /** The source's id as registered in genesis `sources`. */
          source: Type.String({ pattern: ID_PATTERN }),
          /** Response header carrying `t=<unix ms>;sig=<hex>` (default `datagrant-source-signature`). */
          header: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$" })),
          /**
           * The source's Ed25519 public key (hex): answers whose signature fails under it are
           * refused here already; `datagrant init` registers it in genesis for `dataTypes`.
           */
          key: Type.Optional(Type.String({ pattern: HASH_PATTERN })),
        },
        strict,
      ),
    ),
  },
  strict,
);

/** Header an `http-json` source's signature travels in unless `signature.header` says otherwise. */
export const DEFAULT_SIGNATURE_HEADER = 'datagrant-source-signature';

const SIGNATURE_HEADER_RE = /^t=(\d{1,16});sig=([0-9a-f]{128})$/;

/** The value of the signature header for a signed statement: `t=<time>;sig=<hex>`. */
export function signatureHeaderValue(signed: SignedSourceStatement): string {
  return `t=${signed.statement.time};sig=${signed.sig}`;
}

/** Config of an `http-json` source. */
export type HttpJsonSourceConfig = Static<typeof HttpJsonSourceConfigSchema>;

const PLACEHOLDERS = new Set(['subject', 'type', 'dataFrom', 'dataTo']);
const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;
const HEALTH_TIMEOUT_MS = 3000;

function configError(field: string, why: string): DatagrantError {
  return new DatagrantError('PLUGIN_CONFIG_INVALID', `plugin config ${field}: ${why}`, { field });
}

function checkHttpUrl(text: string, field: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw configError(field, 'is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw configError(field, 'must be an http or https URL');
  return url;
}

interface CompiledMapping {
  field: string;
  path: (string | number)[];
}

/** An `http-json` data source. Build it with `createDataSource` to have its config schema-checked. */
export class HttpJsonSource implements DataSource {
  readonly name: string;
  readonly dataTypes: readonly DataType[];
  readonly #config: HttpJsonSourceConfig;
  readonly #mappings = new Map<DataType, CompiledMapping[]>();
  readonly #maxBytes: number;

  /** Checks what the schema cannot (URL syntax, placeholders, a mapping per type); `PLUGIN_CONFIG_INVALID`. */
  constructor(config: HttpJsonSourceConfig) {
    this.#config = config;
    for (const m of config.url.matchAll(/\{([^{}]*)\}/g)) {
      if (!PLACEHOLDERS.has(m[1]!)) throw configError('url', `unknown placeholder {${m[1]}}`);
    }
    if (!config.url.includes('{subject}')) throw configError('url', 'must contain the {subject} placeholder');
    const sample = checkHttpUrl(
      this.#fill({ subject: 'subject', type: 'tax', dataFrom: '', dataTo: '' }),
      'url',
    );
    if (config.healthUrl !== undefined) checkHttpUrl(config.healthUrl, 'healthUrl');
    for (const type of config.dataTypes) {
      const mapping = config.fieldsByType?.[type] ?? config.fields;
      if (mapping === undefined)
        throw configError(`fieldsByType.${type}`, 'no field mapping for this data type');
      this.#mappings.set(
        type,
        Object.entries(mapping).map(([field, path]) => ({ field, path: parseJsonPath(path) })),
      );
    }
    this.name = config.name ?? `http-json:${sample.host}`;
    this.dataTypes = Object.freeze([...config.dataTypes]);
    this.#maxBytes = config.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  }

  #fill(values: Record<string, string>): string {
    return this.#config.url.replace(/\{([^{}]*)\}/g, (_, key: string) =>
      encodeURIComponent(values[key] ?? ''),
    );
  }

  /** Fetches and maps one record. */
  async fetch(query: DataQuery, ctx: FetchContext): Promise<FetchResult> {
    const mapping = this.#mappings.get(query.type);
    if (mapping === undefined)
      throw pluginError('PLUGIN_CONFIG_INVALID', `${this.name} does not serve ${query.type}`);
    const url = new URL(
      this.#fill({
        subject: query.subject,
        type: this.#config.typeNames?.[query.type] ?? query.type,
        dataFrom: query.dataFrom ?? '',
        dataTo: query.dataTo ?? '',
      }),
    );
    const source = `${url.origin}${url.pathname}`.slice(0, 200);
    const log = ctx.logger.child({ source: this.name, type: query.type });

    let response: Response;
    try {
      response = await fetch(url, {
        method: 'GET',
        headers: { accept: 'application/json', ...this.#config.headers },
        redirect: 'manual',
        signal: ctx.signal,
      });
    } catch {
      if (ctx.signal.aborted) throw abortError(ctx.signal, `${this.name} request`);
      throw pluginError('PLUGIN_UNAVAILABLE', `${this.name} could not be reached`);
    }
    log.debug({ status: response.status }, 'source answered');
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      const status = response.status;
      if (status === 404 || status === 410)
        throw pluginError('PLUGIN_NOT_FOUND', `${this.name} has no such record`, { status });
      if (status >= 500 || status === 408 || status === 429) {
        throw pluginError('PLUGIN_UNAVAILABLE', `${this.name} answered HTTP ${status}`, { status });
      }
      throw pluginError('PLUGIN_BAD_RESPONSE', `${this.name} answered HTTP ${status}`, { status });
    }

    const raw = await this.#readBody(response, ctx.signal);
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
    } catch {
      throw pluginError('PLUGIN_BAD_RESPONSE', `${this.name} answered with something that is not JSON`);
    }
    const fields: Record<string, FieldValue> = {};
    for (const { field, path } of mapping) {
      const found = lookupJsonPath(json, path);
      if (!found.found)
        throw pluginError('PLUGIN_BAD_RESPONSE', `${this.name} answer lacks the path for field ${field}`);
      const value = toFieldValue(found.value);
      if (value === undefined)
        throw pluginError('PLUGIN_BAD_RESPONSE', `${this.name} answer has no scalar for field ${field}`);
      fields[field] = value;
    }
    const statement = this.#statement(query, raw, response.headers);
    return { fields, source, raw, ...(statement === undefined ? {} : { statement }) };
  }

  /** The source's signed statement about `raw`, read from the signature header when configured. */
  #statement(query: DataQuery, raw: Uint8Array, headers: Headers): SignedSourceStatement | undefined {
    const config = this.#config.signature;
    if (config === undefined) return undefined;
    const value = headers.get(config.header ?? DEFAULT_SIGNATURE_HEADER);
    const m = value === null ? null : SIGNATURE_HEADER_RE.exec(value.trim());
    if (m === null)
      throw pluginError('PLUGIN_BAD_RESPONSE', `${this.name} answered without a well-formed signature`);
    let signed: SignedSourceStatement;
    try {
      signed = {
        statement: parseSourceStatement({
          v: 1,
          source: config.source,
          subject: query.subject,
          type: query.type,
          ...(query.dataFrom === undefined ? {} : { from: query.dataFrom }),
          ...(query.dataTo === undefined ? {} : { to: query.dataTo }),
          digest: sha256Hex(raw),
          time: Number(m[1]),
        }),
        sig: m[2]!,
      };
    } catch {
      throw pluginError(
        'PLUGIN_BAD_RESPONSE',
        `${this.name} answered with a statement that cannot be signed`,
      );
    }
    if (config.key !== undefined && !verifySourceStatement(signed, config.key))
      throw pluginError('PLUGIN_BAD_RESPONSE', `${this.name} answered with a signature that does not verify`);
    return signed;
  }

  async #readBody(response: Response, signal: AbortSignal): Promise<Uint8Array> {
    const declared = Number(response.headers.get('content-length') ?? Number.NaN);
    if (declared > this.#maxBytes) {
      await response.body?.cancel().catch(() => undefined);
      throw pluginError('PLUGIN_BAD_RESPONSE', `${this.name} answer is larger than ${this.#maxBytes} bytes`);
    }
    if (response.body === null) return new Uint8Array(0);
    const reader = response.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.length;
        if (total > this.#maxBytes) {
          await reader.cancel().catch(() => undefined);
          throw pluginError(
            'PLUGIN_BAD_RESPONSE',
            `${this.name} answer is larger than ${this.#maxBytes} bytes`,
          );
        }
        chunks.push(value);
      }
    } catch (err) {
      if (err instanceof DatagrantError) throw err;
      if (signal.aborted) throw abortError(signal, `${this.name} request`);
      throw pluginError('PLUGIN_UNAVAILABLE', `${this.name} connection broke while answering`);
    }
    const out = new Uint8Array(total);
    let offset = 0;
    for (const chunk of chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }

  /** GETs `healthUrl` when configured. */
  async health(): Promise<{ ok: boolean; detail?: string }> {
    if (this.#config.healthUrl === undefined)
      return { ok: true, detail: 'configured; no healthUrl to probe' };
    try {
      const res = await fetch(this.#config.healthUrl, {
        headers: { ...this.#config.headers },
        redirect: 'manual',
        signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS),
      });
      await res.body?.cancel().catch(() => undefined);
      return res.ok ? { ok: true } : { ok: false, detail: `HTTP ${res.status}` };
    } catch (err) {
      return {
        ok: false,
        detail: err instanceof Error && err.name === 'TimeoutError' ? 'timed out' : 'unreachable',
      };
    }
  }
}
