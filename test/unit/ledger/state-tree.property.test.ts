/**
 * The sparse Merkle state tree against a model (a Map): the root depends only on the map, never on
 * the order of updates or on deleted history; every key's proof verifies as present with its value
 * or as absent; and a proof fails for a flipped bit anywhere, a wrong value, a wrong root, a key it
 * was not made for, or an absent key claimed present. A deliberately broken tree (deletes that skip
 * the canonical collapse) is caught by the order-independence property.
 */
import fc from 'fast-check';
import t from 'tap';
import { bytesToHex, utf8ToBytes } from '../../../src/common/bytes.js';
import { sha256 } from '../../../src/common/crypto.js';
import {
  EMPTY_TREE_ROOT,
  MemoryTreeNodeStore,
  type StateProof,
  StateTree,
  type TreeUpdate,
  verifyStateProof,
} from '../../../src/ledger/state-tree.js';

const kh = (k: string) => sha256(utf8ToBytes(`k:${k}`));
const vh = (v: number) => sha256(utf8ToBytes(`v:${v}`));

/** Operations: set key k to v, or delete k (keys from a small alphabet so they collide often). */
const op = fc.oneof(
  fc.record({ key: fc.integer({ min: 0, max: 40 }).map(String), value: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ key: fc.integer({ min: 0, max: 40 }).map(String), value: fc.constant(null) }),
);

function build(
  ops: { key: string; value: number | null }[],
  batch = 1,
): { tree: StateTree; model: Map<string, number> } {
  const tree = new StateTree(new MemoryTreeNodeStore());
  const model = new Map<string, number>();
  for (let i = 0; i < ops.length; i += batch) {
    const slice = new Map<string, number | null>();
    for (const o of ops.slice(i, i + batch)) slice.set(o.key, o.value);
    const updates: TreeUpdate[] = [...slice].map(([k, v]) => [kh(k), v === null ? null : vh(v)]);
    tree.apply(updates);
    for (const [k, v] of slice) v === null ? model.delete(k) : model.set(k, v);
  }
  return { tree, model };
}

function rootOf(model: Map<string, number>): string {
  const tree = new StateTree(new MemoryTreeNodeStore());
  return tree.apply([...model].map(([k, v]) => [kh(k), vh(v)]));
}

t.test('the root depends only on the map', async (t) => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 120 }), fc.integer({ min: 1, max: 7 }), (ops, batch) => {
      const { tree, model } = build(ops, batch);
      return tree.root === rootOf(model) && (model.size > 0 || tree.root === EMPTY_TREE_ROOT);
    }),
    { numRuns: 300 },
  );
  t.pass('300 random histories');
});

t.test('every key proves present with its value, or absent', async (t) => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const { tree, model } = build(ops, 3);
      for (let k = 0; k <= 45; k++) {
        const key = String(k);
        const proof = tree.prove(kh(key));
        const value = model.get(key);
        const r = verifyStateProof(tree.root, kh(key), value === undefined ? null : vh(value), proof);
        if (!r.ok || r.present !== (value !== undefined)) return false;
        // The opposite claim fails.
        const wrong = verifyStateProof(tree.root, kh(key), value === undefined ? vh(0) : null, proof);
        if (wrong.ok) return false;
        if (value !== undefined && verifyStateProof(tree.root, kh(key), vh(value + 1), proof).ok)
          return false;
        if (
          tree.get(kh(key)) === undefined
            ? value !== undefined
            : bytesToHex(tree.get(kh(key))!) !== bytesToHex(vh(value!))
        )
          return false;
      }
      return true;
    }),
    { numRuns: 150 },
  );
  t.pass('150 random maps, 46 keys each');
});

function flipped(proof: StateProof, index: number): StateProof | undefined {
  const fields = [...proof.siblings, ...(proof.leaf ? [proof.leaf.keyHash, proof.leaf.valueHash] : [])];
  if (fields.length === 0) return undefined;
  const which = index % fields.length;
  const hex = fields[which]!;
  const pos = Math.floor(index / fields.length) % hex.length;
  const digit = (Number.parseInt(hex[pos]!, 16) ^ 1).toString(16);
  const changed = hex.slice(0, pos) + digit + hex.slice(pos + 1);
  fields[which] = changed;
  const n = proof.siblings.length;
  return {
    siblings: fields.slice(0, n),
    ...(proof.leaf ? { leaf: { keyHash: fields[n]!, valueHash: fields[n + 1]! } } : {}),
  };
}

t.test('a flipped bit, another root or another key fails', async (t) => {
  fc.assert(
    fc.property(
      fc.array(op, { minLength: 2, maxLength: 60 }),
      fc.integer({ min: 0, max: 45 }),
      fc.nat(),
      (ops, k, flip) => {
        const { tree, model } = build(ops, 2);
        const key = String(k);
        const value = model.get(key);
        const claim = value === undefined ? null : vh(value);
        const proof = tree.prove(kh(key));
        const bad = flipped(proof, flip);
        if (bad && verifyStateProof(tree.root, kh(key), claim, bad).ok) return false;
        const otherRoot = `${tree.root.slice(0, 63)}${(Number.parseInt(tree.root[63]!, 16) ^ 1).toString(16)}`;
        if (verifyStateProof(otherRoot, kh(key), claim, proof).ok) return false;
        // A proof made for one present key says nothing of another.
        const other = [...model.keys()].find((x) => x !== key);
        if (other !== undefined && value !== undefined)
          if (verifyStateProof(tree.root, kh(other), vh(model.get(other)!), proof).ok) return false;
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('300 random proofs tampered');
});

t.test('malformed proofs are refused, not thrown', async (t) => {
  const tree = new StateTree(new MemoryTreeNodeStore());
  tree.apply([[kh('a'), vh(1)]]);
  for (const proof of [
    {} as StateProof,
    { siblings: ['zz'] },
    { siblings: new Array(300).fill(EMPTY_TREE_ROOT) },
    { siblings: [], leaf: { keyHash: 'x', valueHash: 'y' } },
  ] as StateProof[]) {
    const r = verifyStateProof(tree.root, kh('a'), vh(1), proof);
    t.equal(r.ok, false, JSON.stringify(proof).slice(0, 60));
  }
});

t.test('old roots stay readable: a proof at an earlier root still verifies', async (t) => {
  const tree = new StateTree(new MemoryTreeNodeStore());
  const r1 = tree.apply([
    [kh('a'), vh(1)],
    [kh('b'), vh(2)],
  ]);
  tree.apply([
    [kh('a'), null],
    [kh('c'), vh(3)],
  ]);
  t.ok(verifyStateProof(r1, kh('a'), vh(1), tree.prove(kh('a'), r1)).ok, 'a was present at r1');
  t.ok(verifyStateProof(tree.root, kh('a'), null, tree.prove(kh('a'))).ok, 'a is absent now');
  t.notOk(
    verifyStateProof(tree.root, kh('a'), vh(1), tree.prove(kh('a'), r1)).ok,
    'the old proof fails at the new root',
  );
});

/** A deliberately broken tree: an internal node left over a lone leaf is kept, not collapsed. */
class NoCollapse extends StateTree {
  protected override join(left: Uint8Array, right: Uint8Array): Uint8Array {
    if (left.every((b) => b === 0) && right.every((b) => b === 0)) return left;
    return this.putInternal(left, right);
  }
}

t.test('mutant: deletes without the canonical collapse are caught', async (t) => {
  const found = fc.check(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const tree = new NoCollapse(new MemoryTreeNodeStore());
      const model = new Map<string, number>();
      for (const o of ops) {
        tree.apply([[kh(o.key), o.value === null ? null : vh(o.value)]]);
        o.value === null ? model.delete(o.key) : model.set(o.key, o.value);
      }
      return tree.root === rootOf(model);
    }),
    { numRuns: 300 },
  );
  t.ok(found.failed, `the broken tree is caught (seed ${found.seed})`);
});

t.test('pruning keeps every retained root whole and frees the rest', async (t) => {
  let freed = 0;
  fc.assert(
    fc.property(
      fc.array(fc.array(op, { maxLength: 6 }), { maxLength: 40 }),
      fc.integer({ min: 0, max: 4 }),
      (blocks, keep) => {
        const store = new MemoryTreeNodeStore();
        const tree = new StateTree(store);
        const history: { root: string; model: Map<string, number> }[] = [];
        const model = new Map<string, number>();
        blocks.forEach((ops, i) => {
          const version = i + 1;
          const slice = new Map<string, number | null>();
          for (const o of ops) slice.set(o.key, o.value);
          tree.apply(
            [...slice].map(([k, v]) => [kh(k), v === null ? null : vh(v)]),
            version,
          );
          for (const [k, v] of slice) v === null ? model.delete(k) : model.set(k, v);
          history.push({ root: tree.root, model: new Map(model) });
          freed += store.prune(version - keep);
        });
        // Every root from the oldest retained version on still answers every key.
        for (let i = Math.max(0, history.length - 1 - keep); i < history.length; i++) {
          const { root, model: at } = history[i]!;
          for (let k = 0; k <= 40; k++) {
            const key = String(k);
            const v = at.get(key);
            const r = verifyStateProof(
              root,
              kh(key),
              v === undefined ? null : vh(v),
              tree.prove(kh(key), root),
            );
            if (!r.ok) return false;
          }
        }
        // Nothing reachable only from pruned roots is left: the store holds at most the live nodes of
        // the retained roots.
        const live = new Set<string>();
        const walk = (hash: string) => {
          if (hash === EMPTY_TREE_ROOT || live.has(hash)) return;
          live.add(hash);
          const node = store.getNode(hash)!;
          if (node.kind === 'internal') {
            walk(bytesToHex(node.left));
            walk(bytesToHex(node.right));
          }
        };
        for (let i = Math.max(0, history.length - 1 - keep); i < history.length; i++) walk(history[i]!.root);
        return keep > 0 || store.nodes.size === live.size;
      },
    ),
    { numRuns: 300 },
  );
  t.ok(freed > 0, `pruning freed ${freed} nodes over the runs`);
});
