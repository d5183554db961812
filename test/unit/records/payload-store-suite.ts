/** The compliance suite every PayloadStore implementation must pass. */
import type { Test } from 'tap';
import { sha256Hex } from '../../../src/common/crypto.js';
import type { PayloadStore } from '../../../src/records/payload-store.js';

/** Runs the suite against stores made by `make` (one fresh store per subtest; `dispose` cleans up). */
export function payloadStoreSuite(
  t: Test,
  make: () => Promise<{ store: PayloadStore; dispose: () => Promise<void> }>,
): void {
  const bytes = (text: string) => new TextEncoder().encode(text);

  const withStore = (name: string, fn: (t: Test, store: PayloadStore) => Promise<void>) =>
    t.test(name, async (t) => {
      const { store, dispose } = await make();
      t.teardown(dispose);
      await fn(t, store);
    });

  withStore('put, has, get, delete', async (t, store) => {
    const payload = bytes('sealed record one');
    const digest = sha256Hex(payload);
    t.equal(await store.has(digest), false);
    t.equal(await store.get(digest), undefined);
    await store.put(digest, payload);
    t.equal(await store.has(digest), true);
    const got = await store.get(digest);
    t.ok(got instanceof Uint8Array, 'get returns a Uint8Array');
    t.same(Array.from(got ?? []), Array.from(payload));
    await store.delete(digest);
    t.equal(await store.has(digest), false);
    t.equal(await store.get(digest), undefined);
    await store.delete(digest);
    t.pass('deleting an absent payload is fine');
  });

  withStore('put is idempotent and payloads are independent', async (t, store) => {
    const a = bytes('a');
    const b = new Uint8Array(4096).map((_, i) => i % 251);
    await store.put(sha256Hex(a), a);
    await store.put(sha256Hex(a), a);
    await store.put(sha256Hex(b), b);
    t.same(Array.from((await store.get(sha256Hex(b))) ?? []), Array.from(b));
    await store.delete(sha256Hex(a));
    t.equal(await store.has(sha256Hex(b)), true);
  });

  withStore('stored bytes do not alias the caller', async (t, store) => {
    const payload = bytes('mutable');
    const digest = sha256Hex(payload);
    await store.put(digest, payload);
    payload[0] = 0;
    const first = await store.get(digest);
    t.equal(sha256Hex(first!), digest, 'changing the input after put does not change the payload');
    first![0] = 0;
    t.equal(sha256Hex((await store.get(digest))!), digest, 'changing a result does not change the payload');
  });

  withStore('put refuses bytes that do not hash to the digest', async (t, store) => {
    const payload = bytes('honest');
    await t.rejects(store.put(sha256Hex(bytes('other')), payload), { code: 'PAYLOAD_DIGEST_MISMATCH' });
    t.equal(await store.has(sha256Hex(bytes('other'))), false);
  });

  withStore('malformed digests are refused', async (t, store) => {
    for (const digest of ['', 'abc', 'A'.repeat(64), `${'0'.repeat(63)}g`, '../../etc/passwd']) {
      await t.rejects(
        store.put(digest, bytes('x')),
        { code: 'PAYLOAD_BAD_DIGEST' },
        `put ${JSON.stringify(digest)}`,
      );
      await t.rejects(store.get(digest), { code: 'PAYLOAD_BAD_DIGEST' }, `get ${JSON.stringify(digest)}`);
      await t.rejects(store.has(digest), { code: 'PAYLOAD_BAD_DIGEST' }, `has ${JSON.stringify(digest)}`);
      await t.rejects(
        store.delete(digest),
        { code: 'PAYLOAD_BAD_DIGEST' },
        `delete ${JSON.stringify(digest)}`,
      );
    }
  });

  withStore('an empty payload is storable', async (t, store) => {
    const empty = new Uint8Array(0);
    await store.put(sha256Hex(empty), empty);
    t.same(Array.from((await store.get(sha256Hex(empty))) ?? [1]), []);
  });

  withStore(
    'list gives every payload with when it was first stored; compact keeps what is kept',
    async (t, store) => {
      const a = bytes('first');
      const b = bytes('second');
      const before = Date.now();
      await store.put(sha256Hex(a), a);
      await store.put(sha256Hex(b), b);
      const listed = [];
      for await (const entry of store.list()) listed.push(entry);
      t.same(
        listed.map((e) => e.digest),
        [sha256Hex(a), sha256Hex(b)].sort(),
        'every digest, in order',
      );
      t.ok(
        listed.every((e) => e.addedAt >= before - 1000 && e.addedAt <= Date.now() + 1000),
        'with its time',
      );
      const first = listed.find((e) => e.digest === sha256Hex(a))!.addedAt;
      await store.put(sha256Hex(a), a);
      const again = [];
      for await (const entry of store.list()) again.push(entry);
      t.equal(
        again.find((e) => e.digest === sha256Hex(a))!.addedAt,
        first,
        'storing again keeps the first time',
      );
      await store.delete(sha256Hex(a));
      await store.compact();
      const left = [];
      for await (const entry of store.list()) left.push(entry.digest);
      t.same(left, [sha256Hex(b)], 'a deleted payload leaves the list');
      t.same(Array.from((await store.get(sha256Hex(b))) ?? []), Array.from(b), 'compaction keeps the rest');
    },
  );
}
