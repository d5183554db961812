/**
 * `datagrant init`: writes a testnet — genesis, governance and registrar keys, one home per
 * validator (config + node key) and per gateway, and each institution's key file under
 * `institutions/<id>/key.json`, outside every validator home. A validator never gets an
 * institution's key; the institution's own gateway (the first gateways, one per institution) gets
 * a copy, so that the platform can assemble documents inside the institution's walls.
 *
 * By default every node is on one host (127.0.0.1) on consecutive ports. With `hosts` or a
 * `topology` each node gets its own host (see topology.ts): it binds there (or where told), tells
 * its peers that address, and dials theirs. Every home is self-contained (its own copy of
 * genesis, its keys, its signing state; no path in its config leads out of it), so it can be
 * copied alone to the machine that runs it.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { bytesToHex } from '../common/bytes.js';
import { DatagrantError } from '../common/errors.js';
import { generateKeySet, type KeySet } from '../common/keyfile.js';
import { writeKeyFile } from '../common/keyfile-fs.js';
import {
  DATA_TYPES,
  DEFAULT_CHAIN_PARAMS,
  type ExtractionPolicy,
  type Genesis,
  type GenesisSource,
  type NodeRole,
} from '../ledger/index.js';
import type { HttpJsonSourceConfig } from '../plugins/http-json-source.js';
import type { NodeConfig } from './config.js';
import { FileSigningState, SIGNING_STATE_FILE } from './signing-state.js';
import { hostsTopology, httpUrl, planNodes, type Topology, tcpMultiaddr } from './topology.js';

/** Options of `initTestnet`. */
export interface InitOptions {
  dir: string;
  validators: number;
  /** Gateway nodes (default 0): non-voting, platform role; gateway i belongs to institution i if there is one. */
  gateways?: number;
  /** Institutions in genesis (default 1: `demo-bank`; more are `bank-1`, `bank-2`, ...). */
  institutions?: number;
  /** Seals the institutions' key files (and their gateway copies) with this passphrase. */
  passphrase?: string;
  /** The chain's extraction policy (default `on-request`). */
  extraction?: ExtractionPolicy;
  chain?: string;
  /** The one host of every node (default 127.0.0.1), when neither `hosts` nor `topology` is given. */
  host?: string;
  /**
   * One host per node, validators first, then gateways: each binds and is dialed there. Nodes on
   * distinct hosts share the default ports; nodes on one host get consecutive ones.
   */
  hosts?: string[];
  /** With `hosts`: the address every node binds to instead (e.g. `0.0.0.0`); peers still dial `hosts`. */
  listenHost?: string;
  /** Every node named with its kind, host and ports; `validators`, `gateways`, `hosts` and `roles` are then unused. */
  topology?: Topology;
  /** API port of the first node on a host; the next on that host gets basePort + 1, and so on; p2p ports are 100 above (gateways after the validators). */
  basePort?: number;
  /** Roles per node index; default: both roles for a single node, else alternating platform/extractor. */
  roles?: (index: number, n: number) => NodeRole[];
  /**
   * Extractor data-source configs written into extractor nodes' configs. An `http-json` config
   * whose `signature` names the source's `key` registers that source in genesis `sources`, for
   * the config's data types (`registeredSourcesOf`).
   */
  sources?: Record<string, unknown>[];
  blockIntervalMs?: number;
  minBlockIntervalMs?: number;
  viewTimeoutMs?: number;
  time?: number;
}

/** One node `initTestnet` wrote. */
export interface InitNode {
  name: string;
  kind: 'validator' | 'gateway';
  home: string;
  configPath: string;
  /** Where clients reach its API. */
  apiUrl: string;
  /** The address its peers dial and clients call. */
  host: string;
  key: string;
  roles: NodeRole[];
  /** For an institution's own gateway: the institution whose key it holds. */
  institution?: string;
}

/** What `initTestnet` wrote. */
export interface InitResult {
  genesisPath: string;
  genesis: Genesis;
  /** Validators first, then gateways. */
  nodes: InitNode[];
  /**
   * Key files; `institution` is the first institution's (`institutions/<id>/key.json`), `council`
   * the governance council's (`keys/council-<i>.json`; any 2 of the 3 approve a change).
   */
  keys: { registrar: string; council: string[]; institution: string };
  institutionId: string;
  /** Every institution's id and key file. */
  institutions: { id: string; key: string }[];
}

/** The council `init` writes: three keys under keys/, any two of which approve a change. */
export const COUNCIL_FILES = ['council-1.json', 'council-2.json', 'council-3.json'] as const;
const COUNCIL_THRESHOLD = 2;

/** Where `init` writes an institution's key file, relative to the testnet directory. */
export function institutionKeyPath(dir: string, id: string): string {
  return join(dir, 'institutions', id, 'key.json');
}

/**
 * Shortest pause between blocks while transactions wait (ms). With several validators every block
 * costs each of them a proposal and two rounds of signed votes, whatever it carries; at 100 ms a
 * 4-validator testnet on 2 cores spends about a third less CPU per transaction at low load than at
 * 20 ms and commits about 1.5× as much at saturation (BENCHMARKS.md). A lone dev node has no votes.
 */
export function defaultMinBlockIntervalMs(validators: number): number {
  return validators > 1 ? 100 : 20;
}

/** Default roles: a lone node does everything; otherwise the first half serve institutions, the rest extract. */
export function defaultRoles(index: number, n: number): NodeRole[] {
  if (n === 1) return ['platform', 'extractor'];
  return index < Math.ceil(n / 2) ? ['platform'] : ['extractor'];
}

/**
 * The genesis `sources` entries of extractor source configs: every `http-json` config whose
 * `signature` gives the source's `key`, for the config's data types (configs of one source id
 * and key are merged). `CONFIG_INVALID` when one id comes with two keys or one key with two ids.
 */
export function registeredSourcesOf(configs: readonly Record<string, unknown>[]): GenesisSource[] {
  const byId = new Map<string, GenesisSource>();
  for (const raw of configs) {
    if (raw.kind !== 'http-json') continue;
    const config = raw as unknown as HttpJsonSourceConfig;
    const signature = config.signature;
    if (signature?.key === undefined) continue;
    const known = byId.get(signature.source);
    if (known !== undefined && known.key !== signature.key)
      throw new DatagrantError('CONFIG_INVALID', `source ${signature.source} is given two keys`);
    const other = [...byId.values()].find((s) => s.key === signature.key && s.id !== signature.source);
    if (other !== undefined)
      throw new DatagrantError('CONFIG_INVALID', `sources ${other.id} and ${signature.source} share a key`);
    const types = new Set([...(known?.types ?? []), ...config.dataTypes]);
    byId.set(signature.source, {
      id: signature.source,
      key: signature.key,
      types: DATA_TYPES.filter((t) => types.has(t)),
    });
  }
  return [...byId.values()];
}

/** Writes a fresh testnet into `dir` (which must not already hold one). */
export async function initTestnet(options: InitOptions): Promise<InitResult> {
  const placed = options.topology !== undefined || options.hosts !== undefined;
  const counts = options.topology
    ? {
        validators: options.topology.nodes.filter((m) => m.kind === 'validator').length,
        gateways: options.topology.nodes.filter((m) => m.kind === 'gateway').length,
      }
    : { validators: options.validators, gateways: options.gateways ?? 0 };
  const n = counts.validators;
  const g = counts.gateways;
  const topology =
    options.topology ??
    hostsTopology(
      options.hosts ?? Array.from({ length: n + g }, () => options.host ?? '127.0.0.1'),
      counts,
      options.listenHost ? { listenHost: options.listenHost } : {},
    );
  const plan = planNodes(topology, {
    ...(options.basePort !== undefined ? { basePort: options.basePort } : {}),
    roles: options.topology ? defaultRoles : (options.roles ?? defaultRoles),
  });
  const chain = options.chain ?? 'datagrant-local';
  const keysDir = join(options.dir, 'keys');
  if (g > 0 && n < 2)
    throw new DatagrantError(
      'CONFIG_INVALID',
      'gateways follow a PBFT chain: give at least 2 validators (a lone dev validator runs no network)',
    );
  await mkdir(keysDir, { recursive: true });
  const registrar = generateKeySet('registrar');
  const council = COUNCIL_FILES.map(() => generateKeySet('governance'));
  const paths = {
    registrar: join(keysDir, 'registrar.json'),
    council: COUNCIL_FILES.map((f) => join(keysDir, f)),
  };
  await writeKeyFile(paths.registrar, registrar);
  for (const [i, keys] of council.entries()) await writeKeyFile(paths.council[i]!, keys);
  const sealing = options.passphrase ? { passphrase: options.passphrase } : {};
  const banks = Array.from({ length: options.institutions ?? 1 }, (_, i) => {
    const id = i === 0 ? 'demo-bank' : `bank-${i}`;
    return {
      id,
      name: i === 0 ? 'Demo Bank' : `Bank ${i}`,
      keys: generateKeySet(id),
      path: institutionKeyPath(options.dir, id),
    };
  });
  for (const bank of banks) {
    await mkdir(join(options.dir, 'institutions', bank.id), { recursive: true });
    await writeKeyFile(bank.path, bank.keys, sealing);
  }

  const registered = registeredSourcesOf(options.sources ?? []);
  const nodeKeys: KeySet[] = plan.slice(0, n).map((p) => generateKeySet(p.name));
  const gatewayKeys: KeySet[] = plan.slice(n).map((p) => generateKeySet(p.name));
  const genesis: Genesis = {
    chain,
    time: options.time ?? Date.now(),
    validators: nodeKeys.map((k, i) => ({
      name: plan[i]!.name,
      key: bytesToHex(k.signing.publicKey),
      roles: plan[i]!.roles,
      types: plan[i]!.types,
    })),
    ...(g > 0
      ? {
          gateways: gatewayKeys.map((k, i) => ({
            name: plan[n + i]!.name,
            key: bytesToHex(k.signing.publicKey),
            roles: ['platform' as const],
          })),
        }
      : {}),
    registrars: [bytesToHex(registrar.signing.publicKey)],
    admins: [],
    council: { members: council.map((k) => bytesToHex(k.signing.publicKey)), threshold: COUNCIL_THRESHOLD },
    institutions: banks.map((b) => ({
      institution: b.id,
      name: b.name,
      signKey: bytesToHex(b.keys.signing.publicKey),
      encKey: bytesToHex(b.keys.encryption.publicKey),
    })),
    ...(registered.length > 0 ? { sources: registered } : {}),
    params: { ...DEFAULT_CHAIN_PARAMS, extraction: options.extraction ?? 'on-request' },
  };
  const genesisPath = join(options.dir, 'genesis.json');
  await writeFile(genesisPath, `${JSON.stringify(genesis, null, 2)}\n`, { flag: 'wx' });

  const nodes: InitNode[] = [];
  // Peers are dialed where they said they are (their announced host), whatever they bind to.
  const validatorPeers = nodeKeys.map((k, j) => ({
    key: bytesToHex(k.signing.publicKey),
    addr: tcpMultiaddr(plan[j]!.host, plan[j]!.p2pPort),
  }));
  const consensus = {
    blockIntervalMs: options.blockIntervalMs ?? 1000,
    minBlockIntervalMs: options.minBlockIntervalMs ?? defaultMinBlockIntervalMs(options.validators),
    ...(options.viewTimeoutMs ? { viewTimeoutMs: options.viewTimeoutMs } : {}),
  };
  for (let i = 0; i < n + g; i++) {
    const gateway = i >= n;
    const place = plan[i]!;
    const name = place.name;
    const home = join(options.dir, name);
    await mkdir(home, { recursive: true });
    // Its own copy of genesis: the home is all a machine needs to run the node.
    await copyFile(genesisPath, join(home, 'genesis.json'));
    const keys = gateway ? gatewayKeys[i - n]! : nodeKeys[i]!;
    await writeKeyFile(join(home, 'node-key.json'), keys);
    // A new validator has signed nothing yet: its (empty) signing state says so. Without the file
    // a validator assumes its state was lost and checks for double signing before it votes.
    if (!gateway) await new FileSigningState(join(home, SIGNING_STATE_FILE)).save(null);
    const roles: NodeRole[] = gateway ? ['platform'] : genesis.validators[i]!.roles;
    // An institution's own gateway holds a copy of its key: the one place besides the institution.
    const bank = gateway ? banks[i - n] : undefined;
    let platform: NodeConfig['platform'];
    if (bank) {
      await mkdir(join(home, 'institutions'), { recursive: true });
      const copy = join(home, 'institutions', `${bank.id}.json`);
      await writeKeyFile(copy, bank.keys, sealing);
      platform = { institutions: [{ id: bank.id, key: relative(home, copy) }] };
    } else if (roles.includes('platform')) platform = { institutions: [] };
    const config: Omit<NodeConfig, 'home'> = {
      name,
      genesis: 'genesis.json',
      key: 'node-key.json',
      data: 'data',
      api: {
        host: place.apiHost,
        port: place.apiPort,
        ...(placed ? { url: httpUrl(place.host, place.apiPort) } : {}),
      },
      p2p: {
        listen: [tcpMultiaddr(place.listenHost, place.p2pPort)],
        ...(placed ? { announce: [tcpMultiaddr(place.host, place.p2pPort)] } : {}),
        peers: validatorPeers.filter((_, j) => j !== i),
      },
      consensus,
      mempool: { maxTxs: 100_000 },
      ...(platform ? { platform } : {}),
      ...(roles.includes('extractor') ? { extractor: { sources: options.sources ?? [] } } : {}),
    };
    const configPath = join(home, 'config.json');
    await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
    nodes.push({
      name,
      kind: gateway ? 'gateway' : 'validator',
      home,
      configPath,
      apiUrl: httpUrl(place.host, place.apiPort),
      host: place.host,
      key: bytesToHex(keys.signing.publicKey),
      roles,
      ...(bank ? { institution: bank.id } : {}),
    });
  }
  return {
    genesisPath,
    genesis,
    nodes,
    keys: { ...paths, institution: banks[0]!.path },
    institutionId: banks[0]!.id,
    institutions: banks.map((b) => ({ id: b.id, key: b.path })),
  };
}
