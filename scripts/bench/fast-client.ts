/**
 * The subjects' and the bank's client work for the flow benchmark, done with OpenSSL so that one
 * process can play hundreds of subjects and a busy bank on the machine under test: subject keys,
 * registration, grants that re-wrap each record key to the bank (HPKE over OpenSSL's X25519), the
 * bank's own `request.open` and `usage`, and the signed calls of both (the bank's bundle fetches
 * and block reads, the subjects' reads). Byte-for-byte the same protocol as `platform/consent.ts`,
 * `client/client.ts` and `common/http-signature.ts` (checked against them at start-up), only
 * faster: Ed25519 through imported OpenSSL keys, X25519 and SHA-256 through `crypto-node.ts`.
 */
import { generateKeyPairSync } from 'node:crypto';
import { bytesToHex, fromHex } from '../../src/common/bytes.js';
import { canonicalize } from '../../src/common/canonical.js';
import {
  generateEncryptionKeyPair,
  unwrapKey,
  useX25519,
  verify,
  type WrappedKey,
  wrapKey,
} from '../../src/common/crypto.js';
import { opensslX25519 } from '../../src/common/crypto-node.js';
import { institutionCaller, SIGNED_CALL_HEADERS, signCall } from '../../src/common/http-signature.js';
import { generateKeySet } from '../../src/common/keyfile.js';
import {
  attestationBytes,
  bundleDigest,
  type DOCUMENT_FORMATS,
  signTx,
  type Tx,
  type TxBody,
  type TxKind,
  verifyTxSignature,
} from '../../src/ledger/index.js';
import { buildGrantTx } from '../../src/platform/consent.js';
import { recordContext, rewrapForGrantee } from '../../src/records/record-crypto.js';
import { type BenchKey, benchKey, randomHex } from './keys.js';

/** An X25519 key pair (raw keys). */
export interface FastEncKey {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** A fresh X25519 key pair, generated inside OpenSSL. */
export function fastEncKey(): FastEncKey {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  return {
    publicKey: new Uint8Array(spki.subarray(spki.length - 32)),
    secretKey: new Uint8Array(pkcs8.subarray(pkcs8.length - 32)),
  };
}

/**
 * `rewrapForGrantee` itself: opens the subject's wrapped key and wraps it to the grantee with HPKE.
 * Fast because importing `crypto-node.ts` (above) put OpenSSL's X25519 under HPKE.
 */
export function fastRewrap(
  wrapped: WrappedKey,
  subject: FastEncKey,
  granteePublicKey: Uint8Array,
  context: Uint8Array,
): WrappedKey {
  return rewrapForGrantee(wrapped, subject.secretKey, granteePublicKey, context);
}

/** One synthetic person: pseudonymous id, signing and encryption keys. */
export interface BenchSubject {
  id: string;
  signing: BenchKey;
  enc: FastEncKey;
}

/** A new subject. */
export function benchSubject(id: string): BenchSubject {
  return { id, signing: benchKey(), enc: fastEncKey() };
}

/** The subject's `subject.register`, with the registrar's attestation. */
export function registerTx(chain: string, subject: BenchSubject, registrar: BenchKey, now: number): Tx {
  const encKey = bytesToHex(subject.enc.publicKey);
  const attestation = bytesToHex(
    registrar.sign(attestationBytes(chain, subject.id, subject.signing.pub, encKey)),
  );
  return signTx(
    {
      chain,
      kind: 'subject.register',
      body: { subject: subject.id, encKey, registrar: registrar.pub, attestation },
    },
    subject.signing.publicKey,
    subject.signing.secretKey,
    now,
    (m) => subject.signing.sign(m),
  );
}

/** A request as the grant needs it (from `GET /v1/requests/:id`, a read the subject signs). */
export interface RequestRecords {
  id: string;
  purpose: string;
  records: { type: string; digest: string; key: WrappedKey }[];
}

/** The grantee a grant names: the institution and its registered X25519 key (hex). */
export interface BenchGrantee {
  institution: string;
  encKey: string;
}

/** The subject's grant of every record of `request` to the grantee, one use, valid 7 days. */
export function grantTx(
  chain: string,
  request: RequestRecords,
  subject: BenchSubject,
  grantee: BenchGrantee,
  now: number,
): Tx<'grant'> {
  const types = request.records.map((r) => r.type) as ('tax' | 'social-insurance')[];
  const granteeKey = fromHex(grantee.encKey, 'encKey', 32);
  const keys = request.records.map((r) => ({
    record: r.digest,
    key: fastRewrap(r.key, subject.enc, granteeKey, recordContext(chain, request.id, r.type as 'tax')),
  }));
  return signTx(
    {
      chain,
      kind: 'grant',
      body: {
        request: request.id,
        institution: grantee.institution,
        granteeKey: grantee.encKey,
        types,
        purpose: request.purpose,
        expires: now + 7 * 24 * 3600 * 1000,
        uses: 1,
        retainDays: 30,
        keys,
      },
    },
    subject.signing.publicKey,
    subject.signing.secretKey,
    now,
    (m) => subject.signing.sign(m),
  );
}

function bankTx<K extends TxKind>(
  chain: string,
  kind: K,
  body: TxBody<K>,
  bank: BenchKey,
  now: number,
): Tx<K> {
  return signTx({ chain, kind, body }, bank.publicKey, bank.secretKey, now, (m) => bank.sign(m));
}

/** The bank's own `request.open` (what `DatagrantClient.openRequest` signs), consent due in 7 days. */
export function requestOpenTx(
  chain: string,
  body: Omit<TxBody<'request.open'>, 'consentBy'>,
  bank: BenchKey,
  now: number,
): Tx<'request.open'> {
  return bankTx(chain, 'request.open', { ...body, consentBy: now + 7 * 24 * 3600 * 1000 }, bank, now);
}

/**
 * The bank's own `usage` of a grant (what `DatagrantClient.fetchBundle` signs): it names the
 * bundle of exactly the granted records' digests.
 */
export function usageTx(
  chain: string,
  grant: string,
  records: readonly string[],
  format: (typeof DOCUMENT_FORMATS)[number],
  bank: BenchKey,
  now: number,
): Tx<'usage'> {
  return bankTx(chain, 'usage', { grant, bundle: bundleDigest(chain, grant, records), format }, bank, now);
}

/** What one signed call is addressed to: the node's key (`self` in GET /v1/status) and the chain. */
export interface CallTarget {
  audience: string;
  chain: string;
}

/** The caller name of a subject in signed calls (`institutionCaller`'s counterpart). */
export function subjectCaller(id: string): string {
  return `subject:${id}`;
}

/**
 * Headers of one signed call by `caller` (`institutionCaller(id)` for the bank, `subjectCaller(id)`
 * for a subject; see `signCall`), signed with the fast signer.
 */
export function signedCallHeaders(
  method: string,
  path: string,
  body: string,
  caller: string,
  target: CallTarget,
  key: BenchKey,
  now = Date.now(),
): Record<string, string> {
  return signCall(
    {
      method,
      path,
      body,
      caller,
      audience: target.audience,
      chain: target.chain,
      nonce: randomHex(16),
      timestamp: now,
    },
    new Uint8Array(0),
    (message) => key.sign(message),
  );
}

/**
 * Checks the fast paths against the portable implementations; throws if they disagree: a key
 * re-wrapped over OpenSSL's X25519 opens with the portable (noble) one; the fast grant's body is
 * `buildGrantTx`'s but for the (random) wrapped keys; the bank's fast transactions and signed call
 * verify with the portable Ed25519, and the fast signed call's headers are `signCall`'s.
 */
export function assertFastClientAgrees(chain: string): void {
  const person = generateKeySet('check');
  const subject: BenchSubject = {
    id: 'check-subject',
    signing: benchKey(person.signing.secretKey),
    enc: { publicKey: person.encryption.publicKey, secretKey: person.encryption.secretKey },
  };
  const bankEnc = fastEncKey();
  const context = recordContext(chain, '0'.repeat(64), 'tax');
  const dataKey = generateEncryptionKeyPair().secretKey;
  const request = {
    id: '0'.repeat(64),
    subject: subject.id,
    purpose: 'check',
    types: ['tax'],
    records: [{ type: 'tax', digest: randomHex(32), key: wrapKey(dataKey, subject.enc.publicKey, context) }],
  };
  const grantee = { institution: 'check-bank', encKey: bytesToHex(bankEnc.publicKey) };
  const now = Date.now();
  const fast = grantTx(chain, request, subject, grantee, now).body;
  useX25519();
  let opened: Uint8Array;
  let portable: TxBody<'grant'>;
  try {
    opened = unwrapKey(fast.keys[0]!.key, bankEnc.secretKey, context);
    portable = buildGrantTx({ chain, now }, request, person, grantee, {
      expiresInMs: 7 * 24 * 3600 * 1000,
      uses: 1,
      retainDays: 30,
    }).body;
  } finally {
    useX25519(opensslX25519);
  }
  if (bytesToHex(opened) !== bytesToHex(dataKey))
    throw new Error('the fast re-wrap does not open with the portable unwrap');
  const withoutKeys = (b: TxBody<'grant'>) =>
    canonicalize({ ...b, keys: b.keys.map((k) => ({ record: k.record, key: Object.keys(k.key).sort() })) });
  if (withoutKeys(fast) !== withoutKeys(portable))
    throw new Error('the fast grant differs from buildGrantTx');

  const bank = benchKey();
  const txs: Tx[] = [
    requestOpenTx(
      chain,
      { subject: subject.id, types: ['tax'], purpose: 'check', format: 'json', fields: {} },
      bank,
      now,
    ),
    usageTx(chain, '1'.repeat(64), [request.records[0]!.digest], 'json', bank, now),
  ];
  for (const tx of txs)
    if (!verifyTxSignature(tx, verify)) throw new Error(`the fast ${tx.kind} does not verify`);
  // Ed25519 is deterministic: with the same nonce and time, the portable signCall gives the same
  // headers, for the bank's calls and the subject's reads alike.
  const target = { audience: randomHex(32), chain };
  for (const [caller, key, secretKey, path] of [
    [institutionCaller('check-bank'), bank, bank.secretKey, '/v1/requests/x/bundle?usage=y'],
    [
      subjectCaller(subject.id),
      subject.signing,
      person.signing.secretKey,
      `/v1/subjects/${subject.id}/audit`,
    ],
  ] as const) {
    const headers = signedCallHeaders('GET', path, '', caller, target, key, now);
    const reference = signCall(
      {
        method: 'GET',
        path,
        body: '',
        caller,
        ...target,
        nonce: headers[SIGNED_CALL_HEADERS.nonce]!,
        timestamp: now,
      },
      secretKey,
    );
    if (canonicalize(headers) !== canonicalize(reference))
      throw new Error(`the fast signed call of ${caller} differs from signCall`);
  }
}
