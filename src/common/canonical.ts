/**
 * Canonical JSON (RFC 8785 / JCS) for the value domain datagrant signs: objects, arrays, strings,
 * booleans, null and safe integers. Floats, `undefined`, functions, sparse arrays and non-plain
 * objects are refused rather than silently changed, so the same value always yields the same
 * bytes in Node and in a browser.
 */
import { DatagrantError } from './errors.js';

/** A JSON value in the canonical domain. */
export type CanonicalValue =
  | null
  | boolean
  | number
  | string
  | CanonicalValue[]
  | { [key: string]: CanonicalValue };

const MAX_DEPTH = 32;

/** Serialises `value` to its canonical JSON text. Throws `CANONICAL_UNSUPPORTED` outside the domain. */
export function canonicalize(value: unknown): string {
  return write(value, 0, '$');
}

/** Canonical JSON as UTF-8 bytes. */
export function canonicalBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalize(value));
}

function fail(path: string, why: string): never {
  throw new DatagrantError('CANONICAL_UNSUPPORTED', `${path}: ${why}`, { path });
}

function write(value: unknown, depth: number, path: string): string {
  if (depth > MAX_DEPTH) fail(path, `nesting deeper than ${MAX_DEPTH}`);
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) fail(path, 'only safe integers are allowed');
      return Object.is(value, -0) ? '0' : String(value);
    case 'string':
      return JSON.stringify(checkString(value, path));
    case 'object': {
      if (Array.isArray(value)) {
        const parts: string[] = [];
        for (let i = 0; i < value.length; i++) {
          if (!(i in value)) fail(`${path}[${i}]`, 'sparse arrays are not allowed');
          parts.push(write(value[i], depth + 1, `${path}[${i}]`));
        }
        return `[${parts.join(',')}]`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) fail(path, 'only plain objects are allowed');
      const record = value as Record<string, unknown>;
      // JCS orders keys by UTF-16 code units, which is what the default sort compares.
      const keys = Object.keys(record).sort();
      const parts: string[] = [];
      for (const key of keys) {
        const child = record[key];
        if (child === undefined) fail(`${path}.${key}`, 'undefined is not allowed');
        parts.push(`${JSON.stringify(checkString(key, path))}:${write(child, depth + 1, `${path}.${key}`)}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      return fail(path, `${typeof value} is not allowed`);
  }
}

// Lone surrogates cannot be encoded as UTF-8, so two different strings would map to the same bytes.
function checkString(text: string, path: string): string {
  if (!text.isWellFormed()) fail(path, 'string has a lone surrogate');
  return text;
}
