/**
 * A network-namespace lab: one Linux network namespace per member (a node, the synthetic data
 * platform), each with its own address on a private /24, all joined by one bridge, so that nodes
 * run as if on separate machines and can only reach each other over that bridge. The root
 * namespace holds the bridge's `.1`, so the process that built the lab reaches every member.
 *
 * Built with `ip` from iproute2 (root only). Names are short and unique per lab (interface names
 * ≤ 15 characters), the /24 is chosen to clash with no address or route on the machine, and a
 * lock file per /24 keeps parallel labs apart; a lab whose owner died is swept by the next one.
 * `teardown()` removes every namespace, interface and lock, and may be called any number of times.
 */
import { type ChildProcess, execFile, type SpawnOptions, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where labs keep their lock files (one per /24 in use). */
const LOCK_DIR = '/run/datagrant-netns';

/** The `ip` binary's name (found on PATH). */
const IP = 'ip';

/** Runs `ip` with `args`; its stdout. */
async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(IP, args, { timeout: 15_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/** Why a lab cannot be built here (not root, no `ip`, no namespaces), or undefined if it can. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    await run(IP, ['-V'], { timeout: 5000 });
  } catch {
    return '`ip` (iproute2) is not installed';
  }
  try {
    await run('ss', ['-V'], { timeout: 5000 });
  } catch {
    return '`ss` (iproute2) is not installed';
  }
  const probe = `dgprobe${randomBytes(3).toString('hex')}`;
  try {
    await ip('netns', 'add', probe);
  } catch (err) {
    return `cannot create a network namespace: ${(err as Error).message}`;
  }
  await ip('netns', 'del', probe).catch(() => undefined);
  return undefined;
}

/** An IPv4 network as a number and a prefix length. */
interface Net {
  base: number;
  bits: number;
}

function toNumber(address: string): number {
  return address.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

function parseNet(cidr: string): Net | undefined {
  const m = /^(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?$/.exec(cidr);
  if (!m) return undefined;
  const bits = m[2] === undefined ? 32 : Number(m[2]);
  const size = 2 ** (32 - bits);
  return { base: Math.floor(toNumber(m[1]!) / size) * size, bits };
}

function overlaps(a: Net, b: Net): boolean {
  const aEnd = a.base + 2 ** (32 - a.bits);
  const bEnd = b.base + 2 ** (32 - b.bits);
  return a.base < bEnd && b.base < aEnd;
}

/** Every IPv4 network the root namespace has an address or a route in. */
async function networksInUse(): Promise<Net[]> {
  const out: Net[] = [];
  for (const line of (await ip('-4', '-o', 'addr', 'show')).split('\n')) {
    const m = /inet (\S+)/.exec(line);
    const net = m ? parseNet(m[1]!) : undefined;
    if (net) out.push(net);
  }
  for (const line of (await ip('-4', 'route', 'show', 'table', 'all')).split('\n')) {
    const first = line.trim().split(/\s+/)[0] ?? '';
    const word = /^(unicast|local|broadcast|multicast|throw|unreachable|prohibit|blackhole|nat)$/.test(first)
      ? (line.trim().split(/\s+/)[1] ?? '')
      : first;
    const net = word === 'default' ? undefined : parseNet(word);
    if (net) out.push(net);
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What a lab's lock file records, so that a later lab can sweep it if its owner died. */
interface LockRecord {
  pid: number;
  bridge: string;
  namespaces: string[];
  /** The links' ends on the bridge. */
  links: string[];
}

async function removeLab(record: Omit<LockRecord, 'pid'>): Promise<void> {
  for (const ns of record.namespaces) {
    const pids = await ip('netns', 'pids', ns).catch(() => '');
    for (const pid of pids.split(/\s+/).filter((p) => /^\d+$/.test(p))) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    await ip('netns', 'del', ns).catch(() => undefined);
  }
  // A namespace goes away in the background; its links' other ends are deleted here at once.
  for (const link of record.links ?? []) await ip('link', 'del', link).catch(() => undefined);
  await ip('link', 'del', record.bridge).catch(() => undefined);
}

/** Removes the labs whose owning process is gone (after a crash or a SIGKILL). */
export async function sweepStaleLabs(): Promise<number> {
  let swept = 0;
  let files: string[] = [];
  try {
    files = await readdir(LOCK_DIR);
  } catch {
    return 0;
  }
  for (const file of files.filter((f) => f.endsWith('.json'))) {
    const path = join(LOCK_DIR, file);
    let record: LockRecord;
    try {
      record = JSON.parse(await readFile(path, 'utf8')) as LockRecord;
    } catch {
      continue;
    }
    if (alive(record.pid)) continue;
    await removeLab(record);
    await rm(path, { force: true });
    swept++;
  }
  return swept;
}

/** One member of a lab: its namespace, address and the two ends of its link. */
export interface LabMember {
  name: string;
  namespace: string;
  address: string;
  /** The link's end on the bridge (root namespace). */
  hostLink: string;
  /** The link's end inside the namespace. */
  nsLink: string;
}

/** A listening TCP socket. */
export interface ListeningSocket {
  address: string;
  port: number;
}

/** A built lab (see the module comment). */
export class NetnsLab {
  private removed = false;

  private constructor(
    /** Short id in every name of this lab. */
    readonly id: string,
    /** The lab's /24, e.g. `10.213.0.0/24`. */
    readonly subnet: string,
    /** The root namespace's address on the bridge. */
    readonly rootAddress: string,
    readonly bridge: string,
    private readonly members: Map<string, LabMember>,
    private readonly lockPath: string,
  ) {}

  /**
   * Builds a lab with one namespace per name (up to 200). The first free 10.<n>.0.0/24 is taken;
   * member k gets 10.<n>.0.<10 + k>, the root namespace 10.<n>.0.1.
   */
  static async create(names: readonly string[]): Promise<NetnsLab> {
    if (names.length === 0 || names.length > 200) throw new Error('a lab has 1 to 200 members');
    if (new Set(names).size !== names.length) throw new Error('lab member names must be distinct');
    await mkdir(LOCK_DIR, { recursive: true });
    await sweepStaleLabs();
    const inUse = await networksInUse();
    const id = randomBytes(3).toString('hex').slice(0, 5);
    const bridge = `dg${id}br`;
    const start = 16 + Math.floor(Math.random() * 230);
    for (let i = 0; i < 230; i++) {
      const n = 16 + ((start - 16 + i) % 230);
      const net = parseNet(`10.${n}.0.0/24`)!;
      if (inUse.some((u) => overlaps(u, net))) continue;
      const lockPath = join(LOCK_DIR, `10.${n}.json`);
      const members = new Map<string, LabMember>(
        names.map((name, k) => [
          name,
          {
            name,
            namespace: `dg${id}-${name}`,
            address: `10.${n}.0.${10 + k}`,
            hostLink: `dg${id}h${k}`,
            nsLink: `dg${id}n${k}`,
          },
        ]),
      );
      const record: LockRecord = {
        pid: process.pid,
        bridge,
        namespaces: [...members.values()].map((m) => m.namespace),
        links: [...members.values()].map((m) => m.hostLink),
      };
      try {
        await writeFile(lockPath, JSON.stringify(record), { flag: 'wx' });
      } catch {
        continue; // Another lab holds this /24.
      }
      const lab = new NetnsLab(id, `10.${n}.0.0/24`, `10.${n}.0.1`, bridge, members, lockPath);
      try {
        await lab.build();
      } catch (err) {
        await lab.teardown();
        throw err;
      }
      return lab;
    }
    throw new Error('no free 10.<n>.0.0/24 for a lab');
  }

  private async build(): Promise<void> {
    await ip('link', 'add', this.bridge, 'type', 'bridge');
    await ip('addr', 'add', `${this.rootAddress}/24`, 'dev', this.bridge);
    await ip('link', 'set', this.bridge, 'up');
    for (const m of this.members.values()) {
      await ip('netns', 'add', m.namespace);
      await ip('link', 'add', m.hostLink, 'type', 'veth', 'peer', 'name', m.nsLink, 'netns', m.namespace);
      await ip('link', 'set', m.hostLink, 'master', this.bridge);
      await ip('link', 'set', m.hostLink, 'up');
      await ip('-n', m.namespace, 'addr', 'add', `${m.address}/24`, 'dev', m.nsLink);
      await ip('-n', m.namespace, 'link', 'set', m.nsLink, 'up');
      await ip('-n', m.namespace, 'link', 'set', 'lo', 'up');
    }
  }

  /** Names of the members, in the order given to `create`. */
  get names(): string[] {
    return [...this.members.keys()];
  }

  /** The member called `name`. */
  member(name: string): LabMember {
    const m = this.members.get(name);
    if (!m) throw new Error(`no lab member ${name}`);
    return m;
  }

  /** The member's address on the bridge. */
  address(name: string): string {
    return this.member(name).address;
  }

  /** The command prefix that runs a program inside the member's namespace. */
  exec(name: string): string[] {
    return [IP, 'netns', 'exec', this.member(name).namespace];
  }

  /** Runs `command args` inside the member's namespace; its stdout. */
  async run(name: string, command: string, args: string[]): Promise<string> {
    const [bin, ...rest] = [...this.exec(name), command, ...args];
    const { stdout } = await run(bin!, rest, { timeout: 15_000 });
    return stdout;
  }

  /** Starts `command args` inside the member's namespace (the prefix execs it: signals reach it). */
  spawn(name: string, command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const [bin, ...rest] = [...this.exec(name), command, ...args];
    return spawn(bin!, rest, options);
  }

  /** Cuts the member's link to the bridge (its end on the bridge goes down). */
  async linkDown(name: string): Promise<void> {
    await ip('link', 'set', this.member(name).hostLink, 'down');
  }

  /** Restores the member's link. */
  async linkUp(name: string): Promise<void> {
    await ip('link', 'set', this.member(name).hostLink, 'up');
  }

  /** The TCP sockets listening inside the member's namespace. */
  async listening(name: string): Promise<ListeningSocket[]> {
    const out = await this.run(name, 'ss', ['-ltnH']);
    return out
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[3])
      .filter((local): local is string => local !== undefined && local !== '')
      .map((local) => {
        const at = local.lastIndexOf(':');
        return { address: local.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(local.slice(at + 1)) };
      });
  }

  /** The remote addresses of the member's established TCP connections. */
  async connectedTo(name: string): Promise<string[]> {
    const out = await this.run(name, 'ss', ['-tnH', 'state', 'established']);
    const remotes = out
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((cols) => cols.length >= 4)
      // With a state filter ss leaves the state column out: Recv-Q Send-Q Local Peer.
      .map((cols) => cols[3]!)
      .map((peer) => peer.slice(0, peer.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1'));
    return [...new Set(remotes)];
  }

  /** Removes every namespace (killing what runs in it), link, the bridge and the lock; idempotent. */
  async teardown(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    const members = [...this.members.values()];
    await removeLab({
      bridge: this.bridge,
      namespaces: members.map((m) => m.namespace),
      links: members.map((m) => m.hostLink),
    });
    await rm(this.lockPath, { force: true });
  }
}

const PLATFORM_SCRIPT = resolve(fileURLToPath(new URL('../synthetic-data-platform.ts', import.meta.url)));

/** The SIMULATED data platform started in a lab member's namespace, on its address. */
export interface LabPlatform {
  url: string;
  /** The id and public key the platform signs its answers with. */
  source?: { id: string; key: string };
  process: ChildProcess;
}

/** Starts scripts/synthetic-data-platform.ts inside member `name`, listening on its address only. */
export async function startPlatformIn(lab: NetnsLab, name: string, port = 7070): Promise<LabPlatform> {
  const child = lab.spawn(
    name,
    process.execPath,
    ['--import', 'tsx', PLATFORM_SCRIPT, '--host', lab.address(name), '--port', String(port)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! });
  try {
    const said = await new Promise<Omit<LabPlatform, 'process'>>((done, fail) => {
      child.once('exit', (code) => fail(new Error(`the synthetic data platform exited (${code})`)));
      lines.once('line', (line) => {
        try {
          const { url, source } = JSON.parse(line) as Omit<LabPlatform, 'process'>;
          done({ url, ...(source ? { source } : {}) });
        } catch {
          fail(new Error(`the synthetic data platform said ${line}`));
        }
      });
    });
    return { ...said, process: child };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}
