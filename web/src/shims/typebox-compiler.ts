/**
 * Browser stand-in for `@sinclair/typebox/compiler` (aliased in vite.config.ts): the same
 * `TypeCompiler.Compile(schema).Check/Errors` surface, backed by TypeBox's interpreter, so the
 * ledger's schemas run under a Content-Security-Policy without `unsafe-eval`.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { Errors, type ValueErrorIterator } from '@sinclair/typebox/errors';
import { Check } from '@sinclair/typebox/value';

/** The part of TypeBox's TypeCheck the ledger uses. */
export interface TypeCheck<T extends TSchema> {
  Check(value: unknown): value is Static<T>;
  Errors(value: unknown): ValueErrorIterator;
}

/** Drop-in for TypeBox's TypeCompiler namespace (Compile only). */
export const TypeCompiler = {
  Compile<T extends TSchema>(schema: T): TypeCheck<T> {
    return {
      Check: (value: unknown): value is Static<T> => Check(schema, value),
      Errors: (value: unknown) => Errors(schema, value),
    };
  },
};
