/**
 * The council (ledger/governance.ts): a change takes effect only when the threshold-th approval
 * commits, lapses at its deadline, and covers institutions, registrars and parameters; a chain with
 * a council refuses the single-key admin path.
 */
import t from 'tap';
import {
  type GovChange,
  govKey,
  type ProposalState,
  parseGenesis,
  proposalStatus,
  txHash,
} from '../../../src/ledger/index.js';
import { makeTestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

function setup(registerSubjects = true) {
  const chain = makeTestChain({ governance: 'council' });
  const ledger = new TestLedger(chain, { registerSubjects });
  const [c1, c2, c3] = chain.council as [typeof chain.admin, typeof chain.admin, typeof chain.admin];
  const proposal = (id: string) => ledger.state.get(govKey.proposal(id)) as ProposalState | undefined;
  return { chain, ledger, c1, c2, c3, proposal };
}

t.test('a change with k-1 approvals does nothing; the k-th enacts it', async (t) => {
  const { chain, ledger, c1, c2, c3, proposal } = setup();
  const newBank = chain.keys('bank-new');
  const change: GovChange = {
    type: 'institution.add',
    institution: 'bank-new',
    name: 'New Bank',
    signKey: newBank.pub,
    encKey: newBank.encPub,
  };
  const propose = ledger.propose(c1, change);
  const id = txHash(propose);
  ledger.commit([propose]);
  t.equal(ledger.institution('bank-new'), undefined, 'one approval of two (the proposer’s): nothing changed');
  t.same(proposal(id)?.approvals, [c1.pub]);
  t.equal(proposal(id)?.status, 'open');

  t.equal(ledger.try(ledger.approve(c1, id)).ok, false, 'the proposer cannot approve twice');
  t.match(ledger.try(ledger.approve(c1, id)), { code: 'LEDGER_ALREADY_APPROVED' });
  t.match(
    ledger.try(ledger.approve(chain.admin, id)),
    { code: 'LEDGER_NOT_COUNCIL' },
    'nor can a non-member',
  );
  t.equal(ledger.institution('bank-new'), undefined, 'still nothing');

  ledger.commit([ledger.approve(c2, id)]);
  t.equal(ledger.institution('bank-new')?.name, 'New Bank', 'the second approval enacts the change');
  t.equal(proposal(id)?.status, 'enacted');
  t.equal(proposal(id)?.decidedAt, ledger.height);
  t.match(
    ledger.try(ledger.approve(c3, id)),
    { code: 'LEDGER_PROPOSAL_DECIDED' },
    'a decided proposal takes no more',
  );
  t.equal(ledger.state.get(govKey.proposalCount), 1);
  t.equal(ledger.state.get(govKey.proposalAt(0)), id, 'listed in order');
});

t.test('an unapproved proposal lapses at its deadline', async (t) => {
  const { ledger, c1, c2, proposal } = setup();
  const propose = ledger.propose(
    c1,
    { type: 'institution.retire', institution: 'bank-1' },
    ledger.now + 60_000,
  );
  const id = txHash(propose);
  ledger.commit([propose]);
  ledger.advance(120_000);
  t.match(ledger.try(ledger.approve(c2, id)), { code: 'LEDGER_PROPOSAL_EXPIRED' });
  t.equal(proposalStatus(proposal(id)!, ledger.now), 'expired');
  t.equal(ledger.institution('bank-1')?.active, true, 'the institution stays');
  t.match(
    ledger.try(ledger.propose(c1, { type: 'institution.retire', institution: 'bank-1' }, ledger.now - 1)),
    { code: 'LEDGER_BAD_DEADLINE' },
  );
  t.match(
    ledger.try(
      ledger.propose(
        c1,
        { type: 'institution.retire', institution: 'bank-1' },
        ledger.now + 365 * 86_400_000,
      ),
    ),
    { code: 'LEDGER_BAD_DEADLINE' },
    'nor beyond the longest a proposal may stay open',
  );
});

t.test('a chain with a council refuses the single-key path', async (t) => {
  const { chain, ledger } = setup();
  const k = chain.keys('bank-x');
  t.match(ledger.try(ledger.addInstitution(chain.admin, 'bank-x', k)), {
    code: 'LEDGER_GOVERNANCE_REQUIRED',
  });
  t.match(ledger.try(ledger.addInstitution(chain.council[0]!, 'bank-x', k)), {
    code: 'LEDGER_GOVERNANCE_REQUIRED',
  });
  t.match(ledger.try(ledger.retireInstitution(chain.council[0]!, 'bank-1')), {
    code: 'LEDGER_GOVERNANCE_REQUIRED',
  });
  // A chain without a council keeps its admins (chains made before it), and has no proposals.
  const legacy = new TestLedger(makeTestChain());
  t.equal(legacy.try(legacy.addInstitution(legacy.chain.admin, 'bank-x', k)).ok, true);
  t.match(
    legacy.try(
      legacy.propose(legacy.chain.council[0]!, { type: 'institution.retire', institution: 'bank-1' }),
    ),
    {
      code: 'LEDGER_NO_COUNCIL',
    },
  );
});

t.test('a proposal that no longer applies when approved fails, with its reason', async (t) => {
  const { chain, ledger, c1, c2, proposal } = setup();
  const k = chain.keys('bank-twice');
  const change: GovChange = {
    type: 'institution.add',
    institution: 'bank-twice',
    name: 'A',
    signKey: k.pub,
    encKey: k.encPub,
  };
  const first = ledger.propose(c1, change);
  const second = ledger.propose(c2, { ...change, name: 'B' });
  ledger.commit([first, second]);
  ledger.commit([ledger.approve(c2, txHash(first))]);
  t.match(
    ledger.try(ledger.propose(c1, change)),
    { code: 'LEDGER_INSTITUTION_EXISTS' },
    'checked when proposed',
  );
  ledger.commit([ledger.approve(c1, txHash(second))]);
  t.equal(proposal(txHash(second))?.status, 'failed');
  t.same(proposal(txHash(second))?.failure?.code, 'LEDGER_INSTITUTION_EXISTS');
  t.equal(ledger.institution('bank-twice')?.name, 'A', 'the first change stands');
});

t.test('registrars are added and retired by the council', async (t) => {
  const { chain, ledger, c1, c2 } = setup(false);
  const newRegistrar = chain.keys('registrar-2');
  const enact = (change: GovChange) => {
    const p = ledger.propose(c1, change);
    ledger.commit([p]);
    ledger.commit([ledger.approve(c2, txHash(p))]);
  };
  const [alice, bob] = chain.subjects as [(typeof chain.subjects)[0], (typeof chain.subjects)[0]];
  const byNew = ledger.register(alice, {
    registrar: newRegistrar.pub,
    attestation: chain.attest(alice, newRegistrar),
  });
  t.match(ledger.try(byNew), { code: 'LEDGER_UNKNOWN_REGISTRAR' }, 'not a registrar yet');
  enact({ type: 'registrar.add', key: newRegistrar.pub });
  t.equal(ledger.try(byNew).ok, true, 'its attestation is taken once added');
  enact({ type: 'registrar.retire', key: chain.registrar.pub });
  t.match(
    ledger.try(ledger.register(bob)),
    { code: 'LEDGER_UNKNOWN_REGISTRAR' },
    'the retired genesis registrar is not',
  );
  t.match(ledger.try(ledger.propose(c1, { type: 'registrar.retire', key: chain.registrar.pub })), {
    code: 'LEDGER_UNKNOWN_REGISTRAR',
  });
});

t.test('parameters change within what genesis allows', async (t) => {
  const { chain, ledger, c1, c3 } = setup();
  t.match(
    ledger.try(
      ledger.propose(c1, {
        type: 'params.set',
        params: { maxBlockTxs: chain.genesis.params.maxBlockTxs + 1 },
      }),
    ),
    {
      code: 'LEDGER_PARAM_ABOVE_GENESIS',
    },
  );
  const p = ledger.propose(c1, { type: 'params.set', params: { maxGrantMs: 3_600_000 } });
  ledger.commit([p]);
  const subject = chain.subjects[0]!;
  const { request } = ledger.requestWithRecords(chain.institutions[0]!, subject, ['tax']);
  const longGrant = () => ledger.grant(subject, request, { types: ['tax'], expires: ledger.now + 7_200_000 });
  t.equal(ledger.try(longGrant()).ok, true, 'a two-hour grant before the change');
  ledger.commit([ledger.approve(c3, txHash(p))]);
  t.match(ledger.try(longGrant()), { code: 'LEDGER_BAD_EXPIRY' }, 'refused after it');
});

t.test('genesis: no single key can change anything', async (t) => {
  const chain = makeTestChain({ governance: 'council' });
  const g = chain.genesis;
  t.throws(() => parseGenesis({ ...g, council: { members: g.council!.members, threshold: 1 } }), {
    code: 'LEDGER_GENESIS_INVALID',
  });
  t.throws(() => parseGenesis({ ...g, council: { members: [g.council!.members[0]], threshold: 2 } }), {
    code: 'LEDGER_GENESIS_INVALID',
  });
  t.throws(() => parseGenesis({ ...g, council: { members: g.council!.members, threshold: 4 } }), {
    code: 'LEDGER_GENESIS_INVALID',
  });
  t.throws(() => parseGenesis({ ...g, admins: [chain.admin.pub] }), { code: 'LEDGER_GENESIS_INVALID' });
});
