/**
 * Block execution on top of the committed state: prunes expired replay-protection entries,
 * applies transactions in order and computes the resulting state root. Proposers use
 * `buildBlockTxs` (drops transactions that no longer apply); validators use `executeBlock`
 * (any transaction that does not apply makes the whole block invalid).
 */
import { type Genesis, type ReplayGuard, replayGuard } from './genesis.js';
import { type SeenAtState, stateKey } from './records.js';
import {
  CommittedState,
  EMPTY_STATE_ROOT,
  StateOverlay,
  type StateValue,
  type StateWrites,
  stateRootRule,
} from './state.js';
import {
  type Accepted,
  type ApplyOptions,
  applyTx,
  type BlockContext,
  genesisWrites,
  type LedgerConfig,
  type Rejection,
} from './state-machine.js';
import type { AnyTx } from './tx.js';
import { txBytes } from './tx-codec.js';

/** Effects of an executed block, ready to persist. */
export interface BlockEffects {
  writes: StateWrites;
  stateRoot: string;
  outcomes: Accepted[];
}

/** A transaction a proposer left out, and why. */
export interface Dropped {
  tx: AnyTx;
  rejection: Rejection;
}

function startBlock(committed: CommittedState, ctx: BlockContext): StateOverlay {
  const overlay = new StateOverlay(committed);
  for (const key of committed.expiredSeenKeys(ctx.time)) overlay.delete(key);
  return overlay;
}

const SEEN = stateKey.seen('');

/**
 * A block's writes as the state holds them. Under the `per-block` replay guard, the transactions'
 * `seen/<hash>` entries (which catch replays within the block) become one `seen-at/<height>` entry:
 * one tree update per block instead of one per transaction, and one delete when it expires.
 */
export function blockStateWrites(
  writes: StateWrites,
  height: number,
  params: { replayGuard?: ReplayGuard },
): StateWrites {
  if (replayGuard(params) !== 'per-block') return writes;
  const out: StateWrites = new Map();
  const txs: string[] = [];
  let expires = 0;
  for (const [key, value] of writes) {
    if (key.startsWith(SEEN) && value !== null) {
      txs.push(key.slice(SEEN.length));
      expires = Math.max(expires, value as number);
    } else out.set(key, value);
  }
  if (txs.length > 0) {
    const entry: SeenAtState = { expires, txs: txs.sort() };
    out.set(stateKey.seenAt(height), entry as unknown as StateValue);
  }
  return out;
}

/**
 * Executes a proposed block's transactions; returns the effects, or the first rejection with its
 * index (the block is then invalid as a whole).
 */
export function executeBlock(
  committed: CommittedState,
  txs: readonly AnyTx[],
  ctx: BlockContext,
  config: LedgerConfig,
  options: ApplyOptions = {},
  checked?: (tx: AnyTx) => boolean,
): ({ ok: true } & BlockEffects) | { ok: false; index: number; rejection: Rejection } {
  const overlay = startBlock(committed, ctx);
  const outcomes: Accepted[] = [];
  for (let i = 0; i < txs.length; i++) {
    const tx = txs[i]!;
    const outcome = applyTx(overlay, tx, ctx, config, {
      ...options,
      signatureChecked: checked?.(tx) ?? false,
    });
    if (!outcome.ok) return { ok: false, index: i, rejection: outcome };
    outcomes.push(outcome);
  }
  const writes = blockStateWrites(overlay.writes, ctx.height, config.params);
  return { ok: true, writes, stateRoot: committed.rootAfter(writes, stateRootRule(config.params)), outcomes };
}

/** Bytes of a block's transactions (their canonical encodings): what the byte budget counts. */
export function blockTxBytes(txs: readonly AnyTx[]): number {
  let n = 0;
  for (const tx of txs) n += txBytes(tx).length;
  return n;
}

/**
 * Builds a block body from candidates: keeps those that apply in order, up to `maxTxs` and
 * `maxBytes` of transactions (a transaction that would overflow the byte budget waits for the next
 * block).
 */
export function buildBlockTxs(
  committed: CommittedState,
  candidates: Iterable<AnyTx>,
  ctx: BlockContext,
  config: LedgerConfig,
  maxTxs: number,
  options: ApplyOptions = {},
  checked?: (tx: AnyTx) => boolean,
  maxBytes = Number.POSITIVE_INFINITY,
): BlockEffects & { txs: AnyTx[]; dropped: Dropped[] } {
  const overlay = startBlock(committed, ctx);
  const txs: AnyTx[] = [];
  const outcomes: Accepted[] = [];
  const dropped: Dropped[] = [];
  let bytes = 0;
  for (const tx of candidates) {
    if (txs.length >= maxTxs) break;
    const size = txBytes(tx).length;
    if (bytes + size > maxBytes) continue;
    const outcome = applyTx(overlay, tx, ctx, config, {
      ...options,
      signatureChecked: checked?.(tx) ?? false,
    });
    if (outcome.ok) {
      txs.push(tx);
      outcomes.push(outcome);
      bytes += size;
    } else {
      dropped.push({ tx, rejection: outcome });
    }
  }
  const writes = blockStateWrites(overlay.writes, ctx.height, config.params);
  return {
    txs,
    dropped,
    outcomes,
    writes,
    stateRoot: committed.rootAfter(writes, stateRootRule(config.params)),
  };
}

/** The committed state at height 0: genesis institutions, root over their writes. */
export function genesisState(genesis: Genesis): { state: CommittedState; writes: StateWrites } {
  const rule = stateRootRule(genesis.params);
  const state = new CommittedState(EMPTY_STATE_ROOT, 0, rule);
  const overlay = new StateOverlay(state);
  genesisWrites(genesis, overlay);
  state.apply(overlay.writes, state.rootAfter(overlay.writes, rule), 0);
  return { state, writes: overlay.writes };
}
