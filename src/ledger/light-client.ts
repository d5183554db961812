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
import {
  type ValidatorEpoch,
  validatorFieldsMatch,
  validatorHeaderFields,
  validatorSetHash,
} from './validator-set.js';

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

  /** Every validator set known after genesis's, ascending by first height. */
  get epochs(): readonly ValidatorEpoch[] {
    return this.#epochs.slice(1);
  }

  /**
   * Follows a validator-set change from its link: the certified header just before the set's first
   * height, which commits to the set's hash (`nextValidators`) and is itself certified by the set in
   * force before it. Links must come in order. Never throws.
   */
  followEpoch(link: EpochLink): HeaderCheck {
    const epoch = link?.epoch;
    const last = this.#epochs[this.#epochs.length - 1]!;
    const bad = (message: string): HeaderCheck => ({ ok: false, code: 'LIGHT_BAD_VALIDATOR_SET', message });
    if (!epoch || !Array.isArray(epoch.validators) || !Number.isSafeInteger(epoch.from))
      return bad('the link holds no validator set');
    if (epoch.from <= last.from)
      return bad(`a validator set must start after height ${last.from}, not at ${epoch.from}`);
    if (
      epoch.validators.length === 0 ||
      new Set(epoch.validators.map((v) => v?.key)).size !== epoch.validators.length
    )
      return bad('a validator set needs distinct validators');
    if (link.header?.height !== epoch.from - 1)
      return bad(`the link's header must be the one at height ${epoch.from - 1}`);
    let hash: string;
    try {
      hash = validatorSetHash(epoch.validators);
    } catch {
      return bad('the validator set is malformed');
    }
    if (link.header.nextValidators !== hash)
      return bad(`the certified header at ${link.header.height} commits to another next validator set`);
    const candidate = { from: epoch.from, validators: epoch.validators.map((v) => ({ ...v })) };
    const checked = this.#verifyHeader(link.header, link.cert, [...this.#epochs, candidate]);
    if (checked.ok) this.#epochs.push(candidate);
    return checked;
  }

  /**
   * Learns every validator-set change a node reports (`GET /v1/gov/validator-sets`), each followed
   * from its certified link (`GET /v1/blocks/<from - 1>`): nothing is taken on the node's word, a
   * set it made up fails its link, one it hides fails the headers after it. Throws `blame.code`
   * when a link does not verify.
   */
  async followValidatorSets(get: (path: string) => Promise<unknown>, blame: Blame): Promise<void> {
    const answer = (await get('/v1/gov/validator-sets')) as { epochs?: ValidatorEpoch[] };
    const known = this.#epochs[this.#epochs.length - 1]!.from;
    for (const epoch of Array.isArray(answer?.epochs) ? answer.epochs : []) {
      if (!(epoch?.from > known) || epoch.from <= this.#epochs[this.#epochs.length - 1]!.from) continue;
      const block = (await get(`/v1/blocks/${epoch.from - 1}`).catch(() => undefined)) as
        | { block?: { header?: BlockHeader }; cert?: CommitCertificate }
        | undefined;
      // A set whose first height is not reached yet has no link: nothing certifies with it yet.
      if (block === undefined) break;
      const r = this.followEpoch({
        epoch,
        header: block.block?.header as BlockHeader,
        cert: block.cert as CommitCertificate,
      });
      if (!r.ok)
        throw nodeLied(
          blame,
          `reported a validator set from height ${epoch.from} that its chain does not certify (${r.code}: ${r.message})`,
          {
            proof: r.code,
          },
        );
    }
  }

  /** Genesis with the validator set in force at `height` (what the certificate checks take). */
  #genesisAt(height: number): Genesis {
    const validators = this.validatorsAt(height);
    return validators === this.genesis.validators
      ? this.genesis
      : { ...this.genesis, validators: [...validators] };
  }

  /**
   * Whether `header` names the validator sets this client knows for its height and the next: a
   * header that names others is past a change this client has not followed (or is forged).
   */
  #knowsSets(header: BlockHeader | undefined, epochs: readonly ValidatorEpoch[] = this.#epochs): boolean {
    // A malformed header is left to the proof's own checks, which refuse it with their code.
    if (!header || typeof header !== 'object' || !Number.isSafeInteger(header.height)) return true;
    return validatorFieldsMatch(header, validatorHeaderFields(this.genesis, epochs, header.height));
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
    return this.#verifyHeader(header, cert, this.#epochs);
  }

  #verifyHeader(
    header: BlockHeader,
    cert: CommitCertificate,
    epochs: readonly ValidatorEpoch[],
  ): HeaderCheck {
    try {
      if (header.chain !== this.genesis.chain)
        return { ok: false, code: 'PROOF_WRONG_CHAIN', message: 'the header is for another chain' };
      if (!this.#knowsSets(header, epochs)) return unknownSets(header.height);
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
    if (!this.#knowsSets(p?.header)) return unknownSets(height);
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
    if (!this.#knowsSets(proof?.header)) return unknownSets(height);
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
    let r = this.verifyState(answer, key, expect);
    if (!r.ok && r.code === 'LIGHT_VALIDATORS_UNKNOWN') {
      // The proof's header is past a validator-set change: follow the changes, then check again.
      await this.followValidatorSets(get, blame);
      r = this.verifyState(answer, key, expect);
    }
    if (!r.ok)
      throw nodeLied(
        blame,
        `answered ${path} with a proof that does not verify against genesis (${r.code}: ${r.message})`,
        { path, proof: r.code },
      );
    return { key: r.key, value: r.value as T | null, height: r.height, time: r.time, blockHash: r.blockHash };
  }
}

/** A link in the chain of validator sets: the set, and the certified header before its first height. */
export interface EpochLink {
  epoch: ValidatorEpoch;
  header: BlockHeader;
  cert: CommitCertificate;
}

function unknownSets(height: number): { ok: false; code: string; message: string } {
  return {
    ok: false,
    code: 'LIGHT_VALIDATORS_UNKNOWN',
    message: `the header at ${height} names validator sets this client has not followed (followValidatorSets)`,
  };
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
  policy?: ExtractionPolicy;
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
    'policy',
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
