/**
 * The council (ledger/governance.ts): a change takes effect only when the threshold-th approval
 * commits, lapses at its deadline, and covers institutions, registrars, gateways, data sources and
 * parameters; a chain with a council refuses the single-key admin path.
 */
import { Value } from '@sinclair/typebox/value';
import t from 'tap';
import {
  type AnyTx,
  GATEWAY_ROLES,
  type GovChange,
  GovChangeSchema,
  gatewaysInForce,
  genesisHash,
  governedGateways,
  governedSources,
  govKey,
  ledgerConfigOf,
  type ProposalState,
  parseGenesis,
  proposalStatus,
  type RequestState,
  requestStatus,
  signerRole,
  sourcesForType,
  sourcesInForce,
  stateKey,
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

/** A council chain whose genesis also admits gateway `gw-genesis` and registers source `src-genesis`. */
function setupWithGateway() {
  const base = makeTestChain({ governance: 'council' });
  const gw = base.keys('gw-genesis');
  const source = base.keys('src-genesis');
  const genesis = parseGenesis({
    ...base.genesis,
    gateways: [{ name: 'gw-genesis', key: gw.pub, roles: ['platform'] }],
    sources: [{ id: 'src-genesis', key: source.pub, types: ['tax'] }],
  });
  const chain = { ...base, genesis, genesisHash: genesisHash(genesis), config: ledgerConfigOf(genesis) };
  const ledger = new TestLedger(chain);
  const [c1, c2] = chain.council as [typeof chain.admin, typeof chain.admin];
  /** Proposes and approves `change`; its proposal's final state. */
  const enact = (change: GovChange) => {
    const p = ledger.propose(c1, change);
    ledger.commit([p]);
    ledger.commit([ledger.approve(c2, txHash(p))]);
    return ledger.state.get(govKey.proposal(txHash(p))) as unknown as ProposalState;
  };
  return { chain, ledger, c1, c2, gw, enact };
}

t.test('gateways are added and retired by the council, over genesis', async (t) => {
  const { chain, ledger, c1, gw, enact } = setupWithGateway();
  const keys = () => gatewaysInForce(ledger.state, chain.config.genesisGateways).map((g) => g.name);
  t.same(keys(), ['gw-genesis'], "genesis' gateway is in force");
  const newGw = chain.keys('gw-2');
  const add: GovChange = {
    type: 'gateway.add',
    gateway: { name: 'gw-2', key: newGw.pub, roles: ['platform'] },
  };
  const p = ledger.propose(c1, add);
  ledger.commit([p]);
  t.same(keys(), ['gw-genesis'], 'one approval: not yet');
  t.equal(signerRole(chain.genesis, ledger.state, newGw.pub), 'unknown');
  ledger.commit([ledger.approve(chain.council[1]!, txHash(p))]);
  t.same(keys(), ['gw-genesis', 'gw-2'], 'the threshold-th approval admits it');
  t.match(ledger.state.get(govKey.gateway(newGw.pub)), { name: 'gw-2', key: newGw.pub, active: true });
  t.same(ledger.state.get(govKey.gatewayKeys), [newGw.pub], 'listed in the index');
  t.equal(signerRole(chain.genesis, ledger.state, newGw.pub), 'gateway');

  t.equal(enact({ type: 'gateway.retire', key: gw.pub }).status, 'enacted', "genesis' gateway retires");
  t.same(keys(), ['gw-2']);
  t.match(ledger.state.get(govKey.gateway(gw.pub)), { key: gw.pub, active: false }, 'kept, inactive');
  t.same(ledger.state.get(govKey.gatewayKeys), [newGw.pub, gw.pub]);
  enact({ type: 'gateway.retire', key: newGw.pub });
  t.same(keys(), [], 'none left');
  t.equal(governedGateways(ledger.state).length, 2, 'both entries stay');
  t.match(ledger.try(ledger.propose(c1, { type: 'gateway.retire', key: newGw.pub })), {
    code: 'LEDGER_UNKNOWN_GATEWAY',
  });
  t.match(ledger.try(ledger.propose(c1, { type: 'gateway.retire', key: chain.outsider.pub })), {
    code: 'LEDGER_UNKNOWN_GATEWAY',
  });
  t.match(
    ledger.try(ledger.propose(c1, add)),
    { code: 'LEDGER_GATEWAY_EXISTS' },
    'a retired key is not reused',
  );
  t.equal(signerRole(chain.genesis, ledger.state, newGw.pub), 'gateway', 'a retired gateway key stays one');
});

t.test("a gateway's key is no validator's, council member's or registrar's; names are unique", async (t) => {
  const { chain, ledger, c1, gw, enact } = setupWithGateway();
  const gateway = (name: string, key: string): GovChange => ({
    type: 'gateway.add',
    gateway: { name, key, roles: [] },
  });
  const validator = chain.validators[0]!;
  t.match(ledger.try(ledger.propose(c1, gateway('gw-x', validator.pub))), {
    code: 'LEDGER_GATEWAY_KEY_USED',
  });
  t.match(ledger.try(ledger.propose(c1, gateway('gw-x', chain.council[2]!.pub))), {
    code: 'LEDGER_GATEWAY_KEY_USED',
  });
  t.match(ledger.try(ledger.propose(c1, gateway('gw-x', chain.registrar.pub))), {
    code: 'LEDGER_GATEWAY_KEY_USED',
  });
  t.match(ledger.try(ledger.propose(c1, gateway('gw-x', gw.pub))), { code: 'LEDGER_GATEWAY_EXISTS' });
  t.match(ledger.try(ledger.propose(c1, gateway(validator.name, chain.keys('gw-y').pub))), {
    code: 'LEDGER_GATEWAY_NAME_USED',
  });
  t.match(ledger.try(ledger.propose(c1, gateway('gw-genesis', chain.keys('gw-y').pub))), {
    code: 'LEDGER_GATEWAY_NAME_USED',
  });
  // A registrar the council added, and a validator it scheduled, are refused the same way.
  const registrar = chain.keys('registrar-2');
  enact({ type: 'registrar.add', key: registrar.pub });
  t.match(ledger.try(ledger.propose(c1, gateway('gw-x', registrar.pub))), {
    code: 'LEDGER_GATEWAY_KEY_USED',
  });
  const seated = chain.keys('validator-new');
  t.equal(
    enact({
      type: 'validator.add',
      validator: { name: 'validator-new', key: seated.pub, roles: [], types: [] },
    }).status,
    'enacted',
  );
  t.match(ledger.try(ledger.propose(c1, gateway('gw-x', seated.pub))), { code: 'LEDGER_GATEWAY_KEY_USED' });
  t.match(ledger.try(ledger.propose(c1, gateway('validator-new', chain.keys('gw-y').pub))), {
    code: 'LEDGER_GATEWAY_NAME_USED',
  });
  // And no validator takes a gateway's key, genesis' or governed.
  const added = chain.keys('gw-z');
  t.equal(enact(gateway('gw-z', added.pub)).status, 'enacted');
  ledger.advance(10_000);
  ledger.commit([]);
  ledger.commit([]);
  for (const key of [gw.pub, added.pub])
    t.match(
      ledger.try(
        ledger.propose(c1, { type: 'validator.add', validator: { name: 'v-gw', key, roles: [], types: [] } }),
      ),
      { code: 'LEDGER_VALIDATOR_KEY_USED' },
    );
  // Roles are GATEWAY_ROLES only: a gateway never extracts.
  for (const role of GATEWAY_ROLES)
    t.ok(
      Value.Check(GovChangeSchema, {
        ...gateway('gw-e', added.pub),
        gateway: { name: 'gw-e', key: added.pub, roles: [role] },
      }),
    );
  t.notOk(
    Value.Check(GovChangeSchema, {
      type: 'gateway.add',
      gateway: { name: 'gw-e', key: added.pub, roles: ['extractor'] },
    }),
    'an extractor gateway is refused',
  );
});

t.test('a change to a gateway fails at enactment when its key was taken meanwhile', async (t) => {
  const { chain, ledger, c1, c2 } = setupWithGateway();
  const key = chain.keys('gw-race').pub;
  const first = ledger.propose(c1, { type: 'gateway.add', gateway: { name: 'gw-a', key, roles: [] } });
  const second = ledger.propose(c1, { type: 'gateway.add', gateway: { name: 'gw-b', key, roles: [] } });
  ledger.commit([first, second]);
  ledger.commit([ledger.approve(c2, txHash(first))]);
  ledger.commit([ledger.approve(c2, txHash(second))]);
  const p = ledger.state.get(govKey.proposal(txHash(second))) as unknown as ProposalState;
  t.equal(p.status, 'failed');
  t.equal(p.failure?.code, 'LEDGER_GATEWAY_EXISTS');
  t.same(
    gatewaysInForce(ledger.state, chain.config.genesisGateways).map((g) => g.name),
    ['gw-genesis', 'gw-a'],
  );
});

t.test('data sources are added, changed and retired by the council, over genesis', async (t) => {
  const { chain, ledger, c1, enact } = setupWithGateway();
  const inForce = () => sourcesInForce(ledger.state, chain.config.genesisSources);
  t.same(inForce(), chain.genesis.sources, "genesis' sources while the council changed none");
  const key = chain.keys('src-2').pub;
  t.equal(
    enact({ type: 'source.add', source: { id: 'src-2', key, types: ['tax', 'property'] } }).status,
    'enacted',
  );
  t.same(
    inForce().map((s) => [s.id, s.types]),
    [
      ['src-genesis', ['tax']],
      ['src-2', ['tax', 'property']],
    ],
  );
  t.same(inForce()[1], { id: 'src-2', key, types: ['tax', 'property'] }, 'in force as genesis would name it');
  t.same(
    sourcesForType(inForce(), 'property').map((s) => s.id),
    ['src-2'],
  );
  t.same(ledger.state.get(govKey.sourceIds), ['src-2']);

  t.equal(enact({ type: 'source.update', id: 'src-genesis', types: ['housing-fund'] }).status, 'enacted');
  t.same(
    inForce().find((s) => s.id === 'src-genesis')?.types,
    ['housing-fund'],
    "genesis' source answers for other types",
  );
  t.equal(enact({ type: 'source.retire', id: 'src-genesis' }).status, 'enacted');
  t.same(
    inForce().map((s) => s.id),
    ['src-2'],
  );
  t.match(ledger.state.get(govKey.source('src-genesis')), { active: false, types: ['housing-fund'] });
  t.equal(governedSources(ledger.state).length, 2, 'the retired entry stays');

  const propose = (change: GovChange) => ledger.try(ledger.propose(c1, change));
  t.match(propose({ type: 'source.retire', id: 'src-genesis' }), { code: 'LEDGER_UNKNOWN_SOURCE' });
  t.match(propose({ type: 'source.update', id: 'src-genesis', types: ['tax'] }), {
    code: 'LEDGER_UNKNOWN_SOURCE',
  });
  t.match(propose({ type: 'source.retire', id: 'src-none' }), { code: 'LEDGER_UNKNOWN_SOURCE' });
  const fresh = chain.keys('src-3').pub;
  t.match(
    propose({ type: 'source.add', source: { id: 'src-genesis', key: fresh, types: ['tax'] } }),
    { code: 'LEDGER_SOURCE_EXISTS' },
    'a retired id is not reused',
  );
  t.match(propose({ type: 'source.add', source: { id: 'src-2', key: fresh, types: ['tax'] } }), {
    code: 'LEDGER_SOURCE_EXISTS',
  });
  t.match(
    propose({
      type: 'source.add',
      source: { id: 'src-3', key: chain.genesis.sources![0]!.key, types: ['tax'] },
    }),
    { code: 'LEDGER_SOURCE_KEY_USED' },
    "nor a retired source's key",
  );
  t.match(propose({ type: 'source.add', source: { id: 'src-3', key, types: ['tax'] } }), {
    code: 'LEDGER_SOURCE_KEY_USED',
  });
  t.match(propose({ type: 'source.add', source: { id: 'src-3', key: '00'.repeat(32), types: ['tax'] } }), {
    code: 'LEDGER_SOURCE_BAD_KEY',
  });
  t.notOk(
    Value.Check(GovChangeSchema, { type: 'source.add', source: { id: 'src-3', key: fresh, types: [] } }),
    'a source answers for at least one type',
  );
  t.notOk(Value.Check(GovChangeSchema, { type: 'source.update', id: 'src-3', types: ['tax', 'tax'] }));
  t.equal(propose({ type: 'source.add', source: { id: 'src-3', key: fresh, types: ['tax'] } }).ok, true);
});

t.test(
  'params.set of extraction applies to requests opened after it; earlier ones keep theirs',
  async (t) => {
    const { chain, ledger, c1, c2 } = setup();
    const [bank] = chain.institutions;
    const [alice, bob] = chain.subjects;
    const before = ledger.openRequest(bank!, alice!);
    ledger.commit([before]);
    const propose = ledger.propose(c1, { type: 'params.set', params: { extraction: 'on-consent' } });
    ledger.commit([propose]);
    ledger.commit([ledger.approve(c2, txHash(propose))]);
    const after = ledger.openRequest(bank!, bob!);
    ledger.commit([after]);
    const requestOf = (tx: AnyTx) =>
      ledger.state.get(stateKey.request(txHash(tx))) as RequestState | undefined;
    const early = requestOf(before)!;
    const late = requestOf(after)!;
    t.equal(early.policy, undefined, 'the request opened before keeps genesis’ on-request');
    t.equal(late.policy, 'on-consent', 'the one opened after follows the council’s on-consent');
    t.equal(requestStatus(late, undefined, ledger.now, 'on-request'), 'waiting-for-consent');
    t.equal(requestStatus(early, undefined, ledger.now, 'on-request'), 'waiting-for-data');
  },
);
