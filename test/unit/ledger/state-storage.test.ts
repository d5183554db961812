import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Level } from 'level';
import t from 'tap';
import {
  CommittedState,
  decodeTreeNode,
  encodeTreeNode,
  type KvOp,
  KvStateStorage,
  LruCache,
  type RawKv,
  STATE_PROOF_HEIGHTS,
  type StateValue,
  type StateWrites,
  stateKeyHash,
  stateKvOps,
  stateValueHash,
  verifyStateProof,
} from '../../../src/ledger/index.js';

/** A Map behind the key–value interface a block store gives its state. */
class MapKv implements RawKv {
  readonly map = new Map<string, string>();
  gets = 0;
  /** Keys asked for by multi-gets. */
  manyKeys = 0;
  /** Multi-gets answer only after this many macrotask turns (as LevelDB's thread pool may). */
  constructor(readonly slowTurns = 0) {}
  getSync(key: string): string | undefined {
    this.gets++;
    return this.map.get(key);
  }
  async getMany(keys: string[]): Promise<(string | undefined)[]> {
    this.manyKeys += keys.length;
    const answer = keys.map((key) => this.map.get(key));
    for (let i = 0; i < this.slowTurns; i++) await new Promise((resolve) => setImmediate(resolve));
    return answer;
  }
  async *scan(gte: string, lt: string): AsyncIterable<[string, string]> {
    for (const key of [...this.map.keys()].filter((k) => k >= gte && k < lt).sort())
      yield [key, this.map.get(key)!];
  }
  async batch(ops: KvOp[]): Promise<void> {
    for (const op of ops) {
      if (op.type === 'put') this.map.set(op.key, op.value);
      else this.map.delete(op.key);
    }
  }
  count(prefix: string): number {
    return [...this.map.keys()].filter((k) => k.startsWith(prefix)).length;
  }
}

/** Commits `writes` as `height` the way a chain does: prepare, the store's batch, apply. */
async function commit(
  state: CommittedState,
  kv: MapKv,
  writes: StateWrites,
  height: number,
): Promise<string> {
  const root = state.rootAfter(writes, 'sparse-merkle');
  const tree = state.prepare(writes, root, height);
  await kv.batch(stateKvOps(writes, tree));
  state.apply(writes, root, height);
  return root;
}

/** Random heights of writes over a small key space, so keys are set, changed, deleted and set back. */
/** A stand-in transaction hash (64 hex digits) for height `h`. */
const txHashOf = (h: number, tag: 'a' | 'b') => `${tag}${h.toString(16).padStart(63, '0')}`;

const heights = fc.array(
  fc.uniqueArray(
    fc.tuple(fc.integer({ min: 0, max: 40 }), fc.option(fc.integer({ min: 0, max: 3 }), { nil: null })),
    {
      selector: ([k]) => k,
      maxLength: 12,
    },
  ),
  { minLength: 1, maxLength: 30 },
);

t.test('a state on storage with tiny caches agrees with one in memory: values, roots, proofs', async (t) => {
  await fc.assert(
    fc.asyncProperty(heights, async (blocks) => {
      const memory = new CommittedState();
      memory.apply(new Map(), memory.rootAfter(new Map(), 'sparse-merkle'), 0);
      const kv = new MapKv();
      const stored = new CommittedState(undefined, 0, 'sparse-merkle', new KvStateStorage(kv), {
        values: 3,
        nodes: 5,
      });
      await stored.open(memory.root, 0);
      for (let h = 1; h <= blocks.length; h++) {
        const writes: StateWrites = new Map(blocks[h - 1]!.map(([k, v]) => [`k${k}`, v]));
        const memoryRoot = memory.rootAfter(writes, 'sparse-merkle');
        memory.apply(writes, memoryRoot, h);
        const storedRoot = await commit(stored, kv, writes, h);
        if (storedRoot !== memoryRoot) return false;
      }
      for (let k = 0; k <= 40; k++) {
        const key = `k${k}`;
        if (stored.get(key) !== memory.get(key)) return false;
        const proven = stored.prove(key)!;
        const value = stored.get(key);
        const checked = verifyStateProof(
          proven.root,
          stateKeyHash(key),
          value === undefined ? null : stateValueHash(value),
          proven.proof,
        );
        if (!checked.ok) return false;
      }
      return true;
    }),
    { numRuns: 60 },
  );
  t.pass('equal');
});

t.test(
  'old heights stay provable for the proof window, and replaced nodes are deleted after it',
  async (t) => {
    const kv = new MapKv();
    const state = new CommittedState(undefined, 0, 'sparse-merkle', new KvStateStorage(kv), {
      values: 10,
      nodes: 10,
    });
    await state.open('0'.repeat(64), 0);
    const roots: string[] = [];
    const heightsRun = 3 * STATE_PROOF_HEIGHTS;
    let nodesAtWindow = 0;
    for (let h = 1; h <= heightsRun; h++) {
      // 30 keys rewritten round-robin: the live tree stays the same size while old versions pile up.
      const writes: StateWrites = new Map([[`key${h % 30}`, h]]);
      roots[h] = await commit(state, kv, writes, h);
      if (h === STATE_PROOF_HEIGHTS + 30) nodesAtWindow = kv.count('n:');
    }
    const oldest = heightsRun - STATE_PROOF_HEIGHTS + 1;
    t.equal(state.treeRootAt(oldest), roots[oldest], 'the oldest height of the window is provable');
    t.equal(state.treeRootAt(oldest - 1), undefined, 'the one before it is not');
    const key = `key${oldest % 30}`;
    const proof = state.prove(key, oldest)!;
    t.ok(
      verifyStateProof(roots[oldest]!, stateKeyHash(key), stateValueHash(oldest), proof.proof).ok,
      'a proof at the oldest height verifies against its root',
    );
    t.equal(kv.count('v:'), STATE_PROOF_HEIGHTS, 'one root per height of the window');
    // The live tree (30 leaves) plus what the window's heights replaced (a path each): without
    // pruning it would grow by a path per height.
    const nodes = kv.count('n:');
    t.ok(
      nodes <= nodesAtWindow * 1.1,
      `nodes stored stay bounded by the window (${nodesAtWindow} then ${nodes}, ${2 * STATE_PROOF_HEIGHTS - 30} heights later)`,
    );
    t.ok(
      kv.count('w:') <= STATE_PROOF_HEIGHTS + 2,
      'stale lists leave with their heights (a read in flight may hold one or two)',
    );
  },
);

t.test('pruning never deletes a node a retained root needs, though values come back', async (t) => {
  // Few keys toggling between few values: leaves and subtrees are re-created often, both while
  // their pruning is being read off the event loop and after.
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 2 })), {
        minLength: STATE_PROOF_HEIGHTS + 60,
        maxLength: STATE_PROOF_HEIGHTS + 120,
      }),
      fc.boolean(),
      fc.integer({ min: 0, max: 3 }),
      async (steps, awaitBetween, slowTurns) => {
        const kv = new MapKv(slowTurns);
        const state = new CommittedState(undefined, 0, 'sparse-merkle', new KvStateStorage(kv), {
          values: 2,
          nodes: 4,
        });
        await state.open('0'.repeat(64), 0);
        const values: (number | undefined)[][] = [];
        const current: (number | undefined)[] = [];
        for (let h = 1; h <= steps.length; h++) {
          const [k, v] = steps[h - 1]!;
          await commit(state, kv, new Map([[`t${k}`, v]]), h);
          current[k] = v;
          values[h] = [...current];
          if (awaitBetween) await new Promise((resolve) => setImmediate(resolve));
        }
        for (let h = steps.length - STATE_PROOF_HEIGHTS + 1; h <= steps.length; h++)
          for (let k = 0; k <= 5; k++) {
            const value = values[h]![k];
            const proven = state.prove(`t${k}`, h);
            if (!proven) return false;
            const ok = verifyStateProof(
              proven.root,
              stateKeyHash(`t${k}`),
              value === undefined ? null : stateValueHash(value),
              proven.proof,
            ).ok;
            if (!ok) return false;
          }
        return kv.count('w:') <= STATE_PROOF_HEIGHTS + 8;
      },
    ),
    { numRuns: 8 },
  );
  t.pass('every retained height proves every key');
});

t.test('a node re-created by the very height that prunes it is kept', async (t) => {
  for (const stored of [true, false]) {
    const kv = new MapKv();
    const state = stored
      ? new CommittedState(undefined, 0, 'sparse-merkle', new KvStateStorage(kv), { values: 2, nodes: 4 })
      : new CommittedState();
    if (stored) await state.open('0'.repeat(64), 0);
    else state.apply(new Map(), state.rootAfter(new Map(), 'sparse-merkle'), 0);
    const put = async (writes: StateWrites, h: number) =>
      stored
        ? commit(state, kv, writes, h)
        : state.apply(writes, state.rootAfter(writes, 'sparse-merkle'), h);
    await put(new Map([['x', 1]]), 1);
    // Height 2 replaces x's leaf; height 2 + STATE_PROOF_HEIGHTS - 1 prunes what height 2 replaced,
    // and sets x back to 1, re-creating that very leaf.
    await put(new Map([['x', 2]]), 2);
    const last = 2 + STATE_PROOF_HEIGHTS - 1;
    for (let h = 3; h < last; h++) await put(new Map([[`other${h % 7}`, h]]), h);
    await put(new Map([['x', 1]]), last);
    const proven = state.prove('x', last)!;
    t.ok(
      verifyStateProof(proven.root, stateKeyHash('x'), stateValueHash(1), proven.proof).ok,
      `${stored ? 'on storage' : 'in memory'}: x proves at the pruning height`,
    );
    await put(new Map([['y', 1]]), last + 1);
    const after = state.prove('x', last + 1)!;
    t.ok(verifyStateProof(after.root, stateKeyHash('x'), stateValueHash(1), after.proof).ok, 'and after it');
  }
});

t.test('pruning reads back only the replaced nodes that may have been written again', async (t) => {
  const kv = new MapKv();
  const state = new CommittedState(undefined, 0, 'sparse-merkle', new KvStateStorage(kv), {
    values: 4,
    nodes: 8,
  });
  await state.open('0'.repeat(64), 0);
  const last = 2 + STATE_PROOF_HEIGHTS + 40;
  for (let h = 1; h <= last; h++) {
    // x's leaf for 1 is replaced at height 2 and written again at 10, inside the proof window of 2.
    const writes: StateWrites = new Map([[`k${h % 13}`, h]]);
    if (h === 1 || h === 10) writes.set('x', 1);
    if (h === 2) writes.set('x', 2);
    await commit(state, kv, writes, h);
  }
  const stale = [...kv.map.keys()].filter((k) => k.startsWith('w:')).length;
  t.ok(stale <= STATE_PROOF_HEIGHTS + 2, `stale lists are pruned (${stale} left)`);
  t.ok(kv.manyKeys < 5, `replaced nodes were not read back one by one (${kv.manyKeys} read)`);
  for (const h of [last - STATE_PROOF_HEIGHTS + 1, last]) {
    const proven = state.prove('x', h)!;
    t.ok(
      verifyStateProof(proven.root, stateKeyHash('x'), stateValueHash(1), proven.proof).ok,
      `x's rewritten leaf is kept: x proves at ${h}`,
    );
  }
  // Reopened, the watch covers nothing before it: the first window is pruned by reading back.
  const reopened = new CommittedState(undefined, 0, 'sparse-merkle', new KvStateStorage(kv), {
    values: 4,
    nodes: 8,
  });
  await reopened.open(state.root, last);
  const before = kv.manyKeys;
  for (let h = last + 1; h <= last + 20; h++) await commit(reopened, kv, new Map([[`k${h % 13}`, h]]), h);
  t.ok(kv.manyKeys > before, 'after a restart, replaced nodes are read back');
  t.ok(
    verifyStateProof(
      reopened.prove('x')!.root,
      stateKeyHash('x'),
      stateValueHash(1),
      reopened.prove('x')!.proof,
    ).ok,
  );
});

t.test(
  'a store without a tree (older format, or a snapshot) gets one at open, checked against the root',
  async (t) => {
    const kv = new MapKv();
    const first = new CommittedState(undefined, 0, 'sparse-merkle', new KvStateStorage(kv));
    await first.open('0'.repeat(64), 0);
    let root = '';
    for (let h = 1; h <= 5; h++)
      root = await commit(
        first,
        kv,
        new Map<string, StateValue | null>([
          [`a${h}`, h],
          [`b${h % 2}`, { h }],
        ]),
        h,
      );
    for (const key of [...kv.map.keys()]) if (!key.startsWith('s:')) kv.map.delete(key);

    const reopened = new CommittedState(undefined, 0, 'sparse-merkle', new KvStateStorage(kv));
    await reopened.open(root, 5);
    t.equal(reopened.treeRootAt(5), root, 'rebuilt to the certified root');
    t.same(reopened.get('b1'), first.get('b1'));
    t.ok(kv.count('n:') > 0, 'the rebuilt tree is stored');

    kv.map.set('s:a1', '42');
    for (const key of [...kv.map.keys()]) if (!key.startsWith('s:')) kv.map.delete(key);
    const corrupt = new CommittedState(undefined, 0, 'sparse-merkle', new KvStateStorage(kv));
    await t.rejects(corrupt.open(root, 5), { code: 'LEDGER_STATE_CORRUPT' }, 'a changed entry is found');
  },
);

t.test(
  'between prepare and apply reads answer the height before; discard forgets a failed write',
  async (t) => {
    const kv = new MapKv();
    const state = new CommittedState(undefined, 0, 'sparse-merkle', new KvStateStorage(kv), {
      values: 0,
      nodes: 0,
    });
    await state.open('0'.repeat(64), 0);
    await commit(state, kv, new Map([['x', 1]]), 1);
    const writes: StateWrites = new Map([
      ['x', 2],
      ['y', 3],
    ]);
    const root = state.rootAfter(writes, 'sparse-merkle');
    const tree = state.prepare(writes, root, 2);
    await kv.batch(stateKvOps(writes, tree));
    t.equal(state.get('x'), 1, 'the old value, though the store holds the new one');
    t.equal(state.get('y'), undefined);
    state.apply(writes, root, 2);
    t.equal(state.get('x'), 2);
    t.equal(state.get('y'), 3);

    state.prepare(new Map([['x', 9]]), root, 3);
    state.discard();
    t.equal(state.get('x'), 2, 'after discard the committed value again');
    t.equal(state.height, 2);
  },
);

t.test('reads of a hot key are served from the cache; the cache is bounded', async (t) => {
  const kv = new MapKv();
  const state = new CommittedState(undefined, 0, 'sparse-merkle', new KvStateStorage(kv), {
    values: 4,
    nodes: 16,
  });
  await state.open('0'.repeat(64), 0);
  const writes: StateWrites = new Map(Array.from({ length: 50 }, (_, i) => [`e${i}`, i] as const));
  await commit(state, kv, writes, 1);
  const before = kv.gets;
  for (let i = 0; i < 100; i++) state.get('e7');
  t.ok(kv.gets - before <= 1, 'one storage read for a hundred gets');
  for (let i = 0; i < 50; i++) t.equal(state.get(`e${i}`), i);
  t.ok(state.cachedEntries <= 4, 'the value cache holds at most its bound');
});

t.test('LruCache drops what was not used recently, and holds at most its capacity', async (t) => {
  const lru = new LruCache<string, number>(4);
  lru.set('a', 1);
  lru.set('b', 2);
  lru.get('a');
  lru.set('c', 3);
  t.equal(lru.get('b'), undefined, 'b was least recently used');
  t.equal(lru.get('a'), 1);
  t.equal(lru.get('c'), 3);
  for (let i = 0; i < 100; i++) lru.set(`k${i}`, i);
  t.ok(lru.size <= 4, 'bounded');
  t.equal(lru.get('k99'), 99, 'the newest is held');
  const none = new LruCache<string, number>(0);
  none.set('a', 1);
  t.equal(none.size, 0, 'capacity 0 caches nothing');
});

t.test('tree node encoding round-trips and refuses malformed records', async (t) => {
  const a = stateKeyHash('a');
  const b = stateValueHash(1);
  for (const node of [
    { kind: 'leaf', keyHash: a, valueHash: b } as const,
    { kind: 'internal', left: a, right: b } as const,
  ]) {
    const back = decodeTreeNode(encodeTreeNode(node, 17));
    t.equal(back.version, 17);
    t.same(back.node, node);
  }
  for (const bad of ['', '1:X', `x:L${'0'.repeat(128)}`, `1:L${'0'.repeat(127)}`, `1:I${'z'.repeat(128)}`])
    t.throws(() => decodeTreeNode(bad), `refused: ${bad.slice(0, 8)}`);
});

t.test('on LevelDB: a chain of heights, reopened, reads and proves the same', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-state-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const open = async () => {
    const db = new Level<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await db.open();
    const kv: RawKv = {
      getSync: (key) => db.getSync(key),
      getMany: (keys) => db.getMany(keys),
      scan: (gte, lt) => db.iterator({ gte, lt }),
      batch: (ops) => db.batch(ops),
    };
    return { db, kv };
  };
  const { db, kv } = await open();
  const state = new CommittedState(undefined, 0, 'sparse-merkle', new KvStateStorage(kv), {
    values: 8,
    nodes: 32,
  });
  await state.open('0'.repeat(64), 0);
  let root = '';
  for (let h = 1; h <= 20; h++) {
    const writes: StateWrites = new Map<string, StateValue | null>(
      Array.from({ length: 20 }, (_, i) => [`k${(h * 7 + i) % 120}`, h] as const),
    );
    writes.set(`seen-at/${h}`, { expires: 1_000_000 + h, txs: [txHashOf(h, 'a'), txHashOf(h, 'b')] });
    root = state.rootAfter(writes, 'sparse-merkle');
    const tree = state.prepare(writes, root, h);
    await kv.batch(stateKvOps(writes, tree));
    state.apply(writes, root, h);
  }
  const expected = Object.fromEntries(Array.from({ length: 120 }, (_, i) => [`k${i}`, state.get(`k${i}`)]));
  await db.close();

  const again = await open();
  t.teardown(() => again.db.close());
  const reopened = new CommittedState(undefined, 0, 'sparse-merkle', new KvStateStorage(again.kv));
  await reopened.open(root, 20);
  t.same(
    Object.fromEntries(Array.from({ length: 120 }, (_, i) => [`k${i}`, reopened.get(`k${i}`)])),
    expected,
    'every value read back',
  );
  const proof = reopened.prove('k5', 20)!;
  t.equal(proof.root, root);
  t.ok(
    verifyStateProof(root, stateKeyHash('k5'), stateValueHash(expected.k5 as number), proof.proof).ok,
    'a proof from the reopened store verifies',
  );
  t.ok(reopened.treeRootAt(3), 'earlier heights are still provable after reopening');
  t.equal(
    reopened.get(`seen/${txHashOf(7, 'b')}`),
    1_000_007,
    'the replay guard is rebuilt from its seen-at entries',
  );
});
