/**
 * Validator-set changes (ledger/governance.ts, ledger/validator-set.ts): a council change enacted
 * at height h is in force from h + 2; one change at a time, at least 4 validators, at most f
 * replaced per step; headers name the sets not genesis's; a light client follows the chain of sets
 * from genesis through certified links and refuses a made-up set or a hidden change.
 */
import t from 'tap';
import { bytesToHex } from '../../../src/common/bytes.js';
import { signFast, verifyFast } from '../../../src/common/crypto-node.js';
import {
  blockHash,
  checkCertificateBy,
  type GovChange,
  LightClient,
  scheduledEpochs,
  txHash,
  VALIDATOR_SET_DELAY,
  type ValidatorInfo,
  validatorRotationBytes,
  validatorSetHash,
  validatorsInForce,
} from '../../../src/ledger/index.js';
import { makeTestChain, type TestKeys } from '../../helpers/chain.js';
import { type CommittedTestBlock, TestLedger } from '../../helpers/ledger.js';

function setup(validators = 4) {
  const chain = makeTestChain({ governance: 'council', validators, seed: `vset-${validators}` });
  const ledger = new TestLedger(chain);
  const [c1, c2] = chain.council as [TestKeys, TestKeys];
  /** Proposes and approves `change`; returns the block that enacted it. */
  const enact = (change: GovChange): CommittedTestBlock => {
    const propose = ledger.propose(c1, change);
    ledger.commit([propose]);
    return ledger.commit([ledger.approve(c2, txHash(propose))]);
  };
  const failure = (change: GovChange) => ledger.try(ledger.propose(c1, change));
  const setAt = (h: number) => validatorsInForce(ledger.state, chain.config, h).map((v) => v.key);
  return { chain, ledger, enact, failure, setAt };
}

const info = (name: string, keys: TestKeys): ValidatorInfo => ({ name, key: keys.pub, roles: [], types: [] });

t.test('a change enacted at h is in force from h + 2; headers name the sets', async (t) => {
  const { chain, ledger, enact, setAt } = setup();
  const genesisKeys = chain.genesis.validators.map((v) => v.key);
  const fifth = chain.keys('validator-5');
  const enacted = enact({ type: 'validator.add', validator: info('node4', fifth) });
  const h = enacted.certified.block.header.height;
  t.equal(VALIDATOR_SET_DELAY, 2);
  t.same(scheduledEpochs(ledger.state), [
    { from: h + 2, validators: [...chain.genesis.validators, info('node4', fifth)] },
  ]);
  t.same(setAt(h + 1), genesisKeys, 'the next height: still genesis’s');
  t.same(setAt(h + 2), [...genesisKeys, fifth.pub], 'from h + 2: five');
  t.equal(enacted.certified.block.header.validators, undefined, 'the enacting block names no set');
  t.equal(enacted.certified.block.header.nextValidators, undefined);

  // Block h + 1 commits to the next set; block h + 2 is certified by it.
  const link = ledger.commit([]);
  const five = [...chain.genesis.validators, info('node4', fifth)];
  t.equal(link.certified.block.header.validators, undefined, 'h + 1 is genesis’s');
  t.equal(link.certified.block.header.nextValidators, validatorSetHash(five), 'and names the next set');
  ledger.certifiers = [...chain.validators, fifth];
  const first = ledger.commit([]);
  t.equal(first.certified.block.header.validators, validatorSetHash(five), 'h + 2 names its set');
  t.equal(first.certified.block.header.nextValidators, validatorSetHash(five));

  // Quorum of five is four; the genesis four without the fifth still make it, three do not.
  const header = first.certified.block.header;
  const fiveKeys = five.map((v) => v.key);
  const certify = (voters: TestKeys[]) => chain.certify(first.certified.block, { voters }).cert;
  t.equal(checkCertificateBy(chain.genesis.chain, fiveKeys, header, certify(chain.validators)), null);
  t.equal(
    checkCertificateBy(chain.genesis.chain, fiveKeys, header, certify(chain.validators.slice(0, 3))),
    'NO_QUORUM',
  );
  t.equal(
    checkCertificateBy(
      chain.genesis.chain,
      genesisKeys,
      header,
      certify([...chain.validators.slice(0, 2), fifth]),
    ),
    'UNKNOWN_VALIDATOR',
    'the old set does not know the fifth',
  );
});

t.test('the rules: one change at a time, at least 4, at most f replaced, fresh keys, proofs', async (t) => {
  const { chain, ledger, enact, failure } = setup();
  const [v0, v1] = [chain.validators[0]!, chain.validators[1]!];
  t.match(
    failure({ type: 'validator.retire', key: v0.pub }),
    { code: 'LEDGER_VALIDATOR_SET_TOO_SMALL' },
    '4 → 3',
  );
  t.match(failure({ type: 'validator.retire', key: chain.keys('x').pub }), {
    code: 'LEDGER_UNKNOWN_VALIDATOR',
  });
  t.match(failure({ type: 'validator.add', validator: info('nodeX', v1) }), {
    code: 'LEDGER_VALIDATOR_KEY_USED',
  });
  t.match(
    failure({ type: 'validator.add', validator: info(chain.genesis.validators[0]!.name, chain.keys('y')) }),
    { code: 'LEDGER_VALIDATOR_EXISTS' },
  );
  const next = chain.keys('rotated-0');
  const wrongProof = bytesToHex(
    signFast(validatorRotationBytes(chain.genesis.chain, v0.pub, next.pub), v0.signing.secretKey),
  );
  t.match(
    failure({ type: 'validator.rotate', key: v0.pub, newKey: next.pub, proof: wrongProof }),
    { code: 'LEDGER_BAD_ROTATION_PROOF' },
    'the new key must sign the rotation',
  );

  enact({ type: 'validator.add', validator: info('node4', chain.keys('validator-5')) });
  t.match(
    failure({ type: 'validator.retire', key: v0.pub }),
    { code: 'LEDGER_VALIDATOR_CHANGE_PENDING' },
    'another change waits until the first is in force',
  );
  ledger.commit([]);
  ledger.commit([]);
  // Five now: one may go, then the four left are the floor.
  const proof = bytesToHex(
    signFast(validatorRotationBytes(chain.genesis.chain, v0.pub, next.pub), next.signing.secretKey),
  );
  const rotated = enact({ type: 'validator.rotate', key: v0.pub, newKey: next.pub, proof });
  const from = rotated.certified.block.header.height + 2;
  const set = validatorsInForce(ledger.state, chain.config, from);
  t.equal(set[0]!.key, next.pub, 'the seat keeps its place and name with the new key');
  t.equal(set[0]!.name, chain.genesis.validators[0]!.name);
  ledger.commit([]);
  ledger.commit([]);
  t.match(
    failure({ type: 'validator.add', validator: info('node9', v0) }),
    { code: 'LEDGER_VALIDATOR_KEY_USED' },
    'a rotated-out key never returns',
  );
  const updated = enact({ type: 'validator.update', key: v1.pub, roles: ['extractor'], types: ['tax'] });
  const after = validatorsInForce(ledger.state, chain.config, updated.certified.block.header.height + 2);
  t.same(after.find((v) => v.key === v1.pub)?.types, ['tax'], 'roles and types change');
});

t.test('a single-validator chain cannot change its set', async (t) => {
  const { chain, failure } = setup(1);
  t.match(failure({ type: 'validator.add', validator: info('node1', chain.keys('z')) }), {
    code: 'LEDGER_VALIDATOR_SET_TOO_SMALL',
  });
  const next = chain.keys('z2');
  const proof = bytesToHex(
    signFast(
      validatorRotationBytes(chain.genesis.chain, chain.validators[0]!.pub, next.pub),
      next.signing.secretKey,
    ),
  );
  t.match(failure({ type: 'validator.rotate', key: chain.validators[0]!.pub, newKey: next.pub, proof }), {
    code: 'LEDGER_VALIDATOR_STEP_TOO_LARGE',
  });
});

t.test(
  'the light client follows the chain of sets from genesis and refuses made-up or hidden ones',
  async (t) => {
    const { chain, ledger, enact } = setup();
    const fifth = chain.keys('validator-5');
    const five = [...chain.genesis.validators, info('node4', fifth)];
    const enacted = enact({ type: 'validator.add', validator: info('node4', fifth) });
    const from = enacted.certified.block.header.height + 2;
    const link = ledger.commit([]);
    ledger.certifiers = [...chain.validators.slice(1), fifth];
    const after = ledger.commit([]);
    const light = () => new LightClient(chain.genesis, { verifier: verifyFast });

    const lc = light();
    t.match(
      lc.verifyHeader(enacted.certified.block.header, enacted.certified.cert),
      { ok: true },
      'before: genesis',
    );
    t.match(
      lc.verifyHeader(after.certified.block.header, after.certified.cert),
      { ok: false },
      'after the change, not without following it',
    );
    t.match(
      lc.verifyHeader(link.certified.block.header, link.certified.cert),
      { ok: false, code: 'LIGHT_VALIDATORS_UNKNOWN' },
      'the link itself names a next set it has not followed',
    );
    const epoch = { from, validators: five };
    t.match(lc.followEpoch({ epoch, header: link.certified.block.header, cert: link.certified.cert }), {
      ok: true,
    });
    t.same(lc.validatorsAt(from).length, 5);
    t.match(
      lc.verifyHeader(after.certified.block.header, after.certified.cert),
      { ok: true },
      'then it verifies',
    );
    t.match(
      lc.verifyHeader(enacted.certified.block.header, enacted.certified.cert),
      { ok: true },
      'and the old one too',
    );

    // A node makes up a set of its own keys: the certified link commits to another hash.
    const rogue = [...chain.genesis.validators.slice(0, 3), info('node4', chain.keys('rogue'))];
    t.match(
      light().followEpoch({
        epoch: { from, validators: rogue },
        header: link.certified.block.header,
        cert: link.certified.cert,
      }),
      { ok: false, code: 'LIGHT_BAD_VALIDATOR_SET' },
    );
    // A link that is not the header before the set's first height, or whose certificate is forged.
    t.match(
      light().followEpoch({ epoch, header: enacted.certified.block.header, cert: enacted.certified.cert }),
      { ok: false, code: 'LIGHT_BAD_VALIDATOR_SET' },
    );
    const forged = { ...link.certified.block.header, nextValidators: validatorSetHash(rogue) };
    t.match(
      light().followEpoch({
        epoch: { from, validators: rogue },
        header: forged,
        cert: chain.certify(
          { ...link.certified.block, header: forged },
          { voters: chain.validators.slice(0, 2) },
        ).cert,
      }),
      { ok: false, code: 'PROOF_CERT_NO_QUORUM' },
    );
    // followValidatorSets over a transport: an honest node's report is followed, a liar's refused.
    const blocks = new Map(ledger.blocks.map((b) => [b.certified.block.header.height, b.certified]));
    const transport = (epochs: unknown) => async (path: string) => {
      if (path === '/v1/gov/validator-sets') return { epochs };
      const h = Number(path.split('/').pop());
      const b = blocks.get(h);
      if (!b) throw new Error('not found');
      return { hash: blockHash(b.block.header), block: b.block, cert: b.cert };
    };
    const blame = { code: 'CLIENT_NODE_LIED', node: 'http://node' };
    const followed = light();
    await followed.followValidatorSets(transport([epoch]), blame);
    t.equal(followed.epochs.length, 1, 'followed from the honest report');
    await t.rejects(light().followValidatorSets(transport([{ from, validators: rogue }]), blame), {
      code: 'CLIENT_NODE_LIED',
    });
    const hiding = light();
    await hiding.followValidatorSets(transport([]), blame);
    t.match(
      hiding.verifyHeader(after.certified.block.header, after.certified.cert),
      { ok: false },
      'a hidden change leaves later headers unverifiable, never wrongly verified',
    );
  },
);
