/**
 * Part 3, complete business flows on the 4-validator testnet with the synthetic public data
 * platform as the data source: for each of many subjects in parallel (closed loop, C flows in
 * flight), register → the bank's own signed request.open (two data types), relayed by a platform
 * node → extraction by the extractor nodes → the subject's grant naming the bank and re-wrapping
 * both record keys to its key → the document: the bank's own usage committed, the sealed bundle
 * fetched with a signed call, verified against genesis, decrypted and assembled on the bank's
 * side (this process, as `datagrant/client` does it). Every read is signed by its party: the
 * subject reads the request view she grants from, the bank reads the blocks it follows its
 * requests' extraction in (their record bodies are shown only to the parties). Reports complete
 * flows per second, p50/p99 per step, the subject's signed view read, and the bank's own verify +
 * decrypt + assemble time; then what a signed read costs against an anonymous one (reads.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { documentOf, type Grantee, openBundle, verifyBundle } from '../../src/client/index.js';
import { verifyFast } from '../../src/common/crypto-node.js';
import { institutionCaller } from '../../src/common/http-signature.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { txHash } from '../../src/ledger/index.js';
import type { CryptoCeiling } from './crypto.js';
import {
  assertFastClientAgrees,
  type BenchSubject,
  benchSubject,
  type CallTarget,
  grantTx,
  type RequestRecords,
  registerTx,
  requestOpenTx,
  signedCallHeaders,
  subjectCaller,
  usageTx,
} from './fast-client.js';
import { CommitWatcher, httpCall, jsonCall } from './http-client.js';
import { benchKey } from './keys.js';
import { measureReads, type ReadResult, type ReadSubject } from './reads.js';
import { CpuMeter, latencySummary, note, printTable, round, sleep, writeResult } from './report.js';
import type { BenchTestnet } from './testnet.js';

/**
 * Signature checks one complete flow costs across 4 validators (see BENCHMARKS.md): six
 * transactions on 4 validators, the signed bundle call, the subject's signed view read and the
 * attestation (the bank's signed block reads are one per block, shared by every flow in it). The
 * bank's own check of the bundle's proofs runs in this process and is reported apart
 * (`documentPartsMs.bankOpen`).
 */
export const SIGNATURE_CHECKS_PER_FLOW = 31;
/** A flow gives up waiting for its extraction after this long (a record never seen is a failure). */
const EXTRACTION_TIMEOUT_MS = 60_000;
const TYPES = ['tax', 'social-insurance'] as const;
/** Steps of a flow; `document` is the bank's usage committed + the bundle fetched + verified and opened. */
const STEPS = ['register', 'request', 'extraction', 'grant', 'document', 'total'] as const;
type Step = (typeof STEPS)[number];
/**
 * What `document` is made of: the bank's usage until committed, the signed bundle call, and the
 * bank's own verify (every proof against genesis) + decrypt + assemble, CPU of this process.
 */
const DOCUMENT_PARTS = ['usage', 'bundle', 'bankOpen'] as const;
type DocumentPart = (typeof DOCUMENT_PARTS)[number];

/** A running synthetic data platform in its own process. */
export interface SourceProcess {
  url: string;
  pid: number;
  close(): Promise<void>;
}

/** Starts `scripts/synthetic-data-platform.ts` as a child process on a free port. */
export async function startSourceProcess(): Promise<SourceProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', 'scripts/synthetic-data-platform.ts', 'serve', '--port', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    lines.once('line', (line) => resolve((JSON.parse(line) as { url: string }).url));
    child.once('exit', (code) => reject(new Error(`synthetic data platform exited (${code})`)));
  });
  return {
    url,
    pid: child.pid!,
    close: async () => {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Options of part 3. */
export interface FlowsOptions {
  quick: boolean;
  ceiling: CryptoCeiling;
  /** A 4-validator testnet whose extractor nodes read from `source`. */
  net: BenchTestnet;
  source: SourceProcess;
}

interface LevelResult {
  concurrency: number;
  completed: number;
  flowsPerSecond: number;
  failed: number;
  failures: Record<string, number>;
  stepsMs: Record<Step, ReturnType<typeof latencySummary>>;
  /** `document` in parts (see DOCUMENT_PARTS). */
  documentPartsMs: Record<DocumentPart, ReturnType<typeof latencySummary>>;
  /** The subject's signed read of the request view she grants from. */
  viewReadMs: ReturnType<typeof latencySummary>;
  retries: number;
  cpu: ReturnType<CpuMeter['read']>;
  sourceCpu: number;
  ofCeiling: number;
}

/** Runs part 3 and writes bench-results/flows.json. */
export async function runFlows(options: FlowsOptions): Promise<void> {
  const { net, quick, ceiling } = options;
  const levels = quick ? [60] : [25, 100, 250, 400];
  const durationMs = quick ? 15_000 : 40_000;
  const warmupMs = quick ? 4_000 : 8_000;
  assertFastClientAgrees(net.chain);
  const genesis = net.testnet.net.genesis;
  const registrar = benchKey((await readKeyFile(net.testnet.net.keys.registrar)).signing.secretKey);
  // The bank's keys: only here, in the bank's process; no node holds them.
  const bankKeys = await readKeyFile(net.testnet.net.keys.institution);
  const bank = benchKey(bankKeys.signing.secretKey);
  const institution = net.testnet.net.institutionId;
  const platforms = net.testnet.net.nodes.flatMap((n, i) => (n.roles.includes('platform') ? [i] : []));
  const inst = await jsonCall<{ encKey: string; signKey: string }>(
    'GET',
    `${net.apis[0]}/v1/institutions/${institution}`,
  );
  const registered = genesis.institutions.find((i) => i.institution === institution)!;
  if (inst.encKey !== registered.encKey || inst.signKey !== bank.pub)
    throw new Error("the node's view of the bank's keys is not genesis'");
  const grantee = { institution, encKey: registered.encKey };
  const me: Grantee = { institution, signKey: bank.pub, encKey: registered.encKey };
  // Signed calls name the node they are for.
  const targets = new Map<number, CallTarget>();
  for (const p of platforms) {
    const status = await jsonCall<{ self: string; chain: string }>('GET', `${net.apis[p]}/v1/status`);
    targets.set(p, { audience: status.self, chain: status.chain });
  }

  // Extraction is done when both record.put transactions of a request are committed. The bank
  // follows them in the blocks it reads with signed calls: it is the institution they concern.
  const extracted = new Map<
    string,
    { types: Set<string>; done?: () => void; failed?: (code: string) => void }
  >();
  /** Blocks the bank could not read, or read without the bodies of its own records, by reason. */
  const blockReadFailures: Record<string, number> = {};
  const onBlock = (block: {
    txs: ({ kind: string; body?: unknown } | { kind: string; redacted: true })[];
  }) => {
    for (const tx of block.txs) {
      if (tx.kind !== 'record.put' && tx.kind !== 'record.fail') continue;
      if (!('body' in tx))
        throw Object.assign(new Error('a record of its request is redacted for the bank'), {
          code: 'RECORD_REDACTED_FOR_BANK',
        });
      const body = tx.body as { request: string; type: string; reason?: string };
      let entry = extracted.get(body.request);
      if (!entry) {
        entry = { types: new Set() };
        extracted.set(body.request, entry);
      }
      if (tx.kind === 'record.fail') entry.failed?.(`RECORD_FAIL_${body.reason}`);
      entry.types.add(body.type);
      if (entry.types.size === TYPES.length) entry.done?.();
    }
  };
  const watchers = new Map<number, CommitWatcher>();
  for (const p of platforms) {
    const w = new CommitWatcher(net.apis[p]!, onBlock, {
      sign: (path) =>
        signedCallHeaders('GET', path, '', institutionCaller(institution), targets.get(p)!, bank),
      onError: (err) => {
        const code = (err as { code?: string }).code ?? err.message.slice(0, 40);
        blockReadFailures[code] = (blockReadFailures[code] ?? 0) + 1;
      },
    });
    await w.start();
    watchers.set(p, w);
  }
  const waitExtraction = (id: string) =>
    new Promise<void>((resolve, reject) => {
      let entry = extracted.get(id);
      if (!entry) {
        entry = { types: new Set() };
        extracted.set(id, entry);
      }
      if (entry.types.size === TYPES.length) return resolve();
      const timer = setTimeout(
        () => reject(Object.assign(new Error('EXTRACTION_NOT_SEEN'), { code: 'EXTRACTION_NOT_SEEN' })),
        EXTRACTION_TIMEOUT_MS,
      );
      entry.done = () => {
        clearTimeout(timer);
        resolve();
      };
      entry.failed = (code) => {
        clearTimeout(timer);
        reject(Object.assign(new Error(code), { code }));
      };
    });
  /** Completed flows, for the signed-read measurement afterwards. */
  const completed: ReadSubject[] = [];

  let subjectSeq = 0;
  const results: LevelResult[] = [];
  try {
    for (const concurrency of levels) {
      const samples: Record<Step, number[]> = {
        register: [],
        request: [],
        extraction: [],
        grant: [],
        document: [],
        total: [],
      };
      const parts: Record<DocumentPart, number[]> = { usage: [], bundle: [], bankOpen: [] };
      const viewReads: number[] = [];
      const failures: Record<string, number> = {};
      let retries = 0;
      let completedInWindow = 0;
      const t0 = performance.now();
      const windowStart = t0 + warmupMs;
      const end = t0 + durationMs;
      let meter: CpuMeter | undefined;
      // Subjects for this level, keys made before the clock starts.
      const pool: BenchSubject[] = Array.from({ length: concurrency * 4 }, () =>
        benchSubject(`bench-${process.pid.toString(36)}-${(subjectSeq++).toString(36)}`),
      );
      let next = 0;

      const flow = async (s: BenchSubject, p: number): Promise<void> => {
        const api = net.apis[p]!;
        const watcher = watchers.get(p)!;
        const start = performance.now();
        const times: Partial<Record<Step | DocumentPart | 'viewRead', number>> = {};
        let t = start;
        const lap = (step: Step) => {
          const now = performance.now();
          times[step] = now - t;
          t = now;
        };
        const reg = registerTx(net.chain, s, registrar, Date.now());
        await jsonCall('POST', `${api}/v1/txs`, reg);
        await watcher.wait(txHash(reg));
        lap('register');
        const request = requestOpenTx(
          net.chain,
          {
            subject: s.id,
            types: [...TYPES],
            purpose: 'mortgage application',
            format: 'json',
            fields: {
              annual_income: 'tax.annualIncome',
              tax_year: 'tax.taxYear',
              insured_months: 'social-insurance.contributionMonths',
            },
          },
          bank,
          Date.now(),
        );
        const opened = await jsonCall<{ id: string }>('POST', `${api}/v1/requests`, { tx: request });
        lap('request');
        await waitExtraction(opened.id);
        lap('extraction');
        // The subject reads the request she is asked about (a call signed with her key).
        const viewPath = `/v1/requests/${opened.id}`;
        const readView = async () => {
          const began = performance.now();
          const v = await jsonCall<RequestRecords>(
            'GET',
            `${api}${viewPath}`,
            undefined,
            signedCallHeaders('GET', viewPath, '', subjectCaller(s.id), targets.get(p)!, s.signing),
          );
          times.viewRead = performance.now() - began;
          return v;
        };
        let view = await readView();
        while (view.records.length < TYPES.length) {
          retries++;
          await sleep(20);
          view = await readView();
        }
        const grant = grantTx(net.chain, view, s, grantee, Date.now());
        const grantHash = txHash(grant);
        await jsonCall('POST', `${api}/v1/txs`, grant);
        await watcher.wait(grantHash);
        lap('grant');
        const usage = usageTx(
          net.chain,
          grantHash,
          view.records.map((r) => r.digest),
          'json',
          bank,
          Date.now(),
        );
        const usageHash = txHash(usage);
        await jsonCall('POST', `${api}/v1/txs`, usage);
        await watcher.wait(usageHash);
        const path = `/v1/requests/${opened.id}/bundle?usage=${usageHash}`;
        let sealed: unknown;
        const asked = performance.now();
        times.usage = asked - t;
        for (;;) {
          const r = await httpCall(
            'GET',
            `${api}${path}`,
            undefined,
            signedCallHeaders('GET', path, '', institutionCaller(institution), targets.get(p)!, bank),
          );
          if (r.status === 200) {
            sealed = JSON.parse(r.text);
            break;
          }
          // The usage may not be applied on this node for a moment after the watcher saw it.
          if (
            r.status === 403 &&
            r.text.includes('PLATFORM_USAGE_REQUIRED') &&
            performance.now() - asked < 5000
          ) {
            retries++;
            await sleep(20);
            continue;
          }
          throw Object.assign(new Error(`bundle: ${r.status} ${r.text.slice(0, 200)}`), {
            code: `HTTP_${r.status}`,
          });
        }
        // The bank's side, as datagrant/client does it: every proof against genesis, then its own key.
        const opening = performance.now();
        times.bundle = opening - asked;
        const verified = verifyBundle(
          sealed,
          genesis,
          me,
          { request: opened.id, usage: usageHash },
          verifyFast,
        );
        const records = openBundle(verified, bankKeys.encryption.secretKey);
        const document = documentOf(verified, records);
        times.bankOpen = performance.now() - opening;
        if (records.length !== TYPES.length || !document.body.includes('"annual_income"'))
          throw Object.assign(new Error(`document: ${document.body.slice(0, 100)}`), {
            code: 'BAD_DOCUMENT',
          });
        lap('document');
        times.total = performance.now() - start;
        if (process.env.BENCH_DEBUG) process.stderr.write(`${JSON.stringify(times)}\n`);
        if (start >= windowStart && performance.now() <= end) {
          for (const step of STEPS) samples[step].push(times[step]!);
          for (const part of DOCUMENT_PARTS) parts[part].push(times[part]!);
          viewReads.push(times.viewRead!);
        }
        completed.push({
          id: s.id,
          signing: s.signing,
          request: opened.id,
          grant: grantHash,
          api,
          target: targets.get(p)!,
        });
        if (performance.now() >= windowStart && performance.now() <= end) completedInWindow++;
      };

      const worker = async (w: number): Promise<void> => {
        while (performance.now() < end) {
          if (meter === undefined && performance.now() >= windowStart) {
            meter = new CpuMeter([...net.pids, options.source.pid]);
          }
          // Every flow registers a new subject: keys made ahead while they last, then on the fly.
          const s =
            pool[next] ?? benchSubject(`bench-${process.pid.toString(36)}-${(subjectSeq++).toString(36)}`);
          next++;
          try {
            await flow(s, platforms[w % platforms.length]!);
          } catch (err) {
            const code = (err as { code?: string }).code ?? (err as Error).message.slice(0, 40);
            failures[code] = (failures[code] ?? 0) + 1;
            await sleep(50);
          }
        }
      };
      await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
      const cpuAll = (meter ?? new CpuMeter([...net.pids, options.source.pid])).read();
      const windowSeconds = (end - windowStart) / 1000;
      const flowsPerSecond = round(completedInWindow / windowSeconds, 1);
      const cpu = { ...cpuAll, perPid: cpuAll.perPid.slice(0, net.pids.length) };
      const ceilingFlows = ceiling.verifyPerMachine / SIGNATURE_CHECKS_PER_FLOW;
      const level: LevelResult = {
        concurrency,
        completed: completedInWindow,
        flowsPerSecond,
        failed: Object.values(failures).reduce((a, b) => a + b, 0),
        failures,
        stepsMs: Object.fromEntries(
          STEPS.map((s) => [s, latencySummary(samples[s])]),
        ) as LevelResult['stepsMs'],
        documentPartsMs: Object.fromEntries(
          DOCUMENT_PARTS.map((d) => [d, latencySummary(parts[d])]),
        ) as LevelResult['documentPartsMs'],
        viewReadMs: latencySummary(viewReads),
        retries,
        cpu,
        sourceCpu: cpuAll.perPid[net.pids.length] ?? Number.NaN,
        ofCeiling: round(flowsPerSecond / ceilingFlows, 3),
      };
      results.push(level);
      note(
        `flows C=${concurrency}: ${flowsPerSecond}/s, total p50 ${level.stepsMs.total.p50} p99 ${level.stepsMs.total.p99} ms, ` +
          `signed view read p50 ${level.viewReadMs.p50} p99 ${level.viewReadMs.p99} ms, ` +
          `document p50 = usage ${level.documentPartsMs.usage.p50} + bundle ${level.documentPartsMs.bundle.p50} + bank verify/open ${level.documentPartsMs.bankOpen.p50} (p99 ${level.documentPartsMs.bankOpen.p99}) ms, ` +
          `cpu ${cpu.perPid.join('/')} source ${level.sourceCpu} bench ${cpu.bench} others ${cpu.others}` +
          (level.failed ? `, failed ${JSON.stringify(failures)}` : ''),
      );
    }
  } finally {
    for (const w of watchers.values()) w.stop();
  }
  if (Object.keys(blockReadFailures).length > 0)
    throw new Error(
      `the bank could not follow its requests in signed block reads: ${JSON.stringify(blockReadFailures)}`,
    );
  const reads: ReadResult[] = await measureReads(completed, {
    concurrency: quick ? [1, 32] : [1, 16, 64],
    durationMs: quick ? 3000 : 8000,
    nodePids: platforms.map((p) => net.pids[p]!),
  });

  const ceilingFlows = ceiling.verifyPerMachine / SIGNATURE_CHECKS_PER_FLOW;
  printTable(
    `Part 3 — complete business flows (4 validators, 2 data types per request), closed loop; ceiling ${Math.round(ceilingFlows)} flows/s ` +
      `(${Math.round(ceiling.verifyPerMachine)} verifies/s ÷ ${SIGNATURE_CHECKS_PER_FLOW} checks per flow)`,
    [
      'in flight',
      'flows/s',
      'of ceiling',
      ...STEPS.flatMap((s) => [`${s} p50`, `${s} p99`]),
      'view read p50',
      'usage p50',
      'bundle p50',
      'bank open p50',
      'bank open p99',
      'failed',
      'cpu/node',
      'bench cpu',
    ],
    results.map((r) => [
      r.concurrency,
      r.flowsPerSecond,
      `${Math.round(r.ofCeiling * 100)}%`,
      ...STEPS.flatMap((s) => [r.stepsMs[s].p50, r.stepsMs[s].p99]),
      r.viewReadMs.p50,
      r.documentPartsMs.usage.p50,
      r.documentPartsMs.bundle.p50,
      r.documentPartsMs.bankOpen.p50,
      r.documentPartsMs.bankOpen.p99,
      r.failed,
      r.cpu.perPid.map((x) => x.toFixed(2)).join(' '),
      r.cpu.bench,
    ]),
  );
  const path = await writeResult(
    'flows',
    {
      levels,
      durationMs,
      warmupMs,
      types: TYPES,
      signatureChecksPerFlow: SIGNATURE_CHECKS_PER_FLOW,
      consensus: net.consensus,
      maxBlockTxs: net.maxBlockTxs,
    },
    { ceiling: { ...ceiling, flowsPerSecond: round(ceilingFlows) }, levels: results, reads },
  );
  note(`wrote ${path}`);
}
