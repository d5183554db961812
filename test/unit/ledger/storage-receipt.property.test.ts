/**
 * Property: the ledger's receipt rule agrees with a plain model on random receipt lists (signers
 * drawn with repeats from validators and outsiders, some receipts corrupted); and a deliberately
 * broken rule — one that counts a repeated validator twice — is caught by the same generator.
 */
import fc from 'fast-check';
import t from 'tap';
import { verifyFast } from '../../../src/common/crypto-node.js';
import {
  checkStorageReceipts,
  type ReceiptCheck,
  receiptQuorum,
  type StorageReceipt,
} from '../../../src/ledger/index.js';
import { hexOf, makeTestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

const chain = makeTestChain({ validators: 7 });
const ledger = new TestLedger(chain, { registerSubjects: false });
const digest = hexOf('property/digest');
const size = 4096;
const signers = [...chain.validators, chain.outsider, chain.institutions[0]!];
const valid = new Map(signers.map((s) => [s.pub, ledger.receipts(digest, size, [s])[0]!]));
const expected = { chain: chain.genesis.chain, digest, size, height: 10 };
const CORRUPTIONS = ['none', 'sig', 'digest', 'size', 'chain', 'future'] as const;

function corrupt(r: StorageReceipt, how: (typeof CORRUPTIONS)[number]): StorageReceipt {
  switch (how) {
    case 'none':
      return r;
    case 'sig':
      return { ...r, sig: (r.sig.startsWith('0') ? '1' : '0') + r.sig.slice(1) };
    case 'digest':
      return { ...r, digest: hexOf('other') };
    case 'size':
      return { ...r, size: size + 1 };
    case 'chain':
      return { ...r, chain: 'other-chain' };
    case 'future':
      return { ...r, height: expected.height + 1 };
  }
}

/** The rule as the docs state it. */
function model(picks: { signer: number; how: (typeof CORRUPTIONS)[number] }[]): boolean {
  const validators = new Set(chain.validators.map((v) => v.pub));
  if (picks.some((p) => p.how !== 'none' || !validators.has(signers[p.signer]!.pub))) return false;
  return new Set(picks.map((p) => signers[p.signer]!.pub)).size >= receiptQuorum(validators.size);
}

/** A broken rule: counts receipts, not distinct validators. */
function brokenCheck(receipts: StorageReceipt[]): boolean {
  const real = checkStorageReceipts(receipts, expected, chain.config.validators, verifyFast);
  if (!real.ok && real.code === 'LEDGER_RECEIPT_INVALID') return false;
  return receipts.length >= receiptQuorum(chain.config.validators.size);
}

const picksArb = fc.array(
  fc.record({
    signer: fc.nat({ max: signers.length - 1 }),
    how: fc.constantFrom(...CORRUPTIONS, 'none', 'none', 'none', 'none'),
  }),
  { minLength: 0, maxLength: 8 },
);

t.test('the receipt rule agrees with its model', async (t) => {
  fc.assert(
    fc.property(picksArb, (picks) => {
      const receipts = picks.map((p) => corrupt(valid.get(signers[p.signer]!.pub)!, p.how));
      const got: ReceiptCheck = checkStorageReceipts(receipts, expected, chain.config.validators, verifyFast);
      return got.ok === model(picks);
    }),
    { numRuns: 400, seed: 7 },
  );
  t.pass('400 random receipt lists');
});

t.test('the generator catches a rule that counts a repeated validator twice', async (t) => {
  const result = fc.check(
    fc.property(picksArb, (picks) => {
      const receipts = picks.map((p) => corrupt(valid.get(signers[p.signer]!.pub)!, p.how));
      return brokenCheck(receipts) === model(picks);
    }),
    { numRuns: 400, seed: 7 },
  );
  t.ok(result.failed, `the mutant is caught (counterexample: ${JSON.stringify(result.counterexample)})`);
});
