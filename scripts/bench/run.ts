/**
 * `npm run bench`: the benchmark suite. Parts run in order and each writes
 * `bench-results/<part>.json`:
 *   crypto     Ed25519 / SHA-256 / AEAD ceilings on one core
 *   consensus  open-loop load on a 4-validator testnet of processes (and the 1-validator dev chain)
 *   flows      complete business flows (request → extraction → grant → document → usage)
 *   growth     per-block and per-query time as the chain grows (in-process, LevelDB)
 *   state-tree the authenticated-state candidates (sparse Merkle tree, Merkle Patricia trie) side by side
 *
 *   npm run bench                          full run (see BENCHMARKS.md)
 *   npm run bench -- --quick               smaller sizes, under 3 minutes
 *   npm run bench -- --part consensus      one part (repeatable: --part crypto --part growth)
 *   npm run bench -- --part growth --replay-guard per-tx
 *                                          growth with one replay-guard entry per transaction (A/B)
 *   npm run bench -- --part growth --state heap
 *                                          growth with the state's caches unbounded (A/B of the heap)
 */
import '../../src/common/polyfill.js';
import { parseArgs } from 'node:util';
import { syntheticSourceConfig } from '../synthetic-data-platform.js';
import { runConsensus } from './consensus.js';
import { measureCeiling, runCrypto } from './crypto.js';
import { runFlows, startSourceProcess } from './flows.js';
import { runGrowth } from './growth.js';
import { waitIdle } from './load.js';
import { type ProfileWindow, writeProfileSummary } from './profile-summary.js';
import { machineInfo, note } from './report.js';
import { runStateTree } from './state-tree.js';
import { startBenchTestnet } from './testnet.js';

const PARTS = ['crypto', 'consensus', 'flows', 'growth', 'state-tree'] as const;
type Part = (typeof PARTS)[number];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    part: { type: 'string', multiple: true },
    'cpu-prof': { type: 'boolean', default: false },
    state: { type: 'string', default: 'disk' },
    'growth-target': { type: 'string' },
    'replay-guard': { type: 'string', default: 'per-block' },
    'tree-node-cache': { type: 'string' },
  },
});

async function main(): Promise<void> {
  const quick = values.quick ?? false;
  const wanted = (values.part ?? [...PARTS]) as Part[];
  for (const p of wanted)
    if (!PARTS.includes(p)) throw new Error(`unknown part ${p}; one of ${PARTS.join(', ')}`);
  const started = performance.now();
  const m = machineInfo();
  process.stdout.write(
    `datagrant bench${quick ? ' (quick)' : ''}: ${m.cores} × ${m.cpuModel}, Node ${m.node}, load ${m.loadAverage.join(' ')}\n`,
  );
  const ceiling = wanted.includes('crypto') ? await runCrypto({ quick }) : measureCeiling();
  if (!wanted.includes('crypto'))
    note(`ceiling measured briefly: ${Math.round(ceiling.opensslVerifyPerCore)} OpenSSL verifies/s/core`);
  const profileDir = values['cpu-prof'] ? 'bench-results/profiles' : undefined;
  if (wanted.includes('consensus') || wanted.includes('flows')) {
    const source = await startSourceProcess();
    note(`synthetic data platform (generated records) at ${source.url}`);
    note('starting a 4-validator testnet of node processes (2 platform, 2 extractor nodes)');
    const net = await startBenchTestnet({
      validators: 4,
      chain: 'datagrant-bench',
      sources: [syntheticSourceConfig(source.url) as unknown as Record<string, unknown>],
      ...(profileDir ? { profileDir: `${profileDir}/testnet` } : {}),
    });
    let window: ProfileWindow | undefined;
    try {
      if (wanted.includes('consensus'))
        window = await runConsensus({ quick, ceiling, net, ...(profileDir ? { profileDir } : {}) });
      if (wanted.includes('flows')) {
        await waitIdle(net.apis, 60_000);
        await runFlows({ quick, ceiling, net, source });
      }
    } finally {
      await net.close();
      await source.close();
    }
    if (profileDir && window) await writeProfileSummary(`${profileDir}/testnet`, window);
  }
  if (values.state !== 'disk' && values.state !== 'heap') throw new Error('--state is disk or heap');
  const guard = values['replay-guard'];
  if (guard !== 'per-block' && guard !== 'per-tx') throw new Error('--replay-guard is per-block or per-tx');
  if (wanted.includes('growth'))
    await runGrowth({
      quick,
      verifyPerCore: ceiling.opensslVerifyPerCore,
      state: values.state,
      replayGuard: guard,
      ...(values['growth-target'] ? { target: Number(values['growth-target']) } : {}),
      ...(values['tree-node-cache'] ? { treeNodeCache: Number(values['tree-node-cache']) } : {}),
    });
  if (wanted.includes('state-tree')) await runStateTree({ quick });
  process.stdout.write(`\nbench done in ${Math.round((performance.now() - started) / 1000)} s\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
