/**
 * The fault suite's own node entry point (NOT the product): the same `DatagrantNode`, started with
 * the test tools the suite switches on by environment — a block store that can be told to fail
 * (`DATAGRANT_FAULT_INJECTION=1`, with its loopback-only admin route `POST /v1/admin/faults`) and a
 * Byzantine consensus network (`DATAGRANT_BYZANTINE=equivocate,double-vote,…` or `all`). The
 * shipped `datagrant node start` has no such switches.
 *
 *   node --import tsx scripts/faults/faulty-node.ts --config <node home>/config.json
 */
import '../../src/common/polyfill.js';
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DatagrantError } from '../../src/common/errors.js';
import { createLogger } from '../../src/common/logger.js';
import { loadNodeConfig } from '../../src/node/config.js';
import { DatagrantNode, type NodeModules } from '../../src/node/node.js';
import { runNodeProcess } from '../../src/node/node-process.js';
import { BYZANTINE_ENV, ByzantineNetwork, parseByzantine } from './byzantine.js';
import {
  FaultyBlockStore,
  FaultyPayloadStore,
  faultInjectionEnabled,
  faultInjectionRoutes,
  RecordPutDropper,
} from './fault-injection.js';

/** This file, for runners that start nodes through it. */
export const FAULTY_NODE_ENTRY = resolve(new URL(import.meta.url).pathname);

/** The node modules the fault suite's switches in `env` ask for (none when none is set). */
export function faultSuiteModules(env: NodeJS.ProcessEnv = process.env): NodeModules {
  const injecting = faultInjectionEnabled(env);
  const behaviours = parseByzantine(env[BYZANTINE_ENV]);
  let faulty: FaultyBlockStore | undefined;
  let payloads: FaultyPayloadStore | undefined;
  const recordPuts = new RecordPutDropper();
  const modules: NodeModules = {};
  if (injecting) {
    modules.wrapPayloadStore = (store) => {
      payloads = new FaultyPayloadStore(store);
      return payloads;
    };
    modules.wrapExtractorSubmit = (submit) => recordPuts.wrap(submit);
    modules.wrapBlockStore = (store) => {
      faulty = new FaultyBlockStore(store);
      return faulty;
    };
    // The same injected disk failure refuses the signing-state writes too.
    modules.wrapSigningState = (store) => ({
      load: () => store.load(),
      save: (wal) =>
        faulty?.writesFailing
          ? Promise.reject(new DatagrantError('STORE_WRITE_FAILED', 'injected disk failure'))
          : store.save(wal),
    });
    modules.extraRoutes = async (app, parts, node) => {
      await faultInjectionRoutes(app, {
        network: parts.network,
        store: faulty!,
        payloads,
        recordPuts,
        validators: node.validators,
        self: node.self,
        logger: node.logger.child({ module: 'faults' }),
      });
      node.logger.warn('fault injection is enabled (POST /v1/admin/faults)');
    };
  }
  if (behaviours.size > 0) {
    modules.wrapConsensusNetwork = (network, node) =>
      new ByzantineNetwork(
        { behaviours, self: node.self, secretKey: node.secretKey },
        { inner: network, logger: node.logger.child({ module: 'byzantine' }) },
      );
  }
  return modules;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' } } });
  if (!values.config) throw new Error('usage: faulty-node.ts --config <config.json>');
  const config = await loadNodeConfig(resolve(values.config));
  const logger = createLogger({ ...(config.logLevel ? { level: config.logLevel } : {}) }).child({
    node: config.name,
  });
  const node = new DatagrantNode(config, logger, faultSuiteModules());
  process.exitCode = await runNodeProcess(node, logger);
}

if (process.argv[1] && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url) {
  main().then(
    () => process.exit(process.exitCode ?? 0),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
