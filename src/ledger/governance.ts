/**
 * Governance by a k-of-n council (genesis `council`). A change — adding or retiring an institution
 * or a registrar, changing chain parameters — is a `gov.propose` transaction by a council member
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
 * `gov/registrar/<key>` (over genesis' list), the parameters in force under `gov/params` (over
 * genesis' `params`), proposals under `gov/proposal/<id>`, the n-th proposal's id under
 * `gov/proposal-at/<n>` and their number under `gov/proposal-count`.
 */
import type { ChainParams } from './genesis.js';
import type { InstitutionState } from './records.js';
import { stateKey } from './records.js';
import type { StateOverlay, StateReader, StateValue } from './state.js';
import type { BlockContext, LedgerConfig, Rejection, TxOutcome } from './state-machine.js';
import type { GovChange, Tx } from './tx.js';

/** State keys of governance. */
export const govKey = {
  proposal: (id: string) => `gov/proposal/${id}`,
  /** How many proposals were made. */
  proposalCount: 'gov/proposal-count',
  /** The id of the n-th proposal (0-based), for listing them in order. */
  proposalAt: (n: number) => `gov/proposal-at/${n}`,
  registrar: (key: string) => `gov/registrar/${key}`,
  params: 'gov/params',
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
