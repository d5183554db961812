/**
 * Part 2, consensus throughput and latency: a 4-validator testnet of node processes over real
 * libp2p, driven open-loop at increasing offered rates with pre-signed `institution.add`
 * transactions spread over the four nodes; then the same against the one-validator dev chain.
 * Reports committed tx/s, commit latency, block size and CPU per node per step, the knee of the
 * curve, and each figure as a fraction of the crypto ceiling measured in this run.
 */
import type { CryptoCeiling } from './crypto.js';
import { CommitWatcher } from './http-client.js';
import {
  type LoadStepResult,
  prepareInstitutionAdds,
  runLoadStep,
  type SubmitMode,
  waitIdle,
} from './load.js';
import { type PipelineResult, runPipeline } from './pipeline.js';
import { monotonicUs, type ProfileWindow } from './profile-summary.js';
import { note, printTable, round, spread, writeResult } from './report.js';
import { type BenchTestnet, startBenchTestnet } from './testnet.js';

/** Options of part 2. */
export interface ConsensusBenchOptions {
  quick: boolean;
  ceiling: CryptoCeiling;
  /** The running 4-validator testnet to load. */
  net: BenchTestnet;
  /** Write node CPU profiles here (node --cpu-prof). */
  profileDir?: string;
}

interface Ladder {
  rates: number[];
  singleRates: number[];
  durationMs: number;
  warmupMs: number;
}

/** A step with its ratio to the ceiling. */
type StepRow = LoadStepResult & { ofCeiling: number };

/** Fewer blocks than this in a step's throughput window make its committed rate a matter of where block boundaries fell. */
const THIN_WINDOW_BLOCKS = 3;

/** The knee: the highest offered rate still committed in full (≥ 90%) with p99 under a second. */
export function kneeOf(steps: readonly LoadStepResult[]): LoadStepResult | undefined {
  let knee: LoadStepResult | undefined;
  for (const s of steps) {
    if (s.committedPerSecond >= 0.9 * s.offered && s.latencyMs.p99 < 1000 && s.lost === 0) {
      if (!knee || s.offered > knee.offered) knee = s;
    }
  }
  return knee;
}

async function runLadder(
  net: BenchTestnet,
  ladder: Ladder,
  ceilingTxs: number,
  label: string,
): Promise<{ batch: StepRow[]; single: StepRow[] }> {
  const prefix = `b${Date.now().toString(36)}`;
  let signed = 0;
  const watcher = new CommitWatcher(net.apis[0]!);
  await watcher.start();
  const run = async (rate: number, mode: SubmitMode): Promise<StepRow> => {
    // Signed before the step (not timed), with fresh names so every one applies.
    const count = Math.round((rate * ladder.durationMs) / 1000);
    const slice = prepareInstitutionAdds(
      net.chain,
      net.proposer,
      count,
      `${prefix}-${signed++}`,
      undefined,
      true,
    );
    await waitIdle(net.apis);
    const r = await runLoadStep({
      apis: net.apis,
      txs: slice,
      rate,
      durationMs: ladder.durationMs,
      mode,
      watcher,
      pids: net.pids,
      warmupMs: ladder.warmupMs,
      drainMs: 15_000,
    });
    note(
      `${label} ${mode} ${rate}/s → ${r.committedPerSecond}/s, p50 ${r.latencyMs.p50} p99 ${r.latencyMs.p99} ms, ` +
        `${r.txsPerBlock.mean} tx/block, cpu ${r.cpu.perPid.join('/')} (${r.cpuMsPerTx} ms/tx) bench ${r.cpu.bench} others ${r.cpu.others}` +
        (r.refused ? `, refused ${JSON.stringify(r.refusedCodes)}` : '') +
        (r.lost ? `, lost ${r.lost}` : '') +
        (r.blocks < THIN_WINDOW_BLOCKS
          ? `; only ${r.blocks} block(s) in the window, so this rate is uncertain (blocks: ${r.timeline.map(([h, n, at]) => `${h}:${n}@${at}ms`).join(' ')})`
          : ''),
    );
    return { ...r, ofCeiling: round(r.committedPerSecond / ceilingTxs, 3) };
  };
  const batch: StepRow[] = [];
  try {
    // Warm-up, not reported: the first load a fresh node sees pays for JIT compilation.
    const warm = await run(ladder.rates[0]!, 'batch');
    note(`${label}: warm-up step at ${warm.offered}/s done (not reported)`);
    for (const rate of ladder.rates) {
      const r = await run(rate, 'batch');
      batch.push(r);
      // Far past the knee (twice in a row): higher rates only add queueing.
      const previous = batch[batch.length - 2];
      if (
        r.committedPerSecond < 0.5 * rate &&
        previous &&
        previous.committedPerSecond < 0.5 * previous.offered
      )
        break;
    }
    const single: StepRow[] = [];
    for (const rate of ladder.singleRates) single.push(await run(rate, 'single'));
    return { batch, single };
  } finally {
    watcher.stop();
  }
}

function printSteps(title: string, rows: StepRow[]): void {
  printTable(
    title,
    [
      'mode',
      'offered/s',
      'committed/s',
      'of ceiling',
      'p50 ms',
      'p95 ms',
      'p99 ms',
      'tx/block',
      'blocks/s',
      'cpu/node',
      'cpu ms/tx',
      'bench cpu',
      'others cpu',
      'refused',
      'lost',
    ],
    rows.map((r) => [
      r.mode,
      r.offered,
      r.committedPerSecond,
      `${Math.round(r.ofCeiling * 100)}%`,
      r.latencyMs.p50,
      r.latencyMs.p95,
      r.latencyMs.p99,
      r.txsPerBlock.mean,
      r.blocksPerSecond,
      r.cpu.perPid.map((x) => x.toFixed(2)).join(' '),
      r.cpuMsPerTx,
      r.cpu.bench,
      r.cpu.others,
      r.refused,
      r.lost,
    ]),
  );
}

/** Runs part 2 and writes bench-results/consensus.json. */
export async function runConsensus(options: ConsensusBenchOptions): Promise<ProfileWindow> {
  const { quick, ceiling } = options;
  const pbftLadder: Ladder = quick
    ? // Saturated blocks come seconds apart: an 8 s step leaves a 6 s window for several of them.
      { rates: [200, 500, 800], singleRates: [500], durationMs: 8000, warmupMs: 2000 }
    : {
        rates: [100, 250, 500, 750, 1000, 1500, 2000, 3000],
        singleRates: [250, 1000],
        durationMs: 10_000,
        warmupMs: 2000,
      };
  const devLadder: Ladder = quick
    ? { rates: [1000, 3000], singleRates: [], durationMs: 4000, warmupMs: 1000 }
    : {
        rates: [1000, 2000, 3000, 4000, 6000, 8000],
        singleRates: [2000],
        durationMs: 10_000,
        warmupMs: 2000,
      };

  const results: Record<string, unknown> = {};
  const window: ProfileWindow = { fromUs: 0, toUs: 0 };
  const settings: Record<string, unknown> = {
    pbftLadder,
    devLadder,
    txKind: 'gov.propose of an institution.add (council-signed)',
  };

  const pbft = options.net;
  const pbftCeiling = ceiling.verifyPerMachine / 4;
  {
    settings.pbft = { consensus: pbft.consensus, maxBlockTxs: pbft.maxBlockTxs };
    window.fromUs = monotonicUs();
    const r = await runLadder(pbft, pbftLadder, pbftCeiling, '4 validators');
    window.toUs = monotonicUs();
    const knee = kneeOf(r.batch);
    const best = Math.max(...r.batch.map((s) => s.committedPerSecond));
    results.pbft = {
      validators: 4,
      ceilingTxPerSecond: round(pbftCeiling),
      steps: r.batch,
      singleTxHttp: r.single,
      knee: knee
        ? { offered: knee.offered, committedPerSecond: knee.committedPerSecond, p99: knee.latencyMs.p99 }
        : null,
      maxCommittedPerSecond: best,
      maxOfCeiling: round(best / pbftCeiling, 3),
    };
    printSteps(
      `Part 2 — 4 validators (processes, libp2p), open loop; ceiling ${Math.round(pbftCeiling)} tx/s ` +
        `(${Math.round(ceiling.opensslVerifyPerCore)} verifies/s/core × ${ceiling.cores} cores ÷ 4 validators)`,
      [...r.batch, ...r.single],
    );
    process.stdout.write(
      `  knee: ${knee ? `${knee.offered}/s offered → ${knee.committedPerSecond}/s committed, p99 ${knee.latencyMs.p99} ms` : 'none (first step already saturated)'}; ` +
        `max committed ${best}/s = ${Math.round((best / pbftCeiling) * 100)}% of ceiling\n`,
    );
  }

  // The node code's own cost per transaction, without libp2p and HTTP: far steadier than tx/s here.
  const pipelineRuns: PipelineResult[] = [];
  for (let i = 0; i < (quick ? 2 : 3); i++)
    pipelineRuns.push(await runPipeline({ txs: quick ? 2000 : 6000, blockTxs: 500 }));
  const verifyMs = 1000 / ceiling.opensslVerifyPerCore;
  const pipeline = {
    runs: pipelineRuns,
    cpuMsPerTx: spread(pipelineRuns.map((r) => r.cpuMsPerTx)),
    verifyMsPerTx: round(4 * verifyMs, 4),
    signatureShare: round((4 * verifyMs) / spread(pipelineRuns.map((r) => r.cpuMsPerTx)).median, 3),
  };
  results.pipeline = pipeline;
  const stages = Object.keys(pipelineRuns[0]!.stagesMsPerTx);
  printTable(
    `Part 2 — ledger pipeline in one process (4 validators' mempools, block building, validation, votes, LevelDB commits; no network): CPU ms per tx`,
    ['run', 'cpu ms/tx', ...stages, 'tx/s per core', '4 verifies ms'],
    pipelineRuns.map((r, i) => [
      i + 1,
      r.cpuMsPerTx,
      ...stages.map((k) => r.stagesMsPerTx[k]!),
      r.txPerCoreSecond,
      pipeline.verifyMsPerTx,
    ]),
  );
  process.stdout.write(
    `  signature checks are ${Math.round(pipeline.signatureShare * 100)}% of the node code's CPU per tx (median ${pipeline.cpuMsPerTx.median} ms, spread ${pipeline.cpuMsPerTx.spread})\n`,
  );

  note('consensus: starting the 1-validator dev chain');
  const dev = await startBenchTestnet({
    validators: 1,
    chain: 'datagrant-bench-dev',
    ...(options.profileDir ? { profileDir: `${options.profileDir}/dev` } : {}),
  });
  const devCeiling = ceiling.verifyPerMachine;
  try {
    settings.dev = { consensus: dev.consensus, maxBlockTxs: dev.maxBlockTxs };
    const r = await runLadder(dev, devLadder, devCeiling, 'dev chain');
    const knee = kneeOf(r.batch);
    const best = Math.max(...r.batch.map((s) => s.committedPerSecond));
    results.dev = {
      validators: 1,
      ceilingTxPerSecond: round(devCeiling),
      steps: r.batch,
      singleTxHttp: r.single,
      knee: knee
        ? { offered: knee.offered, committedPerSecond: knee.committedPerSecond, p99: knee.latencyMs.p99 }
        : null,
      maxCommittedPerSecond: best,
      maxOfCeiling: round(best / devCeiling, 3),
    };
    printSteps(
      `Part 2 — 1-validator dev chain, open loop; ceiling ${Math.round(devCeiling)} tx/s (all cores ÷ 1 validator)`,
      [...r.batch, ...r.single],
    );
  } finally {
    await dev.close();
  }
  const path = await writeResult('consensus', settings, { ceiling, ...results });
  note(`wrote ${path}`);
  return window;
}
