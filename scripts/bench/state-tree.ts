/**
 * `npm run bench -- --part state-tree`: the authenticated-state candidates side by side, in one
 * process and one run (ratios hold on a noisy machine where absolute times do not):
 *   sparse-merkle   datagrant's binary sparse Merkle tree with shortcut leaves (src/ledger/state-tree.ts)
 *   mpt             @ethereumjs/mpt (Merkle Patricia trie) with SHA-256 keys and hashing, in memory
 * Both over OpenSSL's SHA-256, both in memory, so the figures compare the trees, not the stores.
 * For each size: µs per update in blocks of 1,000 updates (70% changes of existing keys, 30% new),
 * µs to make and to check one proof, and the proof's size.
 */
import { createHash } from 'node:crypto';
import { createMerkleProof, createMPT, verifyMerkleProof } from '@ethereumjs/mpt';
import { utf8ToBytes } from '../../src/common/bytes.js';
import '../../src/common/crypto-node.js';
import { sha256 } from '../../src/common/crypto.js';
import {
  MemoryTreeNodeStore,
  StateTree,
  type TreeUpdate,
  verifyStateProof,
} from '../../src/ledger/state-tree.js';
import { note, writeResult } from './report.js';

const opensslSha256 = (data: Uint8Array): Uint8Array =>
  new Uint8Array(createHash('sha256').update(data).digest());

interface Figures {
  entries: number;
  updateUs: number;
  proveUs: number;
  verifyUs: number;
  proofBytes: number;
}

const NEW_KEYS = 1_000_000_000;
const key = (i: number) => utf8ToBytes(`grant/${i.toString(36)}`);
const value = (i: number, round: number) => utf8ToBytes(JSON.stringify({ status: 'live', uses: round, i }));

/** Keys of one block of updates over a map of `n` entries: 70% existing, 30% new. */
function blockKeys(n: number, next: number, size: number, seed: number): number[] {
  const out: number[] = [];
  let x = seed;
  for (let j = 0; j < size; j++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out.push(j % 10 < 7 ? x % n : next + j);
  }
  return [...new Set(out)];
}

async function sparseMerkle(sizes: number[], blocks: number): Promise<Figures[]> {
  const out: Figures[] = [];
  // Every block prunes what only the previous root referenced, as a node does past its retention.
  const store = new MemoryTreeNodeStore();
  const tree = new StateTree(store);
  let version = 0;
  const commit = (updates: TreeUpdate[]) => {
    tree.apply(updates, ++version);
    store.prune(version);
  };
  let filled = 0;
  for (const n of sizes) {
    for (; filled < n; filled += 1000) {
      const batch: [Uint8Array, Uint8Array][] = [];
      for (let i = filled; i < Math.min(n, filled + 1000); i++)
        batch.push([sha256(key(i)), sha256(value(i, 0))]);
      commit(batch);
    }
    // New keys come from their own range, so the next size's fill is unchanged by them.
    let next = NEW_KEYS + n * 100;
    const t0 = performance.now();
    let updates = 0;
    for (let b = 0; b < blocks; b++) {
      const keys = blockKeys(n, next, 1000, b + 1);
      next += 1000;
      commit(keys.map((i) => [sha256(key(i)), sha256(value(i, b + 1))]));
      updates += keys.length;
    }
    const updateUs = ((performance.now() - t0) * 1000) / updates;
    const probe = sha256(key(Math.floor(n / 2)));
    const reps = 2000;
    const t1 = performance.now();
    let proof = tree.prove(probe);
    for (let r = 1; r < reps; r++) proof = tree.prove(probe);
    const proveUs = ((performance.now() - t1) * 1000) / reps;
    const valueHash = tree.get(probe)!;
    const t2 = performance.now();
    for (let r = 0; r < reps; r++)
      if (!verifyStateProof(tree.root, probe, valueHash, proof).ok) throw new Error('proof failed');
    const verifyUs = ((performance.now() - t2) * 1000) / reps;
    out.push({ entries: n, updateUs, proveUs, verifyUs, proofBytes: JSON.stringify(proof).length });
  }
  return out;
}

async function mpt(sizes: number[], blocks: number): Promise<Figures[]> {
  const out: Figures[] = [];
  const trie = await createMPT({ useKeyHashing: true, useKeyHashingFunction: opensslSha256 });
  let filled = 0;
  for (const n of sizes) {
    for (; filled < n; filled += 1000) {
      const ops = [];
      for (let i = filled; i < Math.min(n, filled + 1000); i++)
        ops.push({ type: 'put' as const, key: key(i), value: value(i, 0) });
      await trie.batch(ops);
    }
    // New keys come from their own range, so the next size's fill is unchanged by them.
    let next = NEW_KEYS + n * 100;
    const t0 = performance.now();
    let updates = 0;
    for (let b = 0; b < blocks; b++) {
      const keys = blockKeys(n, next, 1000, b + 1);
      next += 1000;
      await trie.batch(keys.map((i) => ({ type: 'put' as const, key: key(i), value: value(i, b + 1) })));
      updates += keys.length;
    }
    const updateUs = ((performance.now() - t0) * 1000) / updates;
    const probe = key(Math.floor(n / 2));
    const reps = 500;
    const t1 = performance.now();
    let proof = await createMerkleProof(trie, probe);
    for (let r = 1; r < reps; r++) proof = await createMerkleProof(trie, probe);
    const proveUs = ((performance.now() - t1) * 1000) / reps;
    const root = trie.root();
    const t2 = performance.now();
    for (let r = 0; r < reps; r++)
      await verifyMerkleProof(probe, proof, {
        useKeyHashing: true,
        useKeyHashingFunction: opensslSha256,
        root,
      });
    const verifyUs = ((performance.now() - t2) * 1000) / reps;
    out.push({
      entries: n,
      updateUs,
      proveUs,
      verifyUs,
      proofBytes: proof.reduce((s, p) => s + p.length, 0),
    });
  }
  return out;
}

/** Runs the comparison and writes `bench-results/state-tree.json`. */
export async function runStateTree(options: { quick: boolean }): Promise<void> {
  const sizes = options.quick ? [1_000, 10_000] : [1_000, 10_000, 100_000, 300_000];
  const blocks = options.quick ? 3 : 10;
  note(`state tree candidates: ${sizes.join(', ')} entries, ${blocks} blocks of 1,000 updates each`);
  const ours = await sparseMerkle(sizes, blocks);
  const theirs = await mpt(sizes, blocks);
  process.stdout.write(
    '\n| entries | sparse-merkle µs/update | mpt µs/update | ratio | prove µs (smt / mpt) | verify µs (smt / mpt) | proof bytes (smt hex JSON / mpt RLP) |\n|---|---|---|---|---|---|---|\n',
  );
  for (let i = 0; i < sizes.length; i++) {
    const a = ours[i]!;
    const b = theirs[i]!;
    process.stdout.write(
      `| ${a.entries.toLocaleString('en')} | ${a.updateUs.toFixed(1)} | ${b.updateUs.toFixed(1)} | ${(b.updateUs / a.updateUs).toFixed(2)}× | ${a.proveUs.toFixed(1)} / ${b.proveUs.toFixed(1)} | ${a.verifyUs.toFixed(1)} / ${b.verifyUs.toFixed(1)} | ${a.proofBytes} / ${b.proofBytes} |\n`,
    );
  }
  const path = await writeResult(
    'state-tree',
    { sizes, blocks, blockSize: 1000 },
    { sparseMerkle: ours, mpt: theirs },
  );
  note(`wrote ${path}`);
}
