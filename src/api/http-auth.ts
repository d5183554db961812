/**
 * Verifying signed HTTP calls (common/http-signature): the caller is known and active, the call
 * is addressed to this node and this chain, its timestamp is inside the skew window, its
 * signature verifies, and its nonce was never used by that caller inside the window — checked
 * against a replay guard that survives restarts. Every failure is a 401 with its own code.
 */

import { fromHex } from '../common/bytes.js';
import { DatagrantError } from '../common/errors.js';
import { SIGNED_CALL_HEADERS, signedCallBytes } from '../common/http-signature.js';
import type { SignatureVerifier } from '../ledger/index.js';
import type { ReplayGuard } from './replay-guard.js';

/** Options of the verifier. */
export interface HttpAuthOptions {
  /** Largest accepted difference between the call's timestamp and the node's clock. */
  maxSkewMs: number;
  /** This node's key (hex): the audience calls must name. */
  audience: string;
  chain: string;
}

/**
 * Who a verified call came from. `node:<name>` is the node's operator, signing with the node's own
 * key (admin routes such as the backup); the node accepts it for its own key only.
 */
export interface Caller {
  kind: 'institution' | 'subject' | 'node';
  id: string;
}

const NONCE_RE = /^[0-9a-f]{16,64}$/;
const CALLER_RE = /^(institution|subject|node):([a-z0-9][a-z0-9-]{2,63})$/;

/** Error codes of refused calls (all HTTP 401). */
export const AUTH_ERROR_CODES = [
  'API_UNAUTHENTICATED',
  'API_WRONG_AUDIENCE',
  'API_WRONG_CHAIN',
  'API_STALE_CALL',
  'API_BAD_SIGNATURE',
  'API_REPLAYED',
] as const;

/** Checks signed calls. */
export class HttpAuthVerifier {
  constructor(
    private readonly options: HttpAuthOptions,
    private readonly modules: {
      /** Active signing key (hex) of a caller, or undefined when unknown or retired. */
      callerKey: (caller: Caller) => string | undefined;
      verifier: SignatureVerifier;
      replay: ReplayGuard;
      now: () => number;
    },
  ) {}

  /** Returns the verified caller, or throws one of `AUTH_ERROR_CODES`. */
  async verify(
    method: string,
    path: string,
    body: Uint8Array | string,
    headers: Record<string, string | string[] | undefined>,
  ): Promise<Caller> {
    const h = (name: string) => {
      const v = headers[name];
      return typeof v === 'string' ? v : undefined;
    };
    const callerText = h(SIGNED_CALL_HEADERS.caller);
    const audience = h(SIGNED_CALL_HEADERS.audience);
    const chain = h(SIGNED_CALL_HEADERS.chain);
    const nonce = h(SIGNED_CALL_HEADERS.nonce);
    const timestampText = h(SIGNED_CALL_HEADERS.timestamp);
    const signature = h(SIGNED_CALL_HEADERS.signature);
    if (!callerText || !audience || !chain || !nonce || !timestampText || !signature)
      throw new DatagrantError('API_UNAUTHENTICATED', 'signed call headers are missing');
    const match = CALLER_RE.exec(callerText);
    if (
      !match ||
      !NONCE_RE.test(nonce) ||
      !/^[0-9]{1,16}$/.test(timestampText) ||
      !/^[0-9a-f]{128}$/.test(signature) ||
      !/^[0-9a-f]{64}$/.test(audience)
    )
      throw new DatagrantError('API_UNAUTHENTICATED', 'signed call headers are malformed');
    if (audience !== this.options.audience)
      throw new DatagrantError('API_WRONG_AUDIENCE', 'the call is addressed to another node');
    if (chain !== this.options.chain)
      throw new DatagrantError('API_WRONG_CHAIN', 'the call was signed for another chain');
    const timestamp = Number(timestampText);
    const now = this.modules.now();
    if (Math.abs(now - timestamp) > this.options.maxSkewMs)
      throw new DatagrantError(
        'API_STALE_CALL',
        `timestamp is outside the ${this.options.maxSkewMs} ms window`,
      );
    const caller: Caller = { kind: match[1] as Caller['kind'], id: match[2]! };
    const key = this.modules.callerKey(caller);
    if (!key) throw new DatagrantError('API_UNAUTHENTICATED', `unknown or retired ${caller.kind}`);
    const ok = this.modules.verifier(
      fromHex(signature, 'signature', 64),
      signedCallBytes({ method, path, body, caller: callerText, audience, chain, nonce, timestamp }),
      fromHex(key, 'key', 32),
    );
    if (!ok) throw new DatagrantError('API_BAD_SIGNATURE', 'call signature does not verify');
    // Remembered until the window the timestamp was accepted in has closed for it.
    const fresh = await this.modules.replay.claim(
      `${callerText}/${nonce}`,
      timestamp + this.options.maxSkewMs + 1,
    );
    if (!fresh) throw new DatagrantError('API_REPLAYED', 'this call was already made (replay)');
    return caller;
  }
}
