/**
 * A home for a node that joins a running chain as a validator the council seats later
 * (`datagrant node join`): genesis and peers copied from an existing node's home, a fresh node key
 * (which only its operator holds), an empty signing state, and the API and p2p ports given. The
 * node starts from genesis, syncs, and votes from the first height of the set that holds its key
 * (`gov propose validator-add --node-key` with the public half, which `join` prints).
 */
import { access, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { bytesToHex } from '../common/bytes.js';
import { DatagrantError } from '../common/errors.js';
import { generateKeySet } from '../common/keyfile.js';
import { writeKeyFile } from '../common/keyfile-fs.js';
import { loadNodeConfig, type NodeConfig } from './config.js';
import { readGenesis } from './genesis-file.js';
import { FileSigningState, SIGNING_STATE_FILE } from './signing-state.js';

/** What `joinHome` needs. */
export interface JoinOptions {
  /** The new home (must not hold a config yet). */
  home: string;
  /** config.json of an existing node of the chain: genesis, peers and consensus timing come from it. */
  from: string;
  /** The new node's name. */
  name: string;
  apiPort: number;
  p2pPort: number;
  /** Address to bind and announce (default 127.0.0.1). */
  host?: string;
}

/** The home written: its config path and the new validator key (hex) to propose. */
export interface JoinedHome {
  configPath: string;
  key: string;
}

/** Writes the home of a node joining the chain of `options.from`'s node. */
export async function joinHome(options: JoinOptions): Promise<JoinedHome> {
  const home = resolve(options.home);
  const configPath = join(home, 'config.json');
  const exists = await access(configPath).then(
    () => true,
    () => false,
  );
  if (exists) throw new DatagrantError('CONFIG_EXISTS', `${configPath} exists: join writes a new home`);
  const peer = await loadNodeConfig(resolve(options.from));
  // The peer's key from genesis by its name: its key file stays its operator's.
  const genesis = await readGenesis(peer.genesis);
  const peerKey = [...genesis.validators, ...(genesis.gateways ?? [])].find((m) => m.name === peer.name)?.key;
  if (peerKey === undefined)
    throw new DatagrantError('CONFIG_INVALID', `${options.from}: genesis names no node ${peer.name}`);
  const peerAddr = (peer.p2p.announce ?? peer.p2p.listen)[0];
  if (peerAddr === undefined)
    throw new DatagrantError('CONFIG_INVALID', `${options.from} names no p2p address to dial`);
  const host = options.host ?? '127.0.0.1';
  await mkdir(home, { recursive: true });
  await copyFile(peer.genesis, join(home, 'genesis.json'));
  const keys = generateKeySet(options.name);
  await writeKeyFile(join(home, 'node-key.json'), keys);
  // A key that has never signed: its empty signing state says so (no double-sign wait needed).
  await new FileSigningState(join(home, SIGNING_STATE_FILE)).save(null);
  const peers = [{ key: peerKey, addr: peerAddr }, ...peer.p2p.peers.filter((p) => p.key !== peerKey)];
  const config: Omit<NodeConfig, 'home'> = {
    name: options.name,
    genesis: 'genesis.json',
    key: 'node-key.json',
    data: 'data',
    api: { host, port: options.apiPort },
    p2p: { listen: [`/ip4/${host}/tcp/${options.p2pPort}`], peers },
    consensus: peer.consensus,
    mempool: peer.mempool,
  };
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`, { flag: 'wx' });
  return { configPath, key: bytesToHex(keys.signing.publicKey) };
}
