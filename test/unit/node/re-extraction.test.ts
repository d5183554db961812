/**
 * A subject recovered through her registrar can grant again a record sealed to her lost key: her
 * `record.refresh` reopens the type, the extractor role extracts it afresh sealed to her new key
 * (read from committed state), she re-wraps it to the institution with her new key, and the
 * institution opens it. A real Chain over a MemoryBlockStore, a real Mempool, a real Extractor and
 * ExtractorRole, the real sealing and opening code; the erasure role drops the old ciphertext.
 */
import '../../../src/common/polyfill.js';
import t, { type Test } from 'tap';
import { utf8ToBytes } from '../../../src/common/bytes.js';
import { verifyFast } from '../../../src/common/crypto-node.js';
import { silentLogger } from '../../../src/common/logger.js';
import { Extractor, rankExtractors } from '../../../src/extractor/extractor.js';
import {
  bundleDigest,
  type GrantState,
  grantedRecordDigests,
  MemoryBlockStore,
  type RecordState,
  type RequestState,
  stateKey,
  txHash,
} from '../../../src/ledger/index.js';
import { Chain } from '../../../src/node/chain.js';
import { Mempool } from '../../../src/node/mempool.js';
import { ErasureRole, ExtractorRole } from '../../../src/node/roles.js';
import { buildGrantTx } from '../../../src/platform/consent.js';
import type { DataSource } from '../../../src/plugins/data-source.js';
import { MemoryPayloadStore } from '../../../src/records/payload-store.js';
import { openRecordAs, recordContext } from '../../../src/records/record-crypto.js';
import { signStorageReceipt } from '../../../src/records/storage-receipt.js';
import { makeTestChain, type TestKeys, type TestValidator } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

/** A real chain with one request of subject 0 for tax committed; extractor roles made on demand. */
async function world(t: Test) {
  const tc = makeTestChain();
  const clock = { t: tc.options.time + 10_000 };
  const store = new MemoryBlockStore(tc.genesisInit());
  await store.open();
  let chain: Chain | undefined;
  const mempool = new Mempool(
    { chain: tc.genesis.chain, maxTxs: 10_000, maxTxTtlMs: tc.genesis.params.maxTxTtlMs },
    {
      verifier: verifyFast,
      isCommitted: async (hash) => chain?.committedRecently(hash) ?? false,
      now: () => clock.t,
    },
  );
  chain = new Chain(tc.genesis, store, { mempool, verifier: verifyFast });
  await chain.load();
  const c = chain;
  const builder = new TestLedger(tc, { registerSubjects: false });
  const commit = async () => {
    clock.t += 1_000;
    builder.now = clock.t;
    await c.commit(tc.certify(c.buildBlock(tc.validators[0]!.pub, 0, clock.t)));
  };
  const submit = async (tx: Parameters<Mempool['add']>[0]) => {
    builder.now = clock.t;
    await mempool.add(tx);
  };
  const bank = tc.institutions[0]!;
  const alice = tc.subjects[0]!;
  const next = tc.keys('alice-next');
  const subjectKeys = (k: TestKeys) => ({ label: k.name, signing: k.signing, encryption: k.encryption });

  for (const s of tc.subjects) await submit(builder.register(s));
  await commit();
  const open = builder.openRequest(bank, alice, { types: ['tax'] });
  await submit(open);
  await commit();
  const id = txHash(open);

  // The extractors serving tax for the request, assigned first; one source counts the fetches.
  const serving = tc.validators.filter((v) => v.roles.includes('extractor') && v.types.includes('tax'));
  const ranked = rankExtractors(
    id,
    'tax',
    serving.map((v) => v.pub),
  ).map((key) => serving.find((v) => v.pub === key)!);
  const fetches = { n: 0 };
  const source: DataSource = {
    name: 'gov',
    dataTypes: ['tax'],
    fetch: async (q) => {
      fetches.n++;
      return {
        fields: { income: 52_000 + fetches.n },
        source: 'tax-office',
        raw: utf8ToBytes(`${q.subject}/${fetches.n}`),
      };
    },
    health: async () => ({ ok: true }),
  };
  const payloads = new MemoryPayloadStore();
  const roles: ExtractorRole[] = [];
  t.teardown(async () => {
    for (const r of roles) await r.stop();
  });
  /** A started extractor role for `validator`, with a real extractor over the shared source and store. */
  const role = async (validator: TestValidator, fallbackMs = 150) => {
    const extractor = new Extractor(
      {
        chain: tc.genesis.chain,
        nodeKey: validator.signing,
        timeoutMs: 5_000,
        retries: 1,
        backoffMs: 1,
        maxBackoffMs: 2,
        txTtlMs: 60_000,
      },
      {
        sources: [source],
        payloads,
        submit: async (tx) => void (await mempool.add(tx)),
        replicate: async (digest, bytes) =>
          tc.validators
            .slice(0, 2)
            .map((v) =>
              signStorageReceipt(
                { validator: v.pub, digest, size: bytes.length, chain: tc.genesis.chain, height: c.height },
                v.signing.secretKey,
              ),
            ),
        logger: silentLogger,
        now: () => clock.t,
        random: () => 0.5,
      },
    );
    const r = new ExtractorRole(
      { selfKey: validator.pub, fallbackMs, policy: 'on-request', rescanEveryBlocks: 1000 },
      { chain: c, extractor, pending: mempool, logger: silentLogger, now: () => clock.t },
    );
    roles.push(r);
    await r.start();
    return r;
  };
  const request = () => c.state.get(stateKey.request(id)) as unknown as RequestState;
  const record = (digest: string) => c.state.get(stateKey.record(digest)) as unknown as RecordState;
  return {
    tc,
    clock,
    c,
    builder,
    commit,
    submit,
    bank,
    alice,
    next,
    subjectKeys,
    id,
    ranked,
    fetches,
    payloads,
    role,
    request,
    record,
  };
}

t.test('a subject recovered through her registrar can grant again', async (t) => {
  const w = await world(t);
  const {
    tc,
    clock,
    c,
    builder,
    commit,
    submit,
    bank,
    alice,
    next,
    subjectKeys,
    id,
    fetches,
    payloads,
    request,
    record,
  } = w;
  const erasure = new ErasureRole(
    { sweepEveryBlocks: 1000, orphanAfterMs: 3_600_000 },
    { chain: c, payloads, logger: silentLogger, now: () => clock.t },
  );
  t.teardown(() => erasure.stop());
  const role = await w.role(w.ranked[0]!);
  await erasure.start();
  await role.settled();
  await commit();

  const context = recordContext(tc.genesis.chain, id, 'tax');
  const old = record(request().records.tax!);
  t.equal(old.subjectKey, alice.encPub, 'extracted, sealed to her key');

  // She loses her key and recovers through her registrar.
  await submit(builder.recover(alice.id, next));
  await commit();
  const oldCiphertext = (await payloads.get(old.digest))!;
  t.throws(
    () => openRecordAs(oldCiphertext, old.key, next.encryption.secretKey, context),
    { code: 'CRYPTO_UNWRAP_FAILED' },
    'her new key cannot open the record sealed to the lost one',
  );
  const view = (r: RequestState) => ({
    ...r,
    records: Object.values(r.records).map((d) => ({ type: record(d).type, digest: d, key: record(d).key })),
  });
  t.throws(
    () =>
      buildGrantTx(
        { chain: tc.genesis.chain, now: clock.t },
        view(request()),
        subjectKeys(next),
        { institution: bank.id, encKey: bank.encPub },
        { expiresInMs: 3_600_000, uses: 1, retainDays: 30 },
      ),
    { code: 'CRYPTO_UNWRAP_FAILED' },
    'so she cannot grant it as it stands',
  );

  // Her refresh, signed with her new key: the role re-extracts at once, to her new key.
  const refresh = builder.refreshRecords(next, id, ['tax']);
  await submit(refresh);
  await commit();
  t.equal(request().records.tax, undefined, 'the stale record is set aside');
  await role.settled();
  t.equal(fetches.n, 2, 'the source is asked again, once');
  await commit();
  const fresh = record(request().records.tax!);
  t.ok(fresh, 'the re-extracted record committed');
  t.not(fresh.digest, old.digest, 'as a new record');
  t.equal(fresh.subjectKey, next.encPub, 'sealed to her new key, from committed state');
  t.same(request().superseded, { tax: [old.digest] }, 'the old digest stays on the request');
  t.equal(record(old.digest).erased, true, 'the old record is erased');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(await payloads.has(old.digest), false, 'and its ciphertext deleted');
  const mine = openRecordAs(
    (await payloads.get(fresh.digest))!,
    fresh.key,
    next.encryption.secretKey,
    context,
    {
      sourceCommitment: fresh.sourceCommitment,
    },
  );
  t.equal(mine.fields.income, 52_002, 'she opens the new record with her new key');

  // She grants with her new key; the institution opens the record with its own.
  const grant = buildGrantTx(
    { chain: tc.genesis.chain, now: clock.t },
    view(request()),
    subjectKeys(next),
    { institution: bank.id, encKey: bank.encPub },
    { expiresInMs: 3_600_000, uses: 1, retainDays: 30 },
  );
  await submit(grant);
  await commit();
  const g = c.state.get(stateKey.grant(txHash(grant))) as unknown as GrantState;
  t.ok(g, 'her grant committed');
  t.equal(request().decision, 'granted', 'the request is granted');
  const theirs = openRecordAs(
    (await payloads.get(fresh.digest))!,
    g.keys[0]!.key,
    bank.encryption.secretKey,
    context,
    { sourceCommitment: fresh.sourceCommitment },
  );
  t.same(theirs.fields, { income: 52_002 }, "the institution's document opens");
  // The usage names the bundle the chain's state says the grant releases (the builder's own state is empty).
  const bundle = bundleDigest(tc.genesis.chain, g.id, grantedRecordDigests(request(), g));
  t.same(grantedRecordDigests(request(), g), [fresh.digest], 'the grant releases the new record');
  await submit(builder.usage(bank, g.id, { bundle }));
  await commit();
  t.equal(
    (c.state.get(stateKey.grant(txHash(grant))) as unknown as GrantState).used,
    1,
    'and it uses the grant',
  );
});

t.test('a fallback extractor waits its delay from the refresh, not from the request', async (t) => {
  const FALLBACK_MS = 600_000;
  const w = await world(t);
  const { clock, builder, commit, submit, alice, next, id, fetches, request, record } = w;
  // The assigned extractor answers, then is gone; only the first fallback is left.
  const assigned = await w.role(w.ranked[0]!);
  await assigned.settled();
  await commit();
  await assigned.stop();
  const old = request().records.tax!;
  clock.t += 2 * FALLBACK_MS;
  builder.now = clock.t;
  await submit(builder.recover(alice.id, next));
  await commit();
  const fallback = await w.role(w.ranked[1]!, FALLBACK_MS);
  await submit(builder.refreshRecords(next, id, ['tax']));
  await commit();
  t.equal(request().reopenedAt, clock.t, 'the request was reopened in this block');

  t.equal(fallback.rescan().reruns, 0, 'right after the refresh the fallback leaves it to the assigned one');
  clock.t += FALLBACK_MS / 2;
  t.equal(fallback.rescan().reruns, 0, 'still within its delay');
  clock.t += FALLBACK_MS / 2;
  t.equal(fallback.rescan().reruns, 1, 'its delay after the refresh passed: it re-extracts');
  await fallback.settled();
  await commit();
  t.equal(fetches.n, 2, 'the source was asked once more');
  const fresh = record(request().records.tax!);
  t.not(fresh.digest, old, 'a new record');
  t.equal(fresh.subjectKey, next.encPub, 'sealed to her new key');
  t.equal(fresh.extractor, w.ranked[1]!.pub, 'by the fallback');
});
