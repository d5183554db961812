/**
 * The validator set over time. Genesis names the first set; a council change (`validator.add`,
 * `validator.retire`, `validator.rotate`, `validator.update`; ledger/governance.ts) enacted in
 * block h schedules a new set in force from height h + VALIDATOR_SET_DELAY. The delay lets every
 * validator know the set of the next height before it starts it, and lets the block before a
 * change commit to the next set in its header (`nextValidators`), so a light client follows the
 * chain of sets from genesis, each link certified by the set before it.
 *
 * Headers carry `validators` (the hash of the set certifying the block) and `nextValidators` (the
 * hash of the set certifying the next one) only where that set is not genesis's, so chains whose
 * set never changed keep their block hashes.
 */
import { bytesToHex } from '../common/bytes.js';
import { canonicalBytes } from '../common/canonical.js';
import { sha256 } from '../common/crypto.js';
import type { BlockHeader } from './block.js';
import type { Genesis, ValidatorInfo } from './genesis.js';
import type { StateReader } from './state.js';

/** Heights between the block that enacts a validator-set change and the first block the new set certifies. */
export const VALIDATOR_SET_DELAY = 2;

/** A validator set and the first height it certifies. */
export interface ValidatorEpoch {
  from: number;
  validators: readonly ValidatorInfo[];
}

/** The state key holding the schedule of validator sets after genesis's (absent: none). */
export const VALIDATOR_SETS_KEY = 'gov/validator-sets';

/** The schedule as stored: every set after genesis's, ascending by `from`. */
export interface ValidatorSchedule {
  epochs: ValidatorEpoch[];
}

/** The scheduled epochs held in `s` (empty while the set never changed). */
export function scheduledEpochs(s: StateReader): readonly ValidatorEpoch[] {
  return (s.get(VALIDATOR_SETS_KEY) as ValidatorSchedule | undefined)?.epochs ?? [];
}

const byKeyCache = new WeakMap<readonly ValidatorInfo[], ReadonlyMap<string, ValidatorInfo>>();

/** A set as a map by key (cached per set, which state never mutates). */
export function validatorMap(validators: readonly ValidatorInfo[]): ReadonlyMap<string, ValidatorInfo> {
  let map = byKeyCache.get(validators);
  if (!map) {
    map = new Map(validators.map((v) => [v.key, v]));
    byKeyCache.set(validators, map);
  }
  return map;
}

/** Hash (hex) of a validator set: SHA-256 of its canonical list, order included (it sets the proposer rotation). */
export function validatorSetHash(validators: readonly ValidatorInfo[]): string {
  return bytesToHex(sha256(canonicalBytes(validators.map((v) => ({ ...v })))));
}

/** The set in force at `height` given genesis and the scheduled epochs (ascending). */
export function validatorsAt(
  genesis: Genesis,
  epochs: readonly ValidatorEpoch[] | undefined,
  height: number,
): readonly ValidatorInfo[] {
  let set: readonly ValidatorInfo[] = genesis.validators;
  for (const e of epochs ?? []) if (e.from <= height) set = e.validators;
  return set;
}

/**
 * The header fields a block at `height` must carry: the hash of the set certifying it and of the
 * set certifying the next height, each only where that set is not genesis's.
 */
export function validatorHeaderFields(
  genesis: Genesis,
  epochs: readonly ValidatorEpoch[] | undefined,
  height: number,
): Pick<BlockHeader, 'validators' | 'nextValidators'> {
  const fields: Pick<BlockHeader, 'validators' | 'nextValidators'> = {};
  const now = validatorsAt(genesis, epochs, height);
  const next = validatorsAt(genesis, epochs, height + 1);
  if (now !== genesis.validators) fields.validators = validatorSetHash(now);
  if (next !== genesis.validators) fields.nextValidators = validatorSetHash(next);
  return fields;
}

/** Whether a header's validator fields are the ones `validatorHeaderFields` says it must carry. */
export function validatorFieldsMatch(
  header: BlockHeader,
  expected: Pick<BlockHeader, 'validators' | 'nextValidators'>,
): boolean {
  return header.validators === expected.validators && header.nextValidators === expected.nextValidators;
}
