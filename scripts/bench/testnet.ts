/**
 * A local testnet of node processes for the benchmarks: written to a temporary directory,
 * started, and ready once every node sees all its peers and blocks are being committed.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { KeySet } from '../../src/common/keyfile.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import type { NodeConfig } from '../../src/node/config.js';
import { LocalTestnet, type LocalTestnetOptions } from '../../src/node/local-testnet.js';
import { jsonCall } from './http-client.js';
import { note, sleep } from './report.js';

/** A running benchmark testnet. */
export interface BenchTestnet {
  testnet: LocalTestnet;
  dir: string;
  chain: string;
  apis: string[];
  pids: number[];
  /** A council member's keys: bench transactions are its proposals. */
  proposer: KeySet;
  /** Consensus settings the nodes run with (from their config). */
  consensus: NodeConfig['consensus'];
  maxBlockTxs: number;
  /** Stops the nodes and removes the directory. */
  close(): Promise<void>;
}

/** Options: the runner's, minus the directory; `profileDir` turns on `--cpu-prof` for every node. */
export type BenchTestnetOptions = Omit<LocalTestnetOptions, 'dir'> & { profileDir?: string };

/** Starts a testnet and waits until it commits blocks with every peer connected. */
export async function startBenchTestnet(options: BenchTestnetOptions): Promise<BenchTestnet> {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-bench-'));
  const { profileDir, ...rest } = options;
  const testnet = new LocalTestnet({
    // Nodes log at warn unless DATAGRANT_BENCH_LOG_LEVEL says otherwise (logs: <dir>/<node>/node.log).
    logLevel: process.env.DATAGRANT_BENCH_LOG_LEVEL ?? 'warn',
    ...rest,
    dir,
    ...(profileDir ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${resolve(profileDir)}`] } : {}),
  });
  const close = async () => {
    await testnet.stopAll(15_000).catch(() => {});
    // DATAGRANT_BENCH_KEEP=1 keeps the testnet's directory (configs, stores, logs) for inspection.
    if (process.env.DATAGRANT_BENCH_KEEP === '1') note(`testnet kept in ${dir}`);
    else await rm(dir, { recursive: true, force: true }).catch(() => {});
  };
  try {
    const started = performance.now();
    const net = await testnet.init();
    testnet.startAll();
    await testnet.waitAllReady(120_000);
    const apis = net.nodes.map((n) => n.apiUrl);
    const n = apis.length;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const status = await Promise.all(
        apis.map((api) => jsonCall<{ height: number; peers: string[] }>('GET', `${api}/v1/status`)),
      );
      if (status.every((s) => s.peers.length >= n - 1 && s.height >= 2)) break;
      if (Date.now() > deadline) throw new Error('testnet did not connect and commit within 120 s');
      await sleep(250);
    }
    const config = JSON.parse(await readFile(net.nodes[0]!.configPath, 'utf8')) as NodeConfig;
    note(`${n}-validator testnet up in ${Math.round(performance.now() - started)} ms (${dir})`);
    return {
      testnet,
      dir,
      chain: net.genesis.chain,
      apis,
      pids: net.nodes.map((_, i) => testnet.pid(i)!),
      proposer: await readKeyFile(net.keys.council[0]!),
      consensus: config.consensus,
      maxBlockTxs: net.genesis.params.maxBlockTxs,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
