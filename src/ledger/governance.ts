/**
 * Governance by a k-of-n council (genesis `council`). A change — adding or retiring an institution,
 * a registrar, a gateway or a data source, changing chain parameters or the validator set — is a `gov.propose` transaction by a council member
 * (its hash is the proposal's id, its signer's approval the first) followed by `gov.approve`
 * transactions of other members. The approval that reaches the threshold enacts the change in the
 * same transaction; a proposal not approved by its deadline (block time) lapses. No single key can
 * change anything: genesis requires a threshold of at least 2.
 *
 * A change still valid when proposed may no longer be when its last approval commits (e.g. the
 * institution id was taken meanwhile): the approval then commits, and the proposal is marked
 * `failed` with the reason, so the council sees why nothing changed.
 *
 * What governance changed is state, provable like any other entry: registrars under
 * `gov/registrar/<key>` (over genesis' list), gateways under `gov/gateway/<key>` and data sources
 * under `gov/source/<id>` (over genesis' `gateways` and `sources`, listed by `gov/gateway-keys`
 * and `gov/source-ids`), the parameters in force under `gov/params` (over
 * genesis' `params`), proposals under `gov/proposal/<id>`, the n-th proposal's id under
 * `gov/proposal-at/<n>` and their number under `gov/proposal-count`.
 */
import { concatBytes, fromHex, utf8ToBytes } from '../common/bytes.js';
import { canonicalBytes } from '../common/canonical.js';
import { isStrictPublicKey, verify } from '../common/crypto.js';
import {
  type ChainParams,
  faultTolerance,
  type GatewayInfo,
  type GenesisSource,
  MAX_VALIDATORS,
  type ValidatorInfo,
} from './genesis.js';
import type { InstitutionState } from './records.js';
import { stateKey } from './records.js';
import type { StateOverlay, StateReader, StateValue } from './state.js';
import type { BlockContext, LedgerConfig, Rejection, TxOutcome } from './state-machine.js';
import type { DataType, GovChange, Tx } from './tx.js';
import {
  scheduledEpochs,
  VALIDATOR_SET_DELAY,
  VALIDATOR_SETS_KEY,
  type ValidatorEpoch,
  type ValidatorSchedule,
  validatorMap,
} from './validator-set.js';

/** State keys of governance. */
export const govKey = {
  proposal: (id: string) => `gov/proposal/${id}`,
  /** How many proposals were made. */
  proposalCount: 'gov/proposal-count',
  /** The id of the n-th proposal (0-based), for listing them in order. */
  proposalAt: (n: number) => `gov/proposal-at/${n}`,
  registrar: (key: string) => `gov/registrar/${key}`,
  params: 'gov/params',
  /** A gateway governance added or retired (over genesis' `gateways`). */
  gateway: (key: string) => `gov/gateway/${key}`,
  /** The keys of every gateway entry governance wrote, in the order first written. */
  gatewayKeys: 'gov/gateway-keys',
  /** A data source governance added, changed or retired (over genesis' `sources`). */
  source: (id: string) => `gov/source/${id}`,
  /** The ids of every source entry governance wrote, in the order first written. */
  sourceIds: 'gov/source-ids',
} as const;

/** Where a proposal stands (`expired` is derived from its deadline and the block time). */
export type ProposalStatus = 'open' | 'expired' | 'enacted' | 'failed';

/** A proposal as held in state. */
export interface ProposalState {
  id: string;
  change: GovChange;
  proposer: string;
  /** Council keys that approved, in commit order (the proposer first). */
  approvals: string[];
  /** Approvals needed (the council threshold when proposed). */
  threshold: number;
  deadline: number;
  /** Height it was proposed at. */
  height: number;
  status: 'open' | 'enacted' | 'failed';
  /** Height the threshold was reached at. */
  decidedAt?: number;
  /** Why an approved change could not be applied. */
  failure?: { code: string; message: string };
}

/** A registrar entry written by governance. */
export interface RegistrarState {
  key: string;
  active: boolean;
  height: number;
}

function reject(code: string, message: string): Rejection {
  return { ok: false, code, message };
}

function read<T>(s: StateReader, key: string): T | undefined {
  return s.get(key) as T | undefined;
}

function write(s: StateOverlay, key: string, value: unknown): void {
  s.set(key, value as StateValue);
}

/** A proposal's status at block time `time`. */
export function proposalStatus(p: ProposalState, time: number): ProposalStatus {
  if (p.status === 'open' && time > p.deadline) return 'expired';
  return p.status;
}

/** The chain parameters in force: genesis' with every enacted `params.set` over them. */
export function effectiveParams(s: StateReader, config: Pick<LedgerConfig, 'params'>): ChainParams {
  return read<ChainParams>(s, govKey.params) ?? config.params;
}

/** True when `key` may attest subjects: in genesis or added by governance, and not retired. */
export function isRegistrar(s: StateReader, config: Pick<LedgerConfig, 'registrars'>, key: string): boolean {
  const entry = read<RegistrarState>(s, govKey.registrar(key));
  return entry ? entry.active : config.registrars.has(key);
}

/** Adds an institution (a council's `institution.add`, or a legacy admin's transaction). */
export function addInstitution(
  s: StateOverlay,
  body: { institution: string; name: string; signKey: string; encKey: string },
  height: number,
): Rejection | null {
  const { institution, name, signKey, encKey } = body;
  if (s.get(stateKey.institution(institution)) !== undefined)
    return reject('LEDGER_INSTITUTION_EXISTS', 'institution id already used');
  if (s.get(stateKey.institutionByKey(signKey)) !== undefined)
    return reject('LEDGER_KEY_IN_USE', 'signing key already used');
  const record: InstitutionState = { id: institution, name, signKey, encKey, active: true, height };
  write(s, stateKey.institution(institution), record);
  s.set(stateKey.institutionByKey(signKey), institution);
  return null;
}

/** Retires an institution: it can open no request and use no grant from then on. */
export function retireInstitution(s: StateOverlay, id: string): Rejection | null {
  const inst = read<InstitutionState>(s, stateKey.institution(id));
  if (!inst) return reject('LEDGER_UNKNOWN_INSTITUTION', 'no such institution');
  if (!inst.active) return reject('LEDGER_INSTITUTION_RETIRED', 'institution is already retired');
  write(s, stateKey.institution(id), { ...inst, active: false });
  return null;
}

const ROTATE_DOMAIN = utf8ToBytes('datagrant/validator-rotate/v1\n');

/** The bytes a validator's new key signs in `validator.rotate`: proof it is held by whoever takes the seat. */
export function validatorRotationBytes(chain: string, key: string, newKey: string): Uint8Array {
  return concatBytes(ROTATE_DOMAIN, canonicalBytes({ chain, key, newKey }));
}

/** The set in force at `height`: genesis's, or the last scheduled set whose `from` it reached. */
export function validatorsInForce(
  s: StateReader,
  config: Pick<LedgerConfig, 'genesisValidators'>,
  height: number,
): readonly ValidatorInfo[] {
  let set = config.genesisValidators;
  for (const e of scheduledEpochs(s)) if (e.from <= height) set = e.validators;
  return set;
}

/** The set in force at `height` by key. */
export function validatorMapAt(
  s: StateReader,
  config: Pick<LedgerConfig, 'genesisValidators'>,
  height: number,
): ReadonlyMap<string, ValidatorInfo> {
  return validatorMap(validatorsInForce(s, config, height));
}

/**
 * Schedules a validator-set change enacted at `ctx.height`, in force from `ctx.height +
 * VALIDATOR_SET_DELAY`. One change at a time: refused while another is scheduled and not yet in
 * force, so each step changes one validator of the set before it. A set of several validators
 * keeps at least 4 (so it tolerates a fault), and a step that removes a validator needs f ≥ 1, so
 * the quorums before and after it share an honest validator.
 */
function changeValidators(
  s: StateOverlay,
  change: Extract<GovChange, { type: `validator.${string}` }>,
  ctx: BlockContext,
  config: LedgerConfig,
): Rejection | null {
  const epochs = scheduledEpochs(s);
  const last = epochs[epochs.length - 1];
  if (last && last.from > ctx.height)
    return reject(
      'LEDGER_VALIDATOR_CHANGE_PENDING',
      `a validator-set change is already scheduled for height ${last.from}`,
    );
  const current = validatorsInForce(s, config, ctx.height);
  const everUsed = (key: string) =>
    config.validators.has(key) || epochs.some((e) => e.validators.some((v) => v.key === key));
  const fresh = (key: string): Rejection | null =>
    everUsed(key)
      ? reject('LEDGER_VALIDATOR_KEY_USED', 'the key is or was a validator key')
      : config.gateways.has(key) || read<GatewayState>(s, govKey.gateway(key)) !== undefined
        ? reject('LEDGER_VALIDATOR_KEY_USED', 'the key is or was a gateway key')
        : null;
  const find = (key: string) => current.find((v) => v.key === key);
  let next: ValidatorInfo[];
  let removes = 0;
  switch (change.type) {
    case 'validator.add': {
      const v = change.validator;
      const used = fresh(v.key);
      if (used) return used;
      if (current.some((c) => c.name === v.name))
        return reject('LEDGER_VALIDATOR_EXISTS', `a validator is already named ${v.name}`);
      next = [...current, { ...v }];
      break;
    }
    case 'validator.retire': {
      if (!find(change.key)) return reject('LEDGER_UNKNOWN_VALIDATOR', 'the key is not in the validator set');
      next = current.filter((v) => v.key !== change.key);
      removes = 1;
      break;
    }
    case 'validator.rotate': {
      const v = find(change.key);
      if (!v) return reject('LEDGER_UNKNOWN_VALIDATOR', 'the key is not in the validator set');
      const used = fresh(change.newKey);
      if (used) return used;
      let ok = false;
      try {
        ok = verify(
          fromHex(change.proof, 'proof', 64),
          validatorRotationBytes(config.chain, change.key, change.newKey),
          fromHex(change.newKey, 'newKey', 32),
        );
      } catch {
        ok = false;
      }
      if (!ok)
        return reject(
          'LEDGER_BAD_ROTATION_PROOF',
          'the new key did not sign the rotation (validatorRotationBytes)',
        );
      next = current.map((c) => (c.key === change.key ? { ...c, key: change.newKey } : c));
      removes = 1;
      break;
    }
    case 'validator.update': {
      if (!find(change.key)) return reject('LEDGER_UNKNOWN_VALIDATOR', 'the key is not in the validator set');
      next = current.map((c) =>
        c.key === change.key ? { ...c, roles: [...change.roles], types: [...change.types] } : c,
      );
      break;
    }
  }
  if (next.length > MAX_VALIDATORS)
    return reject('LEDGER_VALIDATOR_SET_TOO_LARGE', `a validator set holds at most ${MAX_VALIDATORS}`);
  if (current.length > 1 && next.length < 4)
    return reject(
      'LEDGER_VALIDATOR_SET_TOO_SMALL',
      `the set would keep ${next.length} validators: a chain of several keeps at least 4`,
    );
  if (current.length === 1 && next.length !== 1)
    return reject(
      'LEDGER_VALIDATOR_SET_TOO_SMALL',
      'a single-validator chain cannot grow one validator at a time',
    );
  if (removes > faultTolerance(current.length))
    return reject(
      'LEDGER_VALIDATOR_STEP_TOO_LARGE',
      `replacing ${removes} of ${current.length} validators in one step could leave no honest validator in both quorums`,
    );
  const epoch: ValidatorEpoch = { from: ctx.height + VALIDATOR_SET_DELAY, validators: next };
  const schedule: ValidatorSchedule = { epochs: [...epochs, epoch] };
  write(s, VALIDATOR_SETS_KEY, schedule);
  return null;
}

/** Applies a change to `s` (a layer the caller drops on rejection); why not, or null. */
function enact(
  s: StateOverlay,
  change: GovChange,
  ctx: BlockContext,
  config: LedgerConfig,
): Rejection | null {
  switch (change.type) {
    case 'institution.add':
      return addInstitution(s, change, ctx.height);
    case 'institution.retire':
      return retireInstitution(s, change.institution);
    case 'registrar.add': {
      if (isRegistrar(s, config, change.key))
        return reject('LEDGER_REGISTRAR_EXISTS', 'the key is already a registrar');
      const entry: RegistrarState = { key: change.key, active: true, height: ctx.height };
      write(s, govKey.registrar(change.key), entry);
      return null;
    }
    case 'registrar.retire': {
      if (!isRegistrar(s, config, change.key))
        return reject('LEDGER_UNKNOWN_REGISTRAR', 'the key is no registrar');
      const entry: RegistrarState = { key: change.key, active: false, height: ctx.height };
      write(s, govKey.registrar(change.key), entry);
      return null;
    }
    case 'params.set': {
      const p = change.params;
      if (p.maxBlockTxs !== undefined && p.maxBlockTxs > config.params.maxBlockTxs)
        return reject(
          'LEDGER_PARAM_ABOVE_GENESIS',
          `maxBlockTxs may not exceed genesis' ${config.params.maxBlockTxs}`,
        );
      const genesisBytes = config.params.maxBlockBytes;
      if (p.maxBlockBytes !== undefined && genesisBytes !== undefined && p.maxBlockBytes > genesisBytes)
        return reject('LEDGER_PARAM_ABOVE_GENESIS', `maxBlockBytes may not exceed genesis' ${genesisBytes}`);
      write(s, govKey.params, { ...effectiveParams(s, config), ...p });
      return null;
    }
    case 'validator.add':
    case 'validator.retire':
    case 'validator.rotate':
    case 'validator.update':
      return changeValidators(s, change, ctx, config);
    case 'gateway.add':
    case 'gateway.retire':
      return changeGateways(s, change, ctx, config);
    case 'source.add':
    case 'source.retire':
    case 'source.update':
      return changeSources(s, change, ctx, config);
  }
}

function councilMember(config: LedgerConfig, signer: string): Rejection | null {
  if (!config.council) return reject('LEDGER_NO_COUNCIL', 'this chain has no governance council');
  if (!config.council.members.has(signer))
    return reject('LEDGER_NOT_COUNCIL', 'only a council member can propose or approve changes');
  return null;
}

/** `gov.propose`: records the proposal with its proposer's approval, after checking the change applies now. */
export function govPropose(
  s: StateOverlay,
  tx: Tx<'gov.propose'>,
  hash: string,
  ctx: BlockContext,
  config: LedgerConfig,
): TxOutcome {
  const refused = councilMember(config, tx.signer);
  if (refused) return refused;
  const { change, deadline } = tx.body;
  if (deadline <= ctx.time || deadline > ctx.time + config.maxProposalMs)
    return reject(
      'LEDGER_BAD_DEADLINE',
      `deadline must be after this block and within ${config.maxProposalMs} ms`,
    );
  // The change must apply on the state as it is now (it is applied again when enacted).
  const trial = enact(s.child(), change, ctx, config);
  if (trial) return trial;
  const proposal: ProposalState = {
    id: hash,
    change,
    proposer: tx.signer,
    approvals: [tx.signer],
    threshold: config.council!.threshold,
    deadline,
    height: ctx.height,
    status: 'open',
  };
  write(s, govKey.proposal(hash), proposal);
  const n = read<number>(s, govKey.proposalCount) ?? 0;
  write(s, govKey.proposalAt(n), hash);
  write(s, govKey.proposalCount, n + 1);
  return { ok: true, hash };
}

/** `gov.approve`: adds an approval; the threshold-th enacts the change (or marks it failed). */
export function govApprove(
  s: StateOverlay,
  tx: Tx<'gov.approve'>,
  hash: string,
  ctx: BlockContext,
  config: LedgerConfig,
): TxOutcome {
  const refused = councilMember(config, tx.signer);
  if (refused) return refused;
  const p = read<ProposalState>(s, govKey.proposal(tx.body.proposal));
  if (!p) return reject('LEDGER_UNKNOWN_PROPOSAL', 'no such proposal');
  const status = proposalStatus(p, ctx.time);
  if (status === 'expired') return reject('LEDGER_PROPOSAL_EXPIRED', 'the proposal lapsed at its deadline');
  if (status !== 'open') return reject('LEDGER_PROPOSAL_DECIDED', `the proposal is already ${status}`);
  if (p.approvals.includes(tx.signer))
    return reject('LEDGER_ALREADY_APPROVED', 'this member already approved');
  const approvals = [...p.approvals, tx.signer];
  if (approvals.length < p.threshold) {
    write(s, govKey.proposal(p.id), { ...p, approvals });
    return { ok: true, hash };
  }
  const layer = s.child();
  const failure = enact(layer, p.change, ctx, config);
  if (!failure) s.absorb(layer);
  const decided: ProposalState = {
    ...p,
    approvals,
    status: failure ? 'failed' : 'enacted',
    decidedAt: ctx.height,
    ...(failure ? { failure: { code: failure.code, message: failure.message } } : {}),
  };
  write(s, govKey.proposal(p.id), decided);
  return { ok: true, hash };
}

/** A gateway entry written by governance: the gateway and whether the network still admits it. */
export interface GatewayState extends GatewayInfo {
  active: boolean;
  /** Height of the change that wrote the entry. */
  height: number;
}

/** A data source entry written by governance: the source and whether it is still registered. */
export interface SourceState extends GenesisSource {
  active: boolean;
  /** Height of the change that wrote the entry. */
  height: number;
}

/** Every entry an index lists, in index order (entries missing from state are skipped). */
function indexed<T>(s: StateReader, index: string, key: (id: string) => string): T[] {
  const ids = read<string[]>(s, index) ?? [];
  return ids.flatMap((id) => {
    const entry = read<T>(s, key(id));
    return entry === undefined ? [] : [entry];
  });
}

/** Writes an entry and lists its id in `index` the first time. */
function writeIndexed(s: StateOverlay, index: string, id: string, key: string, entry: unknown): void {
  const ids = read<string[]>(s, index) ?? [];
  if (!ids.includes(id)) write(s, index, [...ids, id]);
  write(s, key, entry);
}

/** Every gateway entry governance wrote (active and retired), in the order first written. */
export function governedGateways(s: StateReader): GatewayState[] {
  return indexed<GatewayState>(s, govKey.gatewayKeys, govKey.gateway);
}

/** Every source entry governance wrote (active and retired), in the order first written. */
export function governedSources(s: StateReader): SourceState[] {
  return indexed<SourceState>(s, govKey.sourceIds, govKey.source);
}

/**
 * Overlays governed entries on a genesis list: an entry replaces genesis' item of the same id,
 * an inactive one removes it, and entries of new ids follow genesis' items.
 */
function inForce<G, E extends G & { active: boolean; height: number }>(
  genesis: readonly G[],
  governed: readonly E[],
  id: (x: G) => string,
): G[] {
  const byId = new Map(governed.map((e) => [id(e), e]));
  const plain = (e: E): G => {
    const { active: _active, height: _height, ...rest } = e;
    return rest as unknown as G;
  };
  const out: G[] = [];
  for (const g of genesis) {
    const e = byId.get(id(g));
    if (!e) out.push(g);
    else if (e.active) out.push(plain(e));
    byId.delete(id(g));
  }
  for (const e of byId.values()) if (e.active) out.push(plain(e));
  return out;
}

/** The gateways the network admits: genesis' and those governance added, less those it retired. */
export function gatewaysInForce(s: StateReader, genesisGateways: readonly GatewayInfo[]): GatewayInfo[] {
  return inForce(genesisGateways, governedGateways(s), (g) => g.key);
}

/** The data sources registered: genesis' and those governance added or changed, less those it retired. */
export function sourcesInForce(s: StateReader, genesisSources: readonly GenesisSource[]): GenesisSource[] {
  return inForce(genesisSources, governedSources(s), (x) => x.id);
}

/** The registered sources that answer for `type`, from a list in force. */
export function sourcesForType(sources: readonly GenesisSource[], type: DataType): GenesisSource[] {
  return sources.filter((x) => x.types.includes(type));
}

/**
 * `gateway.add` and `gateway.retire`. A gateway's key is no validator's (of genesis or any
 * scheduled set), no council member's, admin's or registrar's, and was never a gateway's: a key
 * has one role for the life of the chain. Its name is no other node's. Retiring needs a gateway
 * the network admits; its entry stays, inactive.
 */
function changeGateways(
  s: StateOverlay,
  change: Extract<GovChange, { type: `gateway.${string}` }>,
  ctx: BlockContext,
  config: LedgerConfig,
): Rejection | null {
  const current = gatewaysInForce(s, config.genesisGateways);
  if (change.type === 'gateway.retire') {
    const g = current.find((x) => x.key === change.key);
    if (!g) return reject('LEDGER_UNKNOWN_GATEWAY', 'the key is no gateway the network admits');
    const entry: GatewayState = { ...g, roles: [...g.roles], active: false, height: ctx.height };
    writeIndexed(s, govKey.gatewayKeys, g.key, govKey.gateway(g.key), entry);
    return null;
  }
  const g = change.gateway;
  const epochs = scheduledEpochs(s);
  const validatorKey =
    config.validators.has(g.key) || epochs.some((e) => e.validators.some((v) => v.key === g.key));
  if (validatorKey) return reject('LEDGER_GATEWAY_KEY_USED', 'the key is or was a validator key');
  if (config.council?.members.has(g.key) || config.admins.has(g.key))
    return reject('LEDGER_GATEWAY_KEY_USED', 'the key is a governance key');
  if (config.registrars.has(g.key) || read<RegistrarState>(s, govKey.registrar(g.key)) !== undefined)
    return reject('LEDGER_GATEWAY_KEY_USED', 'the key is or was a registrar key');
  if (config.gateways.has(g.key) || read<GatewayState>(s, govKey.gateway(g.key)) !== undefined)
    return reject('LEDGER_GATEWAY_EXISTS', 'the key is or was a gateway key');
  const validatorNames = [config.genesisValidators, ...epochs.map((e) => e.validators)].flatMap((set) =>
    set.map((v) => v.name),
  );
  if (validatorNames.includes(g.name) || current.some((x) => x.name === g.name))
    return reject('LEDGER_GATEWAY_NAME_USED', `a node is already named ${g.name}`);
  const entry: GatewayState = { ...g, roles: [...g.roles], active: true, height: ctx.height };
  writeIndexed(s, govKey.gatewayKeys, g.key, govKey.gateway(g.key), entry);
  return null;
}

/**
 * `source.add`, `source.retire` and `source.update`. A new source's id and key were never a
 * source's (so a statement never changes author), and its key is a valid Ed25519 key. Retiring
 * or changing needs a registered source; a retired one's entry stays, inactive.
 */
function changeSources(
  s: StateOverlay,
  change: Extract<GovChange, { type: `source.${string}` }>,
  ctx: BlockContext,
  config: LedgerConfig,
): Rejection | null {
  if (change.type === 'source.add') {
    const x = change.source;
    const ever = [...config.genesisSources, ...governedSources(s)];
    if (ever.some((e) => e.id === x.id))
      return reject('LEDGER_SOURCE_EXISTS', `the id ${x.id} is or was a source's`);
    if (ever.some((e) => e.key === x.key))
      return reject('LEDGER_SOURCE_KEY_USED', "the key is or was a source's");
    let valid = false;
    try {
      valid = isStrictPublicKey(fromHex(x.key, 'key', 32));
    } catch {
      valid = false;
    }
    if (!valid) return reject('LEDGER_SOURCE_BAD_KEY', 'the key is not an Ed25519 public key');
    const entry: SourceState = { ...x, types: [...x.types], active: true, height: ctx.height };
    writeIndexed(s, govKey.sourceIds, x.id, govKey.source(x.id), entry);
    return null;
  }
  const x = sourcesInForce(s, config.genesisSources).find((e) => e.id === change.id);
  if (!x) return reject('LEDGER_UNKNOWN_SOURCE', 'no registered source has this id');
  const entry: SourceState =
    change.type === 'source.retire'
      ? { ...x, types: [...x.types], active: false, height: ctx.height }
      : { ...x, types: [...change.types], active: true, height: ctx.height };
  writeIndexed(s, govKey.sourceIds, x.id, govKey.source(x.id), entry);
  return null;
}
