/**
 * Extractor reconciliation (`ExtractorRole`): the role rescans the open requests at start-up and
 * every few blocks and re-runs what was lost — a record.put that expired before commit, a job cut
 * by a restart, a submit that failed — but never what is committed (a record, or a failure, which
 * is final) or still pending in the mempool; a fallback does not fetch what the assigned extractor
 * already has on its way. A real Chain over a MemoryBlockStore, a real Mempool (standing for every
 * node's, gossip being instant), real Extractors and a data source that counts its hits.
 */
import '../../../src/common/polyfill.js';
import t, { type Test } from 'tap';
import { utf8ToBytes } from '../../../src/common/bytes.js';
import { verifyFast } from '../../../src/common/crypto-node.js';
import { DatagrantError } from '../../../src/common/errors.js';
import { silentLogger } from '../../../src/common/logger.js';
import { Extractor, rankExtractors } from '../../../src/extractor/extractor.js';
import {
  type AnyTx,
  type DataType,
  MemoryBlockStore,
  type RequestState,
  stateKey,
  txHash,
} from '../../../src/ledger/index.js';
import { Chain } from '../../../src/node/chain.js';
import { Mempool } from '../../../src/node/mempool.js';
import { ExtractorRole, type ExtractorRoleMetrics } from '../../../src/node/roles.js';
import type { DataQuery, DataSource, FetchResult } from '../../../src/plugins/data-source.js';
import { MemoryPayloadStore } from '../../../src/records/payload-store.js';
import { signStorageReceipt } from '../../../src/records/storage-receipt.js';
import { makeTestChain, type TestValidator } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

const FALLBACK_MS = 150;
const RESCAN_EVERY = 3;
const TX_TTL_MS = 60_000;

type Fetch = (query: DataQuery, signal: AbortSignal) => Promise<FetchResult>;

const ok: Fetch = async (q) => ({
  fields: { value: 42 },
  source: 'gov-test',
  raw: utf8ToBytes(`answer for ${q.subject}/${q.type}`),
});

/** Metrics the role feeds, counted. */
function countingMetrics() {
  const counts = { rescans: 0, assigned: 0, fallback: 0, pendingSkips: 0 };
  const metrics: ExtractorRoleMetrics = {
    rescans: { inc: () => void counts.rescans++ },
    reruns: { inc: ({ as }) => void counts[as]++ },
    pendingSkips: { inc: () => void counts.pendingSkips++ },
  };
  return { counts, metrics };
}

async function world(t: Test, options: { policy?: 'on-request' | 'on-consent' } = {}) {
  const policy = options.policy ?? 'on-request';
  const tc = makeTestChain({ params: { extraction: policy } });
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
  // Builds and signs transactions only; the real chain executes them.
  const builder = new TestLedger(tc, { registerSubjects: false });
  /** Source hits by `subject/type`, across every extractor of the world (one government source). */
  const hits = new Map<string, number>();
  const roles: ExtractorRole[] = [];
  t.teardown(async () => {
    for (const role of roles) await role.stop();
  });

  /** Commits the next block from the mempool (dropping what expired or is refused). */
  const commit = async () => {
    clock.t += 1_000;
    await c.commit(tc.certify(c.buildBlock(tc.validators[0]!.pub, 0, clock.t)));
  };

  /** A real extractor signing as `validator`, over a counting source answering with `fetch`. */
  const extractor = (
    validator: TestValidator,
    fetch: Fetch = ok,
    options: { submit?: (tx: AnyTx) => Promise<void> } = {},
  ) => {
    const source: DataSource = {
      name: 'gov',
      dataTypes: validator.types,
      fetch: async (q, ctx) => {
        const key = `${q.subject}/${q.type}`;
        hits.set(key, (hits.get(key) ?? 0) + 1);
        return fetch(q, ctx.signal);
      },
      health: async () => ({ ok: true }),
    };
    return new Extractor(
      {
        chain: tc.genesis.chain,
        nodeKey: validator.signing,
        timeoutMs: 5_000,
        retries: 2,
        backoffMs: 1,
        maxBackoffMs: 2,
        txTtlMs: TX_TTL_MS,
      },
      {
        sources: [source],
        payloads: new MemoryPayloadStore(),
        submit: options.submit ?? (async (tx) => void (await mempool.add(tx))),
        // f + 1 = 2 of the 4 test validators hold every ciphertext.
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
  };

  /** Starts an extractor role for `validator` (its start-up rescan runs at once). */
  const role = async (
    validator: TestValidator,
    ex: Extractor = extractor(validator),
    metrics?: ExtractorRoleMetrics,
    caughtUp?: () => boolean,
  ) => {
    const r = new ExtractorRole(
      {
        selfKey: validator.pub,
        fallbackMs: FALLBACK_MS,
        policy,
        rescanEveryBlocks: RESCAN_EVERY,
      },
      {
        chain: c,
        extractor: ex,
        pending: mempool,
        logger: silentLogger,
        ...(metrics ? { metrics } : {}),
        now: () => clock.t,
        ...(caughtUp ? { caughtUp } : {}),
      },
    );
    roles.push(r);
    await r.start();
    return r;
  };

  /** Registers every subject (block 1). */
  const registerAll = async () => {
    builder.now = clock.t;
    for (const s of tc.subjects) await mempool.add(builder.register(s));
    await commit();
  };

  /**
   * Opens a request by bank-0 about subject `i` for `types`, committed; returns its id once the
   * running roles have answered (block time must not run ahead of an extraction in progress, or
   * the fallback delay would pass before the assigned extractor could have submitted).
   */
  const open = async (i: number, types: DataType[], options: { settle?: boolean } = {}) => {
    builder.now = clock.t;
    const tx = builder.openRequest(tc.institutions[0]!, tc.subjects[i]!, { types });
    await mempool.add(tx);
    await commit();
    if (options.settle !== false) for (const r of roles) await r.settled();
    return txHash(tx);
  };

  /** The subject `i` grants `types` of request `id`, committed; returns the grant id. */
  const grant = async (i: number, id: string, types: DataType[]) => {
    builder.now = clock.t;
    const tx = builder.grant(tc.subjects[i]!, id, { types });
    await mempool.add(tx);
    await commit();
    for (const r of roles) await r.settled();
    return txHash(tx);
  };

  const request = (id: string) => c.state.get(stateKey.request(id)) as unknown as RequestState;
  const hitsOf = (i: number, type: DataType) => hits.get(`${tc.subjects[i]!.id}/${type}`) ?? 0;
  /** The two extractors serving `type` for `id`, assigned first (node-0 and node-1 both serve tax). */
  const ranked = (id: string, type: DataType) => {
    const serving = tc.validators.filter((v) => v.roles.includes('extractor') && v.types.includes(type));
    return rankExtractors(
      id,
      type,
      serving.map((v) => v.pub),
    ).map((key) => serving.find((v) => v.pub === key)!);
  };

  return {
    tc,
    clock,
    chain: c,
    mempool,
    hits,
    commit,
    extractor,
    role,
    registerAll,
    open,
    grant,
    request,
    hitsOf,
    ranked,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Commits `n` blocks, letting the roles answer after each. */
async function commitBlocks(w: Awaited<ReturnType<typeof world>>, roles: ExtractorRole[], n: number) {
  for (let i = 0; i < n; i++) {
    await w.commit();
    for (const r of roles) await r.settled();
  }
}

t.test('a record.put that expired before commit is submitted again by the rescan', async (t) => {
  const w = await world(t);
  await w.registerAll();
  const { counts, metrics } = countingMetrics();
  // The request is opened first; the role of its assigned extractor alone answers it.
  const id = await w.open(0, ['tax']);
  const [first] = w.ranked(id, 'tax');
  const role = await w.role(first!, undefined, metrics);
  await role.settled();
  t.equal(w.hitsOf(0, 'tax'), 1, 'the start-up rescan extracted the open request');
  const lost = w.mempool.pendingRecordTx(id, 'tax');
  t.equal(lost?.kind, 'record.put', 'its record.put is pending');

  // It never makes it into a block: it expires, and the block builder drops it.
  w.clock.t += TX_TTL_MS + 1;
  await w.commit();
  await role.settled();
  t.equal(w.mempool.pendingRecordTx(id, 'tax'), undefined, 'the record.put is gone');
  t.equal(w.request(id).records.tax, undefined, 'and never committed');

  await commitBlocks(w, [role], RESCAN_EVERY + 1);
  const record = w.request(id).records.tax;
  t.ok(record, 'the rescan re-submitted it and it committed');
  t.not(record, lost?.kind === 'record.put' ? lost.body.digest : undefined, 'as a new record');
  t.equal(w.hitsOf(0, 'tax'), 2, 'the source was asked again once, for the lost one');
  t.ok(counts.rescans >= 2, 'rescans are counted');
  t.equal(counts.assigned, 2, 'the first run (start-up) and the re-run counted as the assigned extractor’s');

  await commitBlocks(w, [role], 2 * RESCAN_EVERY);
  t.equal(w.hitsOf(0, 'tax'), 2, 'once committed, later rescans leave it alone');
});

t.test('a restarted role picks up an open request it was assigned and never answered', async (t) => {
  const w = await world(t);
  await w.registerAll();
  // Mid-extraction: the source hangs until the extractor stops.
  let hang = true;
  const fetch: Fetch = (q, signal) =>
    hang
      ? new Promise<FetchResult>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
      : ok(q, signal);
  const v0 = w.tc.validators[0]!;
  const before = await w.role(v0, w.extractor(v0, fetch));
  // A type only node-0 serves: it is the assigned extractor, no one else covers.
  const cut = await w.open(0, ['property'], { settle: false });
  for (let i = 0; i < 100 && w.hitsOf(0, 'property') === 0; i++) await sleep(5);
  t.equal(w.hitsOf(0, 'property'), 1, 'the extraction started');
  await before.stop();
  t.equal(w.mempool.pendingRecordTx(cut, 'property'), undefined, 'and was cut by the stop');

  // While the node is down, another request it is assigned is opened.
  const missed = await w.open(1, ['property']);
  await w.commit();
  t.equal(w.hitsOf(1, 'property'), 0, 'no one extracted it');

  hang = false;
  const after = await w.role(v0, w.extractor(v0, fetch));
  await after.settled();
  t.equal(w.hitsOf(0, 'property'), 2, 'the cut extraction is re-run once at start-up');
  t.equal(w.hitsOf(1, 'property'), 1, 'the missed request is extracted once at start-up');
  await commitBlocks(w, [after], 1);
  t.ok(w.request(cut).records.property, 'the cut request has its record');
  t.ok(w.request(missed).records.property, 'the missed request has its record');
});

t.test('a fallback does not fetch while the assigned extractor’s record.put is pending', async (t) => {
  const w = await world(t);
  await w.registerAll();
  const a = countingMetrics();
  const b = countingMetrics();
  const v0 = w.tc.validators[0]!;
  const v1 = w.tc.validators[1]!;
  const roleOf = new Map([
    [v0.pub, await w.role(v0, w.extractor(v0), a.metrics)],
    [v1.pub, await w.role(v1, w.extractor(v1), b.metrics)],
  ]);
  const id = await w.open(0, ['tax']);
  const [first, second] = w.ranked(id, 'tax');
  const firstRole = roleOf.get(first!.pub)!;
  const secondRole = roleOf.get(second!.pub)!;
  const fallbackCounts = second === v0 ? a.counts : b.counts;
  await firstRole.settled();
  t.equal(w.hitsOf(0, 'tax'), 1, 'the assigned extractor fetched');
  t.ok(w.mempool.pendingRecordTx(id, 'tax'), 'its record.put is pending, not committed yet');

  // The fallback delay passes with the record.put still pending (no block in between).
  w.clock.t += 10 * FALLBACK_MS;
  await sleep(3 * FALLBACK_MS);
  await secondRole.settled();
  t.equal(w.hitsOf(0, 'tax'), 1, 'the fallback timer did not fetch');
  t.ok(fallbackCounts.pendingSkips >= 1, 'it skipped because the record.put is pending');
  const rescan = secondRole.rescan();
  await secondRole.settled();
  t.equal(rescan.pending, 1, 'a rescan sees it pending too');
  t.equal(rescan.reruns, 0, 'and re-runs nothing');
  const again = firstRole.rescan();
  await firstRole.settled();
  t.equal(again.reruns, 0, 'nor does the assigned extractor, whose own record.put is pending');
  t.equal(w.hitsOf(0, 'tax'), 1, 'the source was hit once');

  await commitBlocks(w, [firstRole, secondRole], 2 * RESCAN_EVERY);
  t.ok(w.request(id).records.tax, 'the record committed');
  t.equal(w.hitsOf(0, 'tax'), 1, 'and no rescan fetched it again');
  t.equal(fallbackCounts.fallback, 0, 'the fallback never re-ran it');
});

t.test('a committed record.fail is final; a failed submit is retried by the next rescan', async (t) => {
  const w = await world(t);
  await w.registerAll();
  const v0 = w.tc.validators[0]!;
  const v1 = w.tc.validators[1]!;
  // The source is down for tax: every attempt is a transient failure.
  const down: Fetch = async (q, signal) => {
    if (q.type === 'tax') throw new DatagrantError('PLUGIN_UNAVAILABLE', 'source down');
    return ok(q, signal);
  };
  // node-0's first property record.put is refused (e.g. its mempool was full): nothing is pending.
  let refuse = 1;
  const flakySubmit = async (tx: AnyTx) => {
    if (tx.kind === 'record.put' && tx.body.type === 'property' && refuse-- > 0)
      throw new DatagrantError('LEDGER_MEMPOOL_FULL', 'full');
    await w.mempool.add(tx);
  };
  const extractorOf = (v: TestValidator) => w.extractor(v, down, v === v0 ? { submit: flakySubmit } : {});
  let roles = [await w.role(v0, extractorOf(v0)), await w.role(v1, extractorOf(v1))];
  const failed = await w.open(0, ['tax']);
  const [firstTax, secondTax] = w.ranked(failed, 'tax');
  t.equal(w.hitsOf(0, 'tax'), 3, 'the transient failure was retried with back-off (1 + 2 retries)');
  t.equal(w.mempool.pendingRecordTx(failed, 'tax')?.kind, 'record.fail', 'then a record.fail was submitted');
  // Property is served by node-0 alone: no fallback covers it, only a rescan can.
  const flaky = await w.open(1, ['property']);
  t.equal(w.hitsOf(1, 'property'), 1, 'the other request was fetched');
  t.equal(w.mempool.pendingRecordTx(flaky, 'property'), undefined, 'but its submit failed');

  // The tax fallback's delay passes while the failure is pending, then it commits.
  await sleep(3 * FALLBACK_MS);
  for (const r of roles) await r.settled();
  await commitBlocks(w, roles, 1);
  t.equal(w.request(failed).failures.tax?.reason, 'PLUGIN_UNAVAILABLE', 'the failure committed');
  t.equal(w.request(failed).failures.tax?.extractor, firstTax!.pub, 'by the assigned extractor');
  t.equal(w.request(flaky).records.property, undefined, 'the failed submit left no record');
  await commitBlocks(w, roles, 2 * RESCAN_EVERY);
  t.ok(w.request(flaky).records.property, 'a rescan redid the failed submit and it committed');
  t.equal(w.hitsOf(1, 'property'), 2, 'fetching once more for it');

  // Restart both roles: their start-up rescans must not redo the committed failure either.
  for (const r of roles) await r.stop();
  roles = [await w.role(v0, extractorOf(v0)), await w.role(v1, extractorOf(v1))];
  await commitBlocks(w, roles, 2 * RESCAN_EVERY);
  t.ok(secondTax, 'tax has a fallback extractor, which could have covered');
  t.equal(w.hitsOf(0, 'tax'), 3, 'the committed failure was never redone, by the first or the fallback');
  t.equal(w.hitsOf(1, 'property'), 2, 'nor the committed record');
});

t.test('the source is hit once per (request, type) across first, fallback and rescans', async (t) => {
  const w = await world(t);
  await w.registerAll();
  const v0 = w.tc.validators[0]!;
  const v1 = w.tc.validators[1]!;
  const m0 = countingMetrics();
  const m1 = countingMetrics();
  let roles = [await w.role(v0, w.extractor(v0), m0.metrics), await w.role(v1, w.extractor(v1), m1.metrics)];
  const types: DataType[] = ['tax', 'social-insurance'];
  const ids = [await w.open(0, types), await w.open(1, types), await w.open(2, types)];
  for (const r of roles) await r.settled();
  // Fallback timers fire while the records are pending, then the blocks commit them.
  w.clock.t += 10 * FALLBACK_MS;
  await sleep(3 * FALLBACK_MS);
  for (const r of roles) await r.settled();
  await commitBlocks(w, roles, 2 * RESCAN_EVERY);
  // A restart of both, and more rescans.
  for (const r of roles) await r.stop();
  roles = [await w.role(v0, w.extractor(v0), m0.metrics), await w.role(v1, w.extractor(v1), m1.metrics)];
  await commitBlocks(w, roles, 2 * RESCAN_EVERY);

  for (const [i, id] of ids.entries()) {
    for (const type of types) {
      t.equal(w.hitsOf(i, type), 1, `request ${i} ${type}: one source hit`);
      const digest = w.request(id).records[type];
      t.ok(digest, `request ${i} ${type}: record committed`);
      const record = w.chain.state.get(stateKey.record(digest!)) as { extractor: string } | undefined;
      t.equal(
        record?.extractor,
        w.ranked(id, type)[0]!.pub,
        `request ${i} ${type}: by the assigned extractor`,
      );
    }
  }
  t.equal(m0.counts.fallback + m1.counts.fallback, 0, 'no fallback re-run');
  t.ok(m0.counts.rescans >= 4 && m1.counts.rescans >= 4, 'both rescanned, at start-up and every few blocks');
  t.equal(w.chain.state.openRequestCount, 0, 'every answered request left the open-request index');
});

t.test(
  'under on-consent the grant is the trigger: a restarted role extracts the granted types',
  async (t) => {
    const w = await world(t, { policy: 'on-consent' });
    await w.registerAll();
    const v0 = w.tc.validators[0]!;
    const before = await w.role(v0);
    const id = await w.open(0, ['tax', 'property']);
    await commitBlocks(w, [before], 2 * RESCAN_EVERY);
    t.equal(
      w.hitsOf(0, 'tax') + w.hitsOf(0, 'property'),
      0,
      'nothing is fetched before consent, rescans included',
    );

    // She grants tax only, while the node is down.
    await before.stop();
    const grant = await w.grant(0, id, ['tax']);
    t.equal(w.request(id).grant, grant, 'the grant committed');
    const after = await w.role(v0);
    await commitBlocks(w, [after], RESCAN_EVERY + 1);
    t.equal(w.hitsOf(0, 'tax'), 1, 'the granted type was extracted once after the restart');
    t.equal(w.hitsOf(0, 'property'), 0, 'the type she did not grant never was');
    const digest = w.request(id).records.tax;
    const record = w.chain.state.get(stateKey.record(digest ?? '')) as { granteeKey?: unknown } | undefined;
    t.ok(record?.granteeKey, 'its record committed, wrapped to the grantee too');
    await commitBlocks(w, [after], 2 * RESCAN_EVERY);
    t.equal(w.hitsOf(0, 'tax'), 1, 'and later rescans leave it alone');
  },
);

t.test('a node still syncing does not rescan; it does once caught up', async (t) => {
  const w = await world(t);
  await w.registerAll();
  const v0 = w.tc.validators[0]!;
  const down = await w.role(v0, w.extractor(v0));
  await down.stop();
  // Opened while the node is down: only the start-up rescan can pick it up.
  const missed = await w.open(0, ['property']);
  await w.commit();
  let behind = true;
  const role = await w.role(v0, w.extractor(v0), undefined, () => !behind);
  await role.settled();
  t.equal(w.hitsOf(0, 'property'), 0, 'no rescan at start: the node does not know yet how far behind it is');
  await commitBlocks(w, [role], 1);
  t.equal(w.hitsOf(0, 'property'), 0, 'none while it syncs either');
  behind = false;
  await commitBlocks(w, [role], 1);
  t.equal(w.hitsOf(0, 'property'), 1, 'the first block committed once caught up runs the start-up rescan');
  await commitBlocks(w, [role], 1);
  t.ok(w.request(missed).records.property, 'and the request gets its record');
});
