/**
 * Builds a data source from node config, validating the config against its kind's schema and
 * failing fast with `PLUGIN_CONFIG_INVALID` naming the bad field.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { DatagrantError } from '../common/errors.js';
import { CsvSource, CsvSourceConfigSchema } from './csv-source.js';
import type { DataSource } from './data-source.js';
import { HttpJsonSource, HttpJsonSourceConfigSchema } from './http-json-source.js';

/** Config of any built-in source, discriminated by `kind`. */
export const DataSourceConfigSchema = Type.Union([HttpJsonSourceConfigSchema, CsvSourceConfigSchema]);

/** Config of any built-in source. */
export type DataSourceConfig = Static<typeof DataSourceConfigSchema>;

/** The built-in plugin kinds. */
export const DATA_SOURCE_KINDS = ['http-json', 'csv'] as const;

const checks: Record<(typeof DATA_SOURCE_KINDS)[number], TypeCheck<TSchema>> = {
  'http-json': TypeCompiler.Compile(HttpJsonSourceConfigSchema),
  csv: TypeCompiler.Compile(CsvSourceConfigSchema),
};

function configError(field: string, why: string): DatagrantError {
  return new DatagrantError('PLUGIN_CONFIG_INVALID', `plugin config ${field}: ${why}`, { field });
}

/** Validates untrusted config; returns it typed or throws `PLUGIN_CONFIG_INVALID` naming the field. */
export function validateDataSourceConfig(input: unknown): DataSourceConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw configError('(root)', 'must be an object');
  const kind = (input as { kind?: unknown }).kind;
  if (kind !== 'http-json' && kind !== 'csv') {
    throw configError('kind', `must be one of ${DATA_SOURCE_KINDS.join(', ')}`);
  }
  const check = checks[kind];
  if (!check.Check(input)) {
    const error = check.Errors(input).First();
    const field = error?.path ? error.path.slice(1).replaceAll('/', '.') : '(root)';
    throw configError(field, error?.message.toLowerCase() ?? 'is invalid');
  }
  return input as DataSourceConfig;
}

/** Options of `createDataSource`. */
export interface CreateDataSourceOptions {
  /** Directory that relative file paths (csv) resolve against, e.g. the node config's directory. */
  baseDir?: string;
}

/** Validates `config` and builds the source it describes. */
export function createDataSource(config: unknown, options: CreateDataSourceOptions = {}): DataSource {
  const valid = validateDataSourceConfig(config);
  switch (valid.kind) {
    case 'http-json':
      return new HttpJsonSource(valid);
    case 'csv':
      return new CsvSource(valid, options);
  }
}
