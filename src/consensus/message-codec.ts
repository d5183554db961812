/**
 * Wire encoding of consensus messages and a strict decoder for untrusted input. The decoder checks
 * shape only (types, lengths, hex, no unknown fields, every transaction through the ledger's
 * `decodeTx`); signatures and protocol rules are the core's job. It never throws.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { utf8ToBytes } from '../common/bytes.js';
import type { Block } from '../ledger/block.js';
import { MAX_VALIDATORS } from '../ledger/genesis.js';
import { decodeTx } from '../ledger/tx-codec.js';
import type { ConsensusMessage } from './messages.js';

/** Largest encoded message accepted from the network (a block of 2,000 16 KiB transactions fits twice). */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** Most transactions a decoded block may carry (the genesis limit is checked by the core). */
export const MAX_DECODED_BLOCK_TXS = 100_000;
/** Most votes or view-changes in one certificate or new-view (genesis allows at most 100 validators). */
export { MAX_VALIDATORS };

const Hex32 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Sig = Type.String({ pattern: '^[0-9a-f]{128}$' });
const Chain = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{2,63}$' });
const Height = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
const View = Type.Integer({ minimum: 0, maximum: 2 ** 31 });
const strict = { additionalProperties: false } as const;

const HeaderSchema = Type.Object(
  {
    chain: Chain,
    height: Height,
    prev: Hex32,
    txRoot: Hex32,
    txCount: Type.Integer({ minimum: 0, maximum: MAX_DECODED_BLOCK_TXS }),
    stateRoot: Hex32,
    proposer: Hex32,
    view: View,
    time: Type.Integer({ minimum: 0, maximum: 8_640_000_000_000_000 }),
    validators: Type.Optional(Hex32),
    nextValidators: Type.Optional(Hex32),
  },
  strict,
);
/** Shape of a block (transactions checked separately with `decodeTx`). */
export const BlockSchema = Type.Object(
  { header: HeaderSchema, txs: Type.Array(Type.Unknown(), { maxItems: MAX_DECODED_BLOCK_TXS }) },
  strict,
);
const VotesSchema = Type.Array(Type.Object({ validator: Hex32, sig: Sig }, strict), {
  minItems: 1,
  maxItems: MAX_VALIDATORS,
});
/** Shape of a prepared certificate. */
export const PreparedSchema = Type.Object({ view: View, block: Hex32, votes: VotesSchema }, strict);
const signed = { chain: Chain, height: Height, view: View, sender: Hex32, sig: Sig };

const ProposalSchema = Type.Object({ type: Type.Literal('proposal'), ...signed, block: BlockSchema }, strict);
const VoteSchema = Type.Object(
  { type: Type.Union([Type.Literal('prepare'), Type.Literal('commit')]), ...signed, block: Hex32 },
  strict,
);
/** A view-change names its prepared block by hash only; a new primary that lacks the body fetches it. */
const ViewChangeSchema = Type.Object(
  { type: Type.Literal('view-change'), ...signed, prepared: Type.Union([PreparedSchema, Type.Null()]) },
  strict,
);
const NewViewSchema = Type.Object(
  {
    type: Type.Literal('new-view'),
    ...signed,
    viewChanges: Type.Array(ViewChangeSchema, { minItems: 1, maxItems: MAX_VALIDATORS }),
    proposal: ProposalSchema,
  },
  strict,
);
const CertSchema = Type.Object({ height: Height, view: View, block: Hex32, votes: VotesSchema }, strict);
const DecidedSchema = Type.Object(
  { type: Type.Literal('decided'), chain: Chain, block: BlockSchema, cert: CertSchema },
  strict,
);

const checks: Record<ConsensusMessage['type'], TypeCheck<TSchema>> = {
  proposal: TypeCompiler.Compile(ProposalSchema),
  prepare: TypeCompiler.Compile(VoteSchema),
  commit: TypeCompiler.Compile(VoteSchema),
  'view-change': TypeCompiler.Compile(ViewChangeSchema),
  'new-view': TypeCompiler.Compile(NewViewSchema),
  decided: TypeCompiler.Compile(DecidedSchema),
};

/** Outcome of decoding untrusted input. */
export type DecodeResult = { ok: true; message: ConsensusMessage } | { ok: false; detail: string };

/** Encodes a message for the wire (UTF-8 JSON). */
export function encodeMessage(message: ConsensusMessage): Uint8Array {
  return utf8ToBytes(JSON.stringify(message));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes untrusted input: wire bytes (UTF-8 JSON) or an already parsed JSON value. Returns the
 * typed message, or why it is malformed; never throws.
 */
export function decodeMessage(input: unknown, maxBytes = MAX_MESSAGE_BYTES): DecodeResult {
  let value = input;
  if (input instanceof Uint8Array) {
    if (input.length > maxBytes) return { ok: false, detail: `message is larger than ${maxBytes} bytes` };
    try {
      value = JSON.parse(utf8.decode(input));
    } catch {
      return { ok: false, detail: 'message is not UTF-8 JSON' };
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, detail: 'message is not an object' };
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !Object.hasOwn(checks, type)) {
    return { ok: false, detail: 'message has an unknown type' };
  }
  const check = checks[type as ConsensusMessage['type']];
  if (!check.Check(value)) {
    const error = check.Errors(value).First();
    return { ok: false, detail: `${type}${error?.path ?? ''}: ${error?.message ?? 'invalid'}` };
  }
  const message = value as ConsensusMessage;
  const detail = checkBlocks(message);
  return detail === null ? { ok: true, message } : { ok: false, detail };
}

function checkBlocks(message: ConsensusMessage): string | null {
  switch (message.type) {
    case 'proposal':
    case 'decided':
      return checkTxs(message.block, message.type);
    case 'new-view':
      return checkTxs(message.proposal.block, 'new-view');
    default:
      return null;
  }
}

const blockCheck = TypeCompiler.Compile(BlockSchema);

/** Outcome of decoding an untrusted block body (one fetched by hash). */
export type DecodeBlockResult = { ok: true; block: Block } | { ok: false; detail: string };

/** Decodes an untrusted block (shape and every transaction); never throws. */
export function decodeBlock(input: unknown): DecodeBlockResult {
  if (!blockCheck.Check(input)) {
    const error = blockCheck.Errors(input).First();
    return { ok: false, detail: `block${error?.path ?? ''}: ${error?.message ?? 'invalid'}` };
  }
  const detail = checkTxs(input, 'block');
  return detail === null ? { ok: true, block: input as Block } : { ok: false, detail };
}

/** Runs every transaction of a shape-checked block through `decodeTx`; why not, or null when all pass. */
export function checkTxs(block: Static<typeof BlockSchema> | Block, where: string): string | null {
  const txs = block.txs as unknown[];
  for (let i = 0; i < txs.length; i++) {
    try {
      decodeTx(txs[i]);
    } catch (err) {
      return `${where} block.txs[${i}]: ${(err as Error).message}`;
    }
  }
  return null;
}
