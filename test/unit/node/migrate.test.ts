/**
 * Store format markers and `migrateStores`: a new store gets the current format; a store of
 * format 1 (the layout without a marker) and one of an unknown format are refused with a message
 * naming `datagrant migrate`; the migration upgrades format 1 in place, once (a second run writes
 * nothing), not in a dry run, not for a store of another genesis and not while the store is open;
 * after it, a chain store of another genesis is refused at any height.
 *
 * A format-1 store here is a store written by this code with its marker deleted: format 2 is
 * format 1 plus the marker, byte for byte otherwise (test/e2e/migrate.test.ts starts from stores
 * written by the format-1 code itself).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import t from 'tap';
import { LevelReplayGuard } from '../../../src/api/replay-guard.js';
import { sha256Hex } from '../../../src/common/crypto.js';
import {
  CURRENT_STORE_FORMAT,
  checkStoreFormat,
  encodeStoreMarker,
  STORE_FORMAT_KEY,
  type StoreKind,
} from '../../../src/common/store-format.js';
import { CommittedState, LevelBlockStore } from '../../../src/ledger/index.js';
import { migrateStores, STORE_MIGRATIONS } from '../../../src/node/migrate.js';
import { LevelPayloadStore } from '../../../src/records/index.js';
import { syncStore } from '../../helpers/block-store-suite.js';
import { makeTestChain, type TestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';
import { makeTempDir } from '../../helpers/tmp.js';

const PAYLOAD = new TextEncoder().encode('a sealed record, as far as the store knows');
const DIGEST = sha256Hex(PAYLOAD);

/** Every key and value of a closed LevelDB database. */
async function dump(path: string): Promise<[string, string][]> {
  const db = new Level<string, string>(path, { valueEncoding: 'utf8', createIfMissing: false });
  await db.open();
  try {
    return await db.iterator().all();
  } finally {
    await db.close();
  }
}

/** Applies raw writes to a closed LevelDB database. */
async function rawWrite(
  path: string,
  ops: ({ type: 'put'; key: string; value: string } | { type: 'del'; key: string })[],
) {
  const db = new Level<string, string>(path, { valueEncoding: 'utf8', createIfMissing: false });
  await db.open();
  try {
    await db.batch(ops);
  } finally {
    await db.close();
  }
}

interface Home {
  home: string;
  data: string;
  chain: TestChain;
  ledger: TestLedger;
  path: (kind: StoreKind) => string;
}

/**
 * A node home whose three stores hold data (blocks past height 0, a payload, a replay claim),
 * written by this code; `unmarked` deletes the markers, leaving stores of format 1.
 */
async function makeHome(tt: Parameters<typeof makeTempDir>[0], unmarked: boolean): Promise<Home> {
  const home = await makeTempDir(tt, 'datagrant-migrate-');
  const data = join(home, 'data');
  await mkdir(data);
  const path = (kind: StoreKind) => join(data, kind);
  const chain = makeTestChain();
  const ledger = new TestLedger(chain);
  const bank = chain.institutions[0]!;
  ledger.commit([ledger.openRequest(bank, chain.subjects[0]!)]);
  ledger.commit([]);
  const blocks = new LevelBlockStore({ path: path('chain'), genesis: chain.genesisInit(), home });
  await blocks.open();
  await syncStore(blocks, ledger);
  await blocks.close();
  const payloads = new LevelPayloadStore({ location: path('payloads'), home });
  await payloads.open();
  await payloads.put(DIGEST, PAYLOAD);
  await payloads.close();
  const replay = new LevelReplayGuard({ location: path('replay'), home });
  await replay.start();
  await replay.claim('institution:bank-0/nonce-1', Date.now() + 3_600_000);
  await replay.stop();
  if (unmarked)
    for (const kind of ['chain', 'payloads', 'replay'] as const)
      await rawWrite(path(kind), [{ type: 'del', key: STORE_FORMAT_KEY[kind] }]);
  return { home, data, chain, ledger, path };
}

const migrate = (h: Home, options: { dryRun?: boolean; genesisHash?: string } = {}) =>
  migrateStores({
    home: h.home,
    data: h.data,
    genesisHash: options.genesisHash ?? h.chain.genesisHash,
    ...(options.dryRun ? { dryRun: true } : {}),
  });

/** Opens each store of `h` as a node would; resolves to the error code of each, or 'ok'. */
async function openAll(h: Home, chain: TestChain = h.chain): Promise<Record<StoreKind, string>> {
  const code = (err: unknown) => (err as { code?: string }).code ?? String(err);
  const blocks = new LevelBlockStore({ path: h.path('chain'), genesis: chain.genesisInit(), home: h.home });
  const payloads = new LevelPayloadStore({ location: h.path('payloads'), home: h.home });
  const replay = new LevelReplayGuard({ location: h.path('replay'), home: h.home });
  return {
    chain: await blocks.open().then(() => blocks.close().then(() => 'ok'), code),
    payloads: await payloads.open().then(() => payloads.close().then(() => 'ok'), code),
    replay: await replay.start().then(() => replay.stop().then(() => 'ok'), code),
  };
}

t.test('a new store gets the current format marker, naming the store (and the genesis)', async (t) => {
  const h = await makeHome(t, false);
  const marker = (kind: StoreKind) =>
    dump(h.path(kind)).then((kv) => kv.find(([k]) => k === STORE_FORMAT_KEY[kind])?.[1]);
  t.same(JSON.parse((await marker('chain'))!), {
    store: 'chain',
    format: CURRENT_STORE_FORMAT,
    genesis: h.chain.genesisHash,
  });
  t.same(JSON.parse((await marker('payloads'))!), { store: 'payloads', format: CURRENT_STORE_FORMAT });
  t.same(JSON.parse((await marker('replay'))!), { store: 'replay', format: CURRENT_STORE_FORMAT });
  t.same(await openAll(h), { chain: 'ok', payloads: 'ok', replay: 'ok' }, 'and they open again');
  const report = await migrate(h);
  t.same(
    report.stores.map((s) => [s.store, s.status, s.writes]),
    [
      ['chain', 'current', 0],
      ['payloads', 'current', 0],
      ['replay', 'current', 0],
    ],
    'nothing to migrate',
  );
});

t.test('the marker keys hold no data: the payload list and the replay claims ignore them', async (t) => {
  const h = await makeHome(t, false);
  const payloads = new LevelPayloadStore({ location: h.path('payloads') });
  await payloads.open();
  const listed = [];
  for await (const p of payloads.list()) listed.push(p.digest);
  t.same(listed, [DIGEST]);
  await payloads.close();
  const replay = new LevelReplayGuard({ location: h.path('replay') });
  await replay.start();
  t.equal(replay.size, 1, 'one claim reloaded, not the marker');
  t.equal(await replay.claim('institution:bank-0/nonce-1', Date.now() + 1000), false, 'the claim holds');
  await replay.stop();
});

t.test('a store of format 1 is refused, naming the store and `datagrant migrate --home`', async (t) => {
  const h = await makeHome(t, true);
  const command = `datagrant migrate --home ${h.home}`;
  for (const [kind, open] of [
    [
      'chain',
      () =>
        new LevelBlockStore({ path: h.path('chain'), genesis: h.chain.genesisInit(), home: h.home }).open(),
    ],
    ['payloads', () => new LevelPayloadStore({ location: h.path('payloads'), home: h.home }).open()],
    ['replay', () => new LevelReplayGuard({ location: h.path('replay'), home: h.home }).start()],
  ] as const) {
    const err = await open().then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    t.equal(err?.code, 'STORE_MIGRATION_NEEDED', `${kind}: refused`);
    t.match(err?.message, h.path(kind), `${kind}: the message names the store`);
    t.match(err?.message, command, `${kind}: the message names the command`);
    t.match(err?.message, 'format 1', `${kind}: and the format found`);
  }
  // The refusal closed each database again: they open (and refuse) once more, not LEVEL_LOCKED.
  t.same(await openAll(h), {
    chain: 'STORE_MIGRATION_NEEDED',
    payloads: 'STORE_MIGRATION_NEEDED',
    replay: 'STORE_MIGRATION_NEEDED',
  });
});

t.test(
  'an unknown format (99) is refused, naming it, the formats read and `datagrant migrate`',
  async (t) => {
    const h = await makeHome(t, true);
    await rawWrite(h.path('chain'), [
      {
        type: 'put',
        key: STORE_FORMAT_KEY.chain,
        value: encodeStoreMarker({ store: 'chain', format: 99, genesis: h.chain.genesisHash }),
      },
    ]);
    const store = new LevelBlockStore({
      path: h.path('chain'),
      genesis: h.chain.genesisInit(),
      home: h.home,
    });
    const err = await store.open().then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    t.equal(err?.code, 'STORE_VERSION_UNKNOWN');
    t.match(err?.message, 'format 99');
    t.match(err?.message, `reads format ${CURRENT_STORE_FORMAT}`);
    t.match(err?.message, `datagrant migrate --home ${h.home}`);
    const before = await dump(h.path('chain'));
    await t.rejects(migrate(h), { code: 'STORE_VERSION_UNKNOWN', message: /format 99.*datagrant migrate/ });
    t.same(await dump(h.path('chain')), before, 'migrate does not touch it');
    t.same(
      (await openAll(h)).payloads,
      'STORE_MIGRATION_NEEDED',
      'nor the other stores: nothing is written unless every store can be migrated',
    );
  },
);

t.test('the check itself: fresh, readable, wrong kind, corrupt', async (t) => {
  const at = { kind: 'payloads' as const, path: '/x/data/payloads', home: '/x' };
  t.same(checkStoreFormat(at, undefined, false), { state: 'fresh' });
  t.same(checkStoreFormat(at, encodeStoreMarker({ store: 'payloads', format: 2 }), true), {
    state: 'readable',
    marker: { store: 'payloads', format: 2 },
  });
  t.throws(() => checkStoreFormat(at, undefined, true), { code: 'STORE_MIGRATION_NEEDED' });
  t.throws(() => checkStoreFormat(at, encodeStoreMarker({ store: 'chain', format: 2 }), true), {
    code: 'STORE_WRONG_KIND',
  });
  t.throws(() => checkStoreFormat(at, '{"store":"payloads"}', true), { code: 'STORE_MARKER_CORRUPT' });
  t.throws(() => checkStoreFormat(at, 'not json', true), { code: 'STORE_MARKER_CORRUPT' });
  t.throws(() => checkStoreFormat(at, encodeStoreMarker({ store: 'payloads', format: 0 }), true), {
    code: 'STORE_VERSION_UNKNOWN',
  });
});

t.test('migrate upgrades format 1 in place: the stores open and hold what they held', async (t) => {
  const h = await makeHome(t, true);
  const before = {
    chain: await dump(h.path('chain')),
    payloads: await dump(h.path('payloads')),
    replay: await dump(h.path('replay')),
  };
  const report = await migrate(h);
  t.same(
    report.stores.map((s) => [s.store, s.from, s.to, s.status, s.writes]),
    [
      ['chain', 1, 2, 'migrated', 1],
      ['payloads', 1, 2, 'migrated', 1],
      ['replay', 1, 2, 'migrated', 1],
    ],
  );
  t.same(report.signingState.present, false, 'no signing state file in this home');
  for (const kind of ['chain', 'payloads', 'replay'] as const) {
    const after = await dump(h.path(kind));
    t.same(
      after.filter(([k]) => k !== STORE_FORMAT_KEY[kind]),
      before[kind],
      `${kind}: every other key unchanged`,
    );
    t.equal(after.length, before[kind].length + 1, `${kind}: one key added, the marker`);
  }
  t.same(await openAll(h), { chain: 'ok', payloads: 'ok', replay: 'ok' });
  const store = new LevelBlockStore({ path: h.path('chain'), genesis: h.chain.genesisInit() });
  await store.open();
  t.equal(store.tip().height, h.ledger.height);
  t.equal(store.tip().hash, h.ledger.tipHash);
  const state = new CommittedState();
  await store.loadState(state);
  t.equal(state.root, h.ledger.state.root, 'same state root');
  await store.close();
});

t.test('migrate is idempotent: a second run reports current and writes nothing', async (t) => {
  const h = await makeHome(t, true);
  await migrate(h);
  const once = {
    chain: await dump(h.path('chain')),
    payloads: await dump(h.path('payloads')),
    replay: await dump(h.path('replay')),
  };
  const again = await migrate(h);
  t.same(
    again.stores.map((s) => [s.status, s.writes]),
    [
      ['current', 0],
      ['current', 0],
      ['current', 0],
    ],
  );
  for (const kind of ['chain', 'payloads', 'replay'] as const)
    t.same(await dump(h.path(kind)), once[kind], `${kind}: unchanged by the second run`);
});

t.test('a dry run says what it would do and changes nothing', async (t) => {
  const h = await makeHome(t, true);
  const before = {
    chain: await dump(h.path('chain')),
    payloads: await dump(h.path('payloads')),
    replay: await dump(h.path('replay')),
  };
  const report = await migrate(h, { dryRun: true });
  t.equal(report.dryRun, true);
  t.same(
    report.stores.map((s) => [s.store, s.status, s.steps.length]),
    [
      ['chain', 'would-migrate', 1],
      ['payloads', 'would-migrate', 1],
      ['replay', 'would-migrate', 1],
    ],
  );
  t.match(report.stores[0]!.steps[0], /^1→2: .*genesis/);
  for (const kind of ['chain', 'payloads', 'replay'] as const)
    t.same(await dump(h.path(kind)), before[kind], `${kind}: unchanged`);
  t.same((await openAll(h)).chain, 'STORE_MIGRATION_NEEDED', 'still refused');
});

t.test('after migration, a chain store of another genesis is refused at height > 0', async (t) => {
  const h = await makeHome(t, true);
  const other = makeTestChain({ seed: 'another' });
  t.ok(h.ledger.height > 0, `the store is at height ${h.ledger.height}`);
  const before = await dump(h.path('chain'));
  await t.rejects(migrate(h, { genesisHash: other.genesisHash }), {
    code: 'LEDGER_GENESIS_MISMATCH',
    message: /another genesis/,
  });
  t.same(await dump(h.path('chain')), before, 'a store of another genesis is not migrated');
  t.same((await openAll(h)).payloads, 'STORE_MIGRATION_NEEDED', 'nor are the other stores');
  await migrate(h);
  const opened = await openAll(h, other);
  t.equal(opened.chain, 'LEDGER_GENESIS_MISMATCH', 'opened with another genesis at height > 0: refused');
  t.equal((await openAll(h)).chain, 'ok', 'with its own genesis it opens');
});

t.test('migrate refuses while a store is open (the node is running), naming what to do', async (t) => {
  const h = await makeHome(t, true);
  const db = new Level<string, string>(h.path('replay'), { valueEncoding: 'utf8' });
  await db.open();
  t.teardown(() => db.close());
  const before = await dump(h.path('chain'));
  await t.rejects(migrate(h), { code: 'STORE_IN_USE', message: /stop the node first.*datagrant migrate/ });
  t.same(await dump(h.path('chain')), before, 'the stores opened before it are left as they were');
});

t.test('every store has one step per format up to the current one', async (t) => {
  for (const [kind, steps] of Object.entries(STORE_MIGRATIONS)) {
    t.same(
      steps.map((s) => [s.from, s.to]),
      [[1, 2]],
      `${kind}: 1→2`,
    );
    t.equal(steps.at(-1)!.to, CURRENT_STORE_FORMAT, `${kind}: ends at the current format`);
  }
});
