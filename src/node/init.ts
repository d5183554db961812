/**
 * `datagrant init`: writes a local testnet — genesis, governance and registrar keys, one home per
 * validator (config + node key) and per gateway on consecutive ports, and each institution's key
 * file under `institutions/<id>/key.json`, outside every validator home. A validator never gets an
 * institution's key; the institution's own gateway (the first gateways, one per institution) gets
 * a copy, so that the platform can assemble documents inside the institution's walls.
 */
import { mkdir, writeFile } from 'node:fs/promises';
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
  type NodeRole,
} from '../ledger/index.js';
import type { NodeConfig } from './config.js';
import { FileSigningState, SIGNING_STATE_FILE } from './signing-state.js';

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
  host?: string;
  /** API port of node 0; node i gets basePort + i, and p2p port basePort + 100 + i (gateways after the validators). */
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

/** One node `initTestnet` wrote. */
export interface InitNode {
  name: string;
  kind: 'validator' | 'gateway';
  home: string;
  configPath: string;
  apiUrl: string;
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
  /** Key files; `institution` is the first institution's (`institutions/<id>/key.json`). */
  keys: { registrar: string; admin: string; institution: string };
  institutionId: string;
  /** Every institution's id and key file. */
  institutions: { id: string; key: string }[];
}

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

/** Writes a fresh testnet into `dir` (which must not already hold one). */
export async function initTestnet(options: InitOptions): Promise<InitResult> {
  const n = options.validators;
  const host = options.host ?? '127.0.0.1';
  const basePort = options.basePort ?? 26650;
  const chain = options.chain ?? 'datagrant-local';
  const rolesOf = options.roles ?? defaultRoles;
  const keysDir = join(options.dir, 'keys');
  await mkdir(keysDir, { recursive: true });

  const g = options.gateways ?? 0;
  if (g > 0 && n < 2)
    throw new DatagrantError(
      'CONFIG_INVALID',
      'gateways follow a PBFT chain: give at least 2 validators (a lone dev validator runs no network)',
    );
  const registrar = generateKeySet('registrar');
  const admin = generateKeySet('governance');
  const paths = {
    registrar: join(keysDir, 'registrar.json'),
    admin: join(keysDir, 'admin.json'),
  };
  await writeKeyFile(paths.registrar, registrar);
  await writeKeyFile(paths.admin, admin);
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

  const nodeKeys: KeySet[] = Array.from({ length: n }, (_, i) => generateKeySet(`node${i}`));
  const gatewayKeys: KeySet[] = Array.from({ length: g }, (_, i) => generateKeySet(`gateway${i}`));
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
    ...(g > 0
      ? {
          gateways: gatewayKeys.map((k, i) => ({
            name: `gateway${i}`,
            key: bytesToHex(k.signing.publicKey),
            roles: ['platform' as const],
          })),
        }
      : {}),
    registrars: [bytesToHex(registrar.signing.publicKey)],
    admins: [bytesToHex(admin.signing.publicKey)],
    institutions: banks.map((b) => ({
      institution: b.id,
      name: b.name,
      signKey: bytesToHex(b.keys.signing.publicKey),
      encKey: bytesToHex(b.keys.encryption.publicKey),
    })),
    params: { ...DEFAULT_CHAIN_PARAMS, extraction: options.extraction ?? 'on-request' },
  };
  const genesisPath = join(options.dir, 'genesis.json');
  await writeFile(genesisPath, `${JSON.stringify(genesis, null, 2)}\n`, { flag: 'wx' });

  const nodes: InitNode[] = [];
  const validatorPeers = nodeKeys.map((k, j) => ({
    key: bytesToHex(k.signing.publicKey),
    addr: `/ip4/${host}/tcp/${basePort + 100 + j}`,
  }));
  const consensus = {
    blockIntervalMs: options.blockIntervalMs ?? 1000,
    minBlockIntervalMs: options.minBlockIntervalMs ?? defaultMinBlockIntervalMs(options.validators),
    ...(options.viewTimeoutMs ? { viewTimeoutMs: options.viewTimeoutMs } : {}),
  };
  for (let i = 0; i < n + g; i++) {
    const gateway = i >= n;
    const name = gateway ? `gateway${i - n}` : `node${i}`;
    const home = join(options.dir, name);
    await mkdir(home, { recursive: true });
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
      genesis: relative(home, genesisPath),
      key: 'node-key.json',
      data: 'data',
      api: { host, port: basePort + i },
      p2p: {
        listen: [`/ip4/${host}/tcp/${basePort + 100 + i}`],
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
      apiUrl: `http://${host}:${basePort + i}`,
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
