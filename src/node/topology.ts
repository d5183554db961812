/**
 * Where each node of a testnet runs: the `--topology FILE` of `datagrant init` (a JSON file naming
 * every node, its host and ports), or the same plan built from `--hosts h0,h1,...`. A node's
 * `host` is the address its peers dial and clients call (announced); it may bind elsewhere
 * (`listenHost` for p2p, `apiHost` for the HTTP API, e.g. `0.0.0.0`).
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { DatagrantError } from '../common/errors.js';
import { DATA_TYPES, type DataType, ID_PATTERN, NODE_ROLES, type NodeRole } from '../ledger/index.js';

/** A host name or address: IPv4, IPv6 (without brackets) or a DNS name. */
const Host = Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:_-]+$' });
const Port = Type.Integer({ minimum: 1, maximum: 65535 });

/** One node of a topology file. */
export const TopologyNodeSchema = Type.Object(
  {
    name: Type.String({ pattern: ID_PATTERN }),
    kind: Type.Union([Type.Literal('validator'), Type.Literal('gateway')]),
    /** Address peers dial and clients call (announced). */
    host: Host,
    /** Address the p2p transport binds to (default: `host`, or `0.0.0.0` when `host` is a name). */
    listenHost: Type.Optional(Host),
    /** Address the HTTP API binds to (default: the listen host). */
    apiHost: Type.Optional(Host),
    /** HTTP API port (default 26650, plus one per earlier node on the same host). */
    apiPort: Type.Optional(Port),
    /** p2p port (default 26750, plus one per earlier node on the same host). */
    p2pPort: Type.Optional(Port),
    /** A validator's roles (default as `datagrant init`); a gateway is always `platform`. */
    roles: Type.Optional(
      Type.Array(Type.Union(NODE_ROLES.map((r) => Type.Literal(r))), { uniqueItems: true }),
    ),
    /** Data types an extractor validator extracts (default all). */
    types: Type.Optional(
      Type.Array(Type.Union(DATA_TYPES.map((t) => Type.Literal(t))), { uniqueItems: true }),
    ),
  },
  { additionalProperties: false },
);

/** Schema of a topology file. */
export const TopologySchema = Type.Object(
  { nodes: Type.Array(TopologyNodeSchema, { minItems: 1, maxItems: 1100 }) },
  { additionalProperties: false },
);

/** A topology file's content. */
export type Topology = Static<typeof TopologySchema>;
/** One node of a topology file. */
export type TopologyNode = Static<typeof TopologyNodeSchema>;

/** One node as `init` writes it: every address and port decided. */
export interface PlannedNode {
  name: string;
  kind: 'validator' | 'gateway';
  host: string;
  listenHost: string;
  apiHost: string;
  apiPort: number;
  p2pPort: number;
  roles: NodeRole[];
  types: DataType[];
}

/** Default API port of the first node on a host; its p2p port is 100 above. */
export const DEFAULT_API_PORT = 26650;

const check = TypeCompiler.Compile(TopologySchema);

function invalid(field: string, message: string): DatagrantError {
  return new DatagrantError('CONFIG_INVALID', `topology${field}: ${message}`, { field: `topology${field}` });
}

/** Validates a parsed topology file; `CONFIG_INVALID` naming the bad field. */
export function parseTopology(input: unknown): Topology {
  if (!check.Check(input)) {
    const e = check.Errors(input).First();
    throw invalid(e?.path ?? '', e?.message ?? 'invalid');
  }
  const names = new Set<string>();
  input.nodes.forEach((node, i) => {
    const at = `/nodes/${i}`;
    if (names.has(node.name)) throw invalid(`${at}/name`, `duplicate node name ${node.name}`);
    names.add(node.name);
    if (node.kind === 'gateway' && node.roles && (node.roles.length !== 1 || node.roles[0] !== 'platform'))
      throw invalid(`${at}/roles`, 'a gateway has the platform role only');
    if (node.kind === 'gateway' && node.types) throw invalid(`${at}/types`, 'a gateway extracts nothing');
    if (node.types && node.roles && !node.roles.includes('extractor'))
      throw invalid(`${at}/types`, 'data types need the extractor role');
    for (const field of ['listenHost', 'apiHost'] as const) {
      const bind = node[field];
      if (bind !== undefined && isIP(bind) === 0) throw invalid(`${at}/${field}`, 'must be an IP address');
    }
  });
  if (!input.nodes.some((n) => n.kind === 'validator'))
    throw invalid('/nodes', 'needs at least one validator');
  return input;
}

/** Reads and validates a topology file. */
export async function loadTopology(path: string): Promise<Topology> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new DatagrantError('CONFIG_NOT_FOUND', `no topology file at ${path}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new DatagrantError('CONFIG_INVALID', `${path} is not JSON`);
  }
  return parseTopology(json);
}

/** What `planNodes` needs besides the topology. */
export interface PlanDefaults {
  /** API port of the first node on each host (default 26650); p2p ports are 100 above. */
  basePort?: number;
  /** Roles of validator i of n when the topology gives none. */
  roles: (index: number, n: number) => NodeRole[];
}

/**
 * Decides every node's addresses and ports: validators first, then gateways, each kind in file
 * order. Nodes on distinct hosts share the default ports; nodes on one host get consecutive ones.
 */
export function planNodes(topology: Topology, defaults: PlanDefaults): PlannedNode[] {
  const base = defaults.basePort ?? DEFAULT_API_PORT;
  const ordered = [
    ...topology.nodes.filter((n) => n.kind === 'validator'),
    ...topology.nodes.filter((n) => n.kind === 'gateway'),
  ];
  const validators = ordered.filter((n) => n.kind === 'validator').length;
  const onHost = new Map<string, number>();
  const taken = new Map<string, string>();
  const plan = ordered.map((node, i): PlannedNode => {
    const offset = onHost.get(node.host) ?? 0;
    onHost.set(node.host, offset + 1);
    const roles: NodeRole[] =
      node.kind === 'gateway' ? ['platform'] : [...(node.roles ?? defaults.roles(i, validators))];
    const listenHost = node.listenHost ?? (isIP(node.host) === 0 ? '0.0.0.0' : node.host);
    return {
      name: node.name,
      kind: node.kind,
      host: node.host,
      listenHost,
      apiHost: node.apiHost ?? listenHost,
      apiPort: node.apiPort ?? base + offset,
      p2pPort: node.p2pPort ?? base + 100 + offset,
      roles,
      types: roles.includes('extractor') ? [...(node.types ?? DATA_TYPES)] : [],
    };
  });
  for (const node of plan) {
    for (const [what, port] of [
      ['apiPort', node.apiPort],
      ['p2pPort', node.p2pPort],
    ] as const) {
      // Port 0 (any free port) never clashes; it is only used on loopback by tests.
      if (port === 0) continue;
      const slot = `${node.host} ${port}`;
      const other = taken.get(slot);
      const at = `/nodes/${topology.nodes.findIndex((n) => n.name === node.name)}/${what}`;
      if (other !== undefined) throw invalid(at, `${node.host}:${port} is already ${other}'s`);
      taken.set(slot, `${node.name} ${what}`);
    }
  }
  return plan;
}

/** The topology of `--hosts h0,h1,...`: one host per node, validators first, then gateways. */
export function hostsTopology(
  hosts: readonly string[],
  counts: { validators: number; gateways: number },
  bind: { listenHost?: string } = {},
): Topology {
  const total = counts.validators + counts.gateways;
  if (hosts.length !== total)
    throw new DatagrantError(
      'CONFIG_INVALID',
      `${hosts.length} hosts for ${total} nodes (${counts.validators} validators, then ${counts.gateways} gateways): give one host per node`,
    );
  return parseTopology({
    nodes: hosts.map((host, i) => ({
      name: i < counts.validators ? `node${i}` : `gateway${i - counts.validators}`,
      kind: i < counts.validators ? 'validator' : 'gateway',
      host,
      ...(bind.listenHost ? { listenHost: bind.listenHost } : {}),
    })),
  });
}

/** A dialable multiaddr of `host:port` (`/ip4`, `/ip6` or `/dns`). */
export function tcpMultiaddr(host: string, port: number): string {
  const family = isIP(host);
  const proto = family === 4 ? 'ip4' : family === 6 ? 'ip6' : 'dns';
  return `/${proto}/${host}/tcp/${port}`;
}

/** An HTTP URL of `host:port` (IPv6 in brackets). */
export function httpUrl(host: string, port: number): string {
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}
