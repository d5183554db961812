/**
 * `datagrant gov propose | approve | list | show`: the council's commands. A member proposes a
 * change (signed with her council key; the proposal's id is the transaction hash), others approve
 * it; the approval that reaches the threshold enacts it. `list` and `show` read proposals from a
 * node; `show --genesis` proves the proposal against the genesis validators instead of taking the
 * node's word.
 */
import type { Command } from 'commander';
import { DatagrantError } from '../common/errors.js';
import type { ProposalState } from '../ledger/governance.js';
import type { GovChange } from '../ledger/tx.js';
import { DATA_TYPES, GATEWAY_ROLES, NODE_ROLES } from './ledger-lists.js';
import { passphraseFrom } from './passphrase.js';

const DEFAULT_API = process.env.DATAGRANT_API ?? 'http://127.0.0.1:26650';
const DAY = 86_400_000;

/** The parameters `gov propose params` may set, as `name=value` (milliseconds or counts). */
const PARAM_NAMES = ['maxTxTtlMs', 'maxConsentMs', 'maxGrantMs', 'maxBlockTxs', 'maxBlockBytes'] as const;

function usage(message: string): DatagrantError {
  return new DatagrantError('CLI_USAGE', message);
}

/** Parses `7d`, `12h`, `30m` into milliseconds. */
function duration(text: string): number {
  const m = /^(\d+)(m|h|d)$/.exec(text.trim());
  if (!m) throw usage(`bad duration ${text}: use e.g. 30m, 12h, 7d`);
  return Number(m[1]) * { m: 60_000, h: 3_600_000, d: DAY }[m[2] as 'm' | 'h' | 'd'];
}

interface ProposeFlags {
  institution?: string;
  name?: string;
  institutionKey?: string;
  signKey?: string;
  encKey?: string;
  registrar?: string;
  param?: string[];
  validator?: string;
  nodeKey?: string;
  newNodeKey?: string;
  roles?: string;
  types?: string;
  gateway?: string;
  source?: string;
  sourceKey?: string;
}

/** The public signing key (hex) of a key file (sealed ones open with DATAGRANT_PASSPHRASE). */
async function publicKeyOf(file: string): Promise<string> {
  const [{ bytesToHex }, { readKeyFile }] = await Promise.all([
    import('../common/bytes.js'),
    import('../common/keyfile-fs.js'),
  ]);
  return bytesToHex((await readKeyFile(file, process.env.DATAGRANT_PASSPHRASE)).signing.publicKey);
}

/** A comma-separated list, each item among `allowed`. */
function listOf<T extends string>(text: string | undefined, allowed: readonly T[], flag: string): T[] {
  if (text === undefined || text.trim() === '') return [];
  const items = text.split(',').map((x) => x.trim());
  for (const item of items)
    if (!(allowed as readonly string[]).includes(item))
      throw usage(`${flag} ${item}: use a comma-separated list of ${allowed.join(', ')}`);
  return items as T[];
}

/** The changes `gov propose` takes. */
const CHANGES = [
  'institution-add',
  'institution-retire',
  'registrar-add',
  'registrar-retire',
  'params',
  'validator-add',
  'validator-retire',
  'validator-rotate',
  'validator-update',
  'gateway-add',
  'gateway-retire',
  'source-add',
  'source-retire',
  'source-update',
] as const;

/** The change `gov propose <type>` names, from its flags. */
async function changeOf(type: string, o: ProposeFlags & { api?: string }): Promise<GovChange> {
  const need = (value: string | undefined, flag: string): string => {
    if (value === undefined) throw usage(`${type} needs ${flag}`);
    return value;
  };
  switch (type) {
    case 'institution-add': {
      let { signKey, encKey } = o;
      if (o.institutionKey !== undefined) {
        const [{ bytesToHex }, { readKeyFile }] = await Promise.all([
          import('../common/bytes.js'),
          import('../common/keyfile-fs.js'),
        ]);
        // Only the public halves are used; the file may be sealed (DATAGRANT_PASSPHRASE).
        const keys = await readKeyFile(o.institutionKey, process.env.DATAGRANT_PASSPHRASE);
        signKey = bytesToHex(keys.signing.publicKey);
        encKey = bytesToHex(keys.encryption.publicKey);
      }
      return {
        type: 'institution.add',
        institution: need(o.institution, '--institution <id>'),
        name: need(o.name, '--name <name>'),
        signKey: need(signKey, '--institution-key <file> or --sign-key <hex>'),
        encKey: need(encKey, '--institution-key <file> or --enc-key <hex>'),
      };
    }
    case 'institution-retire':
      return { type: 'institution.retire', institution: need(o.institution, '--institution <id>') };
    case 'registrar-add':
    case 'registrar-retire':
      return {
        type: type === 'registrar-add' ? 'registrar.add' : 'registrar.retire',
        key: need(o.registrar, '--registrar <hex key>'),
      };
    case 'params': {
      const params: Record<string, number | string> = {};
      for (const pair of o.param ?? []) {
        const policy = /^extraction=(on-request|on-consent)$/.exec(pair);
        if (policy) {
          params.extraction = policy[1]!;
          continue;
        }
        const m = /^([A-Za-z]+)=(\d+)$/.exec(pair);
        if (!m || !(PARAM_NAMES as readonly string[]).includes(m[1]!))
          throw usage(
            `--param ${pair}: use name=value with a name among ${PARAM_NAMES.join(', ')}, or extraction=on-request|on-consent`,
          );
        params[m[1]!] = Number(m[2]);
      }
      if (Object.keys(params).length === 0) throw usage('params needs at least one --param name=value');
      return { type: 'params.set', params };
    }
    case 'validator-add':
      return {
        type: 'validator.add',
        validator: {
          name: need(o.name, '--name <name>'),
          key:
            o.nodeKey !== undefined
              ? await publicKeyOf(o.nodeKey)
              : need(o.validator, '--node-key <file> or --validator <hex>'),
          roles: listOf(o.roles, NODE_ROLES, '--roles'),
          types: listOf(o.types, DATA_TYPES, '--types'),
        },
      };
    case 'validator-retire':
      return { type: 'validator.retire', key: need(o.validator, '--validator <hex key>') };
    case 'validator-rotate': {
      const key = need(o.validator, '--validator <hex key>');
      const [{ bytesToHex }, { sign }, { readKeyFile }, { validatorRotationBytes }, { apiCall }] =
        await Promise.all([
          import('../common/bytes.js'),
          import('../common/crypto.js'),
          import('../common/keyfile-fs.js'),
          import('../ledger/governance.js'),
          import('./client.js'),
        ]);
      // The new key signs the rotation, so nobody is seated on a key it does not hold.
      const next = await readKeyFile(
        need(o.newNodeKey, '--new-node-key <file>'),
        process.env.DATAGRANT_PASSPHRASE,
      );
      const { chain } = await apiCall<{ chain: string }>(o.api ?? DEFAULT_API, 'GET', '/v1/status');
      const newKey = bytesToHex(next.signing.publicKey);
      const proof = bytesToHex(sign(validatorRotationBytes(chain, key, newKey), next.signing.secretKey));
      return { type: 'validator.rotate', key, newKey, proof };
    }
    case 'validator-update':
      return {
        type: 'validator.update',
        key: need(o.validator, '--validator <hex key>'),
        roles: listOf(o.roles, NODE_ROLES, '--roles'),
        types: listOf(o.types, DATA_TYPES, '--types'),
      };
    case 'gateway-add':
      return {
        type: 'gateway.add',
        gateway: {
          name: need(o.name, '--name <name>'),
          key:
            o.nodeKey !== undefined
              ? await publicKeyOf(o.nodeKey)
              : need(o.gateway, '--node-key <file> or --gateway <hex>'),
          roles: listOf(o.roles, GATEWAY_ROLES, '--roles'),
        },
      };
    case 'gateway-retire':
      return { type: 'gateway.retire', key: need(o.gateway, '--gateway <hex key>') };
    case 'source-add': {
      const types = listOf(o.types, DATA_TYPES, '--types');
      if (types.length === 0) throw usage('source-add needs --types <list>');
      return {
        type: 'source.add',
        source: {
          id: need(o.source, '--source <id>'),
          key: need(o.sourceKey, '--source-key <hex>'),
          types,
        },
      };
    }
    case 'source-retire':
      return { type: 'source.retire', id: need(o.source, '--source <id>') };
    case 'source-update': {
      const types = listOf(o.types, DATA_TYPES, '--types');
      if (types.length === 0) throw usage('source-update needs --types <list>');
      return { type: 'source.update', id: need(o.source, '--source <id>'), types };
    }
    default:
      throw usage(`unknown change ${type}: ${CHANGES.join(', ')}`);
  }
}

function print(json: boolean | undefined, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);
}

/** One line saying what a change does. */
export function describeChange(c: GovChange): string {
  const short = (key: string) => `${key.slice(0, 16)}…`;
  switch (c.type) {
    case 'institution.add':
      return `add institution ${c.institution} (${c.name})`;
    case 'institution.retire':
      return `retire institution ${c.institution}`;
    case 'registrar.add':
      return `add registrar ${short(c.key)}`;
    case 'registrar.retire':
      return `retire registrar ${short(c.key)}`;
    case 'params.set':
      return `set ${Object.entries(c.params)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`;
    case 'validator.add':
      return `add validator ${c.validator.name} (${short(c.validator.key)})`;
    case 'validator.retire':
      return `retire validator ${short(c.key)}`;
    case 'validator.rotate':
      return `rotate validator ${short(c.key)} to ${short(c.newKey)}`;
    case 'validator.update':
      return `set validator ${short(c.key)} roles [${c.roles.join(',')}] types [${c.types.join(',')}]`;
    case 'gateway.add':
      return `add gateway ${c.gateway.name} (${short(c.gateway.key)}) roles [${c.gateway.roles.join(',')}]`;
    case 'gateway.retire':
      return `retire gateway ${short(c.key)}`;
    case 'source.add':
      return `add source ${c.source.id} (${short(c.source.key)}) for [${c.source.types.join(',')}]`;
    case 'source.retire':
      return `retire source ${c.id}`;
    case 'source.update':
      return `set source ${c.id} types [${c.types.join(',')}]`;
  }
}

function describe(p: {
  id: string;
  change: GovChange;
  approvals: string[];
  threshold: number;
  status: string;
  deadline: number;
}): string {
  const what = describeChange(p.change);
  return `${p.id}  ${p.status.padEnd(8)} ${p.approvals.length}/${p.threshold}  until ${new Date(p.deadline).toISOString()}  ${what}`;
}

/** Adds `datagrant gov …`. */
export function addGovCommands(program: Command): void {
  const gov = program
    .command('gov')
    .description(
      'governance: council proposals and approvals (institutions, registrars, validators, gateways, data sources and chain parameters)',
    );

  gov
    .command('propose')
    .description(
      `council member: propose a change (${CHANGES.join(', ')}); your approval counts first. A validator change takes effect 2 blocks after the approval that enacts it`,
    )
    .argument('<change>', CHANGES.join(' | '))
    .requiredOption('--key <file>', 'your council key file')
    .option('--institution <id>', 'institution id (institution-add, institution-retire)')
    .option(
      '--name <name>',
      'institution name (institution-add), validator name (validator-add) or gateway name (gateway-add)',
    )
    .option(
      '--institution-key <file>',
      "the institution's key file: its public keys are proposed (institution-add)",
    )
    .option('--sign-key <hex>', "or the institution's Ed25519 public key (institution-add)")
    .option('--enc-key <hex>', 'and its X25519 public key (institution-add)')
    .option('--registrar <hex>', "the registrar's Ed25519 public key (registrar-add, registrar-retire)")
    .option(
      '--validator <hex>',
      "the validator's Ed25519 key (validator-retire, validator-rotate, validator-update; or validator-add)",
    )
    .option(
      '--node-key <file>',
      "the new validator's or gateway's node key file: its public key is proposed (validator-add, gateway-add)",
    )
    .option('--gateway <hex>', "the gateway's Ed25519 node key (gateway-retire; or gateway-add)")
    .option('--source <id>', "the data source's id (source-add, source-retire, source-update)")
    .option(
      '--source-key <hex>',
      "the data source's Ed25519 public key, which signs its answers (source-add)",
    )
    .option(
      '--new-node-key <file>',
      "the validator's new node key file, which signs the rotation (validator-rotate)",
    )
    .option(
      '--roles <list>',
      `node roles, comma-separated: ${NODE_ROLES.join(', ')} (validator-add, validator-update); ${GATEWAY_ROLES.join(', ')} (gateway-add)`,
    )
    .option(
      '--types <list>',
      `data types, comma-separated (${DATA_TYPES.join(', ')}): those a validator extracts (validator-add, validator-update) or a source answers for (source-add, source-update)`,
    )
    .option(
      '--param <name=value>',
      `a parameter to set (params; repeat): ${PARAM_NAMES.join(', ')}, or extraction=on-request|on-consent (requests opened from then on)`,
      (v: string, all: string[] = []) => [...all, v],
    )
    .option('--open-for <duration>', 'how long it stays open for approvals, e.g. 7d', '7d')
    .option('--passphrase-file <file>', 'passphrase of a sealed key file (or DATAGRANT_PASSPHRASE)')
    .option('--api <url>', 'node API URL', DEFAULT_API)
    .option('--json', 'print JSON')
    .action(
      async (
        type: string,
        o: ProposeFlags & {
          key: string;
          openFor: string;
          passphraseFile?: string;
          api: string;
          json?: boolean;
        },
      ) => {
        const change = await changeOf(type, o);
        const [{ readKeyFile }, { signTx }, { apiCall, submitAndWait }] = await Promise.all([
          import('../common/keyfile-fs.js'),
          import('../ledger/tx-codec.js'),
          import('./client.js'),
        ]);
        const keys = await readKeyFile(o.key, await passphraseFrom(o));
        const { chain } = await apiCall<{ chain: string }>(o.api, 'GET', '/v1/status');
        const tx = signTx(
          { chain, kind: 'gov.propose', body: { change, deadline: Date.now() + duration(o.openFor) } },
          keys.signing.publicKey,
          keys.signing.secretKey,
        );
        const r = await submitAndWait(o.api, tx);
        print(
          o.json,
          { proposal: r.hash, height: r.height },
          `proposal ${r.hash} committed at height ${r.height}`,
        );
      },
    );

  gov
    .command('approve')
    .description('council member: approve a proposal; the approval that reaches the threshold enacts it')
    .argument('<proposal>', 'proposal id (the gov.propose transaction hash)')
    .requiredOption('--key <file>', 'your council key file')
    .option('--passphrase-file <file>', 'passphrase of a sealed key file (or DATAGRANT_PASSPHRASE)')
    .option('--api <url>', 'node API URL', DEFAULT_API)
    .option('--json', 'print JSON')
    .action(
      async (proposal: string, o: { key: string; passphraseFile?: string; api: string; json?: boolean }) => {
        const [{ readKeyFile }, { signTx }, { apiCall, submitAndWait }] = await Promise.all([
          import('../common/keyfile-fs.js'),
          import('../ledger/tx-codec.js'),
          import('./client.js'),
        ]);
        const keys = await readKeyFile(o.key, await passphraseFrom(o));
        const { chain } = await apiCall<{ chain: string }>(o.api, 'GET', '/v1/status');
        const tx = signTx(
          { chain, kind: 'gov.approve', body: { proposal } },
          keys.signing.publicKey,
          keys.signing.secretKey,
        );
        const r = await submitAndWait(o.api, tx);
        const p = await apiCall<ProposalState>(o.api, 'GET', `/v1/gov/proposals/${proposal}`);
        print(
          o.json,
          { ...p, tx: r.hash, height: r.height },
          `approved at height ${r.height}: ${describe(p)}`,
        );
      },
    );

  gov
    .command('list')
    .description('proposals, newest first, with approvals and status')
    .option('--status <status>', 'only open, expired, enacted or failed ones')
    .option('--limit <n>', 'how many', '50')
    .option('--api <url>', 'node API URL', DEFAULT_API)
    .option('--json', 'print JSON')
    .action(async (o: { status?: string; limit: string; api: string; json?: boolean }) => {
      const query = new URLSearchParams({ limit: o.limit, ...(o.status ? { status: o.status } : {}) });
      const { apiCall } = await import('./client.js');
      const r = await apiCall<{ count: number; proposals: (ProposalState & { status: string })[] }>(
        o.api,
        'GET',
        `/v1/gov/proposals?${query}`,
      );
      print(
        o.json,
        r,
        r.proposals.length === 0 ? 'no proposals' : r.proposals.map((p) => describe(p)).join('\n'),
      );
    });

  gov
    .command('show')
    .description('one proposal; with --genesis, proven against the genesis validators')
    .argument('<proposal>', 'proposal id')
    .option('--genesis <file>', "the chain's genesis.json: verify the proposal instead of trusting the node")
    .option('--api <url>', 'node API URL', DEFAULT_API)
    .option('--json', 'print JSON')
    .action(async (proposal: string, o: { genesis?: string; api: string; json?: boolean }) => {
      const { apiCall } = await import('./client.js');
      if (o.genesis === undefined) {
        const p = await apiCall<ProposalState>(o.api, 'GET', `/v1/gov/proposals/${proposal}`);
        print(o.json, p, describe(p));
        return;
      }
      const [{ readGenesis }, { govKey, proposalStatus }, { LightClient }] = await Promise.all([
        import('../node/genesis-file.js'),
        import('../ledger/governance.js'),
        import('../ledger/light-client.js'),
      ]);
      const light = new LightClient(await readGenesis(o.genesis));
      const proven = await light.provenEntry<ProposalState>(
        (path) => apiCall<unknown>(o.api, 'GET', path),
        `/v1/state/proposals/${proposal}`,
        govKey.proposal(proposal),
        { code: 'CLI_NODE_LIED', node: o.api },
      );
      if (!proven)
        throw new DatagrantError(
          'LEDGER_STATE_UNPROVABLE',
          "this chain's headers commit to no provable state",
        );
      if (!proven.value)
        throw new DatagrantError('LEDGER_PROPOSAL_NOT_FOUND', 'the chain holds no such proposal (proven)');
      const p = { ...proven.value, status: proposalStatus(proven.value, proven.time) };
      print(
        o.json,
        { ...p, verified: true, height: proven.height },
        `${describe(p)}\nverified against genesis at height ${proven.height}`,
      );
    });
}
