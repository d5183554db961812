/**
 * Signed HTTP calls (portable: the bank client, the CLI and the portal sign with it; the node
 * verifies in platform/http-auth). The caller signs, with Ed25519, a domain tag followed by the
 * canonical JSON (RFC 8785) of
 *
 *   {audience, body, caller, chain, method, nonce, path, timestamp}
 *
 * - `audience`: the key (hex) of the node the call is for, so it cannot be replayed at another node;
 * - `body`: SHA-256 (hex) of the exact body bytes (of the empty string when there is none);
 * - `caller`: who signs, e.g. `institution:demo-bank` (and, for subjects' reads, `subject:<id>`);
 * - `chain`: the chain id, so it cannot be replayed on another chain;
 * - `method` upper-case, `path` with its query string exactly as sent;
 * - `nonce`: 16 to 64 lower-case hex characters, fresh per call: a node refuses a nonce it has seen
 *   from the same caller within the time window, across restarts;
 * - `timestamp`: unix ms; a node refuses calls outside its skew window.
 *
 * The values travel in the `x-datagrant-*` headers of `SIGNED_CALL_HEADERS`; docs/http-signatures.md
 * shows the bytes for integrators.
 */
import { bytesToHex, concatBytes, utf8ToBytes } from './bytes.js';
import { canonicalBytes } from './canonical.js';
import { randomBytes, sha256Hex, sign } from './crypto.js';

/** Header names of a signed call. */
export const SIGNED_CALL_HEADERS = {
  caller: 'x-datagrant-caller',
  audience: 'x-datagrant-audience',
  chain: 'x-datagrant-chain',
  nonce: 'x-datagrant-nonce',
  timestamp: 'x-datagrant-timestamp',
  signature: 'x-datagrant-signature',
} as const;

/** Domain tag in front of the signed JSON. */
export const SIGNED_CALL_DOMAIN = 'datagrant/http/v2\n';
const DOMAIN = utf8ToBytes(SIGNED_CALL_DOMAIN);

/** What a signed call covers. */
export interface SignedCall {
  method: string;
  /** Path with query string, exactly as sent. */
  path: string;
  /** Body bytes (or text); empty for none. */
  body: Uint8Array | string;
  /** e.g. `institution:demo-bank`. */
  caller: string;
  /** Key (hex) of the node the call is addressed to. */
  audience: string;
  chain: string;
  nonce: string;
  timestamp: number;
}

/** The bytes signed for one call. */
export function signedCallBytes(call: SignedCall): Uint8Array {
  const body = typeof call.body === 'string' ? utf8ToBytes(call.body) : call.body;
  return concatBytes(
    DOMAIN,
    canonicalBytes({
      audience: call.audience,
      body: sha256Hex(body),
      caller: call.caller,
      chain: call.chain,
      method: call.method.toUpperCase(),
      nonce: call.nonce,
      path: call.path,
      timestamp: call.timestamp,
    }),
  );
}

/** The caller name of an institution. */
export function institutionCaller(id: string): string {
  return `institution:${id}`;
}

/**
 * Headers that authenticate one call. `nonce` and `now` are for reproducible output only; leave
 * them to the defaults (a fresh random nonce, the clock).
 */
export function signCall(
  call: Omit<SignedCall, 'nonce' | 'timestamp'> & { nonce?: string; timestamp?: number },
  secretKey: Uint8Array,
  signer: (message: Uint8Array, secretKey: Uint8Array) => Uint8Array = sign,
): Record<string, string> {
  const full: SignedCall = {
    ...call,
    nonce: call.nonce ?? bytesToHex(randomBytes(16)),
    timestamp: call.timestamp ?? Date.now(),
  };
  const sig = signer(signedCallBytes(full), secretKey);
  return {
    [SIGNED_CALL_HEADERS.caller]: full.caller,
    [SIGNED_CALL_HEADERS.audience]: full.audience,
    [SIGNED_CALL_HEADERS.chain]: full.chain,
    [SIGNED_CALL_HEADERS.nonce]: full.nonce,
    [SIGNED_CALL_HEADERS.timestamp]: String(full.timestamp),
    [SIGNED_CALL_HEADERS.signature]: bytesToHex(sig),
  };
}
