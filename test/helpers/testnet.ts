/** A local testnet of real node processes for an e2e test, started and torn down with it. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import {
  type SyntheticDataPlatform,
  startSyntheticDataPlatform,
  syntheticSourceConfig,
} from '../../scripts/synthetic-data-platform.js';
import type { InitResult } from '../../src/node/init.js';
import { LocalTestnet, type LocalTestnetOptions } from '../../src/node/local-testnet.js';

/** A started testnet. */
export interface StartedTestnet {
  dir: string;
  testnet: LocalTestnet;
  net: InitResult;
  /** The SIMULATED data platform the extractors read from, when asked for. */
  source: SyntheticDataPlatform | undefined;
}

/**
 * Writes a testnet into a fresh temporary directory (named from `prefix`), optionally with the
 * synthetic data platform as every extractor's source, starts every node and waits until all are
 * ready; the test's teardown stops the nodes and the platform and removes the directory.
 */
export async function startTestnet(
  t: Test,
  prefix: string,
  options: Omit<LocalTestnetOptions, 'dir' | 'sources'>,
  { withSource = false }: { withSource?: boolean } = {},
): Promise<StartedTestnet> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const source = withSource ? await startSyntheticDataPlatform({ port: 0, host: '127.0.0.1' }) : undefined;
  const testnet = new LocalTestnet({
    dir,
    ...options,
    ...(source ? { sources: [syntheticSourceConfig(source) as unknown as Record<string, unknown>] } : {}),
  });
  t.teardown(async () => {
    await testnet.stopAll();
    await source?.close();
    await rm(dir, { recursive: true, force: true });
  });
  const net = await testnet.init();
  testnet.startAll();
  await testnet.waitAllReady(90_000);
  return { dir, testnet, net, source };
}
