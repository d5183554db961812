/**
 * Wire format of transaction gossip. A lone transaction travels as its JSON; several admitted
 * together travel as one batch `{"datagrant/tx-batch/v1": [tx, …]}`, so a busy node sends one
 * gossip message (one content hash, one encrypted frame per peer) per batch instead of one per
 * transaction. No transaction can have the batch's shape (a transaction is a strict envelope).
 */
import { utf8ToBytes } from '../common/bytes.js';
import type { AnyTx } from '../ledger/index.js';

/** The single key of a batch message. */
export const TX_BATCH_KEY = 'datagrant/tx-batch/v1';
/** Most transactions in one batch message. */
export const MAX_TX_BATCH = 256;
/** Largest batch message before it is split (bytes of JSON); well under the gossip limit. */
export const MAX_TX_BATCH_BYTES = 1024 * 1024;

/** Encodes transactions as gossip messages: one message per lone tx, batches otherwise. */
export function encodeTxGossip(txs: readonly AnyTx[]): Uint8Array[] {
  const texts = txs.map((tx) => JSON.stringify(tx));
  if (texts.length === 1) return [utf8ToBytes(texts[0]!)];
  const out: Uint8Array[] = [];
  let batch: string[] = [];
  let bytes = 0;
  const flush = () => {
    if (batch.length === 1) out.push(utf8ToBytes(batch[0]!));
    else if (batch.length > 1) out.push(utf8ToBytes(`{"${TX_BATCH_KEY}":[${batch.join(',')}]}`));
    batch = [];
    bytes = 0;
  };
  for (const text of texts) {
    if (batch.length >= MAX_TX_BATCH || (batch.length > 0 && bytes + text.length > MAX_TX_BATCH_BYTES))
      flush();
    batch.push(text);
    bytes += text.length + 1;
  }
  flush();
  return out;
}

/**
 * The transactions (still untrusted) one gossip message carries, or undefined when the message is
 * not JSON. Anything that is not a well-formed batch is one (possibly malformed) transaction.
 */
export function decodeTxGossip(data: Uint8Array): unknown[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const list = (value as Record<string, unknown>)[TX_BATCH_KEY];
    if (keys.length === 1 && keys[0] === TX_BATCH_KEY && Array.isArray(list) && list.length <= MAX_TX_BATCH)
      return list;
  }
  return [value];
}
