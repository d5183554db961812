/**
 * The options of `datagrant init` that say where its nodes run (`--hosts`, `--listen-host`,
 * `--topology`) and where its extractors read (`--synthetic-source`, `--sources`), turned into
 * `InitOptions`; usage mistakes are `CLI_USAGE` errors that say what to give instead.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { bytesToHex } from '../common/bytes.js';
import { DatagrantError } from '../common/errors.js';
import { generateKeySet } from '../common/keyfile.js';
import { readKeyFile, writeKeyFile } from '../common/keyfile-fs.js';
import type { InitOptions } from '../node/init.js';
import { loadTopology } from '../node/topology.js';
import { validateDataSourceConfig } from '../plugins/index.js';

/** The placement options as commander parsed them, and which of the others were given. */
export interface PlacementFlags {
  hosts?: string;
  listenHost?: string;
  topology?: string;
  syntheticSource?: string;
  /**
   * With `syntheticSource`: the key file the synthetic platform signs its answers with (written
   * with a fresh key when missing); its public key is registered in genesis for every type.
   */
  syntheticSourceKey?: string;
  sources?: string;
  /** Node counts (from --validators / --gateways, or their defaults). */
  validators: number;
  gateways: number;
  /** Whether --validators or --gateways were given on the command line. */
  explicit: { validators: boolean; gateways: boolean };
}

/** What the flags add to `InitOptions`. */
export type Placement = Pick<InitOptions, 'hosts' | 'listenHost' | 'topology' | 'sources'>;

function usage(message: string): DatagrantError {
  return new DatagrantError('CLI_USAGE', message);
}

/** The signing public key (hex) of the key file at `path`, written with a fresh key set first if missing. */
async function syntheticSourceKey(path: string): Promise<string> {
  if (!existsSync(path)) {
    await mkdir(dirname(path), { recursive: true });
    await writeKeyFile(path, generateKeySet('synthetic-source'));
  }
  return bytesToHex((await readKeyFile(path)).signing.publicKey);
}

/** Parses the placement flags (reading the topology and sources files they name). */
export async function placementOf(flags: PlacementFlags): Promise<Placement> {
  const out: Placement = {};
  if (flags.topology !== undefined) {
    if (flags.hosts !== undefined) throw usage('give --hosts or --topology, not both');
    for (const name of ['validators', 'gateways'] as const)
      if (flags.explicit[name]) throw usage(`--topology names every node: drop --${name}`);
    if (flags.listenHost !== undefined)
      throw usage('--topology gives each node its listenHost: drop --listen-host');
    out.topology = await loadTopology(flags.topology);
  } else if (flags.hosts !== undefined) {
    const hosts = flags.hosts.split(',').map((h) => h.trim());
    const total = flags.validators + flags.gateways;
    if (hosts.some((h) => h === ''))
      throw usage('--hosts: an empty host name (give h0,h1,... without blanks)');
    if (hosts.length !== total)
      throw usage(
        `--hosts names ${hosts.length} hosts but there are ${total} nodes (${flags.validators} validators, then ${flags.gateways} gateways): give one host per node, validators first`,
      );
    out.hosts = hosts;
  }
  if (flags.listenHost !== undefined) {
    if (flags.hosts === undefined) throw usage('--listen-host goes with --hosts');
    if (isIP(flags.listenHost) === 0) throw usage('--listen-host must be an IP address, e.g. 0.0.0.0');
    out.listenHost = flags.listenHost;
  }
  const sources: Record<string, unknown>[] = [];
  if (flags.syntheticSource !== undefined) {
    let url: URL;
    try {
      url = new URL(flags.syntheticSource);
    } catch {
      throw usage('--synthetic-source must be a URL, e.g. http://10.0.0.9:7070');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw usage('--synthetic-source must be an http(s) URL');
    // The generator lives with the SIMULATED platform (scripts/, TypeScript, not part of the
    // compiled build): loaded through tsx only when asked for.
    const { tsImport } = await import('tsx/esm/api');
    const { syntheticSourceConfig, DEFAULT_SYNTHETIC_SOURCE_ID } = (await tsImport(
      '../../scripts/synthetic-data-platform.ts',
      import.meta.url,
    )) as {
      syntheticSourceConfig(platform: string | { url: string; source: { id: string; key: string } }): object;
      DEFAULT_SYNTHETIC_SOURCE_ID: string;
    };
    const signer =
      flags.syntheticSourceKey === undefined
        ? undefined
        : { id: DEFAULT_SYNTHETIC_SOURCE_ID, key: await syntheticSourceKey(flags.syntheticSourceKey) };
    sources.push(
      syntheticSourceConfig(
        signer ? { url: flags.syntheticSource, source: signer } : flags.syntheticSource,
      ) as unknown as Record<string, unknown>,
    );
  } else if (flags.syntheticSourceKey !== undefined) {
    throw usage('--synthetic-source-key goes with --synthetic-source');
  }
  if (flags.sources !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(flags.sources, 'utf8'));
    } catch (err) {
      throw usage(`--sources: cannot read ${flags.sources} as JSON: ${(err as Error).message}`);
    }
    for (const config of Array.isArray(json) ? json : [json])
      sources.push(validateDataSourceConfig(config) as unknown as Record<string, unknown>);
  }
  if (sources.length > 0) out.sources = sources;
  return out;
}
