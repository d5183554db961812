/**
 * `TestLedger`: committed state of a test chain plus a block clock, transaction builders with
 * sensible defaults, and block execution/certification. Builders only build and sign: run the
 * transaction with `try` (one-tx block, nothing kept) or `commit` (a certified block, kept).
 *
 * ```ts
 * const chain = makeTestChain();
 * const ledger = new TestLedger(chain); // block 1 registers every chain subject
 * const open = ledger.openRequest(chain.institutions[0]!, chain.subjects[0]!);
 * ledger.commit([open]);
 * const id = txHash(open);
 * ```
 */

import { bytesToHex } from '../../src/common/bytes.js';
import { signFast } from '../../src/common/crypto-node.js';
import {
  type AnyTx,
  type BlockContext,
  type BlockEffects,
  type BlockHeader,
  buildBlockTxs,
  bundleDigest,
  type CertifiedBlock,
  type ChainTip,
  type CommitEffects,
  CommittedState,
  type DataType,
  type Dropped,
  executeBlock,
  type GovChange,
  type GrantState,
  grantedRecordDigests,
  type InstitutionState,
  type RecordState,
  type RequestState,
  receiptQuorum,
  recoveryBytes,
  rotationProofBytes,
  type SignatureVerifier,
  type StorageReceipt,
  type SubjectState,
  scheduledEpochs,
  stateKey,
  type Tx,
  type TxBody,
  type TxKind,
  type TxOutcome,
  txHash,
  txRootOf,
  validatorHeaderFields,
} from '../../src/ledger/index.js';
import { signStorageReceipt } from '../../src/records/storage-receipt.js';
import {
  fakeWrappedKey,
  hexOf,
  type SignOptions,
  type TestChain,
  type TestKeys,
  type TestSubject,
} from './chain.js';

/** Options of `TestLedger`. */
export interface TestLedgerOptions {
  /** Commit block 1 registering every subject of the chain (default true). */
  registerSubjects?: boolean;
  /** Block time step after each commit (default 1000 ms). */
  blockIntervalMs?: number;
  /** Signature verifier given to the state machine (default: its own, the portable one). */
  verifier?: SignatureVerifier;
}

/** A block committed by `TestLedger.commit`, with what a `BlockStore` needs to persist it. */
export interface CommittedTestBlock {
  certified: CertifiedBlock;
  effects: BlockEffects;
  /** Argument for `BlockStore.commit`. */
  commitEffects: CommitEffects;
}

/** Default purpose of requests built by `openRequest` (grants must repeat it). */
export const TEST_PURPOSE = 'mortgage application';

/** Thrown by `commit` when a transaction of the block is rejected. */
export class BlockRejectedError extends Error {
  constructor(
    readonly index: number,
    readonly code: string,
    message: string,
  ) {
    super(`tx ${index} rejected: ${code} (${message})`);
  }
}

/** Committed state of a test chain with a block clock and transaction builders. */
export class TestLedger {
  readonly state: CommittedState;
  /** Time (unix ms) of the next block; builders derive default expiries from it. */
  now: number;
  /** Hash of the last committed block (genesis hash before block 1). */
  tipHash: string;
  /** Blocks committed by this ledger instance, in order. */
  readonly blocks: CommittedTestBlock[] = [];
  /** Who certifies the blocks committed from now on (default: the genesis validators). */
  certifiers: TestKeys[] | undefined;
  private readonly interval: number;
  private readonly verifier: SignatureVerifier | undefined;
  private counter = 0;

  constructor(
    readonly chain: TestChain,
    options: TestLedgerOptions = {},
    resume?: { state: CommittedState; tip: ChainTip },
  ) {
    this.interval = options.blockIntervalMs ?? 1000;
    this.verifier = options.verifier;
    if (resume) {
      this.state = resume.state;
      this.tipHash = resume.tip.hash;
      this.now = resume.tip.time + this.interval;
    } else {
      const init = chain.genesisInit();
      this.state = new CommittedState();
      this.state.apply(init.writes, init.stateRoot, 0);
      this.tipHash = chain.genesisHash;
      this.now = chain.genesis.time + this.interval;
      if (options.registerSubjects ?? true) this.commit(chain.subjects.map((s) => this.register(s)));
    }
  }

  /**
   * A ledger continuing from state loaded out of a block store (`store.loadState`), e.g. after a
   * restart. Blocks it commits extend `tip`.
   */
  static resume(
    chain: TestChain,
    state: CommittedState,
    tip: ChainTip,
    options: TestLedgerOptions = {},
  ): TestLedger {
    return new TestLedger(chain, options, { state, tip });
  }

  /** Height of the last committed block. */
  get height(): number {
    return this.state.height;
  }

  /** Context of the next block (at `time`, default `now`), proposed by validator 0. */
  ctx(time = this.now): BlockContext {
    return { height: this.state.height + 1, time, proposer: this.chain.validators[0]!.pub };
  }

  /** Moves the block clock forward. */
  advance(ms: number): void {
    this.now += ms;
  }

  /**
   * Runs `tx` alone in the next block (at `time`, default `now`) without keeping anything.
   * Also returns the state writes and root the block would have had.
   */
  try(tx: AnyTx, time = this.now): TxOutcome & { writes?: ReadonlyMap<string, unknown>; stateRoot?: string } {
    const result = executeBlock(this.state, [tx], this.ctx(time), this.chain.config, this.applyOptions());
    if (!result.ok) return result.rejection;
    return { ...result.outcomes[0]!, writes: result.writes, stateRoot: result.stateRoot };
  }

  /**
   * Executes `txs` as the next block (every one must apply, else `BlockRejectedError`), certifies it
   * with every validator, applies it to `state` and advances the clock.
   */
  commit(txs: AnyTx[], options: { time?: number; view?: number } = {}): CommittedTestBlock {
    const ctx = this.ctx(options.time);
    const result = executeBlock(this.state, txs, ctx, this.chain.config, this.applyOptions());
    if (!result.ok) {
      throw new BlockRejectedError(result.index, result.rejection.code, result.rejection.message);
    }
    return this.finish(txs, ctx, result, options.view ?? 0);
  }

  /**
   * Proposer path: keeps the candidates that apply in order (`buildBlockTxs`), commits them as
   * the next block and returns the block with the dropped transactions.
   */
  commitBuilt(
    candidates: AnyTx[],
    options: { time?: number; maxTxs?: number } = {},
  ): CommittedTestBlock & { dropped: Dropped[] } {
    const ctx = this.ctx(options.time);
    const built = buildBlockTxs(
      this.state,
      candidates,
      ctx,
      this.chain.config,
      options.maxTxs ?? this.chain.genesis.params.maxBlockTxs,
      this.applyOptions(),
    );
    return { ...this.finish(built.txs, ctx, built, 0), dropped: built.dropped };
  }

  private applyOptions(): { verifier?: SignatureVerifier } {
    return this.verifier ? { verifier: this.verifier } : {};
  }

  private finish(txs: AnyTx[], ctx: BlockContext, effects: BlockEffects, view: number): CommittedTestBlock {
    const header: BlockHeader = {
      chain: this.chain.genesis.chain,
      height: ctx.height,
      prev: this.tipHash,
      txRoot: txRootOf(txs),
      txCount: txs.length,
      stateRoot: effects.stateRoot,
      proposer: ctx.proposer,
      view,
      time: ctx.time,
      ...validatorHeaderFields(this.chain.genesis, scheduledEpochs(this.state), ctx.height),
    };
    const certified = this.chain.certify(
      { header, txs: [...txs] },
      this.certifiers ? { voters: this.certifiers } : {},
    );
    const block: CommittedTestBlock = {
      certified,
      effects: { writes: effects.writes, stateRoot: effects.stateRoot, outcomes: effects.outcomes },
      commitEffects: {
        writes: effects.writes,
        subjects: effects.outcomes.map((o) => o.subject),
        hashes: txs.map((tx) => txHash(tx)),
      },
    };
    this.state.apply(effects.writes, effects.stateRoot, ctx.height);
    this.tipHash = certified.cert.block;
    this.blocks.push(block);
    this.now = Math.max(this.now, ctx.time) + this.interval;
    return block;
  }

  // ---- state lookups ----

  /** Request state by id (the hash of its `request.open`). */
  request(id: string): RequestState | undefined {
    return this.state.get(stateKey.request(id)) as RequestState | undefined;
  }

  /** Grant state by id (the hash of its `grant`). */
  grantState(id: string): GrantState | undefined {
    return this.state.get(stateKey.grant(id)) as GrantState | undefined;
  }

  /** Record state by digest. */
  record(digest: string): RecordState | undefined {
    return this.state.get(stateKey.record(digest)) as RecordState | undefined;
  }

  /** Subject state by id. */
  subject(id: string): SubjectState | undefined {
    return this.state.get(stateKey.subject(id)) as SubjectState | undefined;
  }

  /** Institution state by id. */
  institution(id: string): InstitutionState | undefined {
    return this.state.get(stateKey.institution(id)) as InstitutionState | undefined;
  }

  // ---- builders: each signs for a block at `now`, defaults overridable field by field ----

  /** Signs any transaction for a block at `now`. */
  sign<K extends TxKind>(who: TestKeys, kind: K, body: TxBody<K>, options?: SignOptions): Tx<K> {
    return this.chain.sign(who, kind, body, this.now, options);
  }

  /** `subject.register` with a valid attestation by the genesis registrar. */
  register(
    subject: TestSubject,
    body: Partial<TxBody<'subject.register'>> = {},
    options?: SignOptions,
  ): Tx<'subject.register'> {
    return this.sign(
      subject,
      'subject.register',
      {
        subject: subject.id,
        encKey: subject.encPub,
        registrar: this.chain.registrar.pub,
        attestation: this.chain.attest(subject),
        ...body,
      },
      options,
    );
  }

  /**
   * `subject.recover` of subject `id` to the keys of `next` (who signs it), attested by the
   * registrar (default the chain's) at `issued` (default the ledger's clock).
   */
  recover(
    id: string,
    next: TestKeys,
    body: Partial<TxBody<'subject.recover'>> = {},
    by: TestKeys = this.chain.registrar,
    options?: SignOptions,
  ): Tx<'subject.recover'> {
    const issued = body.issued ?? this.now - 1000;
    const attestation = bytesToHex(
      signFast(
        recoveryBytes(this.chain.genesis.chain, id, next.pub, next.encPub, issued),
        by.signing.secretKey,
      ),
    );
    return this.sign(
      next,
      'subject.recover',
      { subject: id, encKey: next.encPub, registrar: by.pub, attestation, issued, ...body },
      options,
    );
  }

  /**
   * `request.open` by `institution` about `subject`: types social-insurance and tax, purpose
   * `TEST_PURPOSE`, json, one field per type, consent within 7 days.
   */
  openRequest(
    institution: TestKeys,
    subject: TestSubject | string,
    body: Partial<TxBody<'request.open'>> = {},
    options?: SignOptions,
  ): Tx<'request.open'> {
    const types = body.types ?? ['social-insurance', 'tax'];
    const fields = Object.fromEntries(types.map((t, i) => [`col${i}`, `${t}.value`]));
    return this.sign(
      institution,
      'request.open',
      {
        subject: typeof subject === 'string' ? subject : subject.id,
        types,
        purpose: TEST_PURPOSE,
        format: 'json',
        fields,
        consentBy: this.now + 7 * 24 * 3600 * 1000,
        ...body,
      },
      options,
    );
  }

  /**
   * Storage receipts for a ciphertext, one per signer (default: the first f + 1 validators, the
   * fewest the ledger accepts), at the committed height; `fields` overrides what they name.
   */
  receipts(
    digest: string,
    size: number,
    signers: TestKeys[] = this.chain.validators.slice(0, receiptQuorum(this.chain.validators.length)),
    fields: Partial<Omit<StorageReceipt, 'sig'>> = {},
  ): StorageReceipt[] {
    return signers.map((v) =>
      signStorageReceipt(
        { validator: v.pub, digest, size, chain: this.chain.genesis.chain, height: this.height, ...fields },
        v.signing.secretKey,
        signFast,
      ),
    );
  }

  /**
   * `record.put` for one type of a request, with a fresh digest, a fake wrapped key and valid
   * storage receipts of f + 1 validators for its digest and size (unless `body.receipts` is given).
   */
  putRecord(
    extractor: TestKeys,
    request: string,
    type: DataType,
    body: Partial<TxBody<'record.put'>> = {},
    options?: SignOptions,
  ): Tx<'record.put'> {
    this.counter += 1;
    const digest = body.digest ?? hexOf(`record/${request}/${type}/${this.counter}`);
    const size = body.size ?? 1024;
    return this.sign(
      extractor,
      'record.put',
      {
        request,
        type,
        digest,
        size,
        key: fakeWrappedKey(`record/${request}/${type}/${this.counter}`),
        source: 'test-source',
        fetchedAt: this.now,
        sourceCommitment: hexOf(`source/${request}/${type}`),
        ...(this.chain.config.policy === 'on-consent'
          ? { granteeKey: fakeWrappedKey(`grantee/${request}/${type}/${this.counter}`) }
          : {}),
        ...body,
        receipts: body.receipts ?? this.receipts(digest, size),
      },
      options,
    );
  }

  /** `record.fail` for one type of a request. */
  failRecord(
    extractor: TestKeys,
    request: string,
    type: DataType,
    body: Partial<TxBody<'record.fail'>> = {},
    options?: SignOptions,
  ): Tx<'record.fail'> {
    return this.sign(
      extractor,
      'record.fail',
      { request, type, reason: 'SOURCE_UNAVAILABLE', detail: 'test failure', ...body },
      options,
    );
  }

  /**
   * `grant` of a request by `subject`: by default to the request's institution and its registered
   * key, every requested type that has a record (under `on-consent`: every requested type, no
   * keys), the request's purpose and range, one fake key per record, 3 uses, expiring in 1 day.
   */
  grant(
    subject: TestKeys,
    request: string,
    body: Partial<TxBody<'grant'>> = {},
    options?: SignOptions,
  ): Tx<'grant'> {
    const state = this.request(request);
    const onConsent = this.chain.config.policy === 'on-consent';
    const types =
      body.types ??
      (state ? state.types.filter((t) => onConsent || state.records[t] !== undefined) : ['tax']);
    const keys = onConsent
      ? []
      : types.map((t) => {
          const record = state?.records[t] ?? hexOf(`no-record/${t}`);
          return { record, key: fakeWrappedKey(`grant/${record}`) };
        });
    const institution = state?.institution ?? this.chain.institutions[0]!.id;
    const inst = this.institution(institution);
    return this.sign(
      subject,
      'grant',
      {
        request,
        institution,
        granteeKey: inst?.encKey ?? this.chain.institutions[0]!.encPub,
        types: types.length > 0 ? types : ['tax'],
        purpose: state?.purpose ?? TEST_PURPOSE,
        ...(state?.dataFrom ? { dataFrom: state.dataFrom } : {}),
        ...(state?.dataTo ? { dataTo: state.dataTo } : {}),
        expires: this.now + 24 * 3600 * 1000,
        uses: 3,
        retainDays: 30,
        keys:
          keys.length > 0 || onConsent ? keys : [{ record: hexOf('no-record'), key: fakeWrappedKey('none') }],
        ...body,
      },
      options,
    );
  }

  /** `deny` of a request. */
  deny(
    subject: TestKeys,
    request: string,
    body: Partial<TxBody<'deny'>> = {},
    options?: SignOptions,
  ): Tx<'deny'> {
    return this.sign(subject, 'deny', { request, ...body }, options);
  }

  /** `revoke` of a grant. */
  revoke(subject: TestKeys, grant: string, options?: SignOptions): Tx<'revoke'> {
    return this.sign(subject, 'revoke', { grant }, options);
  }

  /** `pause` of a grant. */
  pause(subject: TestKeys, grant: string, options?: SignOptions): Tx<'pause'> {
    return this.sign(subject, 'pause', { grant }, options);
  }

  /** `resume` of a paused grant. */
  resume(subject: TestKeys, grant: string, options?: SignOptions): Tx<'resume'> {
    return this.sign(subject, 'resume', { grant }, options);
  }

  /**
   * `usage` of a grant by `who` (the grantee, for it to apply), naming the bundle the grant
   * releases in the current state (a made-up digest when the grant is unknown).
   */
  usage(
    who: TestKeys,
    grant: string,
    body: Partial<TxBody<'usage'>> = {},
    options?: SignOptions,
  ): Tx<'usage'> {
    this.counter += 1;
    const g = this.state.get(stateKey.grant(grant)) as GrantState | undefined;
    const request = g ? this.request(g.request) : undefined;
    const bundle =
      g && request
        ? bundleDigest(this.chain.genesis.chain, grant, grantedRecordDigests(request, g))
        : hexOf(`bundle/${grant}/${this.counter}`);
    return this.sign(who, 'usage', { grant, bundle, format: 'json', ...body }, options);
  }

  /** `erase` of a request's data. */
  erase(subject: TestKeys, request: string, options?: SignOptions): Tx<'erase'> {
    return this.sign(subject, 'erase', { request }, options);
  }

  /** `record.refresh` of `types` of a request by `subject` (her current key, for it to apply). */
  refreshRecords(
    subject: TestKeys,
    request: string,
    types: DataType[],
    options?: SignOptions,
  ): Tx<'record.refresh'> {
    return this.sign(subject, 'record.refresh', { request, types }, options);
  }

  /** `institution.add` of `keys` as institution `id`. */
  addInstitution(
    admin: TestKeys,
    id: string,
    keys: TestKeys,
    body: Partial<TxBody<'institution.add'>> = {},
    options?: SignOptions,
  ): Tx<'institution.add'> {
    return this.sign(
      admin,
      'institution.add',
      { institution: id, name: `Institution ${id}`, signKey: keys.pub, encKey: keys.encPub, ...body },
      options,
    );
  }

  /**
   * `institution.rotate` of institution `id` (signed with `current`) to the keys of `next`: both
   * halves by default, `only` one of them; a new signing key signs its proof.
   */
  rotateInstitution(
    current: TestKeys,
    id: string,
    next: TestKeys,
    only?: 'signKey' | 'encKey',
    options?: SignOptions,
  ): Tx<'institution.rotate'> {
    const withSign = only !== 'encKey';
    const proof = withSign
      ? bytesToHex(
          signFast(
            rotationProofBytes(this.chain.genesis.chain, id, next.pub, current.pub),
            next.signing.secretKey,
          ),
        )
      : undefined;
    return this.sign(
      current,
      'institution.rotate',
      {
        institution: id,
        ...(withSign ? { signKey: next.pub, proof: proof! } : {}),
        ...(only !== 'signKey' ? { encKey: next.encPub } : {}),
      },
      options,
    );
  }

  /** `gov.propose` of `change` by council `member`, open for a day of block time by default. */
  propose(
    member: TestKeys,
    change: GovChange,
    deadline = this.now + 24 * 3600 * 1000,
    options?: SignOptions,
  ): Tx<'gov.propose'> {
    return this.sign(member, 'gov.propose', { change, deadline }, options);
  }

  /** `gov.approve` of `proposal` (a `gov.propose` hash) by council `member`. */
  approve(member: TestKeys, proposal: string, options?: SignOptions): Tx<'gov.approve'> {
    return this.sign(member, 'gov.approve', { proposal }, options);
  }

  /** `institution.retire` of institution `id`. */
  retireInstitution(admin: TestKeys, id: string, options?: SignOptions): Tx<'institution.retire'> {
    return this.sign(admin, 'institution.retire', { institution: id }, options);
  }

  /**
   * Opens a request by `institution` about `subject` for `types` and puts a record for each (by
   * the first extractor serving it); returns the request id and the record digest per type.
   */
  requestWithRecords(
    institution: TestKeys,
    subject: TestSubject,
    types: DataType[] = ['social-insurance', 'tax'],
    body: Partial<TxBody<'request.open'>> = {},
  ): { request: string; records: Partial<Record<DataType, string>> } {
    const open = this.openRequest(institution, subject, { types, ...body });
    this.commit([open]);
    const request = txHash(open);
    const puts = types.map((t) => this.putRecord(this.chain.extractorFor(t), request, t));
    this.commit(puts);
    return { request, records: Object.fromEntries(puts.map((p) => [p.body.type, p.body.digest])) };
  }

  /** `requestWithRecords` followed by a committed default grant; returns the grant id too. */
  granted(
    institution: TestKeys,
    subject: TestSubject,
    types: DataType[] = ['social-insurance', 'tax'],
    body: Partial<TxBody<'grant'>> = {},
  ): { request: string; grant: string; records: Partial<Record<DataType, string>> } {
    const { request, records } = this.requestWithRecords(institution, subject, types);
    const g = this.grant(subject, request, body);
    this.commit([g]);
    return { request, grant: txHash(g), records };
  }
}

/**
 * One schema-valid signed transaction of every kind (ids are made up: they pass `decodeTx`, not
 * necessarily the state machine). For codec, API and gossip tests that must cover every kind.
 */
export function oneOfEachKind(ledger: TestLedger): { [K in TxKind]: Tx<K> } {
  const { chain } = ledger;
  const inst = chain.institutions[0]!;
  const subject = chain.subjects[0]!;
  const request = hexOf('sample/request');
  const grant = hexOf('sample/grant');
  return {
    'subject.register': ledger.register(subject),
    'request.open': ledger.openRequest(inst, subject, { dataFrom: '2020-01-01', dataTo: '2024-12-31' }),
    'record.put': ledger.putRecord(chain.validators[0]!, request, 'tax'),
    'record.fail': ledger.failRecord(chain.validators[0]!, request, 'tax'),
    grant: ledger.grant(subject, request, {
      types: ['tax'],
      keys: [{ record: hexOf('sample/record'), key: fakeWrappedKey('sample') }],
    }),
    deny: ledger.deny(subject, request, { reason: 'no thanks' }),
    revoke: ledger.revoke(subject, grant),
    pause: ledger.pause(subject, grant),
    resume: ledger.resume(subject, grant),
    usage: ledger.usage(inst, grant),
    erase: ledger.erase(subject, request),
    'institution.add': ledger.addInstitution(chain.admin, 'bank-new', chain.keys('bank-new')),
    'institution.retire': ledger.retireInstitution(chain.admin, 'bank-1'),
    'subject.recover': ledger.recover(subject.id, chain.keys('subject-recovered')),
    'institution.rotate': ledger.rotateInstitution(inst, inst.id, chain.keys('bank-rotated')),
    'gov.propose': ledger.propose(chain.council[0]!, {
      type: 'registrar.add',
      key: chain.keys('registrar-2').pub,
    }),
    'gov.approve': ledger.approve(chain.council[1]!, hexOf('sample/proposal')),
    'record.refresh': ledger.refreshRecords(subject, request, ['tax']),
  };
}
