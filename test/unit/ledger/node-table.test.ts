import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import t from 'tap';
import { bytesToHex } from '../../../src/common/bytes.js';
import { type StoredTreeNode, TreeNodeTable, treeNodeTableBytes } from '../../../src/ledger/index.js';

const hash = (): Uint8Array => new Uint8Array(randomBytes(32));

function internal(version: number): StoredTreeNode {
  return { version, node: { kind: 'internal', left: hash(), right: hash() } };
}

t.test('a node is read back as written, by hex or by bytes, and reads are copies', (t) => {
  const table = new TreeNodeTable(64);
  const h = hash();
  const hex = bytesToHex(h);
  const leaf: StoredTreeNode = { version: 7, node: { kind: 'leaf', keyHash: hash(), valueHash: hash() } };
  table.set(hex, leaf, h);
  t.same(table.get(hex), leaf, 'by hex');
  t.same(table.get(hex, h), leaf, 'by bytes');
  const read = table.get(hex)!;
  const again = internal(9);
  table.set(hex, again);
  t.same(table.get(hex), again, 'a second write replaces the node');
  t.same(read, leaf, 'a node read before is not changed by a later write to its slot');
  t.equal(table.size, 1);
  table.delete(hex);
  t.equal(table.get(hex), undefined, 'deleted');
  t.equal(table.size, 0);
  t.end();
});

t.test('the table holds at most its capacity and never answers with another hash’s node', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.array(fc.tuple(fc.constantFrom('set', 'get', 'delete'), fc.integer({ min: 0, max: 60 })), {
        maxLength: 300,
      }),
      (capacity, ops) => {
        const table = new TreeNodeTable(capacity);
        const hashes = Array.from({ length: 61 }, () => bytesToHex(hash()));
        const model = new Map<string, StoredTreeNode>();
        for (const [op, i] of ops) {
          const hex = hashes[i]!;
          if (op === 'set') {
            const node = internal(i);
            table.set(hex, node);
            model.set(hex, node);
          } else if (op === 'delete') {
            table.delete(hex);
            model.delete(hex);
          } else {
            const got = table.get(hex);
            if (got !== undefined && JSON.stringify(got) !== JSON.stringify(model.get(hex))) return false;
          }
          if (table.size > table.capacity || table.size > model.size) return false;
        }
        return true;
      },
    ),
  );
  t.pass('checked');
  t.end();
});

t.test('a table four times its contents keeps nearly all of them', (t) => {
  const table = new TreeNodeTable(4096);
  const nodes = Array.from({ length: 1000 }, (_, i) => [bytesToHex(hash()), internal(i)] as const);
  for (const [hex, node] of nodes) table.set(hex, node);
  const held = nodes.filter(([hex, node]) => JSON.stringify(table.get(hex)) === JSON.stringify(node)).length;
  // 1,000 nodes in 1,024 buckets of 4: only a bucket that draws a fifth node gives one up.
  t.ok(held >= 990, `${held} of 1,000 held`);
  t.equal(treeNodeTableBytes(4096), 4096 * 104, 'its size in bytes at most');
  const grown = new TreeNodeTable(1 << 16);
  const many = Array.from({ length: 20_000 }, (_, i) => [bytesToHex(hash()), internal(i)] as const);
  for (const [hex, node] of many) grown.set(hex, node);
  const kept = many.filter(([hex, node]) => JSON.stringify(grown.get(hex)) === JSON.stringify(node)).length;
  t.ok(kept >= 19_800 && grown.size === kept, `a table that grew from 4,096 slots keeps ${kept} of 20,000`);
  t.end();
});

t.test('two choices and cuckoo steps: a table 85% full keeps nearly every node, and grows only then', (t) => {
  // One bucket per node overflows buckets from a few per cent full on; the old table grew at 9%.
  const full = new TreeNodeTable(40_000);
  const nodes = Array.from({ length: 34_000 }, (_, i) => [bytesToHex(hash()), internal(i)] as const);
  for (const [hex, node] of nodes) full.set(hex, node);
  const held = nodes.filter(([hex, node]) => JSON.stringify(full.get(hex)) === JSON.stringify(node)).length;
  t.ok(held >= 33_980, `${held} of 34,000 held in 40,000 slots`);
  t.equal(full.size, held, 'its size counts what it holds');
  const growing = new TreeNodeTable(1 << 20);
  for (let i = 0; i < 50_000; i++) growing.set(bytesToHex(hash()), internal(i));
  t.ok(growing.slots < 50_000 / 0.5, `50,000 nodes in ${growing.slots} slots: it grew only when nearly full`);
  t.ok(growing.size >= 49_990, `${growing.size} of 50,000 held while growing`);
  t.end();
});
