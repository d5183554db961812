/**
 * Erased bytes leave the disk: a payload of random (incompressible, so it sits verbatim in the
 * LevelDB files) bytes, deleted and compacted, is in none of the store's files — whether it was
 * still in the memtable when deleted (a payload stored since the store was opened), already in a
 * table file (stored before a reopen), or one of many in a store with several levels.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { sha256Hex } from '../../../src/common/crypto.js';
import { LevelPayloadStore } from '../../../src/records/level-payload-store.js';

/** How many of `payloads` have their first and last 32 bytes anywhere in the files of `dir`. */
async function onDisk(dir: string, payloads: Uint8Array[]): Promise<number> {
  const files: Buffer[] = [];
  for (const name of await readdir(dir)) files.push(await readFile(join(dir, name)));
  return payloads.filter((p) =>
    [p.subarray(0, 32), p.subarray(p.length - 32)].some((slice) => files.some((f) => f.indexOf(slice) >= 0)),
  ).length;
}

const cases: { name: string; before: number; reopen: boolean }[] = [
  { name: 'alone in the memtable', before: 0, reopen: false },
  { name: 'in the memtable beside others', before: 20, reopen: false },
  { name: 'in a table file after a reopen', before: 0, reopen: true },
  { name: 'among many, after a reopen', before: 600, reopen: true },
];

for (const c of cases) {
  t.test(`a deleted payload ${c.name} leaves no byte on disk once compacted`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'datagrant-erasure-unit-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    let store = new LevelPayloadStore({ location: dir });
    await store.open();
    const kept: Uint8Array[] = [];
    for (let i = 0; i < c.before; i++) {
      const filler = new Uint8Array(randomBytes(500 + (i % 10) * 1000));
      await store.put(sha256Hex(filler), filler);
      kept.push(filler);
    }
    const doomed = [new Uint8Array(randomBytes(540)), new Uint8Array(randomBytes(9000))];
    for (const p of doomed) await store.put(sha256Hex(p), p);
    if (c.reopen) {
      await store.close();
      store = new LevelPayloadStore({ location: dir });
      await store.open();
    }
    t.equal(await onDisk(dir, doomed), doomed.length, 'the payloads are in the files before');
    for (const p of doomed) await store.delete(sha256Hex(p));
    await store.compact();
    t.equal(await onDisk(dir, doomed), 0, 'after delete and compaction, in no file while open');
    await store.close();
    t.equal(await onDisk(dir, doomed), 0, 'nor once closed');
    if (kept.length > 0)
      t.equal(await onDisk(dir, kept), kept.length, 'the other payloads are all still there');
    store = new LevelPayloadStore({ location: dir });
    await store.open();
    for (const p of doomed) t.notOk(await store.has(sha256Hex(p)), 'and the store has none of them');
    await store.close();
  });
}
