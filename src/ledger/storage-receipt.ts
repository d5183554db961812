/**
 * Storage receipts, as the ledger judges them. A validator that has written a ciphertext durably
 * into its payload store signs a receipt naming it (digest, size, chain, its committed tip height);
 * a `record.put` is taken only with valid receipts from at least f + 1 distinct genesis validators.
 *
 * Why f + 1: at most f validators are faulty, so among f + 1 distinct signers at least one is
 * honest and holds the bytes; the record stays fetchable when its extractor's disk is lost. A
 * receipt binds the chain (not replayable on another chain), the digest and the size (not
 * transferable to another record), and a height no later than the block that includes it (a
 * validator cannot be quoted as holding something "at a height it has not reached"). One invalid
 * receipt refuses the whole transaction: the extractor checked every receipt before it signed, so
 * an invalid one means a faulty extractor, not a faulty validator.
 *
 * Portable and free of node code: the signing side lives in records/storage-receipt.
 */
import { concatBytes, fromHex, utf8ToBytes } from '../common/bytes.js';
import { canonicalBytes } from '../common/canonical.js';
import { faultTolerance } from './genesis.js';
import type { StorageReceipt } from './tx.js';
import type { SignatureVerifier } from './tx-codec.js';

/** Domain tag of a storage receipt's signature. */
export const STORAGE_RECEIPT_DOMAIN = 'datagrant/storage-receipt/v1\n';

const DOMAIN_BYTES = utf8ToBytes(STORAGE_RECEIPT_DOMAIN);

/** A storage receipt before it is signed. */
export type UnsignedStorageReceipt = Omit<StorageReceipt, 'sig'>;

/** The bytes a receipt's signature covers: the domain tag and the canonical JSON of the other fields. */
export function storageReceiptBytes(receipt: UnsignedStorageReceipt): Uint8Array {
  const { validator, digest, size, chain, height } = receipt;
  return concatBytes(DOMAIN_BYTES, canonicalBytes({ validator, digest, size, chain, height }));
}

/** True when the receipt's signature verifies for its `validator` (never throws). */
export function storageReceiptSignatureValid(receipt: StorageReceipt, verifier: SignatureVerifier): boolean {
  try {
    return verifier(
      fromHex(receipt.sig, 'sig', 64),
      storageReceiptBytes(receipt),
      fromHex(receipt.validator, 'validator', 32),
    );
  } catch {
    return false;
  }
}

/** Distinct validators whose receipts a record needs on a set of `n` validators: f + 1. */
export function receiptQuorum(n: number): number {
  return faultTolerance(n) + 1;
}

/** What the receipts of one `record.put` must name. */
export interface ReceiptExpectation {
  chain: string;
  digest: string;
  size: number;
  /** Height of the block the `record.put` is executed in: no receipt may be from later. */
  height: number;
}

/** Outcome of `checkStorageReceipts`: the distinct signers (sorted), or why not. */
export type ReceiptCheck =
  | { ok: true; holders: string[] }
  | { ok: false; code: 'LEDGER_RECEIPT_INVALID' | 'LEDGER_RECEIPTS_INSUFFICIENT'; message: string };

/**
 * Checks a record's receipts against the validator set: every receipt must be from a validator,
 * for this chain, digest and size, from no later than `expected.height`, and signed; then at
 * least `receiptQuorum(validators.size)` distinct validators must have signed (a validator's
 * second receipt counts once). Field checks run on all receipts before any signature is verified.
 */
export function checkStorageReceipts(
  receipts: readonly StorageReceipt[],
  expected: ReceiptExpectation,
  validators: ReadonlyMap<string, unknown> | ReadonlySet<string>,
  verifier: SignatureVerifier,
): ReceiptCheck {
  const invalid = (i: number, why: string): ReceiptCheck => ({
    ok: false,
    code: 'LEDGER_RECEIPT_INVALID',
    message: `receipt ${i} ${why}`,
  });
  for (let i = 0; i < receipts.length; i++) {
    const r = receipts[i]!;
    if (!validators.has(r.validator)) return invalid(i, 'is not from a genesis validator');
    if (r.chain !== expected.chain) return invalid(i, `is for chain ${r.chain}`);
    if (r.digest !== expected.digest) return invalid(i, 'names another digest');
    if (r.size !== expected.size) return invalid(i, 'names another size');
    if (r.height > expected.height) return invalid(i, `is from height ${r.height}, after this block`);
  }
  for (let i = 0; i < receipts.length; i++) {
    if (!storageReceiptSignatureValid(receipts[i]!, verifier)) return invalid(i, 'signature does not verify');
  }
  const holders = [...new Set(receipts.map((r) => r.validator))].sort();
  const needed = receiptQuorum(validators.size);
  if (holders.length < needed) {
    return {
      ok: false,
      code: 'LEDGER_RECEIPTS_INSUFFICIENT',
      message: `${holders.length} distinct validators hold the record; ${needed} must`,
    };
  }
  return { ok: true, holders };
}
