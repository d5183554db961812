/**
 * Transaction encoding: canonical signing bytes, hash, signature, and strict decoding of
 * untrusted input into a typed transaction. Portable (the browser portal signs with it).
 */
import type { TSchema } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { bytesToHex, concatBytes, fromHex, utf8ToBytes } from '../common/bytes.js';
import { canonicalBytes } from '../common/canonical.js';
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

/** The bytes a transaction's signature covers: a domain tag and the canonical unsigned envelope. */
export function txSigningBytes(tx: UnsignedTx): Uint8Array {
  const { v, chain, kind, signer, nonce, expires, body } = tx;
  return concatBytes(TX_DOMAIN, canonicalBytes({ v, chain, kind, signer, nonce, expires, body }));
}

/** Transaction hash (hex): SHA-256 of its signing bytes, so it names the transaction independent of the signature. */
export function txHash(tx: UnsignedTx): string {
  return bytesToHex(sha256(txSigningBytes(tx)));
}

/** Canonical bytes of the whole signed transaction (what blocks carry and Merkle leaves hash). */
export function txBytes(tx: Tx): Uint8Array {
  return canonicalBytes(tx);
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
  return { ...unsigned, sig };
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
    size = canonicalBytes(tx).length;
  } catch (err) {
    throw new DatagrantError('LEDGER_TX_MALFORMED', `tx: ${(err as Error).message}`);
  }
  if (size > MAX_TX_BYTES) {
    throw new DatagrantError('LEDGER_TX_TOO_LARGE', `tx is ${size} bytes, more than ${MAX_TX_BYTES}`);
  }
  return tx;
}
