/**
 * Open-loop load: pre-signed transactions are submitted on a fixed schedule (i / rate seconds
 * after the start, whatever happened to earlier ones), spread round-robin over the nodes, one
 * HTTP request per transaction ('single') or in batches per node per 20 ms tick ('batch', as a
 * bank's gateway that forwards what its clients sent in the last 20 ms would). Commit latency runs from the
 * scheduled submission time to the block announcement on the event stream, so a slow node
 * cannot hide its queueing (no coordinated omission).
 */
import { bytesToHex } from '../../src/common/bytes.js';
import { randomBytes } from '../../src/common/crypto.js';
import { signFast } from '../../src/common/crypto-node.js';
import type { KeySet } from '../../src/common/keyfile.js';
import { signTx, txHash } from '../../src/ledger/index.js';
import { type CommitWatcher, httpCall, jsonCall } from './http-client.js';
import { CpuMeter, latencySummary, round, sleep } from './report.js';

/** A signed transaction ready to send. */
export interface PreparedTx {
  hash: string;
  json: string;
}

/**
 * Signs `count` `institution.add` transactions with a legacy admin key, or with `asProposal` the
 * same changes as council proposals (`gov.propose`, open until the transaction expires): cheap
 * kinds that always apply (each names a new institution with fresh keys), so the ledger accepts
 * every one.
 */
export function prepareInstitutionAdds(
  chain: string,
  admin: KeySet,
  count: number,
  prefix: string,
  ttlMs = 50 * 60 * 1000,
  asProposal = false,
): PreparedTx[] {
  const out: PreparedTx[] = [];
  const expires = Date.now() + ttlMs;
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${i.toString(36)}`;
    const change = {
      institution: id,
      name: `Bench institution ${i}`,
      signKey: bytesToHex(randomBytes(32)),
      encKey: bytesToHex(randomBytes(32)),
    };
    const tx = signTx(
      asProposal
        ? {
            chain,
            kind: 'gov.propose',
            body: { change: { type: 'institution.add', ...change }, deadline: expires },
            expires,
          }
        : { chain, kind: 'institution.add', body: change, expires },
      admin.signing.publicKey,
      admin.signing.secretKey,
      Date.now(),
      signFast,
    );
    out.push({ hash: txHash(tx), json: JSON.stringify(tx) });
  }
  return out;
}

/** How transactions reach the nodes. */
export type SubmitMode = 'single' | 'batch';

/** Settings of one load step. */
export interface LoadStep {
  apis: string[];
  txs: PreparedTx[];
  /** Offered transactions per second. */
  rate: number;
  durationMs: number;
  mode: SubmitMode;
  watcher: CommitWatcher;
  /** Node process ids for CPU accounting. */
  pids: number[];
  /** Leading part of the step left out of the throughput window (ramp-up). */
  warmupMs: number;
  /** Longest wait after the last submission for stragglers to commit. */
  drainMs: number;
  /** Scheduler tick: how often batches are posted (default 20 ms in batch mode, 5 ms single). */
  tickMs?: number;
}

/** What one load step measured. */
export interface LoadStepResult {
  mode: SubmitMode;
  offered: number;
  submitted: number;
  refused: number;
  refusedCodes: Record<string, number>;
  /** Transactions committed per second inside the measurement window. */
  committedPerSecond: number;
  /** Of the step's transactions, how many committed before the drain ended. */
  committed: number;
  lost: number;
  latencyMs: ReturnType<typeof latencySummary>;
  blocks: number;
  blocksPerSecond: number;
  txsPerBlock: { mean: number; max: number };
  /**
   * Every block announced from the step's start to the end of its drain: [height, tx count, ms
   * after the step's start]. With blocks seconds apart, a window holding few of them measures
   * where the block boundaries fell more than the throughput.
   */
  timeline: [height: number, txs: number, atMs: number][];
  cpu: ReturnType<CpuMeter['read']>;
  /** CPU milliseconds all nodes together spent per committed transaction (robust to a noisy machine). */
  cpuMsPerTx: number;
  /** Submission lag: how late the scheduler sent the last transaction, in ms. */
  schedulerLagMs: number;
}

/** Runs one open-loop step and waits for its transactions to commit (or the drain to time out). */
export async function runLoadStep(step: LoadStep): Promise<LoadStepResult> {
  const { apis, txs, rate, durationMs, mode, watcher } = step;
  const total = Math.min(txs.length, Math.round((rate * durationMs) / 1000));
  if (total > txs.length) throw new Error('not enough prepared transactions');
  watcher.clear();
  const refusedCodes: Record<string, number> = {};
  let refused = 0;
  const refuse = (code: string, n = 1) => {
    refused += n;
    refusedCodes[code] = (refusedCodes[code] ?? 0) + n;
  };
  const pending: Promise<void>[] = [];
  const interval = 1000 / rate;
  const tick = step.tickMs ?? (mode === 'batch' ? 20 : 5);
  const t0 = performance.now();
  let meter: CpuMeter | undefined;

  let sent = 0;
  let lag = 0;
  while (sent < total) {
    const now = performance.now();
    if (meter === undefined && now - t0 >= step.warmupMs) meter = new CpuMeter(step.pids);
    const due = Math.min(total, Math.floor((now - t0) / interval) + 1);
    if (due > sent) {
      lag = now - (t0 + (due - 1) * interval);
      if (mode === 'single') {
        for (let i = sent; i < due; i++) {
          const api = apis[i % apis.length]!;
          pending.push(
            httpCall('POST', `${api}/v1/txs`, txs[i]!.json).then(
              (r) => {
                if (r.status !== 202) refuse(codeOf(r.text, r.status));
              },
              () => refuse('HTTP_FAILED'),
            ),
          );
        }
      } else {
        const byNode: string[][] = apis.map(() => []);
        for (let i = sent; i < due; i++) byNode[i % apis.length]!.push(txs[i]!.json);
        byNode.forEach((list, k) => {
          for (let start = 0; start < list.length; start += 256) {
            const chunk = list.slice(start, start + 256);
            pending.push(
              httpCall('POST', `${apis[k]}/v1/txs/batch`, `[${chunk.join(',')}]`).then(
                (r) => {
                  if (r.status !== 200) return refuse(codeOf(r.text, r.status), chunk.length);
                  const { results } = JSON.parse(r.text) as { results: { error?: { code: string } }[] };
                  for (const x of results) if (x.error) refuse(x.error.code);
                },
                () => refuse('HTTP_FAILED', chunk.length),
              ),
            );
          }
        });
      }
      sent = due;
    }
    if (sent < total) await sleep(tick);
  }
  const end = t0 + durationMs;
  while (performance.now() < end) await sleep(tick);
  const cpu = (meter ?? new CpuMeter(step.pids)).read();
  const windowStart = t0 + step.warmupMs;
  await Promise.all(pending);

  // Drain: wait while commits keep coming, up to drainMs.
  const mine = txs.slice(0, total);
  const drainEnd = performance.now() + step.drainMs;
  let last = -1;
  let stalledSince = performance.now();
  while (performance.now() < drainEnd) {
    let done = 0;
    for (const tx of mine) if (watcher.committedAt.has(tx.hash)) done++;
    if (done + refused >= total) break;
    if (done !== last) {
      last = done;
      stalledSince = performance.now();
    } else if (performance.now() - stalledSince > 8000) break;
    await sleep(100);
  }

  const latencies: number[] = [];
  for (let i = 0; i < total; i++) {
    const at = watcher.committedAt.get(mine[i]!.hash);
    if (at !== undefined) latencies.push(at - (t0 + i * interval));
  }
  const inWindow = watcher.blocks.filter((b) => b.at >= windowStart && b.at <= end);
  const windowSeconds = (end - windowStart) / 1000;
  const txsInWindow = inWindow.reduce((a, b) => a + b.txCount, 0);
  const nonEmpty = inWindow.filter((b) => b.txCount > 0);
  return {
    mode,
    offered: rate,
    submitted: total,
    refused,
    refusedCodes,
    committedPerSecond: round(txsInWindow / windowSeconds),
    committed: latencies.length,
    lost: total - refused - latencies.length,
    latencyMs: latencySummary(latencies),
    blocks: inWindow.length,
    blocksPerSecond: round(inWindow.length / windowSeconds, 2),
    txsPerBlock: {
      mean: round(nonEmpty.length ? txsInWindow / nonEmpty.length : 0),
      max: Math.max(0, ...inWindow.map((b) => b.txCount)),
    },
    timeline: watcher.blocks
      .filter((b) => b.at >= t0)
      .map((b): [number, number, number] => [b.height, b.txCount, Math.round(b.at - t0)]),
    cpu,
    cpuMsPerTx: round(
      (cpu.perPid.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0) * 1000) /
        Math.max(1e-9, txsInWindow / windowSeconds),
      3,
    ),
    schedulerLagMs: round(lag),
  };
}

function codeOf(text: string, status: number): string {
  try {
    return (JSON.parse(text) as { error: { code: string } }).error.code;
  } catch {
    return `HTTP_${status}`;
  }
}

/** Waits until every node's mempool is empty (or `timeoutMs` passes). */
export async function waitIdle(apis: string[], timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const sizes = await Promise.all(
      apis.map((api) =>
        jsonCall<{ mempool: number }>('GET', `${api}/v1/status`).then(
          (s) => s.mempool,
          () => Number.POSITIVE_INFINITY,
        ),
      ),
    );
    if (sizes.every((s) => s === 0)) return true;
    await sleep(200);
  }
  return false;
}
