/**
 * Summarises V8 CPU profiles (`node --cpu-prof` output, e.g. from `npm run bench -- --cpu-prof`):
 * self time by function and by package/source area, so "what bounds throughput" has evidence.
 *
 *   node --import tsx scripts/bench/profile-summary.ts bench-results/profiles/consensus/*.cpuprofile
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { note, printTable, round, writeResult } from './report.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A window of the monotonic clock (µs, as `process.hrtime` and V8 profiles count it). */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
}

/** Self time per node id, in microseconds, from samples and time deltas (only inside `window`). */
function selfTimes(profile: Profile, window?: ProfileWindow): Map<number, number> {
  const out = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    const id = profile.samples[i]!;
    out.set(id, (out.get(id) ?? 0) + delta);
  }
  return out;
}

/** Now on the monotonic clock V8 profiles use, in µs. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Coarse area of a source URL: a package name, a src/ folder, or a node/V8 bucket. */
export function areaOf(url: string, name: string): string {
  if (name === '(garbage collector)') return '(gc)';
  if (name === '(idle)' || name === '(program)') return name;
  if (url === '') return '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 13).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const src = url.indexOf('/src/');
  if (src >= 0)
    return `src/${url
      .slice(src + 5)
      .split('/')
      .slice(0, 2)
      .join('/')}`;
  if (url.startsWith('node:')) return url.split('/')[0]!;
  return url.split('/').slice(-1)[0]!;
}

/** Aggregated self time of one or more profiles. */
export async function summarise(
  paths: string[],
  window?: ProfileWindow,
): Promise<{
  totalMs: number;
  byFunction: [string, number][];
  byArea: [string, number][];
}> {
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let total = 0;
  for (const path of paths) {
    const profile = JSON.parse(await readFile(path, 'utf8')) as Profile;
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    for (const [id, us] of selfTimes(profile, window)) {
      const node = nodes.get(id)!;
      const { functionName, url, lineNumber } = node.callFrame;
      const name = functionName || '(anonymous)';
      if (name === '(idle)') continue;
      total += us;
      const file = url.split('/').slice(-1)[0] ?? '';
      const key = `${name} ${file}:${lineNumber + 1}`;
      byFunction.set(key, (byFunction.get(key) ?? 0) + us);
      const area = areaOf(url, name);
      byArea.set(area, (byArea.get(area) ?? 0) + us);
    }
  }
  const sort = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { totalMs: total / 1000, byFunction: sort(byFunction), byArea: sort(byArea) };
}

/**
 * Summarises every profile in `dir` (the 4 node processes of the testnet) over the consensus load
 * window, prints the top areas and functions and writes bench-results/profile.json.
 */
export async function writeProfileSummary(dir: string, window: ProfileWindow): Promise<void> {
  const paths = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f));
  if (paths.length === 0) return;
  const s = await summarise(paths, window);
  const share = (us: number) => round((us / 1000 / s.totalMs) * 100, 1);
  printTable(
    `CPU profile of the node processes during the consensus ladder (${paths.length} profiles, ${Math.round(s.totalMs)} ms busy; wall-clock samples)`,
    ['area', 'ms', '%'],
    s.byArea.slice(0, 20).map(([k, us]) => [k, us / 1000, share(us)]),
  );
  printTable(
    'Top functions by self time',
    ['function', 'ms', '%'],
    s.byFunction.slice(0, 25).map(([k, us]) => [k, us / 1000, share(us)]),
  );
  const path = await writeResult(
    'profile',
    {
      dir,
      window,
      note: 'self time; V8 samples wall-clock, so a process descheduled by the OS is charged to what it ran',
    },
    {
      busyMs: round(s.totalMs),
      byArea: s.byArea.slice(0, 40).map(([k, us]) => ({ area: k, ms: round(us / 1000), percent: share(us) })),
      byFunction: s.byFunction
        .slice(0, 60)
        .map(([k, us]) => ({ fn: k, ms: round(us / 1000), percent: share(us) })),
    },
  );
  note(`wrote ${path}`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let window: ProfileWindow | undefined;
  if (args[0] === '--window') {
    const [fromUs, toUs] = args[1]!.split(',').map(Number);
    window = { fromUs: fromUs!, toUs: toUs! };
    args.splice(0, 2);
  }
  const paths = args;
  if (paths.length === 0)
    throw new Error('usage: profile-summary.ts [--window fromUs,toUs] <file.cpuprofile>...');
  const s = await summarise(paths, window);
  const pct = (us: number) => `${((us / 1000 / s.totalMs) * 100).toFixed(1)}%`;
  printTable(
    `CPU self time by area (${paths.length} profiles, ${Math.round(s.totalMs)} ms busy)`,
    ['area', 'ms', 'share'],
    s.byArea.slice(0, 25).map(([k, us]) => [k, us / 1000, pct(us)]),
  );
  printTable(
    'Top functions by self time',
    ['function', 'ms', 'share'],
    s.byFunction.slice(0, 40).map(([k, us]) => [k, us / 1000, pct(us)]),
  );
}

if (process.argv[1]?.endsWith('profile-summary.ts')) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}
