/**
 * The systemd unit in docs/ runs a node as written: its ExecStart command line (paths moved to a
 * temporary directory) starts a node that becomes ready and logs JSON lines on stdout; the unit's
 * KillSignal stops it cleanly with exit code 0 before TimeoutStopSec (so `Restart=on-failure` does
 * not restart it), and a stop that overruns `--stop-timeout` exits 1. `systemd-analyze verify`
 * checks the unit's syntax where systemd is installed.
 */
import '../../src/common/polyfill.js';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { initTestnet } from '../../src/node/init.js';
import { findFreeBasePort } from '../../src/node/local-testnet.js';
import { makeTempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const UNIT = resolve('docs/datagrant.service');
const ROOT = resolve('.');

/** `[Section] Key=value` lines of a unit file; repeated keys keep every value. */
function parseUnit(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`not a unit line: ${line}`);
    const key = `${section}.${line.slice(0, eq)}`;
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

const one = (unit: Map<string, string[]>, key: string): string => {
  const v = unit.get(key);
  if (v?.length !== 1) throw new Error(`${key}: expected one value, got ${v?.length ?? 0}`);
  return v[0]!;
};

t.test('the systemd unit starts, stops and bounds a node', async (t) => {
  const text = await readFile(UNIT, 'utf8');
  const unit = parseUnit(text);
  t.equal(one(unit, 'Service.KillSignal'), 'SIGTERM');
  t.equal(one(unit, 'Service.Restart'), 'on-failure');
  const exec = one(unit, 'Service.ExecStart');
  t.notMatch(exec, /["'\\$%]/, 'ExecStart needs no quoting or expansion, so it runs the same here');
  const stopTimeoutMs = Number(/--stop-timeout (\d+)/.exec(exec)?.[1]);
  const timeoutStopMs = Number(one(unit, 'Service.TimeoutStopSec')) * 1000;
  t.ok(
    stopTimeoutMs > 0 && stopTimeoutMs < timeoutStopMs,
    `the node's own bound (${stopTimeoutMs} ms) is below TimeoutStopSec (${timeoutStopMs} ms): systemd never needs SIGKILL`,
  );

  const dir = await makeTempDir(t, 'datagrant-unit-');
  await initTestnet({ dir, validators: 1, chain: 'datagrant-unit', basePort: await findFreeBasePort(1) });
  // The unit's paths, moved: the project is here, its state directory is the temporary one.
  const moved = (s: string) =>
    s
      .replaceAll('/usr/bin/node', process.execPath)
      .replaceAll('/opt/datagrant', ROOT)
      .replaceAll('/var/lib/datagrant', dir);

  const analyze = '/usr/bin/systemd-analyze';
  if (existsSync(analyze)) {
    const copy = join(dir, 'datagrant.service');
    await writeFile(copy, moved(text).replace(/^(User|Group)=.*$/gm, ''));
    const r = await promisify(execFile)(analyze, ['verify', copy]).catch(
      (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? 'failed' }),
    );
    // Only what it says of this unit counts (a machine without a running systemd adds its own noise).
    const about = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('datagrant.service'));
    t.same(
      about.filter((l) => /Unknown|Invalid|Failed|failed|not executable|Missing|unsafe/.test(l)),
      [],
      'systemd-analyze verify finds nothing in the unit',
    );
  } else t.comment('systemd-analyze not installed: unit syntax not verified');

  const env: Record<string, string> = { ...(process.env as Record<string, string>) };
  for (const assignment of unit.get('Service.Environment') ?? []) {
    const [k, ...v] = assignment.split('=');
    env[k!] = v.join('=');
  }
  const argv = moved(exec).split(/\s+/);
  const config = JSON.parse(await readFile(join(dir, 'node0', 'config.json'), 'utf8')) as {
    api: { host: string; port: number };
  };
  const api = `http://${config.api.host}:${config.api.port}`;

  const run = async (args: string[]) => {
    const child = spawn(args[0]!, args.slice(1), {
      cwd: moved(one(unit, 'Service.WorkingDirectory')),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const exited = new Promise<{ code: number | null; signal: string | null }>((done) =>
      child.once('exit', (code, signal) => done({ code, signal })),
    );
    t.teardown(() => {
      child.kill('SIGKILL');
    });
    await until(`${api}/readyz`, async () => {
      if (child.exitCode !== null) throw new Error(`node exited: ${stderr}`);
      const r = await fetch(`${api}/readyz`, { signal: AbortSignal.timeout(2000) });
      return r.ok || undefined;
    });
    return { child, exited, out: () => stdout };
  };

  const node = await run(argv);
  node.child.kill(one(unit, 'Service.KillSignal') as NodeJS.Signals);
  const deadline = new Promise<'overran'>((r) => setTimeout(() => r('overran'), timeoutStopMs).unref());
  const ended = await Promise.race([node.exited, deadline]);
  t.same(ended, { code: 0, signal: null }, 'SIGTERM: a clean stop, exit code 0, within TimeoutStopSec');
  const lines = node.out().trim().split('\n');
  const parsed = lines.map((l) => {
    try {
      return JSON.parse(l) as { msg?: string; level?: number; time?: number };
    } catch {
      return undefined;
    }
  });
  t.ok(
    parsed.every((p) => p && typeof p.level === 'number' && typeof p.time === 'number'),
    `every stdout line is a JSON log record (${lines.length} lines)`,
  );
  t.ok(
    parsed.some((p) => p?.msg === 'started') && parsed.some((p) => p?.msg === 'stopped'),
    'started and stopped are logged',
  );

  // The same command with a bound too short for any clean stop: the node exits 1 instead of hanging.
  const hurried = await run(argv.map((a, i) => (argv[i - 1] === '--stop-timeout' ? '1' : a)));
  hurried.child.kill('SIGTERM');
  t.same(
    await hurried.exited,
    { code: 1, signal: null },
    'an overrun stop exits 1 (systemd restarts it on failure)',
  );
  t.match(hurried.out(), /stop overran its bound/);
});
