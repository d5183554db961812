/**
 * The bank client takes the data sources in force, proven: a council adds and retires sources
 * (ledger/governance), and `provenSources` reads them through the light client from proof routes
 * (`/v1/state/sources`, `/v1/state/sources/:id`) served here from a test chain's state. A record
 * signed by a source the council added opens; one signed by a source it retired is refused, and
 * so is an unsigned record of a type the council registered a source for. A node hiding the
 * council's entries is called a liar.
 */
import t from 'tap';
import { openBundle, provenSources, verifyBundle } from '../../../src/client/bundle.js';
import { toBase64url, utf8ToBytes } from '../../../src/common/bytes.js';
import { sha256Hex, unwrapKey, wrapKey } from '../../../src/common/crypto.js';
import { verifyFast } from '../../../src/common/crypto-node.js';
import {
  type AnyTx,
  buildTxProof,
  type DataType,
  type GenesisSource,
  type GovChange,
  govKey,
  LightClient,
  type StateValue,
  type StateValueProof,
  txHash,
} from '../../../src/ledger/index.js';
import type { SealedBundle } from '../../../src/records/bundle.js';
import { type RecordPlaintext, recordContext, sealRecord } from '../../../src/records/record-crypto.js';
import { signSourceStatement } from '../../../src/records/source-statement.js';
import { deriveKeys, makeTestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

const taxOffice = deriveKeys('gov-source-test', 'tax-office');
const newTaxOffice = deriveKeys('gov-source-test', 'tax-office-2');
const pensionOffice = deriveKeys('gov-source-test', 'pension-office');
const GENESIS_SOURCES = [{ id: 'tax-office', key: taxOffice.pub, types: ['tax' as DataType] }];
const blame = { code: 'CLIENT_NODE_LIED', node: 'http://node.test' };

/**
 * A council chain with `changes` enacted, then a request of alice's bank for tax and social
 * insurance whose tax record is signed by `signer` (none: unsigned), granted and used.
 */
function scenario(changes: GovChange[], signer?: { id: string; secret: Uint8Array }) {
  const chain = makeTestChain({ governance: 'council', sources: GENESIS_SOURCES });
  const ledger = new TestLedger(chain, { verifier: verifyFast });
  const [c1, c2] = chain.council as [typeof chain.admin, typeof chain.admin];
  for (const change of changes) {
    const p = ledger.propose(c1, change);
    ledger.commit([p]);
    ledger.commit([ledger.approve(c2, txHash(p))]);
    const status = (ledger.state.get(govKey.proposal(txHash(p))) as { status: string }).status;
    if (status !== 'enacted') throw new Error(`${change.type} was not enacted`);
  }
  const bank = chain.institutions[0]!;
  const alice = chain.subjects[0]!;
  const open = ledger.openRequest(bank, alice, {
    types: ['tax', 'social-insurance'],
    format: 'json',
    fields: {},
  });
  ledger.commit([open]);
  const request = txHash(open);
  const sealed = (['tax', 'social-insurance'] as const).map((type) => {
    const extractor = chain.extractorFor(type);
    const context = recordContext(chain.genesis.chain, request, type);
    const answer = utf8ToBytes(JSON.stringify({ subject: alice.id, type, amount: 100 }));
    const digest = sha256Hex(answer);
    const statement =
      type === 'tax' && signer
        ? signSourceStatement(
            { v: 1, source: signer.id, subject: alice.id, type, digest, time: 1_700_000_000_000 },
            signer.secret,
          )
        : undefined;
    const record: RecordPlaintext = {
      type,
      subject: alice.id,
      fields: { amount: 100 },
      source: 'https://source.example/v1',
      fetchedAt: 1,
      sourceDigest: digest,
      ...(statement ? { statement, content: toBase64url(answer) } : {}),
    };
    const s = sealRecord(record, alice.encryption.publicKey, context);
    const put = ledger.putRecord(extractor, request, type, {
      digest: s.digest,
      size: s.size,
      key: s.key,
      sourceCommitment: s.sourceCommitment,
      ...(s.sourceStatement === undefined ? {} : { sourceStatement: s.sourceStatement }),
    });
    return { type, context, sealed: s, put };
  });
  ledger.commit(sealed.map((s) => s.put));
  const keys = sealed.map((s) => ({
    record: s.sealed.digest,
    key: wrapKey(
      unwrapKey(s.sealed.key, alice.encryption.secretKey, s.context),
      bank.encryption.publicKey,
      s.context,
    ),
  }));
  const grant = ledger.grant(alice, request, { keys });
  ledger.commit([grant]);
  const usage = ledger.usage(bank, txHash(grant));
  ledger.commit([usage]);
  const proofOf = (tx: AnyTx) => {
    const hash = txHash(tx);
    for (const b of ledger.blocks) {
      const i = b.certified.block.txs.findIndex((x) => txHash(x) === hash);
      if (i >= 0) return buildTxProof(b.certified, i);
    }
    throw new Error('not committed');
  };
  const bundle: SealedBundle = {
    v: 1,
    chain: chain.genesis.chain,
    request,
    grant: txHash(grant),
    usage: txHash(usage),
    digest: usage.body.bundle,
    proofs: { request: proofOf(open), grant: proofOf(grant), usage: proofOf(usage) },
    records: sealed.map((s, i) => ({
      type: s.type,
      digest: s.sealed.digest,
      ciphertext: toBase64url(s.sealed.ciphertext),
      key: keys[i]!.key,
      proof: proofOf(s.put),
    })),
  };
  const grantee = { institution: bank.id, signKey: bank.pub, encKey: bank.encPub };
  /** The proof routes as an honest node serves them, from the latest certified header. */
  const get = async (path: string): Promise<StateValueProof> => {
    const key =
      path === '/v1/state/sources'
        ? govKey.sourceIds
        : govKey.source(path.slice('/v1/state/sources/'.length));
    const last = ledger.blocks[ledger.blocks.length - 1]!.certified;
    return structuredClone({
      key,
      value: (ledger.state.get(key) ?? null) as StateValue | null,
      proof: ledger.state.prove(key)!.proof,
      header: last.block.header,
      cert: last.cert,
    });
  };
  const light = new LightClient(chain.genesis, { verifier: verifyFast });
  /** Verifies and opens the bundle against `sources` (default: those proven in force). */
  const openWith = async (sources?: readonly GenesisSource[]) => {
    const verified = verifyBundle(bundle, chain.genesis, grantee, {
      sources: sources ?? (await provenSources(light, get, blame)),
    });
    return openBundle(verified, bank.encryption.secretKey);
  };
  return { chain, ledger, get, light, openWith };
}

const addNewTaxOffice: GovChange = {
  type: 'source.add',
  source: { id: 'tax-office-2', key: newTaxOffice.pub, types: ['tax'] },
};
const retireTaxOffice: GovChange = { type: 'source.retire', id: 'tax-office' };

t.test("while the council changed no source, genesis' list stands (its absence proven)", async (t) => {
  const { chain, get, light, openWith } = scenario([], {
    id: 'tax-office',
    secret: taxOffice.signing.secretKey,
  });
  t.same(await provenSources(light, get, blame), chain.genesis.sources);
  t.equal((await openWith()).length, 2, 'a record signed by the genesis source opens');
});

t.test('a record signed by a source the council added opens', async (t) => {
  const { get, light, openWith } = scenario([addNewTaxOffice], {
    id: 'tax-office-2',
    secret: newTaxOffice.signing.secretKey,
  });
  t.same(
    (await provenSources(light, get, blame)).map((s) => s.id),
    ['tax-office', 'tax-office-2'],
  );
  const records = await openWith();
  t.equal(records[0]!.statement?.statement.source, 'tax-office-2');
  await t.rejects(
    openWith(GENESIS_SOURCES),
    { code: 'CLIENT_SOURCE_NOT_REGISTERED' },
    "against genesis' list alone it would be refused",
  );
});

t.test('a record signed by a source the council retired is refused', async (t) => {
  const { get, light, openWith } = scenario([addNewTaxOffice, retireTaxOffice], {
    id: 'tax-office',
    secret: taxOffice.signing.secretKey,
  });
  t.same(
    (await provenSources(light, get, blame)).map((s) => s.id),
    ['tax-office-2'],
  );
  await t.rejects(openWith(), { code: 'CLIENT_SOURCE_NOT_REGISTERED' });
  t.equal((await openWith(GENESIS_SOURCES)).length, 2, "genesis' list alone would still take it");
});

t.test('a type the council registered a source for takes no unsigned record', async (t) => {
  const addPension: GovChange = {
    type: 'source.add',
    source: { id: 'pension-office', key: pensionOffice.pub, types: ['social-insurance'] },
  };
  const { openWith } = scenario([addPension], { id: 'tax-office', secret: taxOffice.signing.secretKey });
  await t.rejects(openWith(), { code: 'CLIENT_SOURCE_UNSIGNED' }, 'social insurance now needs a signature');
  const changed = scenario([{ type: 'source.update', id: 'tax-office', types: ['property'] }]);
  t.equal((await changed.openWith()).length, 2, 'tax, no longer registered, is taken unsigned');
});

t.test('a node hiding or altering the council’s entries is called a liar', async (t) => {
  const { get, light } = scenario([addNewTaxOffice, retireTaxOffice]);
  const hiding = async (path: string) => ({ ...(await get(path)), value: null });
  await t.rejects(provenSources(light, hiding, blame), { code: 'CLIENT_NODE_LIED' }, 'the index hidden');
  const altered = async (path: string) => {
    const answer = await get(path);
    return path === '/v1/state/sources/tax-office'
      ? { ...answer, value: { ...(answer.value as object), active: true } }
      : answer;
  };
  await t.rejects(provenSources(light, altered, blame), { code: 'CLIENT_NODE_LIED' }, 'a retirement hidden');
});
