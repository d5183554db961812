/**
 * State snapshots (src/node/snapshot.ts, snapshot-format.ts): a snapshot streamed from a real
 * LevelDB store round-trips into an empty store (same tip, state, block h, nothing below it; the
 * next block extends it), and every way a file can be wrong is refused with its code before
 * anything is written: a tampered or missing state entry (the rebuilt tree is not the certified
 * root), a certificate without a quorum or of other keys, another chain or genesis, a truncated or
 * flipped file, a store that holds blocks already. A chain without a state tree and a store at
 * genesis give no snapshot.
 */

import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import t, { type Test } from 'tap';
import { utf8ToBytes } from '../../../src/common/bytes.js';
import { type CanonicalValue, canonicalBytes } from '../../../src/common/canonical.js';
import { silentLogger } from '../../../src/common/logger.js';
import {
  type CertifiedBlock,
  CommittedState,
  LevelBlockStore,
  scheduledEpochs,
  stateKey,
  txHash,
} from '../../../src/ledger/index.js';
import { readEntryFile } from '../../../src/node/entry-file.js';
import {
  installSnapshotFile,
  SnapshotService,
  validatorLinks,
  verifySnapshotFile,
} from '../../../src/node/snapshot.js';
import {
  encodeSnapshot,
  SNAPSHOT_FORMAT,
  type SnapshotEntry,
  type SnapshotHeader,
} from '../../../src/node/snapshot-format.js';
import { expectSameState, syncStore } from '../../helpers/block-store-suite.js';
import { makeTestChain, type TestKeys } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';
import { makeTempDir } from '../../helpers/tmp.js';

/** A LevelDB store with a few real blocks (requests open, so `seen/` entries and requests in state). */
async function makeSource(t: Test) {
  const chain = makeTestChain({ subjects: 4 });
  const ledger = new TestLedger(chain);
  for (let i = 0; i < 3; i++) ledger.commit([ledger.openRequest(chain.institutions[0]!, chain.subjects[i]!)]);
  const dir = await makeTempDir(t, 'datagrant-snapshot-');
  const store = new LevelBlockStore({ path: join(dir, 'source'), genesis: chain.genesisInit() });
  await store.open();
  t.teardown(() => store.close().catch(() => undefined));
  await syncStore(store, ledger);
  await store.putMeta('consensus-wal', 'never-in-a-snapshot');
  const service = new SnapshotService(
    {
      chain: chain.genesis.chain,
      genesisHash: chain.genesisHash,
      node: 'node0',
      nodeKey: chain.validators[0]!.pub,
      rule: 'sparse-merkle',
    },
    { store, now: () => 1_700_000_000_000, logger: silentLogger },
  );
  const file = join(dir, 'state.snapshot');
  const { header, stream } = await service.open();
  await pipeline(stream, createWriteStream(file));
  const empty = async (name: string) => {
    const s = new LevelBlockStore({ path: join(dir, name), genesis: chain.genesisInit() });
    await s.open();
    t.teardown(() => s.close().catch(() => undefined));
    return s;
  };
  return { chain, ledger, dir, store, service, file, header, empty };
}

/** The items of a snapshot file, to rewrite. */
async function itemsOf(file: string): Promise<{ header: SnapshotHeader; entries: SnapshotEntry[] }> {
  let header: SnapshotHeader | undefined;
  const entries: SnapshotEntry[] = [];
  for await (const item of readEntryFile(SNAPSHOT_FORMAT, file)) {
    if ('header' in item) header = item.header;
    else entries.push(item.entry);
  }
  return { header: header!, entries };
}

/** Writes a snapshot with a valid checksum (so only the checks of its meaning can catch it). */
async function rewrite(path: string, header: SnapshotHeader, entries: SnapshotEntry[]): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const c of encodeSnapshot(header, entries)) chunks.push(c);
  await writeFile(path, gzipSync(Buffer.concat(chunks)));
  return path;
}

const canonical = (value: unknown) => canonicalBytes(value as CanonicalValue);

t.test('a snapshot round-trips into an empty store, which goes on from there', async (t) => {
  const { chain, ledger, file, header, empty } = await makeSource(t);
  const h = ledger.height;
  t.match(header, {
    height: h,
    blockHash: ledger.tipHash,
    stateRoot: ledger.state.root,
    chain: chain.genesis.chain,
  });
  const verified = await verifySnapshotFile(file, { genesis: chain.genesis });
  t.equal(verified.entries.size, ledger.state.size, `every state entry (${ledger.state.size})`);
  t.same(verified.certified, ledger.blocks.at(-1)!.certified, 'the certified block at h');
  const keys = [...verified.entries.keys()];
  t.notOk(
    keys.some((k) => k.includes('consensus-wal')),
    'no node metadata travels',
  );
  t.ok(
    keys.some((k) => k.startsWith('seen-at/')),
    'replay protection entries travel (they are state)',
  );

  const target = await empty('target');
  const installed = await installSnapshotFile({ file, genesis: chain.genesis, store: target });
  t.equal(installed.header.height, h, 'installed at h');
  t.match(target.tip(), { height: h, hash: ledger.tipHash, stateRoot: ledger.state.root, base: h });
  t.equal(await target.getMeta('consensus-wal'), undefined, 'no write-ahead state came with it');
  t.equal(await target.getBlock(h - 1), undefined, 'no block below h');
  t.same(await target.getBlock(h), ledger.blocks.at(-1)!.certified, 'block h with its certificate');
  await expectSameState(t, target, ledger, 'installed');
  // As a node loads it: the tree rebuilt from the store matches the certified root.
  const loaded = new CommittedState();
  await target.loadState(loaded);
  t.doesNotThrow(() => loaded.checkRoot('sparse-merkle'), 'the loaded state checks against the root');
  t.ok(loaded.prove(stateKey.subject(chain.subjects[0]!.id), h), 'and proves entries at h');
  const included = ledger.blocks.at(-1)!.certified.block.txs[0]!;
  const guarded = loaded.get(stateKey.seen(txHash(included)));
  t.ok(
    typeof guarded === 'number' && guarded >= included.expires,
    "the replay guard is rebuilt from the snapshot's entries (held until its block's latest expiry)",
  );
  t.equal(loaded.get(stateKey.seen('ab'.repeat(32))), undefined, 'and holds nothing else');
  const next = ledger.commit([ledger.openRequest(chain.institutions[0]!, chain.subjects[3]!)]);
  await target.commit(next.certified, next.commitEffects);
  t.equal(target.tip().height, h + 1, 'the next block commits on top');

  await t.rejects(
    installSnapshotFile({ file, genesis: chain.genesis, store: target }),
    { code: 'SNAPSHOT_STORE_NOT_EMPTY' },
    'a store holding blocks is refused',
  );
});

t.test('a snapshot that is not the certified state is refused before anything is written', async (t) => {
  const { chain, dir, file, empty } = await makeSource(t);
  const { header, entries } = await itemsOf(file);
  const target = await empty('target');
  const refused = async (path: string, code: string, what: string) => {
    await t.rejects(
      installSnapshotFile({ file: path, genesis: chain.genesis, store: target }),
      { code },
      what,
    );
    t.equal(target.tip().height, 0, `${what}: nothing written`);
  };

  // One value changed, the checksum recomputed: only the root can tell.
  const i = entries.findIndex((e) => Buffer.from(e.key).toString().startsWith('subject/'));
  t.ok(i > 0, 'a subject entry to tamper with');
  const value = JSON.parse(Buffer.from(entries[i]!.value).toString()) as Record<string, unknown>;
  const tampered = [...entries];
  tampered[i] = { ...entries[i]!, value: canonical({ ...value, signKey: 'ff'.repeat(32) }) };
  await refused(
    await rewrite(join(dir, 'tampered'), header, tampered),
    'SNAPSHOT_ROOT_MISMATCH',
    'a tampered entry',
  );
  const missing = entries.filter((_, k) => k !== i);
  await refused(
    await rewrite(join(dir, 'missing'), header, missing),
    'SNAPSHOT_ROOT_MISMATCH',
    'an entry left out',
  );
  const extra = [...entries, { store: 'state' as const, key: utf8ToBytes('zz/extra'), value: canonical(1) }];
  await refused(await rewrite(join(dir, 'extra'), header, extra), 'SNAPSHOT_ROOT_MISMATCH', 'an entry added');

  // The certificate: two of four votes are no quorum (3); a quorum of other keys is none either.
  const certified = JSON.parse(Buffer.from(entries[0]!.value).toString()) as CertifiedBlock;
  const withCert = (cert: CertifiedBlock['cert']) => [
    { ...entries[0]!, value: canonical({ ...certified, cert }) },
    ...entries.slice(1),
  ];
  await refused(
    await rewrite(
      join(dir, 'two-votes'),
      header,
      withCert({ ...certified.cert, votes: certified.cert.votes.slice(0, 2) }),
    ),
    'SNAPSHOT_CERT_INVALID',
    'a certificate without a quorum',
  );
  const stranger = makeTestChain({ seed: 'strangers' });
  const forged = stranger.certify(certified.block);
  await refused(
    await rewrite(join(dir, 'forged'), header, withCert(forged.cert)),
    'SNAPSHOT_CERT_INVALID',
    'a certificate by keys not in genesis',
  );
  // A header naming another root than the block's.
  await refused(
    await rewrite(join(dir, 'other-root'), { ...header, stateRoot: 'ab'.repeat(32) }, entries),
    'SNAPSHOT_CORRUPT',
    'a header whose root is not the block’s',
  );
  await refused(
    await rewrite(join(dir, 'no-block'), header, entries.slice(1)),
    'SNAPSHOT_CORRUPT',
    'no block entry',
  );

  // The file itself.
  const gz = await readFile(file);
  const raw = gunzipSync(gz);
  await writeFile(join(dir, 'truncated'), gzipSync(raw.subarray(0, raw.length - 40)));
  await refused(join(dir, 'truncated'), 'SNAPSHOT_TRUNCATED', 'a truncated file');
  await writeFile(join(dir, 'cut-gzip'), gz.subarray(0, Math.floor(gz.length / 2)));
  await refused(join(dir, 'cut-gzip'), 'SNAPSHOT_TRUNCATED', 'a gzip stream cut in half');
  const flipped = Buffer.from(raw);
  flipped[flipped.length - 100]! ^= 0x01;
  await writeFile(join(dir, 'flipped'), gzipSync(flipped));
  await refused(join(dir, 'flipped'), 'SNAPSHOT_CHECKSUM', 'a flipped byte');
  await refused(join(dir, 'absent'), 'SNAPSHOT_NOT_FOUND', 'no file');

  // Another chain, or another genesis of the same chain id.
  const other = makeTestChain({ seed: 'another', subjects: 4 });
  await t.rejects(
    verifySnapshotFile(file, { genesis: other.genesis }),
    { code: 'SNAPSHOT_GENESIS_MISMATCH' },
    'another genesis',
  );
  const renamed = makeTestChain({ chain: 'datagrant-other', subjects: 4 });
  await t.rejects(
    verifySnapshotFile(file, { genesis: renamed.genesis }),
    { code: 'SNAPSHOT_GENESIS_MISMATCH' },
    'another chain id',
  );
  t.equal(target.tip().height, 0, 'the target store is still empty');
});

t.test('no snapshot of a chain without a state tree, or before the first block', async (t) => {
  const chain = makeTestChain();
  const dir = await makeTempDir(t, 'datagrant-snapshot-');
  const store = new LevelBlockStore({ path: join(dir, 'chain'), genesis: chain.genesisInit() });
  await store.open();
  t.teardown(() => store.close());
  const service = (rule: 'sparse-merkle' | 'running-hash') =>
    new SnapshotService(
      {
        chain: chain.genesis.chain,
        genesisHash: chain.genesisHash,
        node: 'node0',
        nodeKey: 'ab'.repeat(32),
        rule,
      },
      { store, now: Date.now, logger: silentLogger },
    );
  await t.rejects(service('sparse-merkle').open(), { code: 'SNAPSHOT_UNAVAILABLE' }, 'at genesis');
  await t.rejects(service('running-hash').open(), { code: 'SNAPSHOT_UNAVAILABLE' }, 'running-hash headers');
});

t.test('one snapshot streams at a time', async (t) => {
  const { service } = await makeSource(t);
  const first = await service.open();
  await t.rejects(service.open(), { code: 'API_BUSY' }, 'a second while one streams: API_BUSY');
  await first.stream.toArray();
  await new Promise((r) => setImmediate(r));
  const again = await service.open();
  t.ok((await again.stream.toArray()).length > 0, 'after it, the next streams');
});

t.test('after a validator-set change the snapshot carries its link; without it, it is refused', async (t) => {
  const chain = makeTestChain({ governance: 'council', seed: 'snapshot-vset' });
  const ledger = new TestLedger(chain);
  const [c1, c2] = chain.council as [TestKeys, TestKeys];
  const fifth = chain.keys('validator-5');
  const propose = ledger.propose(c1, {
    type: 'validator.add',
    validator: { name: 'node4', key: fifth.pub, roles: [], types: [] },
  });
  ledger.commit([propose]);
  ledger.commit([ledger.approve(c2, txHash(propose))]);
  ledger.commit([]);
  // From here the five certify, the genesis four's first without the fifth (a quorum of 4 of 5).
  ledger.certifiers = [...chain.validators.slice(1), fifth];
  ledger.commit([ledger.openRequest(chain.institutions[0]!, chain.subjects[0]!)]);
  const dir = await makeTempDir(t, 'datagrant-snapshot-');
  const store = new LevelBlockStore({ path: join(dir, 'source'), genesis: chain.genesisInit() });
  await store.open();
  t.teardown(() => store.close().catch(() => undefined));
  await syncStore(store, ledger);
  const state = new CommittedState();
  await store.loadState(state);
  const service = new SnapshotService(
    {
      chain: chain.genesis.chain,
      genesisHash: chain.genesisHash,
      node: 'node0',
      nodeKey: chain.validators[0]!.pub,
      rule: 'sparse-merkle',
    },
    {
      store,
      links: (height) => validatorLinks(scheduledEpochs(state), height, store),
      now: () => 1_700_000_000_000,
      logger: silentLogger,
    },
  );
  const file = join(dir, 'state.snapshot');
  const { stream } = await service.open();
  await pipeline(stream, createWriteStream(file));
  const { header, entries } = await itemsOf(file);
  t.same(
    entries.filter((e) => e.store === 'link').map((e) => new TextDecoder().decode(e.key)),
    [String(scheduledEpochs(state)[0]!.from)],
    'one link: the set from the change on',
  );
  const verified = await verifySnapshotFile(file, { genesis: chain.genesis });
  t.equal(
    verified.header.height,
    ledger.height,
    'the block certified by the new set verifies through its link',
  );
  const unlinked = await rewrite(
    join(dir, 'unlinked.snapshot'),
    header,
    entries.filter((e) => e.store !== 'link'),
  );
  await t.rejects(verifySnapshotFile(unlinked, { genesis: chain.genesis }), {
    code: 'SNAPSHOT_CERT_INVALID',
  });
  await t.rejects(
    validatorLinks(scheduledEpochs(state), ledger.height, { getBlock: async () => undefined }),
    {
      code: 'SNAPSHOT_LINK_MISSING',
    },
  );
});
