import t from 'tap';
import { bytesToHex } from '../../../src/common/bytes.js';
import { sign } from '../../../src/common/crypto.js';
import { verifyFast } from '../../../src/common/crypto-node.js';
import {
  blockHash,
  buildTxProof,
  type CertifiedBlock,
  checkCertificate,
  commitSigningBytes,
  type TxProof,
  txHash,
  verifyTxProof,
} from '../../../src/ledger/index.js';
import { makeTestChain, type TestKeys } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

const chain = makeTestChain();
const ledger = new TestLedger(chain);
const bank = chain.institutions[0]!;
// Block 2: five requests, so paths have several steps and an unbalanced right edge.
const txs = chain.subjects
  .flatMap((s) => [ledger.openRequest(bank, s), ledger.openRequest(bank, s, { purpose: 'other' })])
  .slice(0, 5);
const block = ledger.commit(txs).certified;

const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const withCert = (
  certified: CertifiedBlock,
  voters: TestKeys[] = chain.validators,
  view?: number,
): CertifiedBlock => chain.certify(certified.block, { voters, ...(view === undefined ? {} : { view }) });

t.test('proofs of every tx of a certified block verify against genesis alone', async (t) => {
  for (let i = 0; i < txs.length; i++) {
    const proof = copy(buildTxProof(block, i));
    const result = verifyTxProof(chain.genesis, proof);
    t.same(
      result,
      {
        ok: true,
        hash: txHash(txs[i]!),
        height: 2,
        blockHash: blockHash(block.block.header),
        time: block.block.header.time,
      },
      `tx ${i}`,
    );
    t.match(
      verifyTxProof(chain.genesis, proof, verifyFast),
      { ok: true },
      `tx ${i} with the OpenSSL verifier`,
    );
  }
  // Block 1 (subject registrations) too.
  t.match(
    verifyTxProof(chain.genesis, buildTxProof(ledger.blocks[0]!.certified, 2)),
    { ok: true },
    'block 1, tx 2',
  );
});

t.test('tampered proofs are refused with the matching code', async (t) => {
  const good = buildTxProof(block, 3);
  const other = makeTestChain({ seed: 'another-validator-set' });
  const renamed = makeTestChain({ chain: 'other-chain' });
  const tamper = (edit: (p: TxProof) => void): TxProof => {
    const p = copy(good);
    edit(p);
    return p;
  };
  const flipHex = (hex: string): string => (hex[0] === '0' ? '1' : '0') + hex.slice(1);
  const cases: [string, TxProof, string, typeof chain.genesis?][] = [
    ['path sibling altered', tamper((p) => (p.path[0] = flipHex(p.path[0]!))), 'PROOF_BAD_PATH'],
    ['path step removed', tamper((p) => p.path.pop()), 'PROOF_BAD_PATH'],
    ['wrong index', tamper((p) => (p.index = 2)), 'PROOF_BAD_PATH'],
    ['index out of range', tamper((p) => (p.index = 5)), 'PROOF_BAD_PATH'],
    [
      'another signed tx of the chain',
      tamper((p) => (p.tx = copy(ledger.openRequest(bank, chain.subjects[0]!)))),
      'PROOF_BAD_PATH',
    ],
    [
      'tx body altered',
      tamper((p) => ((p.tx.body as { purpose: string }).purpose = 'changed')),
      'PROOF_BAD_TX_SIGNATURE',
    ],
    ['tx signature altered', tamper((p) => (p.tx.sig = flipHex(p.tx.sig))), 'PROOF_BAD_TX_SIGNATURE'],
    ['header tx root altered', tamper((p) => (p.header.txRoot = flipHex(p.header.txRoot))), 'PROOF_BAD_PATH'],
    // Leaf 3 of 6 has the same path shape as of 5, so the path still fits; the certificate does not.
    ['header tx count altered', tamper((p) => (p.header.txCount = 6)), 'PROOF_CERT_WRONG_BLOCK'],
    ['header tx count too small for the index', tamper((p) => (p.header.txCount = 3)), 'PROOF_BAD_PATH'],
    [
      'header state root altered',
      tamper((p) => (p.header.stateRoot = flipHex(p.header.stateRoot))),
      'PROOF_CERT_WRONG_BLOCK',
    ],
    ['header height altered', tamper((p) => (p.header.height = 3)), 'PROOF_CERT_WRONG_BLOCK'],
    [
      'certificate for another block',
      tamper((p) => (p.cert = copy(ledger.blocks[0]!.certified.cert))),
      'PROOF_CERT_WRONG_BLOCK',
    ],
    ['certificate view before the header view', tamper((p) => (p.header.view = 1)), 'PROOF_CERT_WRONG_BLOCK'],
    ['genesis of another chain id', copy(good), 'PROOF_WRONG_CHAIN', renamed.genesis],
    ['genesis with another validator set', copy(good), 'PROOF_CERT_UNKNOWN_VALIDATOR', other.genesis],
    [
      'too few votes (2 of 4)',
      tamper((p) => (p.cert = copy(withCert(block, chain.validators.slice(0, 2)).cert))),
      'PROOF_CERT_NO_QUORUM',
    ],
    ['no votes', tamper((p) => (p.cert.votes = [])), 'PROOF_CERT_NO_QUORUM'],
    [
      'duplicate vote',
      tamper((p) => p.cert.votes.push(copy(p.cert.votes[0]!))),
      'PROOF_CERT_DUPLICATE_VALIDATOR',
    ],
    [
      'duplicates padding a minority to a quorum',
      tamper((p) => {
        const two = withCert(block, chain.validators.slice(0, 2)).cert.votes;
        p.cert.votes = [two[0]!, two[1]!, copy(two[0]!)];
      }),
      'PROOF_CERT_DUPLICATE_VALIDATOR',
    ],
    [
      'vote by a non-validator',
      tamper((p) => p.cert.votes.push(withCert(block, [chain.outsider]).cert.votes[0]!)),
      'PROOF_CERT_UNKNOWN_VALIDATOR',
    ],
    [
      'vote signature altered',
      tamper((p) => (p.cert.votes[1]!.sig = flipHex(p.cert.votes[1]!.sig))),
      'PROOF_CERT_BAD_SIGNATURE',
    ],
    [
      'vote signed by another validator',
      tamper((p) => (p.cert.votes[1]!.sig = p.cert.votes[2]!.sig)),
      'PROOF_CERT_BAD_SIGNATURE',
    ],
    [
      'vote over another height',
      tamper((p) => {
        const msg = commitSigningBytes(chain.genesis.chain, 3, p.cert.view, p.cert.block);
        p.cert.votes[0]!.sig = bytesToHex(sign(msg, chain.validators[0]!.signing.secretKey));
      }),
      'PROOF_CERT_BAD_SIGNATURE',
    ],
    ['vote signature not hex', tamper((p) => (p.cert.votes[0]!.sig = 'zz')), 'PROOF_CERT_BAD_SIGNATURE'],
    [
      'votes not an array',
      tamper((p) => ((p.cert as { votes: unknown }).votes = 'x')),
      'PROOF_CERT_MALFORMED',
    ],
    ['path not an array', tamper((p) => ((p as { path: unknown }).path = 7)), 'PROOF_MALFORMED'],
    ['tx missing', tamper((p) => ((p as { tx: unknown }).tx = null)), 'PROOF_MALFORMED'],
  ];
  for (const [name, proof, code, genesis] of cases) {
    t.match(verifyTxProof(genesis ?? chain.genesis, proof), { ok: false, code }, name);
  }
});

t.test('certificate quorum and views', async (t) => {
  const header = block.block.header;
  t.equal(
    checkCertificate(chain.genesis, header, withCert(block, chain.validators.slice(0, 3)).cert),
    null,
    '3 of 4 is a quorum',
  );
  t.equal(
    checkCertificate(chain.genesis, header, withCert(block, chain.validators.slice(1)).cert),
    null,
    'any 3 of 4',
  );
  t.equal(
    checkCertificate(chain.genesis, header, withCert(block, chain.validators.slice(0, 2)).cert),
    'NO_QUORUM',
  );
  t.equal(
    checkCertificate(chain.genesis, header, withCert(block, chain.validators, 4).cert),
    null,
    'votes from a later view',
  );
  t.equal(
    checkCertificate(chain.genesis, header, withCert(block, chain.validators, 4).cert, verifyFast),
    null,
    'OpenSSL verifier',
  );
  const seven = makeTestChain({ validators: 7 });
  const l7 = new TestLedger(seven);
  const b7 = l7.blocks[0]!.certified;
  for (let voters = 0; voters <= 7; voters++) {
    const cert = seven.certify(b7.block, { voters: seven.validators.slice(0, voters) }).cert;
    t.equal(
      checkCertificate(seven.genesis, b7.block.header, cert),
      voters >= 5 ? null : 'NO_QUORUM',
      `n=7: ${voters} votes`,
    );
  }
  t.match(
    verifyTxProof(
      seven.genesis,
      buildTxProof(seven.certify(b7.block, { voters: seven.validators.slice(2) }), 0),
    ),
    { ok: true },
    'proof with a 5-of-7 certificate',
  );
});
