import { join } from 'node:path';
import t from 'tap';
import { type GenesisInit, LevelBlockStore, MemoryBlockStore } from '../../../src/ledger/index.js';
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
