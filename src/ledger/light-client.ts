/**
 * The light client: what every program that acts on a fact from a node (the CLI, the bank client
 * `datagrant/client`, the portal in a browser) uses to believe it only once it is proven. It
 * starts from the genesis document alone and
 * - verifies certified headers: 2f+1 signatures of the validator set in force at the header's
 *   height (`validatorsAt`) on its hash; finality is immediate, so a certified header is final and
 *   two different certified headers at one height are a fork (`LIGHT_FORK`);
 * - verifies state proofs (an entry's value, or its absence, for the key the caller expects) and
 *   transaction inclusion proofs against such headers;
 * - fetches a proof route through the caller's own transport and returns the proven value, or
 *   throws the caller's code (CLI_NODE_LIED, CLIENT_NODE_LIED, PORTAL_NODE_LIED) naming the node
 *   (`provenEntry`); `requestViewFaults` lists where a node's view of a request differs from the
 *   proven entries, for the caller to refuse the same way (`nodeLied`).
 *
 * Portable: no Node built-in, the noble-based verifier by default.
 */

import { canonicalize } from '../common/canonical.js';
import { verify } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';
import { type BlockHeader, blockHash, type CommitCertificate, checkCertificate } from './block.js';
import type { ExtractionPolicy, Genesis, ValidatorInfo } from './genesis.js';
import {
  type ProofResult,
  type StateProofCheck,
  type StateValueProof,
  type TxProof,
  verifyStateValueProof,
  verifyTxProof,
} from './proof.js';
import { type GrantState, type RequestState, requestStatus } from './records.js';
import { stateRootRule } from './state.js';
import type { SignatureVerifier } from './tx-codec.js';

/** A validator set and the first height it certifies. */
export interface ValidatorEpoch {
  from: number;
  validators: readonly ValidatorInfo[];
}

/** Result of verifying a certified header. */
export type HeaderCheck =
  | { ok: true; height: number; blockHash: string; time: number }
  | { ok: false; code: string; message: string };

/** Options of a light client. */
export interface LightClientOptions {
  /** Ed25519 verifier (default the portable noble one; a node may pass its OpenSSL one). */
  verifier?: SignatureVerifier;
}

/** What a proof route is expected to hold: the entry (`present`), no entry (`absent`), or either. */
export type Expectation = 'present' | 'absent' | 'any';

/** Whom to blame, and with which code, when a node's answer does not verify. */
export interface Blame {
  /** The caller's code: CLI_NODE_LIED, CLIENT_NODE_LIED or PORTAL_NODE_LIED. */
  code: string;
  /** The node's URL. */
  node: string;
  /** Its name in genesis (`validator node0`), when the caller knows it. */
  name?: string;
}

/** A state entry proven against a certified header. */
export interface ProvenEntry<T = unknown> {
  key: string;
  value: T | null;
  height: number;
  time: number;
  blockHash: string;
}

/** Certified headers remembered to detect a fork (two certified blocks at one height). */
const REMEMBERED_HEADERS = 4096;

/** Follows a chain from its genesis and verifies what nodes say about it. */
export class LightClient {
  readonly genesis: Genesis;
  readonly #verifier: SignatureVerifier;
  /** Validator sets by first height, ascending; the first is genesis's, from height 1. */
  readonly #epochs: ValidatorEpoch[];
  /** Block hash of each certified header verified, by height (the latest few thousand). */
  readonly #seen = new Map<number, string>();
  #head: { height: number; blockHash: string; time: number } | undefined;

  constructor(genesis: Genesis, options: LightClientOptions = {}) {
    this.genesis = genesis;
    this.#verifier = options.verifier ?? verify;
    this.#epochs = [{ from: 1, validators: genesis.validators }];
  }

  /** Whether the chain's headers commit to provable state (genesis `params.stateRoot`). */
  get provable(): boolean {
    return stateRootRule(this.genesis.params) === 'sparse-merkle';
  }

  /** The highest certified header verified so far. */
  get head(): { height: number; blockHash: string; time: number } | undefined {
    return this.#head;
  }

  /** The validator set that certifies blocks at `height`. */
  validatorsAt(height: number): readonly ValidatorInfo[] {
    let set = this.#epochs[0]!.validators;
    for (const e of this.#epochs) if (e.from <= height) set = e.validators;
    return set;
  }

  /**
   * Follows a validator-set change: `validators` certify every block from height `from` on,
   * those before keep the set in force until then. The caller adopts a set only from what it has
   * proven under the set before it (the committed governance transaction that changes it, whose
   * inclusion proof `verifyTx` checks). Today the genesis set certifies every height and nothing
   * calls this; it is where a change is followed once governance can make one.
   */
  adoptValidatorSet(from: number, validators: readonly ValidatorInfo[]): void {
    const last = this.#epochs[this.#epochs.length - 1]!;
    if (!Number.isSafeInteger(from) || from <= last.from)
      throw new DatagrantError(
        'LIGHT_BAD_VALIDATOR_SET',
        `a validator set must start after height ${last.from}, not at ${from}`,
      );
    if (validators.length === 0 || new Set(validators.map((v) => v.key)).size !== validators.length)
      throw new DatagrantError('LIGHT_BAD_VALIDATOR_SET', 'a validator set needs distinct validators');
    if (this.#head && this.#head.height >= from)
      throw new DatagrantError(
        'LIGHT_BAD_VALIDATOR_SET',
        `height ${from} is already certified by the set in force (head ${this.#head.height})`,
      );
    this.#epochs.push({ from, validators: [...validators] });
  }

  /** Genesis with the validator set in force at `height` (what the certificate checks take). */
  #genesisAt(height: number): Genesis {
    const validators = this.validatorsAt(height);
    return validators === this.genesis.validators
      ? this.genesis
      : { ...this.genesis, validators: [...validators] };
  }

  /** Remembers a certified header; a different block already certified at its height is a fork. */
  #follow(height: number, hash: string, time: number): HeaderCheck {
    const known = this.#seen.get(height);
    if (known !== undefined && known !== hash)
      return {
        ok: false,
        code: 'LIGHT_FORK',
        message: `two different blocks are certified at height ${height}: the validators equivocated`,
      };
    if (known === undefined) {
      this.#seen.set(height, hash);
      if (this.#seen.size > REMEMBERED_HEADERS) {
        const oldest = Math.min(...this.#seen.keys());
        this.#seen.delete(oldest);
      }
    }
    if (!this.#head || height > this.#head.height) this.#head = { height, blockHash: hash, time };
    return { ok: true, height, blockHash: hash, time };
  }

  /** Verifies a header and its commit certificate. Never throws. */
  verifyHeader(header: BlockHeader, cert: CommitCertificate): HeaderCheck {
    try {
      if (header.chain !== this.genesis.chain)
        return { ok: false, code: 'PROOF_WRONG_CHAIN', message: 'the header is for another chain' };
      const fault = checkCertificate(this.#genesisAt(header.height), header, cert, this.#verifier);
      if (fault !== null)
        return { ok: false, code: `PROOF_CERT_${fault}`, message: `commit certificate is invalid: ${fault}` };
      return this.#follow(header.height, blockHash(header), header.time);
    } catch (err) {
      return {
        ok: false,
        code: 'PROOF_MALFORMED',
        message: `header is malformed: ${(err as Error).message}`,
      };
    }
  }

  /**
   * Verifies a state proof for the entry `key`: the header's certificate, then the value's (or
   * its absence's) path to the header's state root; `expect` refuses an absent entry the caller
   * needs (`present`) or a present one it should not find (`absent`). Never throws.
   */
  verifyState(p: StateValueProof, key: string, expect: Expectation = 'any'): StateProofCheck {
    const height = typeof p?.header?.height === 'number' ? p.header.height : 0;
    const r = verifyStateValueProof(this.#genesisAt(height), p, key, this.#verifier);
    if (!r.ok) return r;
    if (expect === 'present' && r.value === null)
      return { ok: false, code: 'PROOF_ENTRY_ABSENT', message: `the chain holds no entry ${key}` };
    if (expect === 'absent' && r.value !== null)
      return { ok: false, code: 'PROOF_ENTRY_PRESENT', message: `the chain holds an entry ${key}` };
    const followed = this.#follow(r.height, r.blockHash, r.time);
    return followed.ok ? r : followed;
  }

  /** Verifies a transaction inclusion proof; `expectedHash` refuses a proof of another transaction. */
  verifyTx(proof: TxProof, expectedHash?: string): ProofResult {
    const height = typeof proof?.header?.height === 'number' ? proof.header.height : 0;
    const r = verifyTxProof(this.#genesisAt(height), proof, this.#verifier);
    if (!r.ok) return r;
    if (expectedHash !== undefined && r.hash !== expectedHash)
      return { ok: false, code: 'PROOF_HASH_MISMATCH', message: 'the proof is for another transaction' };
    const followed = this.#follow(r.height, r.blockHash, r.time);
    return followed.ok ? r : followed;
  }

  /**
   * Fetches the proof route `path` with `get` (the caller's transport: plain or signed, `fetch`
   * or the browser's), verifies it for `key` and returns the proven entry. A proof that does not
   * verify throws `blame.code` naming the node; a failed call throws what `get` threw. On a
   * chain whose headers commit to no provable state: `undefined` (the caller falls back to what
   * genesis says, or refuses).
   */
  async provenEntry<T = unknown>(
    get: (path: string) => Promise<unknown>,
    path: string,
    key: string,
    blame: Blame,
    expect: Expectation = 'any',
  ): Promise<ProvenEntry<T> | undefined> {
    if (!this.provable) return undefined;
    const answer = (await get(path)) as StateValueProof;
    const r = this.verifyState(answer, key, expect);
    if (!r.ok)
      throw nodeLied(
        blame,
        `answered ${path} with a proof that does not verify against genesis (${r.code}: ${r.message})`,
        { path, proof: r.code },
      );
    return { key: r.key, value: r.value as T | null, height: r.height, time: r.time, blockHash: r.blockHash };
  }
}

/** The node named in `blame`, as a message names it. */
export function nodeLabel(blame: Blame): string {
  return blame.name ? `${blame.name} (${blame.node})` : `the node at ${blame.node}`;
}

/** The error for a node whose answer is refused: `blame.code`, naming it; nothing is signed on it. */
export function nodeLied(blame: Blame, what: string, meta: Record<string, unknown> = {}): DatagrantError {
  return new DatagrantError(
    blame.code,
    `${nodeLabel(blame)} ${what}: it is lying, nothing was signed on its word`,
    {
      ...meta,
      node: blame.node,
      ...(blame.name ? { name: blame.name } : {}),
    },
  );
}

/** What a node shows of a request: the fields of its request view a verifier compares. */
export interface RequestFacts {
  id: string;
  status: string;
  institution: string;
  subject: string;
  types: readonly string[];
  purpose: string;
  format: string;
  fields: Record<string, string>;
  dataFrom?: string;
  dataTo?: string;
  consentBy: number;
  records: readonly { type: string; digest: string }[];
  grant?: Partial<Omit<GrantState, 'keys'>>;
  denyReason?: string;
}

const same = (a: unknown, b: unknown): boolean => canonicalize(a ?? null) === canonicalize(b ?? null);

/** One way a node's view of a request differs from the chain: about the request, or its grant. */
export interface ViewFault {
  fact: 'request' | 'grant';
  what: string;
}

/**
 * Where the node's view of a request differs from the proven request (and its proven grant, if
 * it has one): the facts a subject consents on (institution, subject, types, purpose, format,
 * fields, the data period, the deadline, the records), and the grant's status (types, expiry, uses
 * left, paused, revoked) with the status it gives the request at `time` (the proof's header time)
 * or `now`. Empty when they agree.
 */
export function requestViewFaults(
  view: RequestFacts,
  request: RequestState | null,
  grant: GrantState | null | undefined,
  at: { time: number; now: number; policy?: ExtractionPolicy },
): ViewFault[] {
  if (request === null) return [{ fact: 'request', what: `request ${view.id} is not on the chain` }];
  const faults: ViewFault[] = [];
  const fault = (fact: ViewFault['fact'], what: string) => faults.push({ fact, what });
  for (const f of [
    'id',
    'institution',
    'subject',
    'types',
    'purpose',
    'format',
    'fields',
    'dataFrom',
    'dataTo',
    'consentBy',
    'denyReason',
  ] as const)
    if (!same(view[f], request[f])) fault('request', `its ${f}`);
  // Every record shown is the chain's; only an erased request's may be missing.
  const shown = view.records.filter((r) => request.records[r.type] === r.digest).length;
  if (shown !== view.records.length || (!request.erased && shown !== Object.keys(request.records).length))
    fault('request', 'its records');
  if (!same(view.grant?.id, request.grant)) fault('grant', 'whether it is granted');
  if (request.grant !== undefined) {
    if (!grant) fault('grant', 'its grant (not on the chain)');
    else if (view.grant) {
      for (const [f, value] of Object.entries(grant))
        if (f !== 'keys' && !same((view.grant as Record<string, unknown>)[f], value))
          fault('grant', `its grant's ${f}`);
    }
  }
  const status = [at.time, at.now].map((t) => requestStatus(request, grant ?? undefined, t, at.policy));
  if (!status.includes(view.status as (typeof status)[number]))
    fault(
      request.grant === undefined ? 'request' : 'grant',
      `its status (${view.status}; the chain says ${status[0]})`,
    );
  return faults;
}
