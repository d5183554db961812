/**
 * The subject's key and signatures, all inside the page: the key file is decoded here (scrypt +
 * XChaCha20-Poly1305 when sealed), checked against the keys registered for the subject, and used
 * to sign grants and decisions with the very builders the CLI uses (src/platform/consent.ts), so
 * both produce the same canonical transaction from the same inputs. Nothing here touches the
 * network: callers submit only the signed transaction.
 */
import { bytesToHex } from '../../src/common/bytes.js';
import { canonicalize } from '../../src/common/canonical.js';
import { DatagrantError } from '../../src/common/errors.js';
import { decodeKeyFile, type KeySet } from '../../src/common/keyfile.js';
import type { SubjectState } from '../../src/ledger/records.js';
import type { Tx, TxBody } from '../../src/ledger/tx.js';
import { txBytes, txHash } from '../../src/ledger/tx-codec.js';
import {
  buildGrantTx,
  buildSubjectTx,
  type GrantableRequest,
  type GrantChoice,
  type Grantee,
  type SignContext,
} from '../../src/platform/consent.js';
import { seededRandom } from './seeded-random.js';

/** Parses a chosen key file; KEYFILE_MALFORMED when it is not JSON. */
export async function readKeyFileJson(file: Blob): Promise<unknown> {
  const text = await file.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new DatagrantError('KEYFILE_MALFORMED', 'the file is not JSON');
  }
}

/** Opens a key file (its passphrase when sealed). */
export function openKeyFile(json: unknown, passphrase: string): KeySet {
  return decodeKeyFile(json, passphrase.length > 0 ? passphrase : undefined);
}

/** PORTAL_KEY_MISMATCH unless `keys` are the keys registered for the subject. */
export function checkSubjectKeys(keys: KeySet, registered: SubjectState, subjectId: string): void {
  if (
    bytesToHex(keys.signing.publicKey) !== registered.signKey ||
    bytesToHex(keys.encryption.publicKey) !== registered.encKey
  ) {
    throw new DatagrantError('PORTAL_KEY_MISMATCH', `its keys are not the ones registered for ${subjectId}`);
  }
}

/** Overwrites the secret keys in memory (after "Forget key"). */
export function wipeKeys(keys: KeySet): void {
  keys.signing.secretKey.fill(0);
  keys.encryption.secretKey.fill(0);
}

/** Everything a grant depends on besides the key. */
export interface GrantInputs {
  ctx: SignContext;
  request: GrantableRequest;
  /** The grantee: the request's institution and its X25519 key (hex), from GET /v1/institutions/:id. */
  grantee: Grantee;
  choice: GrantChoice;
}

/** Signs a grant (re-wrapping each chosen record's key to the institution). */
export function signGrant(
  keys: KeySet,
  inputs: GrantInputs,
  random?: (length: number) => Uint8Array,
): Tx<'grant'> {
  return buildGrantTx(inputs.ctx, inputs.request, keys, inputs.grantee, inputs.choice, random);
}

/** Signs a deny, revoke, pause, resume or erase. */
export function signDecision<K extends 'deny' | 'revoke' | 'pause' | 'resume' | 'erase'>(
  keys: KeySet,
  ctx: SignContext,
  kind: K,
  body: TxBody<K>,
): Tx<K> {
  return buildSubjectTx(ctx, kind, body, keys);
}

/** Input of the deterministic signing hook. */
export interface SignGrantHookInput extends GrantInputs {
  keyFile: unknown;
  passphrase?: string;
  /** Seed of the stand-in random source for the key wrap (see seeded-random.ts). */
  randomSeed: string;
}

/** Output of the deterministic signing hook. */
export interface SignGrantHookOutput {
  tx: Tx<'grant'>;
  /** Canonical JSON text of the signed transaction. */
  canonical: string;
  /** Canonical bytes (what blocks carry and Merkle leaves hash). */
  bytes: number[];
  hash: string;
}

declare global {
  interface Window {
    /**
     * Signs a grant exactly as the portal does, with a fixed clock, nonce and seeded key-wrap
     * randomness, so tests can compare it byte for byte with the CLI code. Submits nothing.
     */
    __datagrantSignGrant?: (input: SignGrantHookInput) => SignGrantHookOutput;
  }
}

/** Exposes `window.__datagrantSignGrant`. */
export function installSigningHook(): void {
  window.__datagrantSignGrant = (input) => {
    const keys = openKeyFile(input.keyFile, input.passphrase ?? '');
    try {
      const tx = signGrant(keys, input, seededRandom(input.randomSeed));
      return { tx, canonical: canonicalize(tx), bytes: Array.from(txBytes(tx)), hash: txHash(tx) };
    } finally {
      wipeKeys(keys);
    }
  };
}
