/**
 * A registrar's attestation service (`datagrant registrar serve`): the registrar's key stays on
 * its own machine, and a person's software asks this service to attest her keys instead of ever
 * holding that key.
 *
 * How the person is checked is the operator's: this service implements one-time enrollment codes.
 * After checking a person's identity in whatever way the registrar is obliged to (at a counter,
 * by post), the operator runs `datagrant registrar enroll --subject <id>`, which stores only the
 * SHA-256 of a fresh random code with the subject id and an expiry, and hands her the code. Her
 * `datagrant register --registrar-url … --code …` sends the code with her subject id and public
 * keys; the service checks the code (unused, unexpired, for that subject), marks it used on disk
 * before it answers, and returns its Ed25519 attestation binding the subject id to those keys
 * (`attestationBytes`). A code tried wrongly too often is locked.
 *
 * A person's portal (web/src/portal.ts) calls `POST /v1/attest` from the page of her node, another
 * origin: the service answers CORS for it and its preflight (`allowOrigins`, default any origin).
 * The call carries no cookie or credential (the one-time code in the body is the secret), so
 * allowing any origin gives a page no more than a script on any machine already has.
 *
 * The enrollment file is JSON, written atomically (temp file, fsync, rename); it holds no secret a
 * thief could use (code hashes only, each good for one attestation of one subject).
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { createApi } from '../api/server.js';
import { bytesToHex, fromHex, toBase64url } from '../common/bytes.js';
import { sha256Hex, sign } from '../common/crypto.js';
import { DatagrantError } from '../common/errors.js';
import type { KeySet } from '../common/keyfile.js';
import type { Logger } from '../common/logger.js';
import { HASH_PATTERN, SUBJECT_ID_PATTERN } from '../ledger/patterns.js';
import { attestationBytes, recoveryBytes } from '../ledger/state-machine.js';

/** One enrollment: who may be attested, by which code (its hash), until when. */
export interface Enrollment {
  subject: string;
  codeHash: string;
  expires: number;
  /** Set once the code was used: when, and the keys attested. */
  used?: { at: number; signKey: string; encKey: string };
  /** A recovery: the code attests new keys for a subject already registered (`subject.recover`). */
  recovery?: boolean;
  /** Wrong codes tried for this subject. */
  failures: number;
}

/** Wrong codes after which a subject's open enrollments are locked. */
export const MAX_CODE_FAILURES = 5;
/** How long a code is good for by default: 14 days. */
export const DEFAULT_ENROLLMENT_MS = 14 * 86_400_000;

/** The enrollments of a registrar, kept in one JSON file. */
export class EnrollmentStore {
  private enrollments: Enrollment[] = [];
  /** This process's changes, one at a time (the lock file orders them with other processes). */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly path: string) {}

  /** Opens (or starts) the file at `path`. */
  static async open(path: string): Promise<EnrollmentStore> {
    const store = new EnrollmentStore(path);
    await store.reload();
    return store;
  }

  /** Enrolls `subject`: returns the one-time code to hand to the person (only its hash is kept). */
  enroll(
    subject: string,
    now = Date.now(),
    validMs = DEFAULT_ENROLLMENT_MS,
    recovery = false,
  ): Promise<string> {
    if (!new RegExp(SUBJECT_ID_PATTERN).test(subject))
      throw new DatagrantError(
        'REGISTRAR_BAD_SUBJECT',
        `subject id ${subject} is not a valid pseudonymous id`,
      );
    return this.change(async () => {
      const code = toBase64url(randomBytes(16));
      this.enrollments.push({
        subject,
        codeHash: codeHash(code),
        expires: now + validMs,
        failures: 0,
        ...(recovery ? { recovery: true } : {}),
      });
      await this.save();
      return code;
    });
  }

  /**
   * Uses `code` for `subject` (REGISTRAR_CODE_INVALID, _LOCKED, _USED or _EXPIRED otherwise),
   * recording the keys it attests; durable before it returns.
   */
  redeem(
    subject: string,
    code: string,
    keys: { signKey: string; encKey: string },
    now = Date.now(),
  ): Promise<{ recovery: boolean }> {
    return this.change(async () => {
      const mine = this.enrollments.filter((e) => e.subject === subject);
      if (mine.some((e) => e.failures >= MAX_CODE_FAILURES))
        throw new DatagrantError(
          'REGISTRAR_LOCKED',
          'too many wrong codes for this subject: ask the registrar again',
        );
      const hash = codeHash(code);
      const match = mine.find((e) => e.codeHash === hash);
      if (!match) {
        for (const e of mine) if (!e.used) e.failures++;
        await this.save();
        throw new DatagrantError('REGISTRAR_CODE_INVALID', 'no enrollment of this subject has this code');
      }
      if (match.used) throw new DatagrantError('REGISTRAR_CODE_USED', 'this code was already used');
      if (match.expires <= now) throw new DatagrantError('REGISTRAR_CODE_EXPIRED', 'this code has expired');
      match.used = { at: now, ...keys };
      await this.save();
      return { recovery: match.recovery === true };
    });
  }

  /** The enrollments as last read, for the operator. */
  list(): readonly Enrollment[] {
    return this.enrollments;
  }

  private async reload(): Promise<void> {
    try {
      this.enrollments = (
        JSON.parse(await readFile(this.path, 'utf8')) as { enrollments: Enrollment[] }
      ).enrollments;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new DatagrantError(
          'REGISTRAR_STORE_UNREADABLE',
          `cannot read ${this.path}: ${(err as Error).message}`,
        );
      this.enrollments = [];
    }
  }

  /** Runs `change` on the file's latest contents while holding its lock file. */
  private change<T>(change: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const lock = `${this.path}.lock`;
      for (let attempt = 0; ; attempt++) {
        try {
          await (await open(lock, 'wx')).close();
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 250)
            throw new DatagrantError(
              'REGISTRAR_STORE_BUSY',
              `cannot lock ${this.path}: ${(err as Error).message}`,
            );
          await sleep(20);
        }
      }
      try {
        await this.reload();
        return await change();
      } finally {
        await rm(lock, { force: true });
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async save(): Promise<void> {
    const tmp = `${this.path}.tmp`;
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(`${JSON.stringify({ enrollments: this.enrollments }, null, 2)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.path);
  }
}

function codeHash(code: string): string {
  return sha256Hex(new TextEncoder().encode(`datagrant/enrollment/v1\n${code}`));
}

/** What `POST /v1/attest` answers. */
export interface AttestationAnswer {
  chain: string;
  subject: string;
  /** The registrar's Ed25519 public key (hex). */
  registrar: string;
  /** Its signature over `attestationBytes(chain, subject, signKey, encKey)` (hex). */
  attestation: string;
  /** Set for a recovery enrollment: when it was issued (`recoveryBytes`, `subject.recover`'s `issued`). */
  recovery?: { issued: number };
}

/** Options of the registrar service. */
export interface RegistrarServiceOptions {
  chain: string;
  keys: KeySet;
  store: EnrollmentStore;
  logger: Logger;
  /**
   * Origins whose pages may call the service from a browser (CORS), such as
   * `https://node.example.org`; `*` (the default) allows any origin.
   */
  allowOrigins?: readonly string[];
}

/** The paths a browser may call across origins. */
const CORS_PATHS = new Set(['/v1/attest', '/v1/registrar']);

/** The registrar's HTTP API (not listening yet). */
export async function createRegistrarService(options: RegistrarServiceOptions): Promise<FastifyInstance> {
  const { chain, keys, store, logger } = options;
  const registrar = bytesToHex(keys.signing.publicKey);
  const app = await createApi({ bodyLimit: 4096, logger, rateLimit: {} });
  const allowOrigins = options.allowOrigins ?? ['*'];
  // CORS headers go on every answer of these paths, refusals included, so a page reads the code.
  app.addHook('onRequest', async (request, reply) => {
    if (!CORS_PATHS.has(request.url.split('?')[0]!)) return;
    const origin = request.headers.origin;
    if (allowOrigins.includes('*')) reply.header('access-control-allow-origin', '*');
    else if (origin !== undefined && allowOrigins.includes(origin))
      reply.header('access-control-allow-origin', origin).header('vary', 'Origin');
  });
  app.options(
    '/v1/attest',
    { schema: { tags: ['registrar'], summary: 'CORS preflight of POST /v1/attest' } },
    async (_request, reply) =>
      reply
        .header('access-control-allow-methods', 'POST')
        .header('access-control-allow-headers', 'content-type')
        .header('access-control-max-age', '600')
        .status(204)
        .send(),
  );
  app.get(
    '/v1/registrar',
    { schema: { tags: ['registrar'], summary: "The registrar's chain and public key" } },
    async () => ({
      chain,
      registrar,
    }),
  );
  app.post<{ Body: { chain: string; subject: string; signKey: string; encKey: string; code: string } }>(
    '/v1/attest',
    {
      schema: {
        tags: ['registrar'],
        summary: "Attests a person's keys for her subject id, given the one-time code of her enrollment",
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['chain', 'subject', 'signKey', 'encKey', 'code'],
          properties: {
            chain: { type: 'string', maxLength: 64 },
            subject: { type: 'string', pattern: SUBJECT_ID_PATTERN },
            signKey: { type: 'string', pattern: HASH_PATTERN },
            encKey: { type: 'string', pattern: HASH_PATTERN },
            code: { type: 'string', pattern: '^[A-Za-z0-9_-]{16,64}$' },
          },
        },
      },
    },
    async (request): Promise<AttestationAnswer> => {
      const { subject, signKey, encKey, code } = request.body;
      if (request.body.chain !== chain)
        throw new DatagrantError('REGISTRAR_WRONG_CHAIN', `this registrar attests for chain ${chain}`);
      fromHex(signKey, 'signKey', 32);
      const { recovery } = await store.redeem(subject, code, { signKey, encKey });
      if (recovery) {
        // A recovery: new keys for a subject already on the chain, attested at this moment.
        const issued = Date.now();
        const attestation = bytesToHex(
          sign(recoveryBytes(chain, subject, signKey, encKey, issued), keys.signing.secretKey),
        );
        logger.info({ subject }, 'attested a recovery');
        return { chain, subject, registrar, attestation, recovery: { issued } };
      }
      const attestation = bytesToHex(
        sign(attestationBytes(chain, subject, signKey, encKey), keys.signing.secretKey),
      );
      logger.info({ subject }, 'attested');
      return { chain, subject, registrar, attestation };
    },
  );
  return app;
}
