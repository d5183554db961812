/**
 * A validator for tests of the PBFT driver over a simulated network (`SimHub`): a chain with its
 * mempool over a given block store, its `SimNetwork`, and a started `PbftDriver`, stopped at the
 * test's teardown.
 */
import type { Test } from 'tap';
import { verifyFast } from '../../src/common/crypto-node.js';
import { silentLogger } from '../../src/common/logger.js';
import type { BlockStore, StateCacheSize } from '../../src/ledger/index.js';
import { Chain } from '../../src/node/chain.js';
import { Mempool } from '../../src/node/mempool.js';
import { PbftDriver } from '../../src/node/pbft-driver.js';
import type { MemorySigningState } from '../../src/node/signing-state.js';
import type { TestChain } from './chain.js';
import { type SimHub, SimNetwork } from './sim-network.js';

/** A chain over `store` (loaded), and its mempool, which asks it what is committed. */
export async function chainOn(
  tc: TestChain,
  store: BlockStore,
  stateCache?: StateCacheSize,
): Promise<{ chain: Chain; mempool: Mempool }> {
  let chain: Chain | undefined;
  const mempool = new Mempool(
    {
      chain: tc.genesis.chain,
      maxTxs: 1000,
      maxTxTtlMs: tc.genesis.params.maxTxTtlMs,
      minQueueTxs: tc.genesis.params.maxBlockTxs,
    },
    { verifier: verifyFast, isCommitted: async (h) => chain?.committedRecently(h) ?? false, now: Date.now },
  );
  chain = new Chain(tc.genesis, store, {
    mempool,
    verifier: verifyFast,
    ...(stateCache ? { stateCache } : {}),
  });
  await chain.load();
  return { chain, mempool };
}

/** Validator `index` of `tc` on `hub` over `store`, its driver started; `onFatal` defaults to nothing. */
export async function simValidator(
  t: Test,
  tc: TestChain,
  hub: SimHub,
  index: number,
  store: BlockStore,
  signing: MemorySigningState,
  onFatal: (err: unknown) => void = () => undefined,
) {
  const v = tc.validators[index]!;
  const { chain, mempool } = await chainOn(tc, store);
  const net = new SimNetwork(
    { secretKey: v.signing.secretKey, allowedKeys: tc.validators.map((x) => x.pub) },
    { hub },
  );
  await net.start();
  const driver = new PbftDriver(
    {
      self: v.pub,
      secretKey: v.signing.secretKey,
      timing: { blockIntervalMs: 300, viewTimeoutMs: 30_000, retransmitMs: 1_000 },
      minBlockIntervalMs: 20,
    },
    { chain, mempool, network: net, logger: silentLogger, onFatal, signing },
  );
  await driver.start();
  t.teardown(async () => {
    await driver.stop();
    await net.stop();
  });
  return { chain, net, driver, key: v.pub };
}
