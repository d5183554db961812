import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { sha256Hex } from '../../../src/common/crypto.js';
import { LevelPayloadStore } from '../../../src/records/level-payload-store.js';
import { MemoryPayloadStore } from '../../../src/records/payload-store.js';
import { payloadStoreSuite } from './payload-store-suite.js';

t.test('MemoryPayloadStore', async (t) => {
  payloadStoreSuite(t, async () => ({ store: new MemoryPayloadStore(), dispose: async () => {} }));
});

t.test('LevelPayloadStore', async (t) => {
  payloadStoreSuite(t, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'datagrant-payloads-'));
    const store = new LevelPayloadStore({ location: dir });
    await store.open();
    return {
      store,
      dispose: async () => {
        await store.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  });
});

t.test('LevelPayloadStore keeps payloads across reopen and refuses use when closed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-payloads-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const payload = new TextEncoder().encode('persisted');
  const digest = sha256Hex(payload);
  const first = new LevelPayloadStore({ location: dir });
  await first.open();
  await first.put(digest, payload);
  await first.close();
  await t.rejects(first.get(digest), { code: 'PAYLOAD_STORE_CLOSED' });
  const second = new LevelPayloadStore({ location: dir });
  await second.open();
  t.same(Array.from((await second.get(digest)) ?? []), Array.from(payload));
  await second.close();
  await second.close();
  t.pass('closing twice is fine');
});

t.test('MemoryPayloadStore counts payloads', async (t) => {
  const store = new MemoryPayloadStore();
  const payload = new Uint8Array([1, 2, 3]);
  await store.put(sha256Hex(payload), payload);
  t.equal(store.size, 1);
});

t.test('LevelPayloadStore: a deleted payload leaves the files on disk once compacted', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-payloads-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const marker = 'ERASE-ME-'.repeat(400);
  const payload = new TextEncoder().encode(marker);
  const digest = sha256Hex(payload);
  const onDisk = async () => {
    let text = '';
    for (const name of await readdir(dir)) text += (await readFile(join(dir, name))).toString('latin1');
    return text.includes('ERASE-ME-ERASE-ME-');
  };
  const store = new LevelPayloadStore({ location: dir });
  await store.open();
  for (let i = 0; i < 50; i++) {
    const filler = new TextEncoder().encode(`filler ${i} ${'x'.repeat(2000)}`);
    await store.put(sha256Hex(filler), filler);
  }
  await store.put(digest, payload);
  t.ok(await onDisk(), 'the payload is in the files');
  await store.delete(digest);
  await store.compact();
  await store.close();
  t.notOk(await onDisk(), 'after delete and compaction its bytes are gone from every file');
});
