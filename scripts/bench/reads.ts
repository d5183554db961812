/**
 * What a signed read costs, measured on the flow benchmark's testnet once its flows are done:
 * closed-loop reads by the subjects of completed flows at their platform nodes, in three kinds —
 *   anonymous tx   `GET /v1/txs/<grant>` unsigned (the explorer's redacted answer)
 *   signed tx      the same route, signed by the subject (verify, replay-guard claim, full body)
 *   signed view    `GET /v1/requests/<id>` signed by the subject, the read a flow makes
 * The first two differ only in the signed call: verifying it and claiming its nonce in the node's
 * replay guard, a synced LevelDB write that concurrent claims share (group commit). Reads/s and
 * latency at each concurrency say what that costs alone (one read in flight: a sync per read) and
 * under load (many in flight: claims batched).
 */
import { type CallTarget, signedCallHeaders, subjectCaller } from './fast-client.js';
import { httpCall } from './http-client.js';
import type { BenchKey } from './keys.js';
import { CpuMeter, latencySummary, note, printTable, round, sleep } from './report.js';

/** A completed flow the reads are made about. */
export interface ReadSubject {
  id: string;
  signing: BenchKey;
  request: string;
  grant: string;
  /** Base URL of the platform node the flow ran at, and its signed-call target. */
  api: string;
  target: CallTarget;
}

const KINDS = ['anonymous tx', 'signed tx', 'signed view'] as const;
type ReadKind = (typeof KINDS)[number];

/** One kind of read at one concurrency. */
export interface ReadResult {
  kind: ReadKind;
  concurrency: number;
  reads: number;
  readsPerSecond: number;
  latencyMs: ReturnType<typeof latencySummary>;
  /** CPU the platform nodes spent per read, their idle work (measured before) taken out. */
  nodeCpuMsPerRead: number;
  /** Share of the machine other users' processes took meanwhile (cores). */
  othersCpu: number;
  /** Answers other than the expected one, by status. */
  errors: Record<string, number>;
}

/** Runs every kind at every concurrency for `durationMs` each; prints and returns the results. */
export async function measureReads(
  subjects: readonly ReadSubject[],
  options: { concurrency: readonly number[]; durationMs: number; nodePids: readonly number[] },
): Promise<ReadResult[]> {
  if (subjects.length === 0) throw new Error('no completed flow to read about');
  const results: ReadResult[] = [];
  // What the platform nodes burn with nobody reading (consensus on an idle chain), in cores.
  const idleMeter = new CpuMeter(options.nodePids);
  await sleep(2000);
  const idleCores = idleMeter.read().perPid.reduce((a, b) => a + b, 0);
  const once = async (kind: ReadKind, s: ReadSubject): Promise<string | undefined> => {
    const path = kind === 'signed view' ? `/v1/requests/${s.request}` : `/v1/txs/${s.grant}`;
    const headers =
      kind === 'anonymous tx'
        ? {}
        : signedCallHeaders('GET', path, '', subjectCaller(s.id), s.target, s.signing);
    const r = await httpCall('GET', `${s.api}${path}`, undefined, headers);
    if (r.status !== 200) return `HTTP_${r.status}`;
    // Each kind must get what it asked for: the redacted tx, the full tx, her request.
    const body = JSON.parse(r.text) as { tx?: { redacted?: boolean }; id?: string };
    if (kind === 'anonymous tx' && body.tx?.redacted !== true) return 'NOT_REDACTED';
    if (kind === 'signed tx' && body.tx?.redacted !== undefined) return 'REDACTED_FOR_HER';
    if (kind === 'signed view' && body.id !== s.request) return 'WRONG_VIEW';
    return undefined;
  };
  for (const concurrency of options.concurrency) {
    for (const kind of KINDS) {
      const latencies: number[] = [];
      const errors: Record<string, number> = {};
      let k = 0;
      const meter = new CpuMeter(options.nodePids);
      const started = performance.now();
      const end = started + options.durationMs;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (performance.now() < end) {
            const s = subjects[k++ % subjects.length]!;
            const t0 = performance.now();
            const error = await once(kind, s).catch((err: Error) => err.message.slice(0, 40));
            if (error) errors[error] = (errors[error] ?? 0) + 1;
            else latencies.push(performance.now() - t0);
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const cpu = meter.read();
      const nodeCores = Math.max(0, cpu.perPid.reduce((a, b) => a + b, 0) - idleCores);
      results.push({
        kind,
        concurrency,
        reads: latencies.length,
        readsPerSecond: round(latencies.length / seconds),
        latencyMs: latencySummary(latencies),
        nodeCpuMsPerRead: round((nodeCores * cpu.seconds * 1000) / Math.max(1, latencies.length), 3),
        othersCpu: cpu.others,
        errors,
      });
    }
  }
  const anonymous = (c: number) => results.find((r) => r.kind === 'anonymous tx' && r.concurrency === c)!;
  printTable(
    'Signed reads: the same explorer route anonymous and signed by the subject, and her request view (closed loop, 2 platform nodes)',
    [
      'in flight',
      'kind',
      'reads/s',
      'p50 ms',
      'p99 ms',
      'p50 over anonymous',
      'node cpu ms/read',
      'others cpu',
      'errors',
    ],
    results.map((r) => [
      r.concurrency,
      r.kind,
      r.readsPerSecond,
      r.latencyMs.p50,
      r.latencyMs.p99,
      r.kind === 'anonymous tx'
        ? ''
        : `+${round(r.latencyMs.p50 - anonymous(r.concurrency).latencyMs.p50, 2)}`,
      r.nodeCpuMsPerRead,
      r.othersCpu,
      Object.keys(r.errors).length === 0 ? 0 : JSON.stringify(r.errors),
    ]),
  );
  for (const c of options.concurrency) {
    const a = anonymous(c);
    const signed = results.find((r) => r.kind === 'signed tx' && r.concurrency === c)!;
    note(
      `reads C=${c}: signed ${signed.readsPerSecond}/s vs anonymous ${a.readsPerSecond}/s ` +
        `(${round((signed.readsPerSecond / a.readsPerSecond) * 100, 0)}%), p50 ${signed.latencyMs.p50} vs ${a.latencyMs.p50} ms, ` +
        `node cpu ${signed.nodeCpuMsPerRead} vs ${a.nodeCpuMsPerRead} ms/read`,
    );
  }
  return results;
}
