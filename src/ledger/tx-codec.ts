/**
 * Transaction encoding: canonical signing bytes, hash, signature, and strict decoding of
 * untrusted input into a typed transaction. Portable (the browser portal signs with it).
 */
import type { TSchema } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { bytesToHex, concatBytes, fromHex, utf8ToBytes } from '../common/bytes.js';
import { canonicalBytes, canonicalize } from '../common/canonical.js';
import { randomBytes, sha256, sign, verify } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';
import {
  type AnyTx,
  BODY_SCHEMAS,
  ENVELOPE_SCHEMA,
  MAX_TX_BYTES,
  type Tx,
  type TxBody,
  type TxKind,
  type UnsignedTx,
} from './tx.js';

const TX_DOMAIN = utf8ToBytes('datagrant/tx/v1\n');

/** Signature check used by the ledger: the portable one by default, OpenSSL's on the node. */
export type SignatureVerifier = (
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
) => boolean;

/** The encodings of one transaction object, computed once (see `txHash`). */
interface TxEncoding {
  /** Canonical body and envelope text around the signature: `{"body":…,"nonce":…` and `"signer":…}`. */
  head?: string;
  tail?: string;
  signing?: Uint8Array;
  hash?: string;
  bytes?: Uint8Array;
}

const encodings = new WeakMap<object, TxEncoding>();
const ENVELOPE_KEYS = ['v', 'chain', 'kind', 'signer', 'nonce', 'expires', 'body', 'sig'] as const;

function encodingOf(tx: object): TxEncoding {
  let e = encodings.get(tx);
  if (e === undefined) {
    e = {};
    encodings.set(tx, e);
  }
  return e;
}

/**
 * Canonical text of the envelope without `sig`, split where `sig` sorts in (after `nonce`, before
 * `signer`), so the signing bytes and the whole transaction's bytes share one canonicalisation.
 */
function envelopeParts(tx: UnsignedTx, e: TxEncoding): { head: string; tail: string } {
  if (e.head === undefined || e.tail === undefined) {
    const { v, chain, kind, signer, nonce, expires, body } = tx;
    e.head =
      `{"body":${canonicalize(body)},"chain":${canonicalize(chain)},"expires":${canonicalize(expires)}` +
      `,"kind":${canonicalize(kind)},"nonce":${canonicalize(nonce)}`;
    e.tail = `"signer":${canonicalize(signer)},"v":${canonicalize(v)}}`;
  }
  return { head: e.head, tail: e.tail };
}

/** The bytes a transaction's signature covers: a domain tag and the canonical unsigned envelope. */
export function txSigningBytes(tx: UnsignedTx): Uint8Array {
  const e = encodingOf(tx);
  if (e.signing === undefined) {
    const { head, tail } = envelopeParts(tx, e);
    e.signing = concatBytes(TX_DOMAIN, utf8ToBytes(`${head},${tail}`));
  }
  return e.signing;
}

/**
 * Transaction hash (hex): SHA-256 of its signing bytes, so it names the transaction independent of
 * the signature. Transactions are values: the encodings of a transaction object are computed once
 * and remembered with it, so change a copy, never a transaction that was already hashed.
 */
export function txHash(tx: UnsignedTx): string {
  const e = encodingOf(tx);
  if (e.hash === undefined) e.hash = bytesToHex(sha256(txSigningBytes(tx)));
  return e.hash;
}

/** Canonical bytes of the whole signed transaction (what blocks carry and Merkle leaves hash). */
export function txBytes(tx: Tx): Uint8Array {
  const e = encodingOf(tx);
  if (e.bytes === undefined) {
    // Only a plain envelope with exactly the eight fields can be assembled from the parts; anything
    // else is encoded as it is (and will not verify).
    const plain =
      Object.getPrototypeOf(tx) === Object.prototype &&
      Object.keys(tx).length === ENVELOPE_KEYS.length &&
      ENVELOPE_KEYS.every((k) => Object.hasOwn(tx, k));
    if (plain) {
      const { head, tail } = envelopeParts(tx, e);
      e.bytes = utf8ToBytes(`${head},"sig":${canonicalize(tx.sig)},${tail}`);
    } else e.bytes = canonicalBytes(tx);
  }
  return e.bytes;
}

/** Fields a caller gives to build a transaction. */
export interface TxDraft<K extends TxKind> {
  chain: string;
  kind: K;
  body: TxBody<K>;
  /** Unix ms; defaults to now + 10 minutes. */
  expires?: number;
  nonce?: string;
}

/** Default lifetime of a fresh transaction. */
export const DEFAULT_TX_TTL_MS = 10 * 60 * 1000;

/** Builds and signs a transaction with an Ed25519 secret key (portable signer). */
export function signTx<K extends TxKind>(
  draft: TxDraft<K>,
  signerPublicKey: Uint8Array,
  signerSecretKey: Uint8Array,
  now: number = Date.now(),
  signer: (message: Uint8Array, secretKey: Uint8Array) => Uint8Array = sign,
): Tx<K> {
  const unsigned: UnsignedTx<K> = {
    v: 1,
    chain: draft.chain,
    kind: draft.kind,
    signer: bytesToHex(signerPublicKey),
    nonce: draft.nonce ?? bytesToHex(randomBytes(16)),
    expires: draft.expires ?? now + DEFAULT_TX_TTL_MS,
    body: draft.body,
  };
  const sig = bytesToHex(signer(txSigningBytes(unsigned), signerSecretKey));
  const signed = { ...unsigned, sig };
  // The signed transaction has the same envelope: keep what was already encoded.
  encodings.set(signed, { ...encodingOf(unsigned) });
  return signed;
}

/** True when the transaction's signature is valid for its signer. */
export function verifyTxSignature(tx: Tx, verifier: SignatureVerifier = verify): boolean {
  return verifier(fromHex(tx.sig, 'sig', 64), txSigningBytes(tx), fromHex(tx.signer, 'signer', 32));
}

const envelopeCheck = TypeCompiler.Compile(ENVELOPE_SCHEMA);
const bodyChecks = new Map<string, TypeCheck<TSchema>>(
  Object.entries(BODY_SCHEMAS).map(([kind, schema]) => [kind, TypeCompiler.Compile(schema as TSchema)]),
);

function firstError(check: TypeCheck<TSchema>, value: unknown, prefix: string): string {
  const error = check.Errors(value).First();
  if (!error) return `${prefix} is invalid`;
  return `${prefix}${error.path || ''}: ${error.message}`;
}

/**
 * Validates untrusted input as a transaction (envelope and body schema, size). Does not check
 * the signature or any ledger rule. Errors: `LEDGER_TX_MALFORMED`, `LEDGER_TX_TOO_LARGE`.
 */
export function decodeTx(input: unknown): AnyTx {
  if (!envelopeCheck.Check(input)) {
    throw new DatagrantError('LEDGER_TX_MALFORMED', firstError(envelopeCheck, input, 'tx'));
  }
  const tx = input as unknown as AnyTx;
  const bodyCheck = bodyChecks.get(tx.kind)!;
  if (!bodyCheck.Check(tx.body)) {
    throw new DatagrantError('LEDGER_TX_MALFORMED', firstError(bodyCheck, tx.body, `${tx.kind} body`));
  }
  let size: number;
  try {
    size = txBytes(tx).length;
  } catch (err) {
    throw new DatagrantError('LEDGER_TX_MALFORMED', `tx: ${(err as Error).message}`);
  }
  if (size > MAX_TX_BYTES) {
    throw new DatagrantError('LEDGER_TX_TOO_LARGE', `tx is ${size} bytes, more than ${MAX_TX_BYTES}`);
  }
  return tx;
}
