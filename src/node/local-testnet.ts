/**
 * Running a testnet of real node processes (on loopback unless its nodes were given hosts, each
 * process then optionally started through a prefix such as `ip netns exec`): used by `npm run testnet`, the
 * demo, the end-to-end and fault suites and the benchmarks. Each node is a separate
 * `datagrant node start` process with its own home; the runner can kill, pause and restart them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatagrantError } from '../common/errors.js';
import { parseGenesis } from '../ledger/index.js';
import { loadNodeConfig } from './config.js';
import { COUNCIL_FILES, type InitOptions, type InitResult, initTestnet, institutionKeyPath } from './init.js';
import { joinHome } from './join.js';
import { httpUrl } from './topology.js';

const BIN = resolve(fileURLToPath(new URL('../../bin/datagrant.js', import.meta.url)));

async function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, host, () => server.close(() => done(true)));
  });
}

/** A base port such that base..base+n-1 (API) and base+100..base+100+n-1 (p2p) are free. */
export async function findFreeBasePort(n: number, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    let ok = true;
    for (let i = 0; i < n && ok; i++)
      ok = (await portFree(base + i, host)) && (await portFree(base + 100 + i, host));
    if (ok) return base;
  }
  throw new DatagrantError('TESTNET_NO_PORTS', 'could not find free loopback ports');
}

/** Options of the runner. */
export interface LocalTestnetOptions extends Omit<InitOptions, 'basePort'> {
  basePort?: number;
  /** Log level of the node processes. */
  logLevel?: string;
  /** Extra environment for the node processes. */
  env?: Record<string, string>;
  /** Extra arguments for the node processes' `node` binary, e.g. `--cpu-prof` (benchmarks, profiling). */
  nodeArgs?: string[];
  /**
   * What each node process runs, before `--config <file>` (default: the `datagrant node start`
   * command). The fault suite runs its own entry point, which adds its test tools to the node.
   */
  entry?: string[];
  /**
   * A prefix of node i's command line, e.g. `['ip', 'netns', 'exec', 'dg-ns0']` to run it in a
   * network namespace (default none: the node's `node` process is started directly). The prefix
   * must exec the node in place, so that signals reach it.
   */
  commandPrefix?: (i: number) => string[];
  /** Where `load` finds the home of the node named `name` (default `<dir>/<name>`). */
  homeOf?: (name: string) => string;
}

/** A testnet of node processes. */
export class LocalTestnet {
  net!: InitResult;
  private readonly procs = new Map<number, ChildProcess>();

  constructor(private readonly options: LocalTestnetOptions) {}

  /** Writes the testnet (genesis, keys, homes). */
  async init(): Promise<InitResult> {
    const basePort =
      this.options.basePort ??
      (await findFreeBasePort(this.options.validators + (this.options.gateways ?? 0)));
    this.net = await initTestnet({ ...this.options, basePort });
    return this.net;
  }

  /** Loads a testnet written earlier by `init` (or `datagrant init`) in `dir`. */
  async load(): Promise<InitResult> {
    const dir = this.options.dir;
    const genesisPath = join(dir, 'genesis.json');
    const genesis = parseGenesis(JSON.parse(await readFile(genesisPath, 'utf8')));
    const nodes: InitResult['nodes'] = [];
    const members = [
      ...genesis.validators.map((v) => ({ ...v, kind: 'validator' as const })),
      ...(genesis.gateways ?? []).map((g) => ({ ...g, kind: 'gateway' as const })),
    ];
    for (const m of members) {
      const configPath = join(this.options.homeOf?.(m.name) ?? join(dir, m.name), 'config.json');
      const config = await loadNodeConfig(configPath);
      const held = config.platform?.institutions[0]?.id;
      nodes.push({
        name: m.name,
        kind: m.kind,
        home: config.home,
        configPath,
        apiUrl: config.api.url ?? httpUrl(config.api.host, config.api.port),
        host: new URL(config.api.url ?? httpUrl(config.api.host, config.api.port)).hostname.replace(
          /^\[(.*)\]$/,
          '$1',
        ),
        key: m.key,
        roles: [...m.roles],
        ...(held ? { institution: held } : {}),
      });
    }
    const keys = join(dir, 'keys');
    const institutions = genesis.institutions.map((i) => ({
      id: i.institution,
      key: institutionKeyPath(dir, i.institution),
    }));
    this.net = {
      genesisPath,
      genesis,
      nodes,
      keys: {
        registrar: join(keys, 'registrar.json'),
        council: COUNCIL_FILES.map((f) => join(keys, f)),
        institution: institutions[0]?.key ?? institutionKeyPath(dir, 'demo-bank'),
      },
      institutionId: institutions[0]?.id ?? 'demo-bank',
      institutions,
    };
    return this.net;
  }

  /**
   * Writes the home of a node joining the running chain (`joinHome`, from node `from`'s config) on
   * free ports, and adds it as the next node (start it with `start`); returns its index. It is a
   * validator only once the council seats its key (`gov propose validator-add`).
   */
  async join(name: string, from = 0): Promise<number> {
    const base = await findFreeBasePort(1);
    const home = join(this.options.dir, name);
    const joined = await joinHome({
      home,
      from: this.net.nodes[from]!.configPath,
      name,
      apiPort: base,
      p2pPort: base + 100,
    });
    this.net.nodes.push({
      name,
      kind: 'validator',
      home,
      configPath: joined.configPath,
      apiUrl: httpUrl('127.0.0.1', base),
      host: '127.0.0.1',
      key: joined.key,
      roles: [],
    });
    return this.net.nodes.length - 1;
  }

  /** Number of nodes. */
  get size(): number {
    return this.net.nodes.length;
  }

  /** API URL of node i. */
  api(i: number): string {
    return this.net.nodes[i]!.apiUrl;
  }

  /** Whether node i's process is running. */
  running(i: number): boolean {
    const p = this.procs.get(i);
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** Operating-system process id of node i, while it runs. */
  pid(i: number): number | undefined {
    return this.running(i) ? this.procs.get(i)?.pid : undefined;
  }

  /**
   * Starts node i's process (logs appended to `<home>/node.log`); `args` go after its config
   * (e.g. `['--snapshot', file]`).
   */
  start(i: number, options: { args?: string[] } = {}): void {
    if (this.running(i)) return;
    const node = this.net.nodes[i]!;
    const log = createWriteStream(join(node.home, 'node.log'), { flags: 'a' });
    const entry = this.options.entry ?? [BIN, 'node', 'start'];
    const args = [
      ...(this.options.nodeArgs ?? []),
      ...entry,
      '--config',
      node.configPath,
      ...(options.args ?? []),
    ];
    const prefix = this.options.commandPrefix?.(i) ?? [];
    const [command, ...rest] = [...prefix, process.execPath, ...args];
    const child = spawn(command!, rest, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DATAGRANT_LOG_LEVEL: this.options.logLevel ?? 'info', ...this.options.env },
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.procs.set(i, child);
  }

  /** Starts every node. */
  startAll(): void {
    for (let i = 0; i < this.size; i++) this.start(i);
  }

  /** Sends a signal to node i (SIGKILL, SIGTERM, SIGSTOP, SIGCONT); resolves when it exited, for terminating signals. */
  async signal(i: number, signal: NodeJS.Signals): Promise<void> {
    const p = this.procs.get(i);
    if (!p || !this.running(i)) return;
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') {
      p.kill(signal);
      return;
    }
    const exited = new Promise<void>((done) => p.once('exit', () => done()));
    p.kill(signal);
    await exited;
  }

  /** Waits until node i answers /v1/status. */
  async waitReady(i: number, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running(i))
        throw new DatagrantError(
          'TESTNET_NODE_EXITED',
          `node${i} exited; see ${join(this.net.nodes[i]!.home, 'node.log')}`,
        );
      try {
        const r = await fetch(`${this.api(i)}/v1/status`, { signal: AbortSignal.timeout(2000) });
        if (r.ok) return;
      } catch {
        // Not up yet.
      }
      if (Date.now() > deadline)
        throw new DatagrantError('TESTNET_TIMEOUT', `node${i} did not come up within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Waits until every running node is ready. */
  async waitAllReady(timeoutMs?: number): Promise<void> {
    await Promise.all(
      this.net.nodes.map((_, i) => (this.running(i) ? this.waitReady(i, timeoutMs) : Promise.resolve())),
    );
  }

  /** Stops every node: SIGTERM, then SIGKILL after a grace period. */
  async stopAll(graceMs = 5000): Promise<void> {
    await Promise.all(
      [...this.procs.keys()].map(async (i) => {
        const p = this.procs.get(i)!;
        if (!this.running(i)) return;
        p.kill('SIGCONT');
        const exited = new Promise<void>((done) => p.once('exit', () => done()));
        p.kill('SIGTERM');
        const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}
