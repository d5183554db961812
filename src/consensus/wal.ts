/**
 * The consensus write-ahead state: everything a validator must remember across a crash so that it
 * never signs two different things for one (height, view) and never forgets a prepared block. The
 * core emits a fresh snapshot as `StepOutput.persist` whenever it changes; the shell stores it
 * durably before sending that step's messages and hands the last one back on restart.
 */
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { DatagrantError } from '../common/errors.js';
import type { Block } from '../ledger/block.js';
import { BlockSchema, checkTxs, decodeMessage, PreparedSchema } from './message-codec.js';
import type { NewViewMessage, PreparedCertificate, ProposalMessage } from './messages.js';

/** Persisted consensus state for the height being decided. */
export interface ConsensusWal {
  v: 1;
  chain: string;
  /** Height being decided (last committed + 1). */
  height: number;
  view: number;
  /** False while this node has asked for `view` and waits for its new-view. */
  active: boolean;
  /** Block hash this node prepared in `view`, if any. */
  prepareVote: string | null;
  /** Block hash this node commit-voted in `view`, if any. */
  commitVote: string | null;
  /** What this node proposed in `view` as its primary (a new-view for views after 0). */
  proposal: ProposalMessage | NewViewMessage | null;
  /** Highest prepared certificate at this height, with its block when known. */
  prepared: { cert: PreparedCertificate; block: Block | null } | null;
}

const Hex32 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const WalSchema = Type.Object(
  {
    v: Type.Literal(1),
    chain: Type.String({ minLength: 1 }),
    height: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    view: Type.Integer({ minimum: 0, maximum: 2 ** 31 }),
    active: Type.Boolean(),
    prepareVote: Type.Union([Hex32, Type.Null()]),
    commitVote: Type.Union([Hex32, Type.Null()]),
    proposal: Type.Unknown(),
    prepared: Type.Union([
      Type.Object(
        { cert: PreparedSchema, block: Type.Union([BlockSchema, Type.Null()]) },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
  },
  { additionalProperties: false },
);
const walCheck = TypeCompiler.Compile(WalSchema);

/** Validates a stored WAL snapshot; `CONSENSUS_WAL_INVALID` naming the bad field. */
export function decodeWal(input: unknown): ConsensusWal {
  if (!walCheck.Check(input)) {
    const error = walCheck.Errors(input).First();
    throw new DatagrantError(
      'CONSENSUS_WAL_INVALID',
      `wal${error?.path ?? ''}: ${error?.message ?? 'invalid'}`,
    );
  }
  const wal = input as ConsensusWal;
  if (wal.proposal !== null) {
    const decoded = decodeMessage(wal.proposal);
    if (!decoded.ok || (decoded.message.type !== 'proposal' && decoded.message.type !== 'new-view')) {
      throw new DatagrantError('CONSENSUS_WAL_INVALID', 'wal.proposal is not a proposal or new-view');
    }
  }
  const detail = wal.prepared?.block ? checkTxs(wal.prepared.block, 'wal.prepared') : null;
  if (detail !== null) throw new DatagrantError('CONSENSUS_WAL_INVALID', detail);
  return wal;
}
