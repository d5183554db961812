/**
 * Storage receipts, the signing side: a validator that has stored a ciphertext durably signs a
 * receipt for it (`signStorageReceipt`), the extractor checks each receipt it is handed
 * (`verifyStorageReceipt`) and carries f + 1 of them in its `record.put`, where the ledger checks
 * them again (ledger/storage-receipt `checkStorageReceipts`). On the wire between nodes a receipt is
 * its canonical JSON (`encodeStorageReceipt` / `decodeStorageReceipt`).
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { bytesToHex } from '../common/bytes.js';
import { canonicalBytes } from '../common/canonical.js';
import { sign, verify } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';
import {
  storageReceiptBytes,
  storageReceiptSignatureValid,
  type UnsignedStorageReceipt,
} from '../ledger/storage-receipt.js';
import { type StorageReceipt, StorageReceiptSchema } from '../ledger/tx.js';
import type { SignatureVerifier } from '../ledger/tx-codec.js';

export type { StorageReceipt, UnsignedStorageReceipt };

const receiptCheck = TypeCompiler.Compile(StorageReceiptSchema);

/**
 * Signs a receipt with the validator's Ed25519 secret key (portable signer by default; the node
 * passes OpenSSL's). `fields.validator` must be the key's public half, or no one will accept it.
 */
export function signStorageReceipt(
  fields: UnsignedStorageReceipt,
  secretKey: Uint8Array,
  signer: (message: Uint8Array, secretKey: Uint8Array) => Uint8Array = sign,
): StorageReceipt {
  const { validator, digest, size, chain, height } = fields;
  const unsigned = { validator, digest, size, chain, height };
  return { ...unsigned, sig: bytesToHex(signer(storageReceiptBytes(unsigned), secretKey)) };
}

/** What a receipt must name to count for a record (each field optional: only the given ones are checked). */
export interface ReceiptFor {
  validator?: string;
  digest?: string;
  size?: number;
  chain?: string;
}

/**
 * True when `receipt` is well formed, its signature verifies for its validator, and it names what
 * `expected` gives. Never throws.
 */
export function verifyStorageReceipt(
  receipt: unknown,
  expected: ReceiptFor = {},
  verifier: SignatureVerifier = verify,
): receipt is StorageReceipt {
  if (!receiptCheck.Check(receipt)) return false;
  for (const field of ['validator', 'digest', 'size', 'chain'] as const) {
    if (expected[field] !== undefined && receipt[field] !== expected[field]) return false;
  }
  return storageReceiptSignatureValid(receipt, verifier);
}

/** The receipt as bytes on the wire (canonical JSON). */
export function encodeStorageReceipt(receipt: StorageReceipt): Uint8Array {
  return canonicalBytes(receipt);
}

/** Parses a receipt off the wire; `PAYLOAD_RECEIPT_MALFORMED` unless it is one (the signature is not checked). */
export function decodeStorageReceipt(bytes: Uint8Array): StorageReceipt {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new DatagrantError('PAYLOAD_RECEIPT_MALFORMED', 'receipt is not JSON');
  }
  if (!receiptCheck.Check(value))
    throw new DatagrantError('PAYLOAD_RECEIPT_MALFORMED', 'receipt does not have the receipt shape');
  return value;
}
