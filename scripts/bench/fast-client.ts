/**
 * The subjects' and the bank's client work for the flow benchmark, done with OpenSSL so that one
 * process can play hundreds of subjects on the machine under test: subject keys, registration,
 * grants that re-wrap each record key to the bank, and signed institution requests. Byte-for-byte
 * the same protocol as `platform/consent.ts` and `platform/http-auth.ts` (checked against them at
 * start-up), only faster.
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, fromBase64url, toBase64url, utf8ToBytes } from '../../src/common/bytes.js';
import { randomBytes, unwrapKey, type WrappedKey, wrapKey } from '../../src/common/crypto.js';
import { recordContext } from '../../src/records/record-crypto.js';
import { attestationBytes, signTx, type Tx } from '../../src/ledger/index.js';
import { AUTH_HEADERS, httpSigningBytes } from '../../src/platform/http-auth.js';
import { type BenchKey, benchKey } from './keys.js';

const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const WRAP_INFO = utf8ToBytes('datagrant/wrap/v1');

/** An X25519 key pair with the OpenSSL key object. */
export interface FastEncKey {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  key: KeyObject;
}

/** A fresh X25519 key pair. */
export function fastEncKey(): FastEncKey {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  return {
    publicKey: new Uint8Array(spki.subarray(spki.length - 32)),
    secretKey: new Uint8Array(pkcs8.subarray(pkcs8.length - 32)),
    key: privateKey,
  };
}

/** An X25519 key object for a raw public key. */
export function x25519Public(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([X25519_SPKI, raw]), format: 'der', type: 'spki' });
}

/** An X25519 key object for a raw secret key. */
export function x25519Private(raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([X25519_PKCS8, raw]), format: 'der', type: 'pkcs8' });
}

function kek(shared: Uint8Array, epk: Uint8Array, recipient: Uint8Array, context: Uint8Array): Uint8Array {
  return hkdf(sha256, shared, concatBytes(epk, recipient), concatBytes(WRAP_INFO, context), 32);
}

/** `rewrapForGrantee` with OpenSSL's X25519: opens the subject's wrapped key, wraps it to the grantee. */
export function fastRewrap(
  wrapped: WrappedKey,
  subject: FastEncKey,
  grantee: { raw: Uint8Array; key: KeyObject },
  context: Uint8Array,
): WrappedKey {
  const epk = fromBase64url(wrapped.epk, 'epk');
  const shared = diffieHellman({ privateKey: subject.key, publicKey: x25519Public(epk) });
  const dataKey = xchacha20poly1305(
    kek(shared, epk, subject.publicKey, context),
    fromBase64url(wrapped.nonce, 'nonce'),
    concatBytes(context, subject.publicKey),
  ).decrypt(fromBase64url(wrapped.ct, 'ct'));
  const eph = fastEncKey();
  const shared2 = diffieHellman({ privateKey: eph.key, publicKey: grantee.key });
  const nonce = randomBytes(24);
  const ct = xchacha20poly1305(
    kek(shared2, eph.publicKey, grantee.raw, context),
    nonce,
    concatBytes(context, grantee.raw),
  ).encrypt(dataKey);
  dataKey.fill(0);
  return { epk: toBase64url(eph.publicKey), nonce: toBase64url(nonce), ct: toBase64url(ct) };
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

/** A request as the grant needs it (from `GET /v1/requests/:id`). */
export interface RequestRecords {
  id: string;
  purpose: string;
  records: { type: string; digest: string; key: WrappedKey }[];
}

/** The subject's grant of every record of `request` to the grantee, one use, valid 7 days. */
export function grantTx(
  chain: string,
  request: RequestRecords,
  subject: BenchSubject,
  grantee: { raw: Uint8Array; key: KeyObject },
  now: number,
): Tx {
  const types = request.records.map((r) => r.type) as ('tax' | 'social-insurance')[];
  const keys = request.records.map((r) => ({
    record: r.digest,
    key: fastRewrap(r.key, subject.enc, grantee, recordContext(chain, request.id, r.type as 'tax')),
  }));
  return signTx(
    {
      chain,
      kind: 'grant',
      body: {
        request: request.id,
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

/** Headers authenticating one institution request (see `signHttpRequest`). */
export function institutionHeaders(
  method: string,
  path: string,
  body: string,
  institution: string,
  key: BenchKey,
  now = Date.now(),
): Record<string, string> {
  return {
    [AUTH_HEADERS.institution]: institution,
    [AUTH_HEADERS.timestamp]: String(now),
    [AUTH_HEADERS.signature]: bytesToHex(key.sign(httpSigningBytes(method, path, body, now, institution))),
  };
}

/** Checks the fast re-wrap against the portable implementation; throws if they disagree. */
export function assertRewrapAgrees(chain: string): void {
  const subject = fastEncKey();
  const grantee = fastEncKey();
  const context = recordContext(chain, '0'.repeat(64), 'tax');
  const dataKey = randomBytes(32);
  const toSubject = wrapKey(dataKey, subject.publicKey, context);
  const toGrantee = fastRewrap(
    toSubject,
    subject,
    { raw: grantee.publicKey, key: x25519Public(grantee.publicKey) },
    context,
  );
  const opened = unwrapKey(toGrantee, grantee.secretKey, context);
  if (bytesToHex(opened) !== bytesToHex(dataKey))
    throw new Error('fast re-wrap does not open with the portable unwrap');
}
