import { join } from 'node:path';
import { Level } from 'level';
import t from 'tap';
import {
  type GenesisInit,
  LevelBlockStore,
  MemoryBlockStore,
  writeLevelBatch,
} from '../../../src/ledger/index.js';
import type { KvOp } from '../../../src/ledger/state-storage.js';
import { blockStoreSuite } from '../../helpers/block-store-suite.js';
import { makeTestChain } from '../../helpers/chain.js';
import { makeTempDir } from '../../helpers/tmp.js';

t.test('MemoryBlockStore passes the block store suite', async (t) => {
  await blockStoreSuite(t, 'memory', async (_t, genesis) => ({ store: new MemoryBlockStore(genesis) }));
});

t.test('LevelBlockStore passes the block store suite', async (t) => {
  await blockStoreSuite(t, 'level', async (tt, genesis) => {
    const path = join(await makeTempDir(tt, 'datagrant-store-'), 'chain');
    const store = new LevelBlockStore({ path, genesis });
    return {
      store,
      reopen: async (other?: GenesisInit) => {
        await store.close();
        const again = new LevelBlockStore({ path, genesis: other ?? genesis });
        await again.open();
        return again;
      },
    };
  });
});

t.test('LevelBlockStore refuses an empty store made for another genesis', async (t) => {
  const path = join(await makeTempDir(t), 'chain');
  const a = makeTestChain();
  const b = makeTestChain({ seed: 'another' });
  const first = new LevelBlockStore({ path, genesis: a.genesisInit() });
  await first.open();
  await first.close();
  const wrong = new LevelBlockStore({ path, genesis: b.genesisInit() });
  await t.rejects(wrong.open(), { code: 'LEDGER_GENESIS_MISMATCH' });
  await wrong.close();
  const right = new LevelBlockStore({ path, genesis: a.genesisInit() });
  await right.open();
  t.equal(right.tip().hash, a.genesisHash);
  await right.close();
});

t.test(
  'writeLevelBatch writes what the public batch writes, and takes the public path when it must',
  async (t) => {
    const dir = await makeTempDir(t, 'datagrant-batch-');
    const open = async (name: string) => {
      const db = new Level<string, string>(join(dir, name), { keyEncoding: 'utf8', valueEncoding: 'utf8' });
      await db.open();
      return db;
    };
    const ops: KvOp[] = [
      { type: 'put', key: 'n:ab', value: '3:Lé∑ unicode' },
      { type: 'put', key: 's:k', value: '{"a":1}' },
      { type: 'put', key: 'gone', value: 'x' },
      { type: 'del', key: 'gone' },
      { type: 'del', key: 'never-there' },
    ];
    const direct = await open('direct');
    const viaPublic = await open('public');
    await writeLevelBatch(direct, ops, false);
    await writeLevelBatch(direct, [], true);
    await viaPublic.batch(ops, { sync: false });
    t.same(await direct.iterator().all(), await viaPublic.iterator().all(), 'same entries');
    t.same(await direct.iterator().all(), [
      ['n:ab', '3:Lé∑ unicode'],
      ['s:k', '{"a":1}'],
    ]);
    // A prewrite hook is honoured: the public path runs it.
    const seen: string[] = [];
    direct.hooks.prewrite.add((op) => {
      seen.push(op.key as string);
    });
    await writeLevelBatch(direct, [{ type: 'put', key: 'hooked', value: '1' }], true);
    t.same(seen, ['hooked']);
    await direct.close();
    await t.rejects(writeLevelBatch(direct, ops, false), { code: 'LEVEL_DATABASE_NOT_OPEN' });
    await viaPublic.close();
    await t.rejects(writeLevelBatch(viaPublic, ops, false), { code: 'LEVEL_DATABASE_NOT_OPEN' });
  },
);
