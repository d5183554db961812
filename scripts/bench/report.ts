/**
 * What every benchmark part shares: the machine description, percentiles and spread, CPU
 * accounting from /proc, table printing and the JSON result file.
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';

/** The machine a result was measured on. */
export interface MachineInfo {
  cores: number;
  cpuModel: string;
  node: string;
  platform: string;
  memoryMiB: number;
  /** 1, 5 and 15 minute load averages when the part started. */
  loadAverage: number[];
}

/** Describes this machine now. */
export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cores: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    memoryMiB: Math.round(totalmem() / 1024 / 1024),
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** Where results go (gitignored). */
export const RESULTS_DIR = 'bench-results';

/** Writes `bench-results/<part>.json` with the machine, settings and figures; returns its path. */
export async function writeResult(part: string, settings: unknown, figures: unknown): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${part}.json`);
  const doc = {
    part,
    at: new Date().toISOString(),
    machine: machineInfo(),
    settings,
    figures,
  };
  await writeFile(path, `${JSON.stringify(doc, null, 2)}\n`);
  return path;
}

/** The p-th percentile (0..100) of sorted numbers, nearest rank; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** p50/p95/p99/max of unsorted samples (ms or whatever unit they are in). */
export function latencySummary(samples: readonly number[]): {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
} {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.length === 0 ? Number.NaN : sorted.reduce((a, b) => a + b, 0) / sorted.length;
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? Number.NaN),
    mean: round(mean),
  };
}

/** Median, min and max of repeated measurements, and the spread (max-min)/median. */
export function spread(samples: readonly number[]): {
  median: number;
  min: number;
  max: number;
  spread: number;
} {
  const sorted = [...samples].sort((a, b) => a - b);
  const median = percentile(sorted, 50);
  const min = sorted[0] ?? Number.NaN;
  const max = sorted[sorted.length - 1] ?? Number.NaN;
  return { median: round(median), min: round(min), max: round(max), spread: round((max - min) / median, 3) };
}

/** Rounds to `digits` decimals (1 by default). */
export function round(x: number, digits = 1): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Formats a number compactly for tables. */
export function fmt(x: number | string | undefined | null): string {
  if (x === undefined || x === null) return '-';
  if (typeof x === 'string') return x;
  if (!Number.isFinite(x)) return '-';
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** Prints a table with a title; `rows` are arrays of cells in `header` order. */
export function printTable(
  title: string,
  header: string[],
  rows: (number | string | undefined | null)[][],
): void {
  const cells = rows.map((r) => r.map(fmt));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  const out = [
    `\n${title}`,
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...cells.map(line),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

/** Progress and notes, to stderr so tables stay clean on stdout. */
export function note(text: string): void {
  process.stderr.write(`  · ${text}\n`);
}

const CLOCK_TICKS = 100;

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat; undefined if gone. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** Machine-wide busy and total CPU seconds (all cores) from /proc/stat. */
export function machineCpuSeconds(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: (total - idle) / CLOCK_TICKS, total: total / CLOCK_TICKS };
  } catch {
    return { busy: Number.NaN, total: Number.NaN };
  }
}

/** Measures CPU use of some processes (and of the machine) over an interval. */
export class CpuMeter {
  private readonly start: Map<number, number>;
  private readonly machine = machineCpuSeconds();
  private readonly self = process.cpuUsage();
  private readonly at = performance.now();

  constructor(private readonly pids: readonly number[]) {
    this.start = new Map(pids.map((pid) => [pid, processCpuSeconds(pid) ?? Number.NaN]));
  }

  /**
   * CPU used since construction, in cores (1.0 = one core busy the whole time): per pid, for this
   * (bench) process, for the whole machine, and what the rest of the machine used (other users).
   */
  read(): { perPid: number[]; bench: number; machine: number; others: number; seconds: number } {
    const seconds = (performance.now() - this.at) / 1000;
    const perPid = this.pids.map(
      (pid) => ((processCpuSeconds(pid) ?? Number.NaN) - this.start.get(pid)!) / seconds,
    );
    const self = process.cpuUsage(this.self);
    const bench = (self.user + self.system) / 1e6 / seconds;
    const m = machineCpuSeconds();
    const machine = (m.busy - this.machine.busy) / seconds;
    const ours = perPid.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0) + bench;
    return {
      perPid: perPid.map((x) => round(x, 2)),
      bench: round(bench, 2),
      machine: round(machine, 2),
      others: round(Math.max(0, machine - ours), 2),
      seconds: round(seconds, 2),
    };
  }
}

/** Sleeps. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
