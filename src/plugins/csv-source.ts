/**
 * The `csv` plugin: answers one data type from a local CSV file (RFC 4180, UTF-8, header row),
 * one row per subject keyed by a subject column. The file is re-read when it changes on disk.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import { utf8ToBytes } from '../common/bytes.js';
import { DatagrantError } from '../common/errors.js';
import { DATA_TYPES, type DataType } from '../ledger/tx.js';
import { formatCsv, parseCsv } from './csv-format.js';
import {
  abortError,
  type DataQuery,
  type DataSource,
  type FetchContext,
  type FetchResult,
  FIELD_NAME_PATTERN,
  type FieldValue,
  pluginError,
} from './data-source.js';
import { SOURCE_NAME_SCHEMA } from './http-json-source.js';

const strict = { additionalProperties: false } as const;
const Column = Type.String({ minLength: 1, maxLength: 128 });

/** How a CSV cell is turned into a field value; an empty cell is always `null`. */
export const CSV_VALUE_KINDS = ['string', 'integer', 'boolean'] as const;

/** Config of a `csv` source. */
export const CsvSourceConfigSchema = Type.Object(
  {
    kind: Type.Literal('csv'),
    /** Unique name; defaults to `csv:<file name>`. */
    name: Type.Optional(SOURCE_NAME_SCHEMA),
    /** Path of the CSV file; relative paths resolve against the `baseDir` given to `createDataSource`. */
    path: Type.String({ minLength: 1, maxLength: 4096 }),
    /** The one data type this file holds. */
    dataType: Type.Union(DATA_TYPES.map((t) => Type.Literal(t))),
    /** Column holding the pseudonymous subject id (default `subject`). */
    subjectColumn: Type.Optional(Column),
    /** Output field → column name, or `{column, as}` to convert; default: every other column as a string. */
    fields: Type.Optional(
      Type.Record(
        Type.String({ pattern: FIELD_NAME_PATTERN.source }),
        Type.Union([
          Column,
          Type.Object(
            { column: Column, as: Type.Optional(Type.Union(CSV_VALUE_KINDS.map((k) => Type.Literal(k)))) },
            strict,
          ),
        ]),
        { minProperties: 1, maxProperties: 64, additionalProperties: false },
      ),
    ),
    /** Field separator (default `,`). */
    delimiter: Type.Optional(Type.String({ minLength: 1, maxLength: 1, pattern: '^[^"\\r\\n]$' })),
  },
  strict,
);

/** Config of a `csv` source. */
export type CsvSourceConfig = Static<typeof CsvSourceConfigSchema>;

interface FieldSpec {
  field: string;
  column: string;
  as: (typeof CSV_VALUE_KINDS)[number];
}

interface LoadedTable {
  mtimeMs: number;
  size: number;
  header: string[];
  columns: Map<string, number>;
  rows: Map<string, string[]>;
  duplicates: Set<string>;
}

const MAX_FILE_BYTES = 256 * 1024 * 1024;

/** A `csv` data source. Build it with `createDataSource` to have its config schema-checked. */
export class CsvSource implements DataSource {
  readonly name: string;
  readonly dataTypes: readonly DataType[];
  readonly #path: string;
  readonly #subjectColumn: string;
  readonly #fields: FieldSpec[] | undefined;
  readonly #delimiter: string;
  #table: LoadedTable | undefined;
  #loading: Promise<LoadedTable> | undefined;

  /** `baseDir` resolves a relative `path` (default: the working directory). */
  constructor(config: CsvSourceConfig, options: { baseDir?: string } = {}) {
    this.#path = resolve(options.baseDir ?? process.cwd(), config.path);
    this.#subjectColumn = config.subjectColumn ?? 'subject';
    this.#delimiter = config.delimiter ?? ',';
    this.#fields =
      config.fields === undefined
        ? undefined
        : Object.entries(config.fields).map(([field, spec]) =>
            typeof spec === 'string'
              ? { field, column: spec, as: 'string' }
              : { field, column: spec.column, as: spec.as ?? 'string' },
          );
    this.name = config.name ?? `csv:${basename(this.#path)}`.slice(0, 64);
    this.dataTypes = Object.freeze([config.dataType]);
  }

  /** Looks the subject up in the file. */
  async fetch(query: DataQuery, ctx: FetchContext): Promise<FetchResult> {
    if (!this.dataTypes.includes(query.type)) {
      throw pluginError('PLUGIN_CONFIG_INVALID', `${this.name} does not serve ${query.type}`);
    }
    if (ctx.signal.aborted) throw abortError(ctx.signal, `${this.name} read`);
    const table = await this.#load();
    if (ctx.signal.aborted) throw abortError(ctx.signal, `${this.name} read`);
    if (table.duplicates.has(query.subject)) {
      throw pluginError('PLUGIN_BAD_RESPONSE', `${this.name} has more than one row for the subject`);
    }
    const row = table.rows.get(query.subject);
    if (row === undefined) throw pluginError('PLUGIN_NOT_FOUND', `${this.name} has no row for the subject`);
    const specs = this.#specs(table);
    const fields: Record<string, FieldValue> = {};
    for (const spec of specs) {
      fields[spec.field] = convert(row[table.columns.get(spec.column)!]!, spec, this.name);
    }
    const raw = utf8ToBytes(formatCsv([table.header, row], this.#delimiter));
    return { fields, source: `csv:${basename(this.#path)}`.slice(0, 200), raw };
  }

  #specs(table: LoadedTable): FieldSpec[] {
    if (this.#fields !== undefined) return this.#fields;
    return table.header
      .filter((c) => c !== this.#subjectColumn)
      .map((c) => ({ field: c, column: c, as: 'string' }));
  }

  async #load(): Promise<LoadedTable> {
    let info: { mtimeMs: number; size: number };
    try {
      info = await stat(this.#path);
    } catch {
      throw pluginError('PLUGIN_UNAVAILABLE', `${this.name}: the file cannot be read`);
    }
    const cached = this.#table;
    if (cached !== undefined && cached.mtimeMs === info.mtimeMs && cached.size === info.size) return cached;
    if (this.#loading === undefined) {
      this.#loading = this.#read(info).finally(() => {
        this.#loading = undefined;
      });
    }
    return this.#loading;
  }

  // One read serves every concurrent caller, so it takes no caller's signal; callers check theirs after.
  async #read(info: { mtimeMs: number; size: number }): Promise<LoadedTable> {
    if (info.size > MAX_FILE_BYTES)
      throw pluginError('PLUGIN_BAD_RESPONSE', `${this.name}: the file is too large`);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(this.#path);
    } catch {
      throw pluginError('PLUGIN_UNAVAILABLE', `${this.name}: the file cannot be read`);
    }
    let rows: string[][];
    try {
      rows = parseCsv(new TextDecoder('utf-8', { fatal: true }).decode(bytes), {
        delimiter: this.#delimiter,
      });
    } catch (err) {
      const where =
        err instanceof DatagrantError && err.code === 'CSV_MALFORMED' ? `: ${err.message}` : ': not UTF-8';
      throw pluginError('PLUGIN_BAD_RESPONSE', `${this.name} is not valid CSV${where}`);
    }
    const header = rows[0];
    if (header === undefined) throw pluginError('PLUGIN_BAD_RESPONSE', `${this.name} has no header row`);
    const columns = new Map<string, number>();
    header.forEach((name, index) => {
      if (columns.has(name))
        throw pluginError('PLUGIN_BAD_RESPONSE', `${this.name} repeats the column ${name}`);
      columns.set(name, index);
    });
    const subjectIndex = columns.get(this.#subjectColumn);
    if (subjectIndex === undefined) {
      throw pluginError('PLUGIN_BAD_RESPONSE', `${this.name} has no column ${this.#subjectColumn}`);
    }
    for (const spec of this.#fields ?? []) {
      if (!columns.has(spec.column))
        throw pluginError('PLUGIN_BAD_RESPONSE', `${this.name} has no column ${spec.column}`);
    }
    const bySubject = new Map<string, string[]>();
    const duplicates = new Set<string>();
    for (let r = 1; r < rows.length; r++) {
      const row = rows[r]!;
      if (row.length !== header.length) {
        throw pluginError(
          'PLUGIN_BAD_RESPONSE',
          `${this.name} row ${r + 1} has ${row.length} fields, not ${header.length}`,
        );
      }
      const subject = row[subjectIndex]!;
      if (bySubject.has(subject)) duplicates.add(subject);
      bySubject.set(subject, row);
    }
    const table = { mtimeMs: info.mtimeMs, size: info.size, header, columns, rows: bySubject, duplicates };
    this.#table = table;
    return table;
  }

  /** Reads and checks the file (header, columns, row widths). */
  async health(): Promise<{ ok: boolean; detail?: string }> {
    try {
      const table = await this.#load();
      return { ok: true, detail: `${table.rows.size} subjects` };
    } catch (err) {
      return { ok: false, detail: err instanceof Error ? err.message : 'unreadable' };
    }
  }
}

function convert(cell: string, spec: FieldSpec, source: string): FieldValue {
  if (cell === '') return null;
  switch (spec.as) {
    case 'string':
      return cell;
    case 'integer': {
      const n = /^-?[0-9]{1,16}$/.test(cell.trim()) ? Number(cell.trim()) : Number.NaN;
      if (!Number.isSafeInteger(n))
        throw pluginError('PLUGIN_BAD_RESPONSE', `${source}: field ${spec.field} is not an integer`);
      return n === 0 ? 0 : n;
    }
    case 'boolean': {
      const t = cell.trim().toLowerCase();
      if (t === 'true') return true;
      if (t === 'false') return false;
      throw pluginError('PLUGIN_BAD_RESPONSE', `${source}: field ${spec.field} is not true or false`);
    }
  }
}
