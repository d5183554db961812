/**
 * `npm run faults`: the fault suite. A 4-validator testnet of real node processes on 127.0.0.1
 * (fault injection on) runs the patent's business flow and plain transactions from a load
 * generator, while the suite injects faults. In the business flow the suite plays the bank, whose
 * keys stay in this process (no node holds them): register → the bank's own signed request
 * (datagrant/client, against whichever platform validator is up) → extraction from the SYNTHETIC
 * data platform → grant naming the bank and its key → the bank's own usage, then the sealed
 * bundle, verified against genesis, decrypted and assembled on the bank's side. Every read is a
 * signed call by its party: the bank (through its client) reads its requests; the subject, whose
 * keys are made here, reads her pending requests, the view she grants from and her audit trail.
 * A refusal of the right party is an anomaly, as is an unsigned read that is served. Faults:
 * SIGKILL and restart of random nodes (the primary too, and kills during start-up),
 * SIGSTOP/SIGCONT pauses, network partitions (one node, or two against two) through libp2p
 * connection gating, a failing disk, and a Byzantine validator (equivocation, double votes, bad
 * signatures, floods, replays); and for the data: an extractor's payload store destroyed, a request
 * erased while a node is down, an extractor's record.put transactions dropped on the way out,
 * payload writes lost (acknowledged, never stored) or torn. Then it heals everything and checks: every node holds the same
 * block at every height, every transaction acknowledged as committed is on every node at the
 * same place, no request, grant or usage record is missing from a subject's audit trail (read
 * with her key), an anonymous reader gets neither her trail nor the bodies of her transactions,
 * no honest node saw an equivocation or a bad signature from an honest peer, no internal error,
 * no secret or personal value in any log, the bank's secret keys in no node's files, no request
 * left waiting for data (extractors reconcile what was lost), every completed flow's records still
 * served (re-fetched by the bank), and no node holding a ciphertext of an erased request. Finally
 * it runs the block-store crash test (kill -9 during block commit, reopen, check) for
 * `--store-crash` iterations.
 *
 *   npm run faults -- --minutes 5 --seed 42 [--store-crash 200] [--keep]
 *
 * Prints the faults injected and the anomalies found; exits 1 if any anomaly was found.
 */
import '../src/common/polyfill.js';
import { spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { type ClientDocument, DatagrantClient } from '../src/client/index.js';
import { bytesToHex, toBase64url, utf8ToBytes } from '../src/common/bytes.js';
import { sha256 } from '../src/common/crypto.js';
import { type DatagrantError, isDatagrantError } from '../src/common/errors.js';
import { signCall } from '../src/common/http-signature.js';
import { generateKeySet, type KeySet } from '../src/common/keyfile.js';
import { readKeyFile } from '../src/common/keyfile-fs.js';
import { blockHash, signTx, type TxProof, txHash } from '../src/ledger/index.js';
import { LocalTestnet } from '../src/node/local-testnet.js';
import { attestSubject, buildGrantTx, buildRegisterTx, buildSubjectTx } from '../src/platform/consent.js';
import type { RequestView } from '../src/platform/views.js';
import { LevelPayloadStore } from '../src/records/level-payload-store.js';
import { BYZANTINE_ENV } from './faults/byzantine.js';
import { FAULT_INJECTION_ENV } from './faults/fault-injection.js';
import { FAULTY_NODE_ENTRY } from './faults/faulty-node.js';
import {
  startSyntheticDataPlatform,
  syntheticSensitiveValues,
  syntheticSourceConfig,
} from './synthetic-data-platform.js';

/** Options of one run. */
export interface FaultSuiteOptions {
  /** Time spent injecting faults under load (the Byzantine phase included). */
  durationMs: number;
  seed: string;
  /** Share of the duration with a Byzantine validator (default 0.3; 0 to skip). */
  byzantineShare?: number;
  /** Kill -9 iterations of the block-store crash test afterwards (0 to skip). */
  storeCrashIterations?: number;
  /**
   * A fixed list of episodes instead of random ones until the time is up (tests): those with the
   * Byzantine validator, then those with every validator honest.
   */
  schedule?: { byzantine: Episode[]; honest: Episode[] };
  /** Keep the testnet directory (it is always kept when an anomaly was found). */
  keep?: boolean;
  /** Progress output (default: nothing). */
  log?: (line: string) => void;
  /**
   * Scales how long each fault is held and the pauses between faults (default 1). Holds never go
   * below the view timeout where a fault must outlast one (pauses, partitions), so each still bites.
   */
  pace?: number;
}

/** One fault episode: inject, hold, heal. */
export type Episode =
  | 'kill'
  | 'kill-primary'
  | 'kill-during-start'
  | 'pause'
  | 'partition-one'
  | 'partition-pair'
  | 'disk-fail'
  | 'erase-while-down'
  | 'extractor-disk-lost'
  | 'payload-writes-lost'
  | 'payload-writes-torn'
  | 'record-put-dropped';

/** What a run did and found. */
export interface FaultReport {
  seed: string;
  dir: string;
  faults: Record<string, number>;
  load: Record<string, number>;
  /** Refusals and drops the honest nodes counted (evidence the injected faults arrived). */
  detected: Record<string, number>;
  checks: Record<string, number>;
  anomalies: string[];
}

const CHAIN = 'datagrant-faults';
const N = 4;
const BLOCK_INTERVAL_MS = 300;
const VIEW_TIMEOUT_MS = 1500;

/** Seeded PRNG (mulberry32 over a SHA-256 of the seed text). */
function prng(seed: string): () => number {
  const h = sha256(utf8ToBytes(seed));
  let a = ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A JSON object body, or `{}`. */
function parseBody(raw: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(raw);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * The HTTP status a failed bank call stands for: the node's answer where there was one. What the
 * bank client decides on its own side counts as the platform answered it when it still assembled
 * documents itself: a usage not committed in time as its 504 (LEDGER_TX_TIMEOUT); a request not
 * granted on this node yet, or a usage the ledger refused, as its 403 (PLATFORM_GRANT_REQUIRED).
 * Anything else (a bundle that fails verification, a record that does not open) has none: it is
 * never retried.
 */
function statusLike(err: DatagrantError): number | undefined {
  if (typeof err.meta.status === 'number') return err.meta.status;
  if (err.code === 'CLIENT_TIMEOUT') return 504;
  if (err.code === 'CLIENT_NOT_GRANTED' || err.code.startsWith('LEDGER_')) return 403;
  return undefined;
}

/**
 * The 403s a platform node that has not caught up with a granted request gives the bank (no grant
 * or no usage committed there yet, or the bank client's own CLIENT_NOT_GRANTED and ledger refusals
 * standing for them): retried at another node. Any other 403 (PLATFORM_NOT_YOURS,
 * PLATFORM_NOT_GRANTEE, API_FORBIDDEN) says the call was signed as the wrong party: an anomaly.
 */
function notGrantedHereYet(code: string): boolean {
  return (
    ['CLIENT_NOT_GRANTED', 'PLATFORM_GRANT_REQUIRED', 'PLATFORM_USAGE_REQUIRED'].includes(code) ||
    code.startsWith('LEDGER_')
  );
}

/** A registered person the suite plays: her pseudonymous id and her own keys. */
interface Person {
  id: string;
  keys: KeySet;
  /** Hash of her `subject.register`: a node that has not committed it cannot check her signature. */
  registration: string;
}

interface HttpResult {
  status: number;
  body: Record<string, unknown>;
  text: string;
  headers: Headers;
}

/** Runs the whole suite; never throws for a fault it finds (that is an anomaly in the report). */
export async function runFaultSuite(options: FaultSuiteOptions): Promise<FaultReport> {
  const log = options.log ?? (() => {});
  const random = prng(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const between = (lo: number, hi: number) => Math.floor(lo + random() * (hi - lo));
  const pace = options.pace ?? 1;
  /** A fault's hold or a pause between faults: `between(lo, hi)` scaled by the pace, at least `floor` ms. */
  const hold = (lo: number, hi: number, floor = 0) =>
    between(Math.max(floor, lo * pace), Math.max(floor, hi * pace));
  const started = Date.now();
  const stamp = () => {
    const s = Math.floor((Date.now() - started) / 1000);
    return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  };
  const say = (line: string) => log(`[${stamp()}] ${line}`);

  const faults: Record<string, number> = {};
  const load: Record<string, number> = {};
  const detected: Record<string, number> = {};
  const checks: Record<string, number> = {};
  const anomalies: string[] = [];
  const fault = (kind: string) => {
    faults[kind] = (faults[kind] ?? 0) + 1;
  };
  const bump = (key: string, n = 1) => {
    load[key] = (load[key] ?? 0) + n;
  };
  const anomaly = (text: string) => {
    anomalies.push(text);
    say(`ANOMALY: ${text}`);
  };

  const dir = await mkdtemp(join(tmpdir(), 'datagrant-faults-'));
  const source = await startSyntheticDataPlatform({ port: 0, host: '127.0.0.1' });
  // The runner reads this object at every start, so one node can be started Byzantine.
  const env: Record<string, string> = { [FAULT_INJECTION_ENV]: '1' };
  const testnet = new LocalTestnet({
    dir,
    validators: N,
    chain: CHAIN,
    blockIntervalMs: BLOCK_INTERVAL_MS,
    minBlockIntervalMs: 20,
    viewTimeoutMs: VIEW_TIMEOUT_MS,
    sources: [syntheticSourceConfig(source.url) as unknown as Record<string, unknown>],
    logLevel: 'info',
    env,
    // The suite's own entry point: the node plus the failing store and the Byzantine mode.
    entry: ['--import', 'tsx', FAULTY_NODE_ENTRY],
  });
  let stopping = false;
  const paused = new Set<number>();
  let byzantine: number | undefined;

  try {
    const net = await testnet.init();
    const keys = net.nodes.map((n) => n.key);
    const platforms = net.nodes.flatMap((n, i) => (n.roles.includes('platform') ? [i] : []));
    const council = await Promise.all(net.keys.council.map((p) => readKeyFile(p)));
    const admin = council[0]!;
    const registrar = await readKeyFile(net.keys.registrar);
    const bank = await readKeyFile(net.keys.institution);
    const secrets = new Set<string>(
      [...council, registrar, bank].flatMap((k) => [
        bytesToHex(k.signing.secretKey),
        bytesToHex(k.encryption.secretKey),
      ]),
    );
    for (const node of net.nodes) {
      const k = await readKeyFile(join(node.home, 'node-key.json'));
      secrets.add(bytesToHex(k.signing.secretKey));
      secrets.add(bytesToHex(k.encryption.secretKey));
    }
    const subjectsUsed: string[] = [];
    const institutionEncKey = net.genesis.institutions[0]!.encKey;

    say(`testnet of ${N} validators in ${dir} (seed ${options.seed}); synthetic data platform ${source.url}`);
    const byzantineMs = options.schedule
      ? options.schedule.byzantine.length > 0
        ? 1
        : 0
      : Math.floor(options.durationMs * (options.byzantineShare ?? 0.3));
    if (byzantineMs > 0) {
      byzantine = pick([0, 1, 2, 3]);
      fault('byzantine-validator');
      say(`node${byzantine} is Byzantine (equivocate, double-vote, bad-sig, flood, replay)`);
    }
    for (let i = 0; i < N; i++) {
      if (i === byzantine) env[BYZANTINE_ENV] = 'all';
      testnet.start(i);
      delete env[BYZANTINE_ENV];
    }
    await testnet.waitAllReady(180_000);
    say('all nodes ready');
    /** Each node's key, the audience its signed calls name (`self` in its status). */
    const audiences: string[] = [];

    // ---------------------------------------------------------------- HTTP

    const http = async (
      i: number,
      method: 'GET' | 'POST',
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
      timeoutMs = 5000,
    ): Promise<HttpResult> => {
      const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
      const r = await fetch(`${testnet.api(i)}${path}`, {
        method,
        headers: text === undefined ? headers : { 'content-type': 'application/json', ...headers },
        ...(text === undefined ? {} : { body: text }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const raw = await r.text();
      const parsed = parseBody(raw);
      countServerError(i, r.status, method, path, raw, parsed);
      return { status: r.status, body: parsed, text: raw, headers: r.headers };
    };
    /** Counts a 5xx answer by status and code; a 500 (an internal error) is an anomaly. */
    const countServerError = (
      i: number,
      status: number,
      method: string,
      path: string,
      raw: string,
      parsed: Record<string, unknown>,
    ) => {
      if (status < 500) return;
      const code = (parsed.error as { code?: string } | undefined)?.code ?? `HTTP_${status}`;
      bump(`http-${status}-${code}`);
      if (code === 'PLATFORM_PAYLOAD_UNAVAILABLE')
        anomaly(`node${i} could not serve a payload to ${method} ${path}: ${raw.slice(0, 200)}`);
      if (status === 500)
        anomaly(`node${i} answered 500 (${code}) to ${method} ${path}: ${raw.slice(0, 200)}`);
    };
    /** The bank client's `fetch` towards node i: every answer it gets is counted as `http` counts it. */
    const countingFetch =
      (i: number): typeof fetch =>
      async (input, init) => {
        const r = await fetch(input, init);
        if (r.status >= 500) {
          const raw = await r
            .clone()
            .text()
            .catch(() => '');
          const url = new URL(input instanceof Request ? input.url : String(input));
          countServerError(
            i,
            r.status,
            init?.method ?? 'GET',
            `${url.pathname}${url.search}`,
            raw,
            parseBody(raw),
          );
        }
        return r;
      };
    for (let i = 0; i < N; i++) audiences.push((await http(i, 'GET', '/v1/status')).body.self as string);
    /** A GET at node i signed by `person` with her own signing key. */
    const subjectRead = (i: number, person: Person, path: string, timeoutMs = 5000) =>
      http(
        i,
        'GET',
        path,
        undefined,
        signCall(
          {
            method: 'GET',
            path,
            body: '',
            caller: `subject:${person.id}`,
            audience: audiences[i]!,
            chain: CHAIN,
          },
          person.keys.signing.secretKey,
        ),
        timeoutMs,
      );
    /** Nodes seen to hold each person's registration (state only grows: asked once per node). */
    const knownAt = new Map<string, Set<number>>();
    /**
     * Whether node i has committed `person`'s registration, so it knows her key and any refusal of
     * her signed read is an anomaly; a node still catching up is not asked as her.
     */
    const knowsPerson = async (i: number, person: Person): Promise<boolean> => {
      const known = knownAt.get(person.id) ?? new Set<number>();
      knownAt.set(person.id, known);
      if (known.has(i)) return true;
      const r = await http(i, 'GET', `/v1/txs/${person.registration}`);
      if (r.body.status !== 'committed') return false;
      known.add(i);
      return true;
    };
    /**
     * What the answer to one of her signed reads means: `ok`; `retry` for what a node behind or
     * going away may answer (404: the request is not committed there yet; 429; 5xx, counted by
     * `http`); anything else, a 401 or 403 to the right party above all, is an anomaly (`fail`).
     */
    const readVerdict = (i: number, what: string, r: HttpResult): 'ok' | 'retry' | 'fail' => {
      if (r.status === 200) return 'ok';
      const code = (r.body.error as { code?: string } | undefined)?.code ?? `HTTP_${r.status}`;
      if (r.status === 404 || r.status === 429 || r.status >= 500) {
        if (r.status < 500) bump(`subject-reads-${r.status}-${code}`);
        return 'retry';
      }
      anomaly(`node${i} refused ${what}: ${r.status} ${r.text.slice(0, 200)}`);
      return 'fail';
    };
    const live = (i: number) => testnet.running(i) && !paused.has(i);
    const liveNodes = (among: readonly number[] = [0, 1, 2, 3]) => among.filter(live);
    const anyLive = (among?: readonly number[]) => {
      const nodes = liveNodes(among);
      return nodes.length > 0 ? pick(nodes) : undefined;
    };

    // ---------------------------------------------------------------- load

    /** Acknowledged transactions: hash → where a node said it committed. */
    const acked = new Map<string, { kind: string; height: number; blockHash: string | null }>();
    const flows: {
      person: Person;
      request: string;
      grant: string;
      usage: string;
      /** Digests of the request's records (their ciphertexts are on the extractor and the holders). */
      digests: string[];
      erased: boolean;
    }[] = [];
    /** Every request the bank opened, with its subject: none may be left waiting for data. */
    const opened: { person: Person; request: string }[] = [];

    /** Submits a signed tx to live nodes until one reports it committed; undefined if it never does. */
    const submitUntilCommitted = async (tx: unknown, hash: string, kind: string, deadlineMs = 90_000) => {
      const deadline = Date.now() + deadlineMs;
      while (Date.now() < deadline && !stopping) {
        const i = anyLive();
        if (i === undefined) {
          await sleep(200);
          continue;
        }
        try {
          const r = await http(i, 'POST', '/v1/txs', tx);
          if (r.status !== 202 && r.status !== 409) {
            if (r.status < 500) {
              anomaly(`node${i} refused a valid ${kind} tx: ${r.status} ${r.text.slice(0, 200)}`);
              return undefined;
            }
            await sleep(300);
            continue;
          }
          const until = Date.now() + 8000;
          while (Date.now() < until && live(i)) {
            const s = await http(i, 'GET', `/v1/txs/${hash}`);
            if (s.body.status === 'committed') {
              const where = {
                kind,
                height: s.body.height as number,
                blockHash: (s.body.blockHash as string | null) ?? null,
              };
              acked.set(hash, where);
              return where;
            }
            if (s.body.status === 'rejected') {
              bump(`tx-rejected-${(s.body.error as { code: string }).code}`);
              return undefined;
            }
            await sleep(100);
          }
        } catch {
          bump('http-unreachable');
          await sleep(200);
        }
      }
      bump('tx-gave-up');
      return undefined;
    };

    let plainCount = 0;
    const plainWorker = async (w: number) => {
      while (!stopping) {
        const inst = generateKeySet();
        const id = `f${w}-${plainCount++}-${Math.floor(random() * 1e9).toString(36)}`;
        // A council proposal naming a new institution: a transaction that always applies.
        const tx = signTx(
          {
            chain: CHAIN,
            kind: 'gov.propose',
            body: {
              change: {
                type: 'institution.add',
                institution: id,
                name: id,
                signKey: bytesToHex(inst.signing.publicKey),
                encKey: bytesToHex(inst.encryption.publicKey),
              },
              deadline: Date.now() + 3600_000,
            },
          },
          admin.signing.publicKey,
          admin.signing.secretKey,
        );
        bump('plain-txs-sent');
        if (await submitUntilCommitted(tx, txHash(tx), 'gov.propose')) bump('plain-txs-acknowledged');
        await sleep(between(20, 150));
      }
    };

    // The bank: its keys stay in this process; one client per platform validator, used in turn.
    const grantee = { institution: net.institutionId, encKey: institutionEncKey };
    const clients = new Map(
      platforms.map((i) => [
        i,
        new DatagrantClient({
          api: testnet.api(i),
          institution: net.institutionId,
          keys: bank,
          genesis: net.genesis,
          fetch: countingFetch(i),
          timeoutMs: 30_000,
        }),
      ]),
    );

    /**
     * Runs one bank operation against a live platform node, at another one after each failure,
     * until it succeeds, `verdict` (of the status and code) says `fail` (an anomaly), or
     * `deadlineMs` passes (an anomaly only if the last failure was a refusal, status < 500, not an
     * outage). Unreachable nodes are counted as `http-unreachable`, 5xx answers by
     * `countingFetch`; a failure decided on the bank's side (no HTTP status) is counted as
     * `bank-<code>`.
     */
    const bankCall = async <T>(
      what: string,
      op: (client: DatagrantClient) => Promise<T>,
      verdict: (status: number, code: string) => 'retry' | 'fail',
      deadlineMs: number,
    ): Promise<T | undefined> => {
      const deadline = Date.now() + deadlineMs;
      let last: { status: number; text: string } | undefined;
      while (Date.now() < deadline && !stopping) {
        const i = anyLive(platforms);
        if (i === undefined) {
          await sleep(300);
          continue;
        }
        try {
          return await op(clients.get(i)!);
        } catch (err) {
          if (!isDatagrantError(err)) {
            anomaly(`${what} at platform node${i} threw: ${(err as Error).stack ?? String(err)}`);
            return undefined;
          }
          if (err.code === 'CLIENT_UNREACHABLE') bump('http-unreachable');
          else {
            const status = statusLike(err);
            const text = `${err.code}: ${err.message}`.slice(0, 200);
            if (status === undefined || verdict(status, err.code) === 'fail') {
              anomaly(`platform node${i} refused ${what}: ${status ?? 'no status'} ${text}`);
              return undefined;
            }
            if (typeof err.meta.status !== 'number') bump(`bank-${err.code}`);
            last = { status, text };
          }
        }
        await sleep(500);
      }
      if (last && last.status < 500 && !stopping)
        anomaly(`${what} still refused after ${deadlineMs} ms: ${last.status} ${last.text}`);
      bump('institution-calls-gave-up');
      return undefined;
    };

    let flowCount = 0;
    const flowWorker = async (w: number) => {
      while (!stopping) {
        const subject = `s${w}-${flowCount++}-${Math.floor(random() * 1e9).toString(36)}`;
        subjectsUsed.push(subject);
        bump('flows-started');
        const person: KeySet = generateKeySet(subject);
        for (const k of [person.signing.secretKey, person.encryption.secretKey]) secrets.add(bytesToHex(k));
        const attestation = attestSubject(
          CHAIN,
          subject,
          {
            signKey: bytesToHex(person.signing.publicKey),
            encKey: bytesToHex(person.encryption.publicKey),
          },
          registrar,
        );
        const reg = buildRegisterTx(
          { chain: CHAIN, now: Date.now() },
          subject,
          person,
          bytesToHex(registrar.signing.publicKey),
          attestation,
        );
        if (!(await submitUntilCommitted(reg, txHash(reg), 'subject.register'))) continue;
        const me: Person = { id: subject, keys: person, registration: txHash(reg) };

        const openedNow = await bankCall(
          `the request about ${subject}`,
          (client) =>
            client.openRequest({
              subject,
              types: ['tax', 'social-insurance'],
              purpose: 'mortgage application (fault suite)',
              format: 'csv',
              fields: { income: 'tax.annualIncome', base: 'social-insurance.monthlyBase' },
            }),
          (status) => (status >= 500 || status === 429 ? 'retry' : 'fail'),
          90_000,
        );
        if (!openedNow) continue;
        const requestId = openedNow.id;
        opened.push({ person: me, request: requestId });
        acked.set(requestId, { kind: 'request.open', height: openedNow.height, blockHash: null });
        // She waits for it among her requests, then reads the view she grants from: both signed by her.
        let view: RequestView | undefined;
        let refused = false;
        const dataDeadline = Date.now() + 120_000;
        while (!stopping && !refused && Date.now() < dataDeadline) {
          const i = anyLive(platforms);
          if (i !== undefined) {
            try {
              if (!(await knowsPerson(i, me))) bump('subject-reads-deferred-registration-not-here-yet');
              else {
                const list = await subjectRead(i, me, `/v1/subjects/${subject}/requests?all=true`);
                const verdict = readVerdict(i, `${subject}'s signed read of her requests`, list);
                refused = verdict === 'fail';
                const listed =
                  verdict === 'ok'
                    ? (list.body.requests as RequestView[]).find((q) => q.id === requestId)
                    : undefined;
                if (listed?.status === 'waiting-for-consent' || listed?.status === 'failed') {
                  const r = await subjectRead(i, me, `/v1/requests/${requestId}`);
                  const read = readVerdict(i, `${subject}'s signed read of request ${requestId}`, r);
                  refused = read === 'fail';
                  if (read === 'ok') {
                    view = r.body as unknown as RequestView;
                    break;
                  }
                }
              }
            } catch {
              bump('http-unreachable');
            }
          }
          await sleep(300);
        }
        if (refused) continue;
        if (view?.status !== 'waiting-for-consent' || view.records.length < 2) {
          if (view?.status === 'failed' || (view?.failures.length ?? 0) > 0) bump('flows-extraction-failed');
          else if (!stopping) {
            bump('flows-stalled-at-extraction');
            anomaly(`the flow of ${subject} stalled: request ${requestId} has no records after 120 s`);
          }
          continue;
        }
        const grant = buildGrantTx({ chain: CHAIN, now: Date.now() }, view, person, grantee, {
          expiresInMs: 3_600_000,
          uses: 5,
          retainDays: 1,
        });
        const grantHash = txHash(grant);
        if (!(await submitUntilCommitted(grant, grantHash, 'grant'))) continue;

        // The bank records its use and takes the sealed bundle; a lagging node may not have the
        // request or the grant yet, a node cut off may not commit the usage in time: ask another.
        const doc: ClientDocument | undefined = await bankCall(
          `the document of ${subject}`,
          (client) => client.document(requestId),
          (status, code) =>
            status >= 500 || status === 429 || status === 404 || (status === 403 && notGrantedHereYet(code))
              ? 'retry'
              : 'fail',
          90_000,
        );
        if (!doc) continue;
        const [header, row] = doc.body.trim().split('\r\n');
        if (header !== 'income,base' || !row || doc.records.length !== 2)
          anomaly(`document of ${subject} is not the CSV asked for: ${doc.body.slice(0, 100)}`);
        const proofs = doc.bundle.sealed.proofs as Record<'request' | 'usage', TxProof>;
        acked.set(requestId, {
          kind: 'request.open',
          height: openedNow.height,
          blockHash: blockHash(proofs.request.header),
        });
        acked.set(doc.usageTx, {
          kind: 'usage',
          height: doc.usageHeight,
          blockHash: blockHash(proofs.usage.header),
        });
        flows.push({
          person: me,
          request: requestId,
          grant: grantHash,
          usage: doc.usageTx,
          digests: view.records.map((r) => r.digest),
          erased: false,
        });
        bump('flows-completed');
      }
    };

    // ---------------------------------------------------------------- drop counters

    /** Last scrape of each node's drop counters (reset when a process restarts). */
    const lastScrape = new Map<number, Record<string, number>>();
    /** Drops seen by honest nodes while no validator was Byzantine. */
    const honestDrops: Record<string, number> = {};
    let phase: 'byzantine' | 'honest' | 'settling' = byzantineMs > 0 ? 'byzantine' : 'settling';
    const scrape = async () => {
      await Promise.all(
        [0, 1, 2, 3].filter(live).map(async (i) => {
          try {
            const r = await fetch(`${testnet.api(i)}/metrics`, { signal: AbortSignal.timeout(3000) });
            const text = await r.text();
            const now: Record<string, number> = {};
            for (const m of text.matchAll(
              /^datagrant_(consensus|p2p)_messages_dropped_total\{reason="([^"]+)"\} (\d+)/gm,
            ))
              now[`${m[1]}:${m[2]}`] = Number(m[3]);
            const before = lastScrape.get(i) ?? {};
            lastScrape.set(i, now);
            if (i === byzantine) return;
            for (const [key, value] of Object.entries(now)) {
              const prev = before[key] ?? 0;
              const delta = value >= prev ? value - prev : value;
              if (delta === 0) continue;
              detected[key] = (detected[key] ?? 0) + delta;
              if (phase === 'honest') {
                honestDrops[key] = (honestDrops[key] ?? 0) + delta;
                detected[`with all honest: ${key}`] = (detected[`with all honest: ${key}`] ?? 0) + delta;
              }
            }
          } catch {
            // Paused or restarting.
          }
        }),
      );
    };
    const scraper = setInterval(() => void scrape(), 2000);

    // ---------------------------------------------------------------- faults

    const admin_ = async (i: number, command: Record<string, unknown>): Promise<Record<string, unknown>> => {
      try {
        const r = await http(i, 'POST', '/v1/admin/faults', command);
        if (r.status !== 200)
          anomaly(`fault route of node${i} answered ${r.status}: ${r.text.slice(0, 200)}`);
        return r.body;
      } catch (err) {
        say(`fault command to node${i} failed: ${(err as Error).message}`);
        return {};
      }
    };
    /**
     * Arms a payload or record.put fault on node i for a while under load, then disarms it and
     * counts how many writes or transactions it really hit (`detected`).
     */
    const armForAWhile = async (
      i: number,
      kind: Episode,
      arm: Record<string, unknown>,
      disarm: Record<string, unknown>,
      counter: string,
    ) => {
      say(`${kind} on node${i}`);
      fault(kind);
      const before = await admin_(i, { status: true });
      const base = typeof before[counter] === 'number' ? (before[counter] as number) : 0;
      await admin_(i, arm);
      // Held until it has hit something (the flows keep writing), for at most 40 s.
      const until = Date.now() + 40_000;
      await sleep(hold(3000, 6000));
      while (Date.now() < until && live(i)) {
        const now = await admin_(i, { status: true });
        if (typeof now[counter] === 'number' && (now[counter] as number) > base) break;
        await sleep(1000);
      }
      const after = await admin_(i, disarm);
      const n = typeof after[counter] === 'number' ? (after[counter] as number) - base : undefined;
      if (n !== undefined) detected[`injected:${kind}`] = (detected[`injected:${kind}`] ?? 0) + n;
      say(`${kind} on node${i} over (${String(n)} so far)`);
    };
    const healAll = async () => {
      await Promise.all([0, 1, 2, 3].filter(live).map((i) => admin_(i, { heal: true })));
    };
    const startNode = async (i: number, asByzantine = false) => {
      for (let attempt = 1; attempt <= 3; attempt++) {
        if (asByzantine) env[BYZANTINE_ENV] = 'all';
        testnet.start(i);
        delete env[BYZANTINE_ENV];
        try {
          await testnet.waitReady(i, 120_000);
          return;
        } catch (err) {
          const tail = (await readFile(join(net.nodes[i]!.home, 'node.log'), 'utf8').catch(() => ''))
            .split('\n')
            .slice(-5)
            .join('\n');
          if (attempt === 3) anomaly(`node${i} did not come back: ${(err as Error).message}\n${tail}`);
          await testnet.signal(i, 'SIGKILL');
        }
      }
    };
    /** Brings every node back: resumes paused ones, restarts dead ones, heals partitions. */
    const ensureAllUp = async () => {
      for (const i of [...paused]) {
        await testnet.signal(i, 'SIGCONT');
        paused.delete(i);
      }
      await Promise.all(
        [0, 1, 2, 3].filter((i) => !testnet.running(i)).map((i) => startNode(i, i === byzantine)),
      );
      await healAll();
    };
    const primaryIndex = async (): Promise<number> => {
      const i = anyLive();
      if (i === undefined) return pick([0, 1, 2, 3]);
      try {
        const s = await http(i, 'GET', '/v1/status');
        const k = keys.indexOf(s.body.primary as string);
        return k >= 0 ? k : pick([0, 1, 2, 3]);
      } catch {
        return pick([0, 1, 2, 3]);
      }
    };
    const kill = async (i: number, label: string) => {
      say(`SIGKILL node${i}${label}`);
      fault('sigkill');
      await testnet.signal(i, 'SIGKILL');
    };

    const episode = async (kind: Episode, candidates: number[]) => {
      switch (kind) {
        case 'kill':
        case 'kill-primary': {
          const i = kind === 'kill-primary' ? await primaryIndex() : pick(candidates);
          if (kind === 'kill-primary') fault('primary-killed');
          await kill(i, kind === 'kill-primary' ? ' (the primary)' : '');
          await sleep(hold(500, 5000));
          await startNode(i, i === byzantine);
          say(`node${i} restarted`);
          return;
        }
        case 'kill-during-start': {
          const i = pick(candidates);
          await kill(i, '');
          for (let k = 0; k < 2; k++) {
            if (i === byzantine) env[BYZANTINE_ENV] = 'all';
            testnet.start(i);
            delete env[BYZANTINE_ENV];
            await sleep(between(300, 3000));
            await kill(i, ' again, while it starts and recovers');
          }
          await startNode(i, i === byzantine);
          say(`node${i} restarted`);
          return;
        }
        case 'pause': {
          const i = pick(candidates);
          say(`SIGSTOP node${i}`);
          fault('sigstop');
          await testnet.signal(i, 'SIGSTOP');
          paused.add(i);
          await sleep(hold(1500, 6000, VIEW_TIMEOUT_MS));
          await testnet.signal(i, 'SIGCONT');
          paused.delete(i);
          say(`SIGCONT node${i}`);
          return;
        }
        case 'partition-one': {
          const i = pick(candidates);
          say(`partition: node${i} cut off from the others`);
          fault('partition-one');
          await Promise.all(
            [0, 1, 2, 3].map((j) =>
              admin_(j, { partition: j === i ? keys.filter((_, k) => k !== i) : [keys[i]] }),
            ),
          );
          await sleep(hold(2000, 8000, VIEW_TIMEOUT_MS));
          await healAll();
          say('partition healed');
          return;
        }
        case 'partition-pair': {
          const order = [0, 1, 2, 3].sort(() => random() - 0.5);
          const side = new Set(order.slice(0, 2));
          say(`partition: nodes ${[...side].join(',')} | ${order.slice(2).join(',')} (no side has a quorum)`);
          fault('partition-pair');
          await Promise.all(
            [0, 1, 2, 3].map((j) =>
              admin_(j, { partition: keys.filter((_, k) => side.has(k) !== side.has(j)) }),
            ),
          );
          await sleep(hold(2000, 6000, VIEW_TIMEOUT_MS));
          await healAll();
          say('partition healed');
          return;
        }
        case 'disk-fail': {
          const i = pick(candidates);
          say(`disk failure on node${i}`);
          fault('disk-fail');
          const before = await http(i, 'GET', '/v1/status').catch(() => undefined);
          const h0 = (before?.body.height as number | undefined) ?? 0;
          await admin_(i, { diskFail: true });
          // It must leave consensus at once (commit nothing more) and exit; a platform node may first
          // let its in-flight API calls run out (they wait for commits that will not come).
          const deadline = Date.now() + 60_000;
          let highest = h0;
          while (testnet.running(i) && Date.now() < deadline) {
            const s = await http(i, 'GET', '/v1/status', undefined, {}, 2000).catch(() => undefined);
            highest = Math.max(highest, (s?.body.height as number | undefined) ?? 0);
            await sleep(300);
          }
          if (highest > h0 + 1)
            anomaly(`node${i} kept committing after its disk failed (${h0} → ${highest})`);
          if (testnet.running(i)) {
            anomaly(`node${i} still runs 60 s after its disk failed`);
            await testnet.signal(i, 'SIGKILL');
          } else say(`node${i} left consensus and exited after the write failure`);
          await sleep(hold(500, 2000));
          await startNode(i, i === byzantine);
          say(`node${i} restarted on a working disk`);
          return;
        }
        case 'erase-while-down':
          await eraseWhileDown(pick(candidates));
          return;
        case 'extractor-disk-lost':
          await extractorDiskLost(pick(extractors.length > 0 ? extractors : candidates));
          return;
        case 'payload-writes-lost':
        case 'payload-writes-torn': {
          const fault = kind === 'payload-writes-lost' ? 'lose' : 'tear';
          await armForAWhile(
            pick(candidates),
            kind,
            // Fewer than the extractor's attempts at one write: a torn write is retried, not failed.
            { payloadWrites: { fault, count: 2 } },
            { payloadWrites: { fault, count: 0 } },
            'payloadWritesInjected',
          );
          return;
        }
        case 'record-put-dropped':
          await armForAWhile(
            pick(extractors.length > 0 ? extractors : candidates),
            kind,
            { dropRecordPuts: 2 },
            { dropRecordPuts: 0 },
            'recordPutsDropped',
          );
          return;
      }
    };
    const extractors = net.nodes.flatMap((n, i) => (n.roles.includes('extractor') ? [i] : []));
    const payloadDir = (i: number) => join(net.nodes[i]!.home, 'data', 'payloads');
    /** The subject erases a completed flow's request while `i` is down; `i` must erase it on its next start. */
    const eraseWhileDown = async (i: number) => {
      const waitUntil = Date.now() + 60_000;
      while (!flows.some((f) => !f.erased) && Date.now() < waitUntil) await sleep(500);
      const flow = flows.find((f) => !f.erased);
      if (flow === undefined) {
        say('erase-while-down: no completed flow to erase yet');
        return;
      }
      await kill(i, ' (to erase a request while it is down)');
      fault('erase-while-down');
      const erase = buildSubjectTx(
        { chain: CHAIN, now: Date.now() },
        'erase',
        { request: flow.request },
        flow.person.keys,
      );
      if (await submitUntilCommitted(erase, txHash(erase), 'erase')) {
        flow.erased = true;
        say(`${flow.person.id} erased request ${flow.request.slice(0, 12)} while node${i} was down`);
      }
      await sleep(hold(500, 2000));
      await startNode(i, i === byzantine);
      say(`node${i} restarted`);
    };
    /** An extractor loses its payload store for good: the records it made must still be served. */
    const extractorDiskLost = async (i: number) => {
      await kill(i, ' (its payload store is then destroyed)');
      fault('extractor-disk-lost');
      await rm(payloadDir(i), { recursive: true, force: true });
      await sleep(hold(500, 2000));
      await startNode(i, i === byzantine);
      say(`node${i} restarted with an empty payload store`);
    };
    const pickEpisode = (weights: [Episode, number][]): Episode => {
      const total = weights.reduce((s, [, w]) => s + w, 0);
      let x = random() * total;
      for (const [kind, w] of weights) {
        x -= w;
        if (x <= 0) return kind;
      }
      return weights[0]![0];
    };

    // ---------------------------------------------------------------- run

    const faultStart = Date.now();
    const workers = [flowWorker(0), flowWorker(1), plainWorker(0), plainWorker(1)];
    await sleep(2000);
    const faultEnd = faultStart + options.durationMs;
    /** Runs the schedule's episodes, or random ones until `until`. */
    const runEpisodes = async (
      fixed: Episode[] | undefined,
      until: number,
      weights: [Episode, number][],
      candidates: () => number[],
    ) => {
      const queue = fixed ? [...fixed] : undefined;
      // A random run starts with every kind once, in random order, so each fault fires at least once.
      const first = fixed ? [] : weights.map(([kind]) => kind).sort(() => random() - 0.5);
      while (queue ? queue.length > 0 : Date.now() < until || first.length > 0) {
        await sleep(hold(1000, 2500));
        await ensureAllUp();
        await episode(queue ? queue.shift()! : (first.shift() ?? pickEpisode(weights)), candidates());
      }
    };

    if (byzantine !== undefined) {
      const b = byzantine;
      const honest = [0, 1, 2, 3].filter((i) => i !== b);
      // With one validator lying, faults go to it (and sometimes to one honest node: safety must hold).
      await runEpisodes(
        options.schedule?.byzantine,
        faultStart + byzantineMs,
        [
          ['kill', 3],
          ['pause', 2],
          ['partition-one', 2],
          ['kill-during-start', 1],
        ],
        () => (random() < 0.2 ? honest : [b]),
      );
      await ensureAllUp();
      if (options.schedule) {
        // A fixed schedule's episodes may end before its lies were seen (a slow start, a short pace):
        // the phase goes on until the honest nodes have counted every kind, for at most 60 s more.
        const lies = ['consensus:equivocation', 'consensus:bad-signature', 'consensus:malformed'];
        const by = Date.now() + 60_000;
        while (lies.some((k) => !((detected[k] ?? 0) > 0)) && Date.now() < by) await sleep(500);
      }
      await scrape();
      say(`node${b} restarts honest`);
      fault('sigkill');
      await testnet.signal(b, 'SIGKILL');
      byzantine = undefined;
      await startNode(b);
      // Let its old lies drain out of the gossip before holding honest nodes to zero.
      phase = 'settling';
      await sleep(3000);
    }
    await scrape();
    phase = 'honest';
    await runEpisodes(
      options.schedule?.honest,
      faultEnd,
      [
        ['kill', 4],
        ['kill-primary', 3],
        ['kill-during-start', 1],
        ['pause', 3],
        ['partition-one', 3],
        ['partition-pair', 2],
        ['disk-fail', 2],
        ['erase-while-down', 1],
        ['extractor-disk-lost', 1],
        ['payload-writes-lost', 1],
        ['payload-writes-torn', 1],
        ['record-put-dropped', 1],
      ],
      () => [0, 1, 2, 3],
    );

    // ---------------------------------------------------------------- heal and check

    say('faults over: healing everything and letting the load finish');
    await ensureAllUp();
    stopping = true;
    await Promise.all(workers);
    await scrape();
    clearInterval(scraper);

    for (const [reason, n] of Object.entries(honestDrops)) {
      if (['consensus:equivocation', 'consensus:bad-signature'].includes(reason))
        anomaly(`honest nodes counted ${n} ${reason} drops while every validator was honest`);
    }

    const final = signTx(
      {
        chain: CHAIN,
        kind: 'gov.propose',
        body: {
          change: {
            type: 'institution.add',
            institution: 'final-check',
            name: 'final check',
            signKey: bytesToHex(generateKeySet().signing.publicKey),
            encKey: bytesToHex(generateKeySet().encryption.publicKey),
          },
          deadline: Date.now() + 3600_000,
        },
      },
      admin.signing.publicKey,
      admin.signing.secretKey,
    );
    const finalHash = txHash(final);
    stopping = false;
    const committed = await submitUntilCommitted(final, finalHash, 'gov.propose', 120_000);
    stopping = true;
    if (!committed) anomaly('the healed network did not commit a transaction within 120 s');
    const statusOf = async (i: number) => (await http(i, 'GET', '/v1/status')).body.height as number;
    const maxAcked = Math.max(0, ...[...acked.values()].map((a) => a.height));
    const convergeDeadline = Date.now() + 120_000;
    let heights: number[] = [];
    for (;;) {
      heights = await Promise.all([0, 1, 2, 3].map((i) => statusOf(i).catch(() => 0)));
      if (Math.min(...heights) >= Math.max(maxAcked, committed?.height ?? 0)) break;
      if (Date.now() > convergeDeadline) {
        anomaly(`nodes did not converge: heights ${heights.join(', ')}, highest acknowledged ${maxAcked}`);
        break;
      }
      await sleep(500);
    }
    say(`heights ${heights.join(', ')}; comparing every block`);

    // Every height, every node: the same block.
    const top = Math.min(...heights);
    const hashes: Map<number, string>[] = [];
    for (let i = 0; i < N; i++) {
      const map = new Map<number, string>();
      let before = top + 1;
      while (before > 1) {
        const r = await http(i, 'GET', `/v1/blocks?before=${before}&limit=100`, undefined, {}, 30_000);
        const blocks = r.body.blocks as { hash: string; header: { height: number } }[];
        if (!blocks || blocks.length === 0) break;
        for (const b of blocks) map.set(b.header.height, b.hash);
        before = blocks.at(-1)!.header.height;
      }
      hashes.push(map);
    }
    let mismatched = 0;
    for (let h = 1; h <= top; h++) {
      const set = new Set(hashes.map((m) => m.get(h)));
      if (set.size !== 1 || set.has(undefined)) {
        mismatched++;
        if (mismatched <= 5)
          anomaly(
            `height ${h}: nodes hold different blocks (${hashes.map((m) => m.get(h)?.slice(0, 12)).join(', ')})`,
          );
      }
    }
    if (mismatched > 5) anomaly(`${mismatched} heights in all differ between nodes`);
    checks['heights-compared'] = top;
    checks['block-hashes-compared'] = top * N;

    // Every acknowledged transaction on every node, in the same block.
    let missing = 0;
    const entries = [...acked.entries()];
    for (let k = 0; k < entries.length; k += 32) {
      await Promise.all(
        entries.slice(k, k + 32).map(async ([hash, where]) => {
          const seen = new Set<string>();
          for (let i = 0; i < N; i++) {
            const r = await http(i, 'GET', `/v1/txs/${hash}`, undefined, {}, 30_000).catch(() => undefined);
            if (r?.body.status !== 'committed') {
              missing++;
              if (missing <= 10) anomaly(`acknowledged ${where.kind} ${hash} is missing on node${i}`);
              continue;
            }
            seen.add(`${r.body.height}:${r.body.blockHash}`);
            if (where.blockHash && r.body.blockHash !== where.blockHash)
              anomaly(`acknowledged ${where.kind} ${hash} moved: block ${r.body.blockHash} on node${i}`);
          }
          if (seen.size > 1) anomaly(`tx ${hash} sits in different blocks on different nodes`);
        }),
      );
    }
    if (missing > 10) anomaly(`${missing} acknowledged transaction copies missing in all`);
    checks['acknowledged-txs'] = acked.size;
    checks['tx-copies-checked'] = acked.size * N;

    // Every completed flow: grant and usage on the subject's audit trail, on every platform node,
    // read with her key; and nothing of hers for an anonymous reader (checked on the first few).
    for (const [k, flow] of flows.entries()) {
      const subject = flow.person.id;
      for (const i of platforms) {
        const r = await subjectRead(i, flow.person, `/v1/subjects/${subject}/audit`, 30_000);
        if (r.status !== 200) {
          anomaly(
            `node${i} refused ${subject}'s signed read of her audit trail: ${r.status} ${r.text.slice(0, 200)}`,
          );
          continue;
        }
        const listed = new Set(((r.body.entries as { hash: string }[]) ?? []).map((e) => e.hash));
        for (const [what, hash] of [
          ['request', flow.request],
          ['grant', flow.grant],
          ['usage', flow.usage],
        ] as const) {
          if (!listed.has(hash))
            anomaly(`${what} ${hash} of ${subject} is missing from node${i}'s audit trail`);
        }
      }
      if (k >= 3) continue;
      const i = platforms[k % platforms.length]!;
      const anonymous = [
        await http(i, 'GET', `/v1/subjects/${subject}/audit`),
        await http(i, 'GET', `/v1/subjects/${subject}/requests`),
        await http(i, 'GET', `/v1/requests/${flow.request}`),
      ];
      for (const r of anonymous) {
        if (r.status !== 401)
          anomaly(`node${i} answered an unsigned read of ${subject}'s data with ${r.status}`);
        else checks['unsigned-reads-refused'] = (checks['unsigned-reads-refused'] ?? 0) + 1;
      }
      const grant = await http(i, 'GET', `/v1/txs/${flow.grant}`);
      const tx = grant.body.tx as { redacted?: boolean; body?: unknown } | undefined;
      if (tx?.redacted !== true || tx.body !== undefined)
        anomaly(`node${i} showed ${subject}'s grant to an anonymous reader: ${grant.text.slice(0, 200)}`);
      else checks['subject-txs-redacted'] = (checks['subject-txs-redacted'] ?? 0) + 1;
    }
    checks['flows-audited'] = flows.length;

    // No request stuck: every request the bank opened has left waiting-for-data (records or
    // failures committed, or it was decided), once the extractors have had time to reconcile.
    const stuckDeadline = Date.now() + 90_000;
    let stuck = opened;
    while (stuck.length > 0) {
      const still: typeof opened = [];
      for (const o of stuck) {
        const i = pick(platforms);
        const r = await subjectRead(i, o.person, `/v1/requests/${o.request}`, 30_000).catch(() => undefined);
        if (r?.status !== 200 || (r.body as unknown as RequestView).status === 'waiting-for-data')
          still.push(o);
      }
      stuck = still;
      if (stuck.length === 0 || Date.now() > stuckDeadline) break;
      await sleep(2000);
    }
    for (const o of stuck.slice(0, 10))
      anomaly(`request ${o.request} of ${o.person.id} is stuck waiting for data`);
    checks['requests-checked-not-stuck'] = opened.length - stuck.length;

    // Every record of a completed, unerased flow is still served (whatever disk was lost): the
    // bank re-fetches the bundle of its committed usage, which spends nothing.
    stopping = false; // the load has stopped; these calls must still run
    for (const flow of flows.filter((f) => !f.erased).slice(0, 20)) {
      const again = await bankCall(
        `the bundle of ${flow.person.id} again`,
        (client) => client.document(flow.request, { usage: flow.usage }),
        (status) => (status >= 500 || status === 429 || status === 404 ? 'retry' : 'fail'),
        60_000,
      );
      if (again === undefined) anomaly(`the records of ${flow.request} are no longer available`);
      else checks['bundles-refetched'] = (checks['bundles-refetched'] ?? 0) + 1;
    }
    stopping = true;

    await testnet.stopAll();

    // Erasure is guaranteed: no node holds a ciphertext of an erased request, even one that was
    // down when the subject erased it.
    // And every record not erased is held by some node (a validator's payload store).
    const erasedDigests = flows.filter((f) => f.erased).flatMap((f) => f.digests);
    const keptDigests = flows.filter((f) => !f.erased).flatMap((f) => f.digests);
    const holders = new Map<string, number>(keptDigests.map((d) => [d, 0]));
    for (let i = 0; i < N; i++) {
      const store = new LevelPayloadStore({ location: payloadDir(i) });
      try {
        await store.open();
        for (const digest of erasedDigests) {
          if ((await store.get(digest)) !== undefined)
            anomaly(`node${i} still holds the erased payload ${digest.slice(0, 12)}`);
          else checks['erased-payloads-gone'] = (checks['erased-payloads-gone'] ?? 0) + 1;
        }
        for (const digest of keptDigests)
          if ((await store.get(digest)) !== undefined) holders.set(digest, holders.get(digest)! + 1);
      } finally {
        await store.close().catch(() => {});
      }
    }
    for (const [digest, n] of holders) {
      if (n === 0) anomaly(`no node holds the ciphertext of record ${digest.slice(0, 12)}`);
      else checks['records-held'] = (checks['records-held'] ?? 0) + 1;
    }

    // The bank's keys stayed with the bank: no file any node wrote holds one of its secret keys.
    const bankSecrets = [bank.signing.secretKey, bank.encryption.secretKey].flatMap((k) => [
      bytesToHex(k),
      toBase64url(k),
      Buffer.from(k).toString('latin1'),
    ]);
    for (const node of net.nodes) {
      for (const entry of await readdir(node.home, { withFileTypes: true, recursive: true })) {
        if (!entry.isFile()) continue;
        const file = join(entry.parentPath, entry.name);
        const text = await readFile(file, 'latin1').catch(() => '');
        if (bankSecrets.some((v) => text.includes(v)))
          anomaly(`${node.name} holds a secret key of the bank in ${file.slice(node.home.length + 1)}`);
        checks['node-files-scanned-for-bank-key'] = (checks['node-files-scanned-for-bank-key'] ?? 0) + 1;
      }
    }

    // No secret and no personal value in any log; no internal error.
    const personal = new Map<string, string>();
    for (const s of subjectsUsed) for (const v of syntheticSensitiveValues(s)) personal.set(v, s);
    const errors: Record<string, number> = {};
    for (const node of net.nodes) {
      const text = await readFile(join(node.home, 'node.log'), 'utf8').catch(() => '');
      for (const value of secrets)
        if (text.includes(value)) anomaly(`${node.name}'s log contains a secret key`);
      for (const [value, subject] of personal)
        if (containsToken(text, value))
          anomaly(`${node.name}'s log contains a personal value of ${subject}: ${JSON.stringify(value)}`);
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        let entry: { level?: number; msg?: string; err?: { code?: string } };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          const key = `non-JSON output: ${line.slice(0, 80)}`;
          if (!line.startsWith('{"event"')) errors[key] = (errors[key] ?? 0) + 1;
          continue;
        }
        if ((entry.level ?? 0) >= 50) {
          const key = `${entry.msg ?? '?'}${entry.err?.code ? ` (${entry.err.code})` : ''}`;
          errors[key] = (errors[key] ?? 0) + 1;
        }
      }
      checks['log-bytes-scanned'] = (checks['log-bytes-scanned'] ?? 0) + text.length;
    }
    checks['sensitive-values-searched'] = secrets.size + personal.size;
    // A failed disk, and answers a node cannot give while its peers are down or cut off.
    const expectedErrors = new Set([
      'cannot persist consensus state; leaving consensus (STORE_WRITE_FAILED)',
      // The same failed disk met first by a pipelined block write rather than a signing-state save.
      'a committed block was not written; leaving consensus (LEDGER_STORE_WRITE_FAILED)',
      'request failed (PLATFORM_PAYLOAD_UNAVAILABLE)',
      'request failed (LEDGER_TX_TIMEOUT)',
    ]);
    for (const [msg, n] of Object.entries(errors)) {
      if (expectedErrors.has(msg)) detected[`log:${msg}`] = n;
      else anomaly(`error logged ${n}×: ${msg}`);
    }

    if ((options.storeCrashIterations ?? 0) > 0) {
      say(`block-store crash test: ${options.storeCrashIterations} kill -9 during block commit`);
      const result = await runStoreCrash(options.storeCrashIterations!, options.seed, say);
      faults['store-crash-kill'] = result.kills;
      checks['store-reopened-consistent'] = result.ok ? result.kills : 0;
      if (!result.ok) anomaly(`block-store crash test failed:\n${result.tail}`);
    }
  } catch (err) {
    anomaly(`suite error: ${(err as Error).stack ?? String(err)}`);
  } finally {
    stopping = true;
    await testnet.stopAll().catch(() => {});
    await source.close().catch(() => {});
    if (!options.keep && anomalies.length === 0)
      await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
  return { seed: options.seed, dir, faults, load, detected, checks, anomalies };
}

/**
 * Whether `value` occurs in `text`. A value made only of ASCII letters and digits (an amount, an
 * account number) must stand as a whole token, so 109256 does not match inside a timestamp such as
 * 1795553109256; any other value (a name, an address) matches anywhere.
 */
export function containsToken(text: string, value: string): boolean {
  if (!/^[0-9A-Za-z]+$/.test(value)) return text.includes(value);
  for (let i = text.indexOf(value); i >= 0; i = text.indexOf(value, i + 1)) {
    const before = text[i - 1] ?? ' ';
    const after = text[i + value.length] ?? ' ';
    if (!/[0-9A-Za-z]/.test(before) && !/[0-9A-Za-z]/.test(after)) return true;
  }
  return false;
}

const STORE_CRASH_TEST = fileURLToPath(new URL('../test/e2e/store-crash.test.ts', import.meta.url));

/** Runs the block-store crash test (kill -9 of a committing writer, reopen, full check) `iterations` times. */
async function runStoreCrash(
  iterations: number,
  seed: string,
  say: (line: string) => void,
): Promise<{ ok: boolean; kills: number; tail: string }> {
  const numericSeed = Math.floor(prng(`${seed}/store-crash`)() * 2 ** 31);
  const child = spawn(process.execPath, ['--import', 'tsx', STORE_CRASH_TEST], {
    env: {
      ...process.env,
      STORE_CRASH_ITERATIONS: String(iterations),
      STORE_CRASH_SEED: String(numericSeed),
      // Run directly (not under the tap runner), the test would get tap's 30 s default timeout.
      TAP_TIMEOUT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let reported = 0;
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    const done = [...out.matchAll(/iteration (\d+): store consistent/g)].length;
    if (done >= reported + 25) {
      reported = done;
      say(`block-store crash test: ${done}/${iterations} kills, store consistent after each`);
    }
  });
  child.stderr.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const code = await new Promise<number | null>((done) => child.on('exit', (c) => done(c)));
  const failed = /^\s*not ok /m.test(out) || code !== 0;
  const passes = [...out.matchAll(/^\s*ok \d+/gm)].length;
  say(`block-store crash test: exit ${code}, ${passes} passing assertions`);
  return { ok: !failed, kills: iterations, tail: out.split('\n').slice(-30).join('\n') };
}

/** Prints a report. */
export function formatReport(report: FaultReport, minutes: number): string {
  const lines = [
    '',
    `fault suite: ${minutes} min, seed ${report.seed}`,
    'faults injected:',
    ...Object.entries(report.faults).map(([k, v]) => `  ${k.padEnd(28)} ${v}`),
    'load:',
    ...Object.entries(report.load)
      .sort()
      .map(([k, v]) => `  ${k.padEnd(28)} ${v}`),
    'refusals and drops counted by the honest nodes:',
    ...Object.entries(report.detected)
      .sort()
      .map(([k, v]) => `  ${k.padEnd(28)} ${v}`),
    'checks:',
    ...Object.entries(report.checks).map(([k, v]) => `  ${k.padEnd(28)} ${v}`),
    `anomalies: ${report.anomalies.length}`,
    ...report.anomalies.map((a) => `  - ${a}`),
  ];
  if (report.anomalies.length > 0) lines.push(`testnet kept for inspection: ${report.dir}`);
  return lines.join('\n');
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '5' },
      seed: { type: 'string', default: String(Date.now()) },
      'store-crash': { type: 'string', default: '200' },
      'byzantine-share': { type: 'string', default: '0.3' },
      keep: { type: 'boolean', default: false },
    },
  });
  const minutes = Number(values.minutes);
  runFaultSuite({
    durationMs: Math.round(minutes * 60_000),
    seed: values.seed!,
    storeCrashIterations: Number(values['store-crash']),
    byzantineShare: Number(values['byzantine-share']),
    keep: values.keep!,
    log: (line) => process.stdout.write(`${line}\n`),
  }).then(
    (report) => {
      process.stdout.write(`${formatReport(report, minutes)}\n`);
      process.exit(report.anomalies.length === 0 ? 0 : 1);
    },
    (err: unknown) => {
      process.stderr.write(`fault suite failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
