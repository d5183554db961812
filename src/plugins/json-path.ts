/**
 * Dotted JSON paths for field mappings: `data.monthlyContribution`, `items[0].amount` or
 * `items.0.amount`. Only own properties are followed, so a path can never reach a prototype.
 */

/** Syntax of a JSON path in a field mapping. */
export const JSON_PATH_PATTERN = '^[A-Za-z_$][A-Za-z0-9_$-]*(?:\\.[A-Za-z0-9_$-]+|\\[[0-9]+\\])*$';

const JSON_PATH_RE = new RegExp(JSON_PATH_PATTERN);

/** Splits a path into property names and array indexes; throws on invalid syntax. */
export function parseJsonPath(path: string): (string | number)[] {
  if (!JSON_PATH_RE.test(path)) throw new Error(`invalid JSON path: ${path}`);
  const segments: (string | number)[] = [];
  for (const part of path.split('.')) {
    const bracket = part.indexOf('[');
    const name = bracket === -1 ? part : part.slice(0, bracket);
    if (name.length > 0) segments.push(/^[0-9]+$/.test(name) ? Number(name) : name);
    if (bracket !== -1) {
      for (const m of part.slice(bracket).matchAll(/\[([0-9]+)\]/g)) segments.push(Number(m[1]));
    }
  }
  return segments;
}

/** Result of a lookup: `found` false when some segment is missing. */
export type JsonLookup = { found: true; value: unknown } | { found: false };

/** Follows parsed path segments through a parsed JSON value. */
export function lookupJsonPath(root: unknown, segments: readonly (string | number)[]): JsonLookup {
  let current: unknown = root;
  for (const segment of segments) {
    if (Array.isArray(current)) {
      const index = typeof segment === 'number' ? segment : Number.NaN;
      if (!Number.isInteger(index) || index >= current.length) return { found: false };
      current = current[index];
    } else if (current !== null && typeof current === 'object') {
      const key = String(segment);
      if (!Object.hasOwn(current, key)) return { found: false };
      current = (current as Record<string, unknown>)[key];
    } else {
      return { found: false };
    }
  }
  return { found: true, value: current };
}
