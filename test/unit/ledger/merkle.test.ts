import { createHash } from 'node:crypto';
import fc from 'fast-check';
import t from 'tap';
import { bytesToHex, fromHex } from '../../../src/common/bytes.js';
import { merkleLeaf, merklePath, merkleRoot, rootFromPath } from '../../../src/ledger/index.js';

const sha = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

/** RFC 6962 §2.1 MTH, written from the definition with node:crypto (independent of merkle.ts). */
function referenceRoot(data: Uint8Array[]): Uint8Array {
  if (data.length === 0) return sha();
  if (data.length === 1) return sha(new Uint8Array([0]), data[0]!);
  let k = 1;
  while (k * 2 < data.length) k *= 2;
  return sha(new Uint8Array([1]), referenceRoot(data.slice(0, k)), referenceRoot(data.slice(k)));
}

const dataOf = (n: number): Uint8Array[] =>
  Array.from({ length: n }, (_, i) => new TextEncoder().encode(`tx-${i}`));

t.test('roots for sizes 0..33 match the recursive reference', async (t) => {
  for (let n = 0; n <= 33; n++) {
    const data = dataOf(n);
    t.equal(merkleRoot(data.map(merkleLeaf)), bytesToHex(referenceRoot(data)), `size ${n}`);
  }
  t.equal(merkleRoot([]), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'empty tree');
});

// The eight leaves of the RFC 6962 reference test data (certificate-transparency test vectors).
t.test('RFC 6962 reference roots', async (t) => {
  const leaves = [
    '',
    '00',
    '10',
    '2021',
    '3031',
    '40414243',
    '5051525354555657',
    '606162636465666768696a6b6c6d6e6f',
  ].map((h) => fromHex(h));
  const roots = [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  ];
  for (let n = 1; n <= 8; n++) {
    t.equal(merkleRoot(leaves.slice(0, n).map(merkleLeaf)), roots[n - 1], `size ${n}`);
  }
});

t.test('every leaf path verifies; wrong index, size, sibling or length fail', async (t) => {
  for (let n = 1; n <= 33; n++) {
    const leaves = dataOf(n).map(merkleLeaf);
    const root = merkleRoot(leaves);
    for (let i = 0; i < n; i++) {
      const where = `size ${n}, leaf ${i}`;
      const path = merklePath(leaves, i);
      t.equal(rootFromPath(leaves[i]!, i, n, path), root, `${where}: verifies`);
      if (n > 1) {
        const j = (i + 1) % n;
        t.not(rootFromPath(leaves[i]!, j, n, path), root, `${where}: wrong index ${j}`);
        t.not(rootFromPath(leaves[j]!, i, n, path), root, `${where}: another leaf`);
      }
      // With another size the path proves nothing about that tree: either its shape does not fit
      // (null) or it leads back to this tree's root, never to the other tree's.
      for (const size of [n - 1, n + 1, 2 * n]) {
        if (size <= i) continue;
        const other = merkleRoot(dataOf(size).map(merkleLeaf));
        t.not(rootFromPath(leaves[i]!, i, size, path), other, `${where}: wrong size ${size}`);
      }
      path.forEach((_, k) => {
        const bad = [...path];
        const sib = fromHex(bad[k]!);
        sib[0] = sib[0]! ^ 1;
        bad[k] = bytesToHex(sib);
        t.not(rootFromPath(leaves[i]!, i, n, bad), root, `${where}: sibling ${k} altered`);
      });
      t.equal(
        rootFromPath(leaves[i]!, i, n, [...path, path[0] ?? bytesToHex(sha())]),
        null,
        `${where}: extra step`,
      );
      if (path.length > 0)
        t.equal(rootFromPath(leaves[i]!, i, n, path.slice(1)), null, `${where}: missing step`);
    }
  }
});

t.test('rootFromPath refuses malformed arguments', async (t) => {
  const leaves = dataOf(5).map(merkleLeaf);
  const path = merklePath(leaves, 2);
  const cases: [string, () => string | null][] = [
    ['index = size', () => rootFromPath(leaves[2]!, 5, 5, path)],
    ['negative index', () => rootFromPath(leaves[2]!, -1, 5, path)],
    ['fractional index', () => rootFromPath(leaves[2]!, 1.5, 5, path)],
    ['size 0', () => rootFromPath(leaves[2]!, 0, 0, [])],
    ['unsafe size', () => rootFromPath(leaves[2]!, 2, 2 ** 60, path)],
    ['non-hex sibling', () => rootFromPath(leaves[2]!, 2, 5, ['zz', ...path.slice(1)])],
    ['short sibling', () => rootFromPath(leaves[2]!, 2, 5, ['abcd', ...path.slice(1)])],
  ];
  for (const [name, fn] of cases) t.equal(fn(), null, name);
  t.equal(rootFromPath(leaves[0]!, 0, 1, []), bytesToHex(leaves[0]!), 'single leaf: the leaf is the root');
});

t.test('property: random trees, every path verifies against the reference root', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 20 }), { minLength: 1, maxLength: 70 }),
      fc.nat(),
      (data, pick) => {
        const leaves = data.map(merkleLeaf);
        const i = pick % data.length;
        const root = bytesToHex(referenceRoot(data));
        return (
          merkleRoot(leaves) === root &&
          rootFromPath(leaves[i]!, i, data.length, merklePath(leaves, i)) === root
        );
      },
    ),
    { numRuns: 300 },
  );
  t.pass('held');
});
