import t from 'tap';
import { bytesToHex, utf8ToBytes } from '../../../src/common/bytes.js';
import { generateSigningKeyPair, sha256Hex, verify } from '../../../src/common/crypto.js';
import { signFast, verifyFast } from '../../../src/common/crypto-node.js';
import {
  checkStorageReceipts,
  receiptQuorum,
  STORAGE_RECEIPT_DOMAIN,
  storageReceiptBytes,
} from '../../../src/ledger/index.js';
import {
  decodeStorageReceipt,
  encodeStorageReceipt,
  type StorageReceipt,
  signStorageReceipt,
  verifyStorageReceipt,
} from '../../../src/records/index.js';

const key = generateSigningKeyPair();
const validator = bytesToHex(key.publicKey);
const digest = sha256Hex(utf8ToBytes('ciphertext'));
const fields = { validator, digest, size: 10, chain: 'dg-test', height: 5 };

function flipLastBit(hex: string): string {
  const last = Number.parseInt(hex.slice(-1), 16) ^ 1;
  return hex.slice(0, -1) + last.toString(16);
}

t.test('signing bytes: the domain tag, then canonical JSON of the five fields', async (t) => {
  t.equal(STORAGE_RECEIPT_DOMAIN, 'datagrant/storage-receipt/v1\n');
  const text = new TextDecoder().decode(storageReceiptBytes(fields));
  t.equal(
    text,
    `datagrant/storage-receipt/v1\n{"chain":"dg-test","digest":"${digest}","height":5,"size":10,"validator":"${validator}"}`,
    'known answer',
  );
  const withExtra = { ...fields, sig: 'ab', other: 1 } as unknown as typeof fields;
  t.same(storageReceiptBytes(withExtra), storageReceiptBytes(fields), 'other keys are not signed over');
});

t.test('sign and verify; every field is bound', async (t) => {
  const receipt = signStorageReceipt(fields, key.secretKey);
  t.same({ ...receipt, sig: undefined }, { ...fields, sig: undefined }, 'the fields as given');
  t.ok(verifyStorageReceipt(receipt), 'verifies (portable)');
  t.ok(verifyStorageReceipt(receipt, {}, verifyFast), 'verifies (OpenSSL)');
  t.same(signStorageReceipt(fields, key.secretKey, signFast), receipt, 'OpenSSL signs the same bytes');
  t.ok(verifyStorageReceipt(receipt, { validator, digest, size: 10, chain: 'dg-test' }), 'as expected');

  t.notOk(verifyStorageReceipt({ ...receipt, sig: flipLastBit(receipt.sig) }), 'a flipped signature bit');
  const changed: [string, Partial<StorageReceipt>][] = [
    ['chain', { chain: 'other-chain' }],
    ['digest', { digest: sha256Hex(utf8ToBytes('other')) }],
    ['size', { size: 11 }],
    ['height', { height: 6 }],
    ['validator', { validator: bytesToHex(generateSigningKeyPair().publicKey) }],
  ];
  for (const [field, change] of changed)
    t.notOk(verifyStorageReceipt({ ...receipt, ...change }), `${field} changed after signing`);
  t.notOk(verifyStorageReceipt(receipt, { chain: 'other-chain' }), 'valid, but for another chain');
  t.notOk(verifyStorageReceipt(receipt, { digest: sha256Hex(utf8ToBytes('x')) }), 'for another digest');
  t.notOk(verifyStorageReceipt(receipt, { size: 9 }), 'for another size');
  t.notOk(verifyStorageReceipt(receipt, { validator: '00'.repeat(32) }), 'from another validator');
  for (const bad of [
    null,
    'x',
    {},
    { ...receipt, sig: 'zz' },
    { ...receipt, extra: 1 },
    { ...receipt, size: 0 },
  ])
    t.notOk(verifyStorageReceipt(bad), `malformed ${JSON.stringify(bad)?.slice(0, 30)}: false, no throw`);
});

t.test('wire encoding round trip; malformed answers are coded errors', async (t) => {
  const receipt = signStorageReceipt(fields, key.secretKey);
  t.same(decodeStorageReceipt(encodeStorageReceipt(receipt)), receipt);
  t.throws(() => decodeStorageReceipt(utf8ToBytes('not json')), { code: 'PAYLOAD_RECEIPT_MALFORMED' });
  t.throws(() => decodeStorageReceipt(Uint8Array.of(0xff, 0xfe)), { code: 'PAYLOAD_RECEIPT_MALFORMED' });
  t.throws(() => decodeStorageReceipt(utf8ToBytes('{"validator":"x"}')), {
    code: 'PAYLOAD_RECEIPT_MALFORMED',
  });
});

t.test('checkStorageReceipts: quorum arithmetic and the order of checks', async (t) => {
  t.same(
    [1, 2, 3, 4, 5, 7, 10, 100].map(receiptQuorum),
    [1, 1, 1, 2, 2, 3, 4, 34],
    'f + 1 with f = floor((n - 1) / 3)',
  );
  const keys = Array.from({ length: 4 }, () => generateSigningKeyPair());
  const set = new Set(keys.map((k) => bytesToHex(k.publicKey)));
  const receipts = keys.map((k) =>
    signStorageReceipt({ ...fields, validator: bytesToHex(k.publicKey) }, k.secretKey),
  );
  const expected = { chain: 'dg-test', digest, size: 10, height: 5 };
  let calls = 0;
  const counting = (s: Uint8Array, m: Uint8Array, p: Uint8Array) => {
    calls++;
    return verify(s, m, p);
  };
  t.match(checkStorageReceipts(receipts.slice(0, 2), expected, set, counting), { ok: true });
  t.equal(calls, 2, 'one verification per receipt');
  calls = 0;
  const wrongSize = [receipts[0]!, { ...receipts[1]!, size: 11 }];
  t.match(checkStorageReceipts(wrongSize, expected, set, counting), {
    ok: false,
    code: 'LEDGER_RECEIPT_INVALID',
    message: /receipt 1 names another size/,
  });
  t.equal(calls, 0, 'a field mismatch is found before any signature is checked');
  t.match(checkStorageReceipts(receipts.slice(0, 1), expected, set, verify), {
    ok: false,
    code: 'LEDGER_RECEIPTS_INSUFFICIENT',
  });
  t.match(checkStorageReceipts(receipts.slice(0, 2), { ...expected, height: 4 }, set, verify), {
    ok: false,
    code: 'LEDGER_RECEIPT_INVALID',
    message: /after this block/,
  });
});
