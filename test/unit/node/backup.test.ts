/**
 * Backups of a node's stores (src/node/backup.ts, src/node/backup-format.ts): the format round
 * trip, a backup of real LevelDB stores restored into a fresh home (same tip, state and payloads),
 * one backup at a time, and every refusal with its code before anything is written: a flipped byte
 * (in the gzip stream and in the contents), a truncated file, another genesis, a running node, a
 * non-empty data directory. Consensus safety state never travels: the store's metadata (the
 * consensus write-ahead state) is not in the backup and is dropped on restore, and a restore
 * removes the signing state file.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import t, { type Test } from 'tap';
import { utf8ToBytes } from '../../../src/common/bytes.js';
import { sha256Hex } from '../../../src/common/crypto.js';
import { silentLogger } from '../../../src/common/logger.js';
import { CommittedState, LevelBlockStore } from '../../../src/ledger/index.js';
import { BackupService, readBackupFile, restoreBackup, verifyBackupFile } from '../../../src/node/backup.js';
import {
  type BackupEntry,
  type BackupHeader,
  decodeBackup,
  encodeBackup,
} from '../../../src/node/backup-format.js';
import type { NodeConfig } from '../../../src/node/config.js';
import { LevelPayloadStore } from '../../../src/records/index.js';
import { syncStore } from '../../helpers/block-store-suite.js';
import { makeTestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';
import { makeTempDir } from '../../helpers/tmp.js';
import { until } from '../../helpers/until.js';

const WAL = 'the-consensus-write-ahead-state';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function bytesOf(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  return Buffer.concat(await collect(it));
}

function header(over: Partial<BackupHeader> = {}): BackupHeader {
  return {
    format: 'datagrant-backup',
    version: 1,
    chain: 'c',
    genesisHash: 'ab'.repeat(32),
    node: 'node0',
    nodeKey: 'cd'.repeat(32),
    height: 3,
    blockHash: 'ef'.repeat(32),
    time: 1_700_000_000_000,
    stores: ['chain', 'payloads'],
    ...over,
  };
}

const entry = (store: BackupEntry['store'], key: string, value: string | Uint8Array): BackupEntry => ({
  store,
  key: utf8ToBytes(key),
  value: typeof value === 'string' ? utf8ToBytes(value) : value,
});

t.test('the format round-trips and refuses what is out of place', async (t) => {
  const big = new Uint8Array(200_000).map((_, i) => i % 251);
  const entries = [
    entry('chain', 'b:000000000001', '{"x":1}'),
    entry('payloads', 'aa', big),
    entry('chain', 'k', ''),
  ];
  const raw = await bytesOf(encodeBackup(header(), entries));
  const items = await collect(decodeBackup(Readable.from([raw])));
  t.same(items[0], { header: header() }, 'the header first');
  t.equal(items.length, 4, 'then every entry');
  for (let i = 0; i < entries.length; i++) {
    const got = (items[i + 1] as { entry: BackupEntry }).entry;
    t.equal(got.store, entries[i]!.store, `entry ${i}: store`);
    t.same(Buffer.from(got.key), Buffer.from(entries[i]!.key), `entry ${i}: key`);
    t.same(Buffer.from(got.value), Buffer.from(entries[i]!.value), `entry ${i}: value`);
  }
  // Split into one-byte chunks, the decoder reads the same.
  const bytewise = await collect(decodeBackup(Readable.from([...raw].map((b) => Uint8Array.of(b)))));
  t.equal(bytewise.length, 4, 'a stream of one-byte chunks decodes alike');

  const refused = async (bytes: Uint8Array, code: string, what: string) =>
    t.rejects(collect(decodeBackup(Readable.from([bytes]))), { code }, what);
  const flipped = Buffer.from(raw);
  const at = flipped.indexOf(Buffer.from(big.subarray(1000, 1032)));
  flipped[at + 5]! ^= 0x01;
  await refused(flipped, 'BACKUP_CHECKSUM', 'a flipped byte in a value: BACKUP_CHECKSUM');
  const trailer = Buffer.from(raw);
  trailer[trailer.length - 1]! ^= 0x80;
  await refused(trailer, 'BACKUP_CHECKSUM', 'a flipped byte in the checksum: BACKUP_CHECKSUM');
  await refused(
    raw.subarray(0, raw.length - 10),
    'BACKUP_TRUNCATED',
    'cut in the checksum: BACKUP_TRUNCATED',
  );
  await refused(raw.subarray(0, 5000), 'BACKUP_TRUNCATED', 'cut in an entry: BACKUP_TRUNCATED');
  await refused(
    Buffer.concat([raw, Buffer.of(0)]),
    'BACKUP_CORRUPT',
    'a byte after the checksum: BACKUP_CORRUPT',
  );
  await refused(Buffer.from('NOTABACKUP'), 'BACKUP_CORRUPT', 'other bytes: BACKUP_CORRUPT');
  const v2 = Buffer.from(raw);
  v2[8] = 2;
  await refused(v2, 'BACKUP_UNSUPPORTED_VERSION', 'another version: BACKUP_UNSUPPORTED_VERSION');
  const unknownStore = await bytesOf(
    encodeBackup(header({ stores: ['chain'] }), [entry('payloads', 'aa', 'x')]),
  );
  await refused(
    unknownStore,
    'BACKUP_CORRUPT',
    'an entry of a store the header does not name: BACKUP_CORRUPT',
  );
});

/** A node's stores with a few real blocks, metadata, and three payloads. */
async function makeNode(t: Test) {
  const chain = makeTestChain({ subjects: 5 });
  const ledger = new TestLedger(chain);
  for (let i = 0; i < 3; i++) ledger.commit([ledger.openRequest(chain.institutions[0]!, chain.subjects[i]!)]);
  const home = await makeTempDir(t, 'datagrant-backup-');
  const data = join(home, 'data');
  const store = new LevelBlockStore({ path: join(data, 'chain'), genesis: chain.genesisInit() });
  await store.open();
  await syncStore(store, ledger);
  await store.putMeta('consensus-wal', WAL);
  await store.putMeta('readyz-probe', '1');
  const payloads = new LevelPayloadStore({ location: join(data, 'payloads') }, () => 1_700_000_000_000);
  await payloads.open();
  const blobs = [0, 1, 2].map((i) => new Uint8Array(10_000 + i).map((_, j) => (j * (i + 7)) % 256));
  for (const b of blobs) await payloads.put(sha256Hex(b), b);
  t.teardown(async () => {
    await store.close().catch(() => undefined);
    await payloads.close().catch(() => undefined);
  });
  const service = new BackupService(
    { chain: chain.genesis.chain, genesisHash: chain.genesisHash, node: 'node0', nodeKey: 'ab'.repeat(32) },
    { stores: { chain: store, payloads }, now: () => 1_700_000_000_000, logger: silentLogger },
  );
  return { chain, ledger, home, data, store, payloads, blobs, service };
}

/** A fresh home for the same chain: its config as the restore reads it. */
async function makeHome(dir: string, name: string): Promise<NodeConfig> {
  const home = join(dir, name);
  await mkdir(home, { recursive: true });
  return { name, home, data: join(home, 'data') } as NodeConfig;
}

t.test('a backup of running stores restores into a fresh home', async (t) => {
  const node = await makeNode(t);
  const file = join(node.home, 'backup.dgb');
  const open = await node.service.open();
  t.equal(open.header.height, node.store.tip().height, 'the header names the tip');
  t.equal(open.header.blockHash, node.store.tip().hash, 'and its hash');
  await t.rejects(node.service.open(), { code: 'API_BUSY' }, 'a second backup meanwhile: API_BUSY');
  // A block committed while the backup streams is not in it: the snapshot was taken at open.
  node.ledger.commit([node.ledger.openRequest(node.chain.institutions[0]!, node.chain.subjects[3]!)]);
  await syncStore(node.store, node.ledger);
  await pipeline(open.stream, createWriteStream(file));
  await new Promise((r) => setImmediate(r));
  t.equal(node.service.busy, false, 'done, another backup may start');

  const items = await collect(readBackupFile(file));
  const chainKeys = items.flatMap((i) =>
    'entry' in i && i.entry.store === 'chain' ? [Buffer.from(i.entry.key).toString()] : [],
  );
  t.ok(chainKeys.includes('m:tip') && chainKeys.some((k) => k.startsWith('b:')), 'blocks and tip are in it');
  t.notOk(
    chainKeys.some((k) => k.startsWith('m:x:')),
    'no metadata entry (consensus write-ahead state, probes) is in it',
  );
  t.equal((await readFile(file)).indexOf(WAL), -1, 'nor the write-ahead value anywhere in the file');
  t.notOk(gunzipSync(await readFile(file)).includes(Buffer.from(WAL)), 'nor in its uncompressed contents');

  const config = await makeHome(node.home, 'restored');
  const signing = join(config.home, 'signing-state.json');
  await writeFile(signing, '{"v":1,"wal":null}\n');
  const result = await restoreBackup({ file, config, genesis: node.chain.genesis });
  t.equal(result.header.height, 4, 'restored to the height of the snapshot (block 1 + three)');
  t.equal(result.signingStateRemoved, true, 'the signing state file was there');
  t.notOk(existsSync(signing), 'and is gone: a restored validator runs its double-sign check');
  t.same((await readdir(config.home)).sort(), ['data'], 'nothing left beside data/');

  const restored = new LevelBlockStore({
    path: join(config.data, 'chain'),
    genesis: node.chain.genesisInit(),
  });
  await restored.open();
  t.teardown(() => restored.close());
  t.equal(restored.tip().height, 4, 'the restored store opens at the snapshot tip');
  t.equal(restored.tip().hash, open.header.blockHash, 'with its hash');
  const state = new CommittedState();
  await restored.loadState(state);
  t.equal(state.root, node.ledger.blocks[3]!.certified.block.header.stateRoot, 'and the state of that block');
  t.equal(await restored.getMeta('consensus-wal'), undefined, 'no consensus write-ahead state');
  t.equal(await restored.getMeta('readyz-probe'), undefined, 'no metadata at all');
  const payloads = new LevelPayloadStore({ location: join(config.data, 'payloads') });
  await payloads.open();
  t.teardown(() => payloads.close());
  for (const [i, b] of node.blobs.entries())
    t.same(Buffer.from((await payloads.get(sha256Hex(b))) ?? []), Buffer.from(b), `payload ${i} restored`);
  t.equal((await collect(payloads.list())).length, 3, 'with their first-stored times');
});

t.test('a restore refuses, writing nothing', async (t) => {
  const node = await makeNode(t);
  const file = join(node.home, 'backup.dgb');
  await pipeline((await node.service.open()).stream, createWriteStream(file));
  const gz = await readFile(file);
  const raw = gunzipSync(gz);
  const genesis = node.chain.genesis;
  let n = 0;
  const attempt = async (
    bytes: Buffer | undefined,
    code: string | string[],
    what: string,
    over: Partial<Parameters<typeof restoreBackup>[0]> = {},
  ) => {
    const config = await makeHome(node.home, `h${n++}`);
    let path = file;
    if (bytes) {
      path = join(node.home, `bad${n}.dgb`);
      await writeFile(path, bytes);
    }
    await writeFile(join(config.home, 'signing-state.json'), '{"v":1,"wal":null}\n');
    const err = await restoreBackup({ file: path, config, genesis, ...over }).then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
    const codes = typeof code === 'string' ? [code] : code;
    t.ok(err?.code !== undefined && codes.includes(err.code), `${what}: ${err?.code ?? 'not refused'}`);
    t.same(
      await readdir(config.home),
      ['signing-state.json'],
      `${what}: nothing written, signing state kept`,
    );
  };
  const flippedGz = Buffer.from(gz);
  flippedGz[Math.floor(gz.length / 2)]! ^= 0x10;
  // Where the flip lands decides what breaks first: inflate, the structure, or the checksum.
  await attempt(
    flippedGz,
    ['BACKUP_CORRUPT', 'BACKUP_TRUNCATED', 'BACKUP_CHECKSUM'],
    'a flipped byte in the gzip stream',
  );
  const flippedRaw = Buffer.from(raw);
  const at = flippedRaw.indexOf(Buffer.from(node.blobs[1]!.subarray(100, 140)));
  t.ok(at > 0, 'a payload found in the contents');
  flippedRaw[at]! ^= 0x01;
  await attempt(gzipSync(flippedRaw), 'BACKUP_CHECKSUM', 'a flipped byte in the contents (valid gzip)');
  await attempt(gz.subarray(0, Math.floor(gz.length / 2)), 'BACKUP_TRUNCATED', 'a truncated file');
  await attempt(
    gzipSync(raw.subarray(0, raw.length - 40)),
    'BACKUP_TRUNCATED',
    'contents cut before the end',
  );
  const other = makeTestChain({ seed: 'another' });
  await attempt(undefined, 'BACKUP_GENESIS_MISMATCH', 'a home of another genesis', {
    genesis: other.genesis,
  });
  await attempt(undefined, 'BACKUP_NOT_FOUND', 'no file', { file: join(node.home, 'missing.dgb') });

  // The home of a running node (its store locked): refused.
  const running = { ...(await makeHome(node.home, 'running')), data: node.data } as NodeConfig;
  await t.rejects(
    restoreBackup({ file, config: running, genesis }),
    { code: 'BACKUP_NODE_RUNNING' },
    'a running node: BACKUP_NODE_RUNNING',
  );

  // A data directory that is not empty: refused, or moved aside with force.
  const config = await makeHome(node.home, 'used');
  await mkdir(join(config.data, 'replay'), { recursive: true });
  await writeFile(join(config.data, 'replay', 'marker'), 'seen calls');
  await t.rejects(
    restoreBackup({ file, config, genesis }),
    { code: 'BACKUP_DATA_EXISTS' },
    'a used data directory: BACKUP_DATA_EXISTS',
  );
  t.same(await readdir(config.data), ['replay'], 'left as it was');
  const forced = await restoreBackup({ file, config, genesis, force: true, now: () => 0 });
  t.ok(
    forced.movedAside && existsSync(join(forced.movedAside, 'replay', 'marker')),
    'with force the old data is moved aside',
  );
  t.same(
    (await readdir(config.data)).sort(),
    ['chain', 'payloads', 'replay'],
    'the restored stores, and the home’s own replay store',
  );
  t.equal(await readFile(join(config.data, 'replay', 'marker'), 'utf8'), 'seen calls', 'carried over');
});

t.test('metadata in a backup is dropped on restore', async (t) => {
  const node = await makeNode(t);
  // A backup written by something else, carrying the consensus write-ahead state.
  const items: BackupEntry[] = [];
  for await (const item of readBackupFile(
    await (async () => {
      const f = join(node.home, 'b.dgb');
      await pipeline((await node.service.open()).stream, createWriteStream(f));
      return f;
    })(),
  ))
    if ('entry' in item) items.push(item.entry);
  items.push(entry('chain', 'm:x:consensus-wal', WAL));
  const head = (await verifyBackupFile(join(node.home, 'b.dgb'))).header;
  const file = join(node.home, 'with-wal.dgb');
  await writeFile(file, gzipSync(await bytesOf(encodeBackup(head, items))));
  const config = await makeHome(node.home, 'restored');
  const result = await restoreBackup({ file, config, genesis: node.chain.genesis });
  t.equal(result.dropped, 1, 'one entry dropped');
  const restored = new LevelBlockStore({
    path: join(config.data, 'chain'),
    genesis: node.chain.genesisInit(),
  });
  await restored.open();
  t.teardown(() => restored.close());
  t.equal(await restored.getMeta('consensus-wal'), undefined, 'the write-ahead state is not restored');
  t.equal(restored.tip().height, head.height, 'the rest is');
});

t.test('a backup nobody reads frees its slot', async (t) => {
  const node = await makeNode(t);
  const service = new BackupService(
    {
      chain: node.chain.genesis.chain,
      genesisHash: node.chain.genesisHash,
      node: 'node0',
      nodeKey: 'ab'.repeat(32),
      idleTimeoutMs: 100,
    },
    { stores: { chain: node.store, payloads: node.payloads }, now: Date.now, logger: silentLogger },
  );
  // More than every buffer on the way holds, so an unread backup stalls.
  for (let i = 0; i < 4; i++) {
    const bytes = nodeRandomBytes(1024 * 1024);
    await node.payloads.put(sha256Hex(bytes), bytes);
  }
  const stalled = await service.open();
  stalled.stream.on('error', () => undefined);
  t.equal(service.busy, true, 'a backup is open');
  await until('the stalled backup ended', async () => (service.busy ? undefined : true), 30_000, 50);
  t.ok(stalled.stream.destroyed, 'its stream was ended');
  const next = await service.open();
  const file = join(node.home, 'next.dgb');
  await pipeline(next.stream, createWriteStream(file));
  t.equal(
    (await verifyBackupFile(file)).header.height,
    node.store.tip().height,
    'the next one streams whole',
  );
});
