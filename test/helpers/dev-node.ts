/**
 * A one-validator dev chain in this process, with the SYNTHETIC data platform as its extractor's
 * source, for end-to-end tests of the business flow: a fresh directory, the node on a free port,
 * the bank's and registrar's key files, and helpers to register a subject and to make the bank's
 * client. Everything is torn down with the test.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import {
  type SyntheticDataPlatform,
  type SyntheticDataPlatformOptions,
  startSyntheticDataPlatform,
  syntheticSourceConfig,
} from '../../scripts/synthetic-data-platform.js';
import { submitAndWait } from '../../src/cli/client.js';
import { DatagrantClient } from '../../src/client/index.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { generateKeySet, type KeySet } from '../../src/common/keyfile.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { type Logger, silentLogger } from '../../src/common/logger.js';
import type { ExtractionPolicy, Genesis } from '../../src/ledger/index.js';
import { loadNodeConfig, type NodeConfig } from '../../src/node/config.js';
import { type InitResult, initTestnet } from '../../src/node/init.js';
import { DatagrantNode, type NodeModules } from '../../src/node/node.js';
import { attestSubject, buildRegisterTx } from '../../src/platform/consent.js';

/** Options of `startDevNode`. */
export interface DevNodeOptions {
  chain: string;
  extraction?: ExtractionPolicy;
  /** Faults of the synthetic data platform, per data type. */
  faults?: SyntheticDataPlatformOptions['faults'];
  /** Overrides of the node's extractor settings. */
  extractor?: Partial<NonNullable<NodeConfig['extractor']>>;
  logger?: Logger;
  /** Node modules (e.g. a wrapped block store). */
  modules?: NodeModules;
}

/** A running dev chain. */
export interface DevNode {
  dir: string;
  net: InitResult;
  genesis: Genesis;
  config: NodeConfig;
  node: DatagrantNode;
  source: SyntheticDataPlatform;
  api: string;
  bank: KeySet;
  registrar: KeySet;
  /** The bank's client against this node. */
  client(): DatagrantClient;
}

/** Writes and starts a dev chain for test `t` (stopped and removed in its teardown). */
export async function startDevNode(t: Test, options: DevNodeOptions): Promise<DevNode> {
  const dir = await mkdtemp(join(tmpdir(), `${options.chain}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const source = await startSyntheticDataPlatform({
    port: 0,
    host: '127.0.0.1',
    ...(options.faults ? { faults: options.faults } : {}),
  });
  t.teardown(() => source.close());
  const net = await initTestnet({
    dir,
    validators: 1,
    chain: options.chain,
    basePort: 0,
    blockIntervalMs: 200,
    minBlockIntervalMs: 5,
    ...(options.extraction ? { extraction: options.extraction } : {}),
    sources: [syntheticSourceConfig(source) as unknown as Record<string, unknown>],
  });
  const loaded = await loadNodeConfig(net.nodes[0]!.configPath);
  const config: NodeConfig = {
    ...loaded,
    api: { ...loaded.api, port: 0 },
    ...(options.extractor ? { extractor: { ...loaded.extractor!, ...options.extractor } } : {}),
  };
  const node = new DatagrantNode(config, options.logger ?? silentLogger, options.modules);
  await node.start();
  t.teardown(() => node.stop());
  const [bank, registrar] = await Promise.all([
    readKeyFile(net.keys.institution),
    readKeyFile(net.keys.registrar),
  ]);
  const dev: DevNode = {
    dir,
    net,
    genesis: net.genesis,
    config,
    node,
    source,
    api: node.apiUrl,
    bank,
    registrar,
    client: () =>
      new DatagrantClient({
        api: node.apiUrl,
        institution: net.institutionId,
        keys: bank,
        genesis: net.genesis,
      }),
  };
  return dev;
}

/** Registers a fresh subject `id` through `api`, attested by the genesis registrar; returns her keys. */
export async function registerSubject(
  api: string,
  genesis: Genesis,
  registrar: KeySet,
  id: string,
): Promise<KeySet> {
  const subject = generateKeySet(id);
  const attestation = attestSubject(
    genesis.chain,
    id,
    { signKey: bytesToHex(subject.signing.publicKey), encKey: bytesToHex(subject.encryption.publicKey) },
    registrar,
  );
  await submitAndWait(
    api,
    buildRegisterTx(
      { chain: genesis.chain, now: Date.now() },
      id,
      subject,
      bytesToHex(registrar.signing.publicKey),
      attestation,
    ),
  );
  return subject;
}
