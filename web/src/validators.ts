/**
 * The validator set over time as the explorer shows it: names of validator keys (genesis's and
 * every later set the light client followed), the schedule of sets proven against a certified
 * header (`gov/validator-sets`, through the light client's `provenEntry`), a certified header
 * checked for any height, and what changed from one set to the next.
 */
import { blockHash, type CertifiedBlock } from '../../src/ledger/block.js';
import type { ValidatorInfo } from '../../src/ledger/genesis.js';
import type { Blame } from '../../src/ledger/light-client.js';
import type { TxProof } from '../../src/ledger/proof.js';
import {
  VALIDATOR_SETS_KEY,
  type ValidatorEpoch,
  type ValidatorSchedule,
  validatorsAt,
} from '../../src/ledger/validator-set.js';
import { apiBase, getJson } from './api.js';
import { short, typesLabel } from './format.js';
import { pinMismatch, type TrustedGenesis, type Verification, verifyEntry } from './proofs.js';

/** The explorer's node as a refused answer names it. */
export const EXPLORER_BLAME: Blame = { code: 'EXPLORER_NODE_LIED', node: apiBase.href };

/** GET for the light client, whose paths start with a slash (the pages' paths are relative). */
export function lightGet(path: string): Promise<unknown> {
  return getJson<unknown>(path.replace(/^\//, ''));
}

let following: Promise<void> = Promise.resolve();

/**
 * Lets the light client follow every validator-set change the node reports, each from its
 * certified link; calls are queued, so two views never follow the same link at once. Throws
 * EXPLORER_NODE_LIED when a link does not verify.
 */
export function followSets(trusted: TrustedGenesis): Promise<void> {
  const next = following.then(() => trusted.light.followValidatorSets(lightGet, EXPLORER_BLAME));
  following = next.catch(() => undefined);
  return next;
}

/**
 * `verifyEntry`, after following the validator-set changes the node reports when the proof's
 * header is past one the light client has not followed yet.
 */
export async function verifyTxFollowing(
  trusted: TrustedGenesis,
  expectedHash: string,
  proof: TxProof,
): Promise<Verification> {
  const v = verifyEntry(trusted, expectedHash, proof);
  if (v.ok || v.code !== 'LIGHT_VALIDATORS_UNKNOWN') return v;
  try {
    await followSets(trusted);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return { ok: false, code: e.code ?? EXPLORER_BLAME.code, message: e.message ?? String(err) };
  }
  return verifyEntry(trusted, expectedHash, proof);
}

/** Every validator the explorer knows of: genesis's, then those of the sets followed since. */
function knownValidators(trusted: TrustedGenesis, extra: readonly ValidatorEpoch[] = []): ValidatorInfo[] {
  return [
    ...trusted.genesis.validators,
    ...trusted.light.epochs.flatMap((e) => e.validators),
    ...extra.flatMap((e) => e.validators),
  ];
}

/** A validator key's name (from genesis or a later set), or the shortened key. */
export function validatorLabel(
  trusted: TrustedGenesis,
  key: string,
  extra: readonly ValidatorEpoch[] = [],
): string {
  return knownValidators(trusted, extra).find((v) => v.key === key)?.name ?? short(key);
}

/** A council key as "council 1" (its place in genesis), or the shortened key. */
export function councilLabel(trusted: TrustedGenesis, key: string): string {
  const i = trusted.genesis.council?.members.indexOf(key) ?? -1;
  return i >= 0 ? `council ${i + 1}` : short(key);
}

/** A validator's roles for display. */
export function rolesLabel(roles: readonly string[]): string {
  return roles.length > 0 ? roles.join(', ') : 'consensus only';
}

/** A validator's data types for display. */
export function typesText(types: readonly string[]): string {
  return types.length > 0 ? typesLabel(types) : 'none';
}

/** How far what the explorer shows of the validator sets is proven. */
export type ScheduleProof =
  | { ok: true; height: number; blockHash: string }
  | { ok: false; code: string; message: string }
  | { ok: null; message: string };

/** The scheduled validator sets after genesis's, and how they are proven. */
export interface Schedule {
  epochs: readonly ValidatorEpoch[];
  proof: ScheduleProof;
}

interface ValidatorSetsAnswer {
  height: number;
  delay: number;
  epochs: ValidatorEpoch[];
}

/**
 * The schedule of validator sets: proven in this browser against the latest certified header
 * (`GET /v1/state/validator-sets`); on a chain whose headers commit to no provable state, or when
 * the proof does not verify, what the node says, with the reason it is not proven.
 */
export async function validatorSchedule(trusted: TrustedGenesis): Promise<Schedule> {
  const nodeWord = async (proof: ScheduleProof): Promise<Schedule> => ({
    epochs: (await getJson<ValidatorSetsAnswer>('v1/gov/validator-sets')).epochs,
    proof,
  });
  if (!trusted.light.provable)
    return nodeWord({ ok: null, message: "this chain's headers commit to no provable state" });
  if (pinMismatch(trusted))
    return nodeWord({
      ok: false,
      code: 'PORTAL_GENESIS_NOT_PINNED',
      message: 'the node serves a different genesis than the one pinned in this browser',
    });
  try {
    const proven = await trusted.light.provenEntry<ValidatorSchedule>(
      lightGet,
      '/v1/state/validator-sets',
      VALIDATOR_SETS_KEY,
      EXPLORER_BLAME,
    );
    if (!proven) return nodeWord({ ok: null, message: "this chain's headers commit to no provable state" });
    const epochs = Array.isArray(proven.value?.epochs) ? proven.value.epochs : [];
    return { epochs, proof: { ok: true, height: proven.height, blockHash: proven.blockHash } };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code !== EXPLORER_BLAME.code) throw err;
    return nodeWord({ ok: false, code: e.code, message: e.message ?? String(err) });
  }
}

/** The set in force at `height` under `schedule`. */
export function setAt(trusted: TrustedGenesis, schedule: Schedule, height: number): readonly ValidatorInfo[] {
  return validatorsAt(trusted.genesis, schedule.epochs, height);
}

/** A block's certified header as checked in this browser. */
export type HeaderProof =
  | { ok: true; block: CertifiedBlock; hash: string }
  | { ok: false; code: string; message: string; block?: CertifiedBlock };

/**
 * Fetches block `height` and verifies its header's commit certificate with the light client
 * (following validator-set changes first when the header is past one it does not know).
 */
export async function certifiedHeader(trusted: TrustedGenesis, height: number): Promise<HeaderProof> {
  const block = await getJson<CertifiedBlock>(`v1/blocks/${height}`);
  const { header } = block.block;
  let check = trusted.light.verifyHeader(header, block.cert);
  if (!check.ok && check.code === 'LIGHT_VALIDATORS_UNKNOWN') {
    try {
      await followSets(trusted);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return { ok: false, code: e.code ?? 'EXPLORER_NODE_LIED', message: e.message ?? String(err), block };
    }
    check = trusted.light.verifyHeader(header, block.cert);
  }
  if (!check.ok) return { ...check, block };
  return { ok: true, block, hash: blockHash(header) };
}

/** One difference between a validator set and the next. */
export type SetChange =
  | { kind: 'added'; validator: ValidatorInfo }
  | { kind: 'retired'; validator: ValidatorInfo }
  | { kind: 'rotated'; before: ValidatorInfo; after: ValidatorInfo }
  | { kind: 'updated'; before: ValidatorInfo; after: ValidatorInfo };

const sameList = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * What changed from `prev` to `next`: validators added and retired, keys rotated (the same name
 * under a new key) and roles or data types updated.
 */
export function setChanges(prev: readonly ValidatorInfo[], next: readonly ValidatorInfo[]): SetChange[] {
  const prevByKey = new Map(prev.map((v) => [v.key, v]));
  const nextByKey = new Map(next.map((v) => [v.key, v]));
  const changes: SetChange[] = [];
  const rotatedFrom = new Set<string>();
  for (const v of next) {
    const before = prevByKey.get(v.key);
    if (before) {
      if (!sameList(before.roles, v.roles) || !sameList(before.types, v.types))
        changes.push({ kind: 'updated', before, after: v });
      continue;
    }
    const renamed = prev.find((p) => p.name === v.name && !nextByKey.has(p.key));
    if (renamed) {
      rotatedFrom.add(renamed.key);
      changes.push({ kind: 'rotated', before: renamed, after: v });
    } else changes.push({ kind: 'added', validator: v });
  }
  for (const v of prev)
    if (!nextByKey.has(v.key) && !rotatedFrom.has(v.key)) changes.push({ kind: 'retired', validator: v });
  return changes;
}

/** A change between two sets in words. */
export function describeSetChange(c: SetChange): string {
  switch (c.kind) {
    case 'added':
      return `added ${c.validator.name} (${rolesLabel(c.validator.roles)}; data types ${typesText(c.validator.types)}), key ${short(c.validator.key)}`;
    case 'retired':
      return `retired ${c.validator.name} (key ${short(c.validator.key)})`;
    case 'rotated':
      return `rotated ${c.after.name}'s key ${short(c.before.key)} → ${short(c.after.key)}`;
    case 'updated': {
      const parts: string[] = [];
      if (!sameList(c.before.roles, c.after.roles))
        parts.push(`roles ${rolesLabel(c.before.roles)} → ${rolesLabel(c.after.roles)}`);
      if (!sameList(c.before.types, c.after.types))
        parts.push(`data types ${typesText(c.before.types)} → ${typesText(c.after.types)}`);
      return `updated ${c.after.name}: ${parts.join('; ')}`;
    }
  }
}
