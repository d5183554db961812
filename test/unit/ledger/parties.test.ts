/**
 * Who each transaction concerns (the explorer hides bodies of those about a subject from anyone
 * but its parties) and the role of each signer.
 */
import t from 'tap';
import { signerRole, txHash, txParties } from '../../../src/ledger/index.js';
import { hexOf, makeTestChain } from '../../helpers/chain.js';
import { oneOfEachKind, TestLedger } from '../../helpers/ledger.js';

t.test('every kind names its subject and institution, governance none', async (t) => {
  const chain = makeTestChain();
  const ledger = new TestLedger(chain);
  const bank = chain.institutions[0]!;
  const alice = chain.subjects[0]!;
  const { request, grant } = ledger.granted(bank, alice, ['tax']);
  const state = ledger.state;
  const both = { subject: alice.id, institution: bank.id };
  t.same(txParties(state, ledger.openRequest(bank, alice)), both, 'request.open');
  t.same(txParties(state, ledger.putRecord(chain.extractorFor('tax'), request, 'tax')), both, 'record.put');
  t.same(txParties(state, ledger.failRecord(chain.extractorFor('tax'), request, 'tax')), both, 'record.fail');
  t.same(txParties(state, ledger.grant(alice, request)), both, 'grant');
  t.same(txParties(state, ledger.deny(alice, request)), both, 'deny');
  t.same(txParties(state, ledger.erase(alice, request)), both, 'erase');
  t.same(
    txParties(state, ledger.refreshRecords(alice, request, ['tax'])),
    both,
    'record.refresh: on her trail',
  );
  for (const kind of ['revoke', 'pause', 'resume'] as const)
    t.same(txParties(state, ledger[kind](alice, grant)), both, kind);
  t.same(txParties(state, ledger.usage(bank, grant)), both, 'usage');
  t.same(txParties(state, ledger.register(alice)), { subject: alice.id }, 'subject.register');
  t.same(
    txParties(state, ledger.recover(alice.id, chain.keys('alice-next'))),
    { subject: alice.id },
    'subject.recover: on her trail',
  );
  t.same(
    txParties(state, ledger.addInstitution(chain.admin, 'bank-new', chain.keys('bank-new'))),
    {},
    'institution.add concerns no subject',
  );
  t.same(txParties(state, ledger.retireInstitution(chain.admin, bank.id)), {}, 'institution.retire');
  const proposal = ledger.propose(chain.council[0]!, { type: 'institution.retire', institution: bank.id });
  t.same(txParties(state, proposal), {}, 'gov.propose');
  t.same(
    txParties(state, ledger.rotateInstitution(bank, bank.id, chain.keys('bank-next'))),
    {},
    'institution.rotate concerns no subject',
  );
  t.same(txParties(state, ledger.approve(chain.council[1]!, txHash(proposal))), {}, 'gov.approve');
  t.same(
    txParties(state, ledger.deny(alice, hexOf('unknown request'))),
    { subject: '?' },
    'a request state does not know yet still counts as about a subject',
  );
  const kinds = Object.values(oneOfEachKind(ledger)).map((tx) => txHash(tx));
  t.equal(kinds.length, 18, 'every kind was covered above');
});

t.test('signer roles', async (t) => {
  const chain = makeTestChain();
  const ledger = new TestLedger(chain);
  const g = chain.genesis;
  t.equal(signerRole(g, ledger.state, chain.validators[0]!.pub), 'validator');
  t.equal(signerRole(g, ledger.state, chain.registrar.pub), 'registrar');
  t.equal(signerRole(g, ledger.state, chain.admin.pub), 'governance');
  const council = makeTestChain({ governance: 'council' });
  t.equal(
    signerRole(council.genesis, ledger.state, council.council[0]!.pub),
    'governance',
    'a council member',
  );
  t.equal(signerRole(g, ledger.state, chain.institutions[0]!.pub), 'institution');
  t.equal(signerRole(g, ledger.state, chain.subjects[0]!.pub), 'subject');
  t.equal(signerRole(g, ledger.state, chain.outsider.pub), 'unknown');
});
