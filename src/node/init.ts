/**
 * `datagrant init`: writes a local testnet — genesis, governance and registrar keys, a demo
 * institution, and one home per validator (config + node key) on consecutive loopback ports.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { bytesToHex } from '../common/bytes.js';
import { generateKeySet, type KeySet } from '../common/keyfile.js';
import { writeKeyFile } from '../common/keyfile-fs.js';
import { DATA_TYPES, DEFAULT_CHAIN_PARAMS, type Genesis, type NodeRole } from '../ledger/index.js';
import type { NodeConfig } from './config.js';

/** Options of `initTestnet`. */
export interface InitOptions {
  dir: string;
  validators: number;
  chain?: string;
  host?: string;
  /** API port of node 0; node i gets basePort + i, and p2p port basePort + 100 + i. */
  basePort?: number;
  /** Roles per node index; default: both roles for a single node, else alternating platform/extractor. */
  roles?: (index: number, n: number) => NodeRole[];
  /** Extractor data-source configs written into extractor nodes' configs. */
  sources?: Record<string, unknown>[];
  blockIntervalMs?: number;
  minBlockIntervalMs?: number;
  viewTimeoutMs?: number;
  time?: number;
}

/** What `initTestnet` wrote. */
export interface InitResult {
  genesisPath: string;
  genesis: Genesis;
  nodes: { name: string; home: string; configPath: string; apiUrl: string; key: string; roles: NodeRole[] }[];
  keys: { registrar: string; admin: string; institution: string };
  institutionId: string;
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

/** Writes a fresh testnet into `dir` (which must not already hold one). */
export async function initTestnet(options: InitOptions): Promise<InitResult> {
  const n = options.validators;
  const host = options.host ?? '127.0.0.1';
  const basePort = options.basePort ?? 26650;
  const chain = options.chain ?? 'datagrant-local';
  const rolesOf = options.roles ?? defaultRoles;
  const keysDir = join(options.dir, 'keys');
  await mkdir(keysDir, { recursive: true });

  const registrar = generateKeySet('registrar');
  const admin = generateKeySet('governance');
  const bank = generateKeySet('demo-bank');
  const institutionId = 'demo-bank';
  const paths = {
    registrar: join(keysDir, 'registrar.json'),
    admin: join(keysDir, 'admin.json'),
    institution: join(keysDir, `${institutionId}.json`),
  };
  await writeKeyFile(paths.registrar, registrar);
  await writeKeyFile(paths.admin, admin);
  await writeKeyFile(paths.institution, bank);

  const nodeKeys: KeySet[] = Array.from({ length: n }, (_, i) => generateKeySet(`node${i}`));
  const genesis: Genesis = {
    chain,
    time: options.time ?? Date.now(),
    validators: nodeKeys.map((k, i) => {
      const roles = rolesOf(i, n);
      return {
        name: `node${i}`,
        key: bytesToHex(k.signing.publicKey),
        roles,
        types: roles.includes('extractor') ? [...DATA_TYPES] : [],
      };
    }),
    registrars: [bytesToHex(registrar.signing.publicKey)],
    admins: [bytesToHex(admin.signing.publicKey)],
    institutions: [
      {
        institution: institutionId,
        name: 'Demo Bank',
        signKey: bytesToHex(bank.signing.publicKey),
        encKey: bytesToHex(bank.encryption.publicKey),
      },
    ],
    params: { ...DEFAULT_CHAIN_PARAMS },
  };
  const genesisPath = join(options.dir, 'genesis.json');
  await writeFile(genesisPath, `${JSON.stringify(genesis, null, 2)}\n`, { flag: 'wx' });

  const nodes: InitResult['nodes'] = [];
  for (let i = 0; i < n; i++) {
    const name = `node${i}`;
    const home = join(options.dir, name);
    await mkdir(home, { recursive: true });
    await writeKeyFile(join(home, 'node-key.json'), nodeKeys[i]!);
    const roles = genesis.validators[i]!.roles;
    const config: Omit<NodeConfig, 'home'> = {
      name,
      genesis: relative(home, genesisPath),
      key: 'node-key.json',
      data: 'data',
      api: { host, port: basePort + i },
      p2p: {
        listen: [`/ip4/${host}/tcp/${basePort + 100 + i}`],
        peers: nodeKeys
          .map((k, j) => ({
            key: bytesToHex(k.signing.publicKey),
            addr: `/ip4/${host}/tcp/${basePort + 100 + j}`,
          }))
          .filter((_, j) => j !== i),
      },
      consensus: {
        blockIntervalMs: options.blockIntervalMs ?? 1000,
        minBlockIntervalMs: options.minBlockIntervalMs ?? defaultMinBlockIntervalMs(options.validators),
        ...(options.viewTimeoutMs ? { viewTimeoutMs: options.viewTimeoutMs } : {}),
      },
      mempool: { maxTxs: 100_000 },
      ...(roles.includes('platform')
        ? { platform: { institutions: [{ id: institutionId, key: relative(home, paths.institution) }] } }
        : {}),
      ...(roles.includes('extractor') ? { extractor: { sources: options.sources ?? [] } } : {}),
    };
    const configPath = join(home, 'config.json');
    await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
    nodes.push({
      name,
      home,
      configPath,
      apiUrl: `http://${host}:${basePort + i}`,
      key: genesis.validators[i]!.key,
      roles,
    });
  }
  return { genesisPath, genesis, nodes, keys: paths, institutionId };
}
