/**
 * Transaction gossip wire format: lone transactions as themselves, batches under one key, split
 * by count and size; anything else decodes as one (untrusted) transaction.
 */
import t from 'tap';
import { bytesToHex, utf8ToBytes } from '../../../src/common/bytes.js';
import { randomBytes } from '../../../src/common/crypto.js';
import type { AnyTx } from '../../../src/ledger/index.js';
import {
  decodeTxGossip,
  encodeTxGossip,
  MAX_TX_BATCH,
  MAX_TX_BATCH_BYTES,
  TX_BATCH_KEY,
} from '../../../src/node/tx-gossip.js';
import { makeTestChain } from '../../helpers/chain.js';

const tc = makeTestChain({ validators: 1 });
const txs = (n: number, nameBytes = 8): AnyTx[] =>
  Array.from(
    { length: n },
    (_, i) =>
      tc.sign(
        tc.admin,
        'institution.add',
        {
          institution: `gossip-${i}`,
          name: 'x'.repeat(nameBytes),
          signKey: bytesToHex(randomBytes(32)),
          encKey: bytesToHex(randomBytes(32)),
        },
        tc.options.time,
      ) as AnyTx,
  );
const decodeAll = (messages: Uint8Array[]) => messages.flatMap((m) => decodeTxGossip(m)!);

t.test('a lone transaction travels as itself', async (t) => {
  const [tx] = txs(1);
  const messages = encodeTxGossip([tx!]);
  t.equal(messages.length, 1);
  t.same(JSON.parse(new TextDecoder().decode(messages[0])), tx, 'plain transaction JSON');
  t.same(decodeTxGossip(messages[0]!), [tx]);
});

t.test('several travel as batches, split by count and by size, in order', async (t) => {
  const many = txs(MAX_TX_BATCH * 2 + 3);
  const messages = encodeTxGossip(many);
  t.equal(messages.length, 3, 'split at MAX_TX_BATCH');
  t.same(decodeAll(messages), many, 'every tx, in order');
  const big = txs(40, 100);
  const perTx = JSON.stringify(big[0]).length;
  const sized = encodeTxGossip(big);
  for (const m of sized)
    t.ok(m.length <= MAX_TX_BATCH_BYTES + perTx + 64, 'no message much over the size bound');
  t.same(decodeAll(sized), big);
});

t.test('anything that is not a well-formed batch is one untrusted transaction', async (t) => {
  const cases: [string, unknown][] = [
    ['an array', [1, 2, 3]],
    ['a batch key with a non-array', { [TX_BATCH_KEY]: { a: 1 } }],
    ['a batch key with another key', { [TX_BATCH_KEY]: [], other: 1 }],
    ['an oversized batch', { [TX_BATCH_KEY]: Array.from({ length: MAX_TX_BATCH + 1 }, () => ({})) }],
    ['null', null],
    ['a string', 'tx'],
  ];
  for (const [name, value] of cases)
    t.same(decodeTxGossip(utf8ToBytes(JSON.stringify(value))), [value], `${name}: one item`);
  t.equal(decodeTxGossip(utf8ToBytes('{"a":')), undefined, 'not JSON: undefined');
  t.same(
    decodeTxGossip(utf8ToBytes(JSON.stringify({ [TX_BATCH_KEY]: [1, 'x'] }))),
    [1, 'x'],
    'batch items as they are',
  );
});
