/**
 * Signed HTTP requests for institutions: Ed25519 over the method, path with query, SHA-256 of
 * the body, the timestamp and the institution id. The platform refuses unknown institutions,
 * bad signatures, timestamps outside the skew window, and any signature it has already seen.
 * The signing half is portable (CLI and bank clients); verification runs on the platform.
 */
import { bytesToHex, concatBytes, fromHex, utf8ToBytes } from '../common/bytes.js';
import { canonicalBytes } from '../common/canonical.js';
import { sha256Hex, sign } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';
import type { SignatureVerifier } from '../ledger/index.js';

/** Header names of a signed request. */
export const AUTH_HEADERS = {
  institution: 'x-datagrant-institution',
  timestamp: 'x-datagrant-timestamp',
  signature: 'x-datagrant-signature',
} as const;

const HTTP_DOMAIN = utf8ToBytes('datagrant/http/v1\n');

/** The bytes an institution signs for one HTTP request. */
export function httpSigningBytes(
  method: string,
  path: string,
  body: Uint8Array | string,
  timestamp: number,
  institution: string,
): Uint8Array {
  const bodyBytes = typeof body === 'string' ? utf8ToBytes(body) : body;
  return concatBytes(
    HTTP_DOMAIN,
    canonicalBytes({
      method: method.toUpperCase(),
      path,
      body: sha256Hex(bodyBytes),
      timestamp,
      institution,
    }),
  );
}

/** Headers that authenticate one request as `institution`. */
export function signHttpRequest(
  method: string,
  path: string,
  body: Uint8Array | string,
  institution: string,
  secretKey: Uint8Array,
  now: number = Date.now(),
): Record<string, string> {
  const sig = sign(httpSigningBytes(method, path, body, now, institution), secretKey);
  return {
    [AUTH_HEADERS.institution]: institution,
    [AUTH_HEADERS.timestamp]: String(now),
    [AUTH_HEADERS.signature]: bytesToHex(sig),
  };
}

/** Options of the verifier. */
export interface HttpAuthOptions {
  /** Largest accepted difference between the request's timestamp and the platform's clock. */
  maxSkewMs: number;
}

/** Checks signed requests and remembers signatures inside the skew window to refuse replays. */
export class HttpAuthVerifier {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly options: HttpAuthOptions,
    private readonly modules: {
      /** Active institution's signing key (hex) by id, or undefined. */
      institutionKey: (id: string) => string | undefined;
      verifier: SignatureVerifier;
      now: () => number;
    },
  ) {}

  /**
   * Returns the authenticated institution id. Errors (all 401): API_UNAUTHENTICATED for missing
   * or malformed headers, unknown institution, bad signature, stale timestamp or replay.
   */
  verify(
    method: string,
    path: string,
    body: Uint8Array | string,
    headers: Record<string, string | string[] | undefined>,
  ): string {
    const institution = headers[AUTH_HEADERS.institution];
    const timestampText = headers[AUTH_HEADERS.timestamp];
    const signature = headers[AUTH_HEADERS.signature];
    if (
      typeof institution !== 'string' ||
      typeof timestampText !== 'string' ||
      typeof signature !== 'string'
    ) {
      throw new DatagrantError('API_UNAUTHENTICATED', 'signed request headers are missing');
    }
    const timestamp = Number(timestampText);
    if (!/^[0-9]{1,16}$/.test(timestampText) || !/^[0-9a-f]{128}$/.test(signature)) {
      throw new DatagrantError('API_UNAUTHENTICATED', 'signed request headers are malformed');
    }
    const now = this.modules.now();
    if (Math.abs(now - timestamp) > this.options.maxSkewMs) {
      throw new DatagrantError(
        'API_UNAUTHENTICATED',
        `timestamp is outside the ${this.options.maxSkewMs} ms window`,
      );
    }
    const key = this.modules.institutionKey(institution);
    if (!key) throw new DatagrantError('API_UNAUTHENTICATED', 'unknown or retired institution');
    const ok = this.modules.verifier(
      fromHex(signature, 'signature', 64),
      httpSigningBytes(method, path, body, timestamp, institution),
      fromHex(key, 'key', 32),
    );
    if (!ok) throw new DatagrantError('API_UNAUTHENTICATED', 'request signature does not verify');
    this.prune(now);
    if (this.seen.has(signature))
      throw new DatagrantError('API_UNAUTHENTICATED', 'request was already used (replay)');
    this.seen.set(signature, timestamp);
    return institution;
  }

  private prune(now: number): void {
    if (this.seen.size < 1024) return;
    for (const [sig, ts] of this.seen) if (Math.abs(now - ts) > this.options.maxSkewMs) this.seen.delete(sig);
  }
}
