/**
 * A deterministic test chain: genesis with validators (mixed roles), a registrar, an admin and
 * institutions, plus subjects ready to register, all derived from one seed so two processes that
 * call `makeTestChain` with the same options get byte-identical keys and genesis.
 *
 * Use `TestLedger` (./ledger.ts) to execute transactions and blocks on top of it.
 */
import { bytesToHex, toBase64url, utf8ToBytes } from '../../src/common/bytes.js';
import {
  type EncryptionKeyPair,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  type SigningKeyPair,
  sha256,
  sign,
  type WrappedKey,
} from '../../src/common/crypto.js';
import { signFast } from '../../src/common/crypto-node.js';
import type { KeySet } from '../../src/common/keyfile.js';
import {
  attestationBytes,
  type Block,
  blockHash,
  type CertifiedBlock,
  type ChainParams,
  type CommitVote,
  commitSigningBytes,
  DATA_TYPES,
  type DataType,
  DEFAULT_CHAIN_PARAMS,
  type Genesis,
  type GenesisInit,
  genesisHash,
  genesisState,
  type LedgerConfig,
  ledgerConfigOf,
  type NodeRole,
  parseGenesis,
  signTx,
  type Tx,
  type TxBody,
  type TxKind,
} from '../../src/ledger/index.js';

/** Signing and encryption keys of one test actor. */
export interface TestKeys {
  /** Human-readable label, also the derivation label. */
  name: string;
  signing: SigningKeyPair;
  encryption: EncryptionKeyPair;
  /** Signing public key as hex (what transactions and genesis carry). */
  pub: string;
  /** Encryption public key as hex. */
  encPub: string;
}

/** A genesis validator. */
export interface TestValidator extends TestKeys {
  roles: NodeRole[];
  types: DataType[];
}

/** A genesis institution (bank). */
export interface TestInstitution extends TestKeys {
  /** Institution id on chain, e.g. `bank-0`. */
  id: string;
}

/** A data subject, not registered at genesis (see `TestLedger` for registration). */
export interface TestSubject extends TestKeys {
  /** Pseudonymous subject id, e.g. `subject-0`. */
  id: string;
}

/** Options of `makeTestChain`; every field has a default. */
export interface TestChainOptions {
  /** Derivation seed of every key (default `datagrant-test`). */
  seed?: string;
  /** Chain id (default `test-chain`). */
  chain?: string;
  /** Genesis time, unix ms (default 1_700_000_000_000). */
  time?: number;
  /** Number of validators (default 4); roles cycle through `VALIDATOR_ROLE_CYCLE`. */
  validators?: number;
  /** Number of genesis institutions (default 2). */
  institutions?: number;
  /** Number of subjects to create keys for (default 3). */
  subjects?: number;
  /** Overrides of `DEFAULT_CHAIN_PARAMS`. */
  params?: Partial<ChainParams>;
  /**
   * Who changes membership: `admin` (default; a single key, as on chains made before the council)
   * or `council` (the three `council` keys, two of which must approve).
   */
  governance?: 'admin' | 'council';
  /** Genesis `sources`: data sources that sign their answers (default none). */
  sources?: Genesis['sources'];
}

/**
 * Roles and served data types of validator i are `VALIDATOR_ROLE_CYCLE[i % 4]`:
 * node-0 platform + extractor of every type, node-1 extractor of social-insurance and tax,
 * node-2 platform only, node-3 consensus only (no role).
 */
export const VALIDATOR_ROLE_CYCLE: readonly { roles: NodeRole[]; types: DataType[] }[] = [
  { roles: ['platform', 'extractor'], types: [...DATA_TYPES] },
  { roles: ['extractor'], types: ['social-insurance', 'tax'] },
  { roles: ['platform'], types: [] },
  { roles: [], types: [] },
];

/** Options of the transaction builder `TestChain.sign`. */
export interface SignOptions {
  /** Expiry (unix ms). Default: `now + 60 s`. */
  expires?: number;
  /** Nonce hex (16..64 chars). Default: derived from a per-chain counter, so runs are reproducible. */
  nonce?: string;
  /** Chain id to sign for. Default: the test chain's. */
  chain?: string;
}

/** The deterministic test chain. */
export interface TestChain {
  options: Required<Omit<TestChainOptions, 'params' | 'sources'>>;
  genesis: Genesis;
  /** `genesisHash(genesis)`: the `prev` of block 1. */
  genesisHash: string;
  config: LedgerConfig;
  validators: TestValidator[];
  registrar: TestKeys;
  admin: TestKeys;
  /** Three council keys (members of genesis' council under `governance: 'council'`, threshold 2). */
  council: TestKeys[];
  institutions: TestInstitution[];
  subjects: TestSubject[];
  /** A key with no role anywhere. */
  outsider: TestKeys;
  /** Extra deterministic keys by label (same label, same keys). */
  keys(name: string): TestKeys;
  /** The first validator with exactly `roles` (any order), e.g. `validator(['platform'])`. */
  validator(roles: NodeRole[]): TestValidator;
  /** The first validator that is an extractor serving `type`. */
  extractorFor(type: DataType): TestValidator;
  /** Registrar attestation hex binding `subject` to its keys (signed by `registrar`, default the genesis one). */
  attest(subject: { id: string; pub: string; encPub: string }, registrar?: TestKeys): string;
  /** Builds and signs a transaction; `now` is the block time it is meant for (sets the default expiry). */
  sign<K extends TxKind>(who: TestKeys, kind: K, body: TxBody<K>, now: number, options?: SignOptions): Tx<K>;
  /** Commit certificate over `block` signed by `voters` (default: every validator), in `view`. */
  certify(block: Block, options?: { voters?: TestKeys[]; view?: number }): CertifiedBlock;
  /** Genesis state and writes, as `LevelBlockStore`/`MemoryBlockStore` want them. */
  genesisInit(): GenesisInit;
}

/** Deterministic key pair of `name` under `seed`. */
export function deriveKeys(seed: string, name: string): TestKeys {
  const signing = generateSigningKeyPair(sha256(utf8ToBytes(`${seed}/${name}/sign`)));
  const encryption = generateEncryptionKeyPair(sha256(utf8ToBytes(`${seed}/${name}/enc`)));
  return {
    name,
    signing,
    encryption,
    pub: bytesToHex(signing.publicKey),
    encPub: bytesToHex(encryption.publicKey),
  };
}

/** The same keys as a `KeySet` (for key-file tests). */
export function keySetOf(keys: TestKeys): KeySet {
  return { label: keys.name, signing: keys.signing, encryption: keys.encryption };
}

/**
 * A syntactically valid wrapped key (right base64url lengths) derived from `label`. The ledger
 * cannot open wrapped keys, so state-machine tests need no real ones; use `wrapKey` when the
 * test decrypts.
 */
export function fakeWrappedKey(label: string): WrappedKey {
  const h = sha256(utf8ToBytes(`wrapped/${label}`));
  const h2 = sha256(h);
  return { enc: toBase64url(h), ct: toBase64url(new Uint8Array([...h, ...h2.subarray(0, 16)])) };
}

/** Lower-case hex of SHA-256 of a label: handy for digests and document ids. */
export function hexOf(label: string): string {
  return bytesToHex(sha256(utf8ToBytes(label)));
}

/** Builds the deterministic test chain. Cheap (a few key derivations); make one per test. */
export function makeTestChain(options: TestChainOptions = {}): TestChain {
  const opts = {
    seed: options.seed ?? 'datagrant-test',
    chain: options.chain ?? 'test-chain',
    time: options.time ?? 1_700_000_000_000,
    validators: options.validators ?? 4,
    institutions: options.institutions ?? 2,
    subjects: options.subjects ?? 3,
    governance: options.governance ?? 'admin',
  };
  const derive = (name: string): TestKeys => deriveKeys(opts.seed, name);
  const validators: TestValidator[] = Array.from({ length: opts.validators }, (_, i) => {
    const cycle = VALIDATOR_ROLE_CYCLE[i % VALIDATOR_ROLE_CYCLE.length]!;
    return { ...derive(`node-${i}`), roles: [...cycle.roles], types: [...cycle.types] };
  });
  const registrar = derive('registrar');
  const admin = derive('admin');
  const council = [1, 2, 3].map((i) => derive(`council-${i}`));
  const byCouncil = options.governance === 'council';
  const institutions: TestInstitution[] = Array.from({ length: opts.institutions }, (_, i) => ({
    ...derive(`bank-${i}`),
    id: `bank-${i}`,
  }));
  const subjects: TestSubject[] = Array.from({ length: opts.subjects }, (_, i) => ({
    ...derive(`subject-${i}`),
    id: `subject-${i}`,
  }));
  const genesis = parseGenesis({
    chain: opts.chain,
    time: opts.time,
    validators: validators.map((v) => ({ name: v.name, key: v.pub, roles: v.roles, types: v.types })),
    registrars: [registrar.pub],
    admins: byCouncil ? [] : [admin.pub],
    ...(byCouncil ? { council: { members: council.map((c) => c.pub), threshold: 2 } } : {}),
    institutions: institutions.map((inst) => ({
      institution: inst.id,
      name: `Test Bank ${inst.id}`,
      signKey: inst.pub,
      encKey: inst.encPub,
    })),
    ...(options.sources === undefined ? {} : { sources: options.sources }),
    params: { ...DEFAULT_CHAIN_PARAMS, ...options.params },
  });
  const hash = genesisHash(genesis);
  let nonceCounter = 0;

  const chain: TestChain = {
    options: opts,
    genesis,
    genesisHash: hash,
    config: ledgerConfigOf(genesis),
    validators,
    registrar,
    admin,
    council,
    institutions,
    subjects,
    outsider: derive('outsider'),
    keys: derive,
    validator(roles) {
      const want = [...roles].sort().join(',');
      const found = validators.find((v) => [...v.roles].sort().join(',') === want);
      if (!found) throw new Error(`no test validator has exactly the roles [${want}]`);
      return found;
    },
    extractorFor(type) {
      const found = validators.find((v) => v.roles.includes('extractor') && v.types.includes(type));
      if (!found) throw new Error(`no test validator extracts ${type}`);
      return found;
    },
    attest(subject, by = registrar) {
      return bytesToHex(
        sign(attestationBytes(opts.chain, subject.id, subject.pub, subject.encPub), by.signing.secretKey),
      );
    },
    sign(who, kind, body, now, signOptions = {}) {
      nonceCounter += 1;
      return signTx(
        {
          chain: signOptions.chain ?? opts.chain,
          kind,
          body,
          expires: signOptions.expires ?? now + 60_000,
          nonce: signOptions.nonce ?? hexOf(`${opts.seed}/nonce/${nonceCounter}`).slice(0, 32),
        },
        who.signing.publicKey,
        who.signing.secretKey,
        now,
        signFast,
      );
    },
    certify(block, certifyOptions = {}) {
      const view = certifyOptions.view ?? block.header.view;
      const hashHex = blockHash(block.header);
      const message = commitSigningBytes(opts.chain, block.header.height, view, hashHex);
      const votes: CommitVote[] = (certifyOptions.voters ?? validators).map((v) => ({
        validator: v.pub,
        sig: bytesToHex(signFast(message, v.signing.secretKey)),
      }));
      return { block, cert: { height: block.header.height, view, block: hashHex, votes } };
    },
    genesisInit() {
      const { state, writes } = genesisState(genesis);
      return { genesisHash: hash, time: genesis.time, stateRoot: state.root, writes };
    },
  };
  return chain;
}
