/**
 * Registering in the page: the person's registrar attests her keys (its attestation service,
 * `datagrant registrar serve`, asked with the one-time code it gave her), this page checks the
 * attestation, and only then signs `subject.register` with her key, the same transaction
 * `datagrant register --registrar-url … --code …` builds (src/platform/consent.ts).
 *
 * The checks, before anything is signed: the answer is a plain attestation (no recovery) for
 * this chain and her subject id; its Ed25519 signature verifies over
 * `attestationBytes(chain, subject, signKey, encKey)` for HER keys (a registrar URL that relays
 * another person's keys is caught here); and the attesting key is one of the genesis
 * `registrars` of the genesis this page trusts. The node serves no proof of the registrars
 * governance adds or retires, so a registrar that is not in genesis is refused here (register
 * with the CLI then); one governance retired is refused by the ledger (LEDGER_UNKNOWN_REGISTRAR).
 */
import { bytesToHex, fromHex } from '../../src/common/bytes.js';
import { verify } from '../../src/common/crypto.js';
import { DatagrantError } from '../../src/common/errors.js';
import type { KeySet } from '../../src/common/keyfile.js';
import type { Genesis } from '../../src/ledger/genesis.js';
import { attestationBytes } from '../../src/ledger/state-machine.js';
import type { Tx } from '../../src/ledger/tx.js';
import { buildRegisterTx } from '../../src/platform/consent.js';
import type { AttestationAnswer } from '../../src/registrar/registrar-service.js';
import { ApiError } from './api.js';

/** The registrar service's base URL typed by the person: http(s) only, PORTAL_BAD_REGISTRAR_URL otherwise. */
export function registrarUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new DatagrantError('PORTAL_BAD_REGISTRAR_URL', 'the registrar address is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new DatagrantError('PORTAL_BAD_REGISTRAR_URL', 'the registrar address must be http(s)');
  if (!url.pathname.endsWith('/')) url.pathname = `${url.pathname}/`;
  return url;
}

/**
 * Asks the registrar service to attest `keys` for `subject` with the one-time `code`
 * (POST /v1/attest, as the CLI's `register` does). Its refusals keep their codes
 * (REGISTRAR_CODE_INVALID, _USED, _LOCKED …); PORTAL_REGISTRAR_UNREACHABLE when it cannot be reached.
 */
export async function askRegistrar(
  base: URL,
  chain: string,
  subject: string,
  keys: KeySet,
  code: string,
): Promise<AttestationAnswer> {
  let response: Response;
  try {
    response = await fetch(new URL('v1/attest', base), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        chain,
        subject,
        signKey: bytesToHex(keys.signing.publicKey),
        encKey: bytesToHex(keys.encryption.publicKey),
        code,
      }),
      cache: 'no-store',
      credentials: 'omit',
      mode: 'cors',
    });
  } catch (err) {
    throw new ApiError(
      'PORTAL_REGISTRAR_UNREACHABLE',
      `cannot reach the registrar at ${base.href} (or this node's pages may not connect to it: its config lists them in api.registrarOrigins): ${(err as Error).message}`,
      0,
    );
  }
  let json: unknown;
  try {
    json = await response.json();
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    throw new ApiError(
      typeof error?.code === 'string' ? error.code : `REGISTRAR_HTTP_${response.status}`,
      typeof error?.message === 'string' ? error.message : response.statusText,
      response.status,
    );
  }
  if (typeof json !== 'object' || json === null)
    throw new ApiError('PORTAL_BAD_ATTESTATION', 'the registrar did not answer with JSON', 0);
  return json as AttestationAnswer;
}

/**
 * PORTAL_BAD_ATTESTATION unless `answer` attests exactly `keys` for `subject` on `genesis`' chain;
 * PORTAL_UNKNOWN_REGISTRAR unless its key is a genesis registrar. Returns the registrar key.
 */
export function checkAttestation(
  genesis: Genesis,
  subject: string,
  keys: KeySet,
  answer: AttestationAnswer,
): { registrar: string; attestation: string } {
  const bad = (why: string) =>
    new DatagrantError(
      'PORTAL_BAD_ATTESTATION',
      `the registrar's answer is refused: ${why}. Nothing was signed.`,
    );
  if (answer.recovery !== undefined) throw bad('it is a recovery attestation, not a registration');
  if (answer.chain !== genesis.chain) throw bad(`it is for chain ${String(answer.chain)}`);
  if (answer.subject !== subject) throw bad(`it is for subject ${String(answer.subject)}`);
  if (typeof answer.registrar !== 'string' || typeof answer.attestation !== 'string')
    throw bad('it has no registrar key or attestation');
  let ok = false;
  try {
    ok = verify(
      fromHex(answer.attestation, 'attestation', 64),
      attestationBytes(
        genesis.chain,
        subject,
        bytesToHex(keys.signing.publicKey),
        bytesToHex(keys.encryption.publicKey),
      ),
      fromHex(answer.registrar, 'registrar', 32),
    );
  } catch {
    ok = false;
  }
  if (!ok) throw bad('its signature does not verify for your keys and subject id');
  if (!genesis.registrars.includes(answer.registrar))
    throw new DatagrantError(
      'PORTAL_UNKNOWN_REGISTRAR',
      `the attesting key ${answer.registrar.slice(0, 16)}… is not among the registrars of this chain's genesis (registrars added by governance cannot be checked in this page: register with the datagrant CLI). Nothing was signed.`,
    );
  return { registrar: answer.registrar, attestation: answer.attestation };
}

/** Signs `subject.register` with her key, once the attestation checked out. */
export function signRegistration(
  chain: string,
  subject: string,
  keys: KeySet,
  checked: { registrar: string; attestation: string },
): Tx<'subject.register'> {
  return buildRegisterTx({ chain, now: Date.now() }, subject, keys, checked.registrar, checked.attestation);
}
