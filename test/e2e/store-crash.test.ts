/**
 * Crash consistency of the LevelDB block store: a writer process commits blocks of real executed
 * transactions in a tight loop and is SIGKILLed at random moments; after every kill the store is
 * reopened and checked block by block, index by index, and by replaying the whole chain.
 *
 * STORE_CRASH_ITERATIONS (default 12) sets the number of kills; STORE_CRASH_SEED replays a run
 * (the seed is printed as a comment).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { verifyFast } from '../../src/common/crypto-node.js';
import {
  blockHash,
  CommittedState,
  checkCertificate,
  executeBlock,
  genesisState,
  LevelBlockStore,
  type StateValue,
  txHash,
} from '../../src/ledger/index.js';
import { makeTestChain, type TestChainOptions } from '../helpers/chain.js';
import { makeTempDir } from '../helpers/tmp.js';

const ITERATIONS = Number(process.env.STORE_CRASH_ITERATIONS ?? 12);
const SEED = Number(process.env.STORE_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CHAIN_OPTIONS: TestChainOptions = { seed: 'store-crash', subjects: 6 };
const WRITER = fileURLToPath(new URL('./fixtures/store-crash-writer.ts', import.meta.url));

/** Small seeded PRNG (mulberry32), so a failing schedule can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts a writer that waits for a line on stdin before touching the store. */
function startWriter(path: string): {
  child: ChildProcess;
  ready: Promise<number>;
  committed: Promise<boolean>;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, path, JSON.stringify(CHAIN_OPTIONS)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const seen = <T>(test: () => T | undefined, exited: T) =>
    new Promise<T>((resolve) => {
      child.stdout!.on('data', () => {
        const v = test();
        if (v !== undefined) resolve(v);
      });
      child.on('exit', () => resolve(exited));
    });
  const ready = seen(() => {
    const m = /ready (\d+)/.exec(out);
    return m ? Number(m[1]) : undefined;
  }, -1);
  // Its first block committed: kills timed from here land while blocks are being written, however
  // slowly a loaded machine brings the writer up.
  const committed = seen(() => (out.includes('committed') ? true : undefined), false);
  return { child, ready, committed };
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/**
 * Reopens the store and returns every inconsistency found (empty when consistent), with the
 * height reached.
 */
async function checkStore(path: string): Promise<{ height: number; problems: string[] }> {
  const chain = makeTestChain(CHAIN_OPTIONS);
  const store = new LevelBlockStore({ path, genesis: chain.genesisInit() });
  await store.open();
  const problems: string[] = [];
  try {
    const tip = store.tip();
    const replay = genesisState(chain.genesis).state;
    const written = new Set<string>(chain.genesisInit().writes.keys());
    const bySubject = new Map<string, { height: number; index: number; hash: string }[]>();
    let prev = chain.genesisHash;
    let last: string | undefined;
    for (let h = 1; h <= tip.height; h++) {
      const certified = await store.getBlock(h);
      if (!certified) {
        problems.push(`block ${h} of ${tip.height} is missing`);
        break;
      }
      const { header, txs } = certified.block;
      const hash = blockHash(header);
      if (header.height !== h) problems.push(`block ${h}: header says height ${header.height}`);
      if (header.prev !== prev) problems.push(`block ${h}: prev does not link to block ${h - 1}`);
      if (certified.cert.block !== hash) problems.push(`block ${h}: certificate is for another block`);
      const fault = checkCertificate(chain.genesis, header, certified.cert, verifyFast);
      if (fault) problems.push(`block ${h}: certificate ${fault}`);
      const byHash = await store.getBlockByHash(hash);
      if (byHash?.block.header.height !== h) problems.push(`block ${h}: not found by its hash`);
      for (const [index, tx] of txs.entries()) {
        const loc = await store.getTxLocation(txHash(tx));
        if (loc?.height !== h || loc.index !== index) {
          problems.push(`block ${h} tx ${index}: index points to ${JSON.stringify(loc)}`);
        }
      }
      const executed = executeBlock(
        replay,
        txs,
        { height: h, time: header.time, proposer: header.proposer },
        chain.config,
        { verifier: verifyFast },
      );
      if (!executed.ok) {
        problems.push(`block ${h}: replay refused tx ${executed.index} (${executed.rejection.code})`);
        break;
      }
      if (executed.stateRoot !== header.stateRoot) problems.push(`block ${h}: replayed state root differs`);
      executed.outcomes.forEach((o, index) => {
        if (!o.subject) return;
        const list = bySubject.get(o.subject) ?? [];
        list.push({ height: h, index, hash: o.hash });
        bySubject.set(o.subject, list);
      });
      for (const key of executed.writes.keys()) written.add(key);
      replay.apply(executed.writes, executed.stateRoot, h);
      prev = hash;
      last = hash;
    }
    if (tip.height > 0 && tip.hash !== last) problems.push('tip hash is not the hash of the last block');
    if (tip.stateRoot !== replay.root) problems.push('tip state root differs from the replayed one');
    if (await store.getBlock(tip.height + 1)) problems.push('a block exists beyond the tip');

    const loaded = new CommittedState();
    await store.loadState(loaded);
    if (loaded.root !== replay.root) problems.push('loadState root differs from replay');
    if (loaded.height !== tip.height) problems.push('loadState height differs from tip');
    if (loaded.size !== replay.size)
      problems.push(`loadState has ${loaded.size} keys, replay ${replay.size}`);
    const same = (a: StateValue | undefined, b: StateValue | undefined) =>
      JSON.stringify(a) === JSON.stringify(b);
    for (const key of written) {
      if (!same(loaded.get(key), replay.get(key))) problems.push(`state key ${key} differs from replay`);
    }
    for (const [subject, refs] of bySubject) {
      const stored = await store.txsBySubject(subject);
      if (JSON.stringify(stored) !== JSON.stringify(refs))
        problems.push(`subject index of ${subject} differs`);
    }
    return { height: tip.height, problems };
  } finally {
    await store.close();
  }
}

t.test('LevelBlockStore stays consistent across SIGKILLs at random moments', async (t) => {
  t.comment(`STORE_CRASH_SEED=${SEED} STORE_CRASH_ITERATIONS=${ITERATIONS}`);
  const random = prng(SEED);
  const path = join(await makeTempDir(t, 'datagrant-crash-'), 'chain');
  // Writers boot (load their modules) ahead of time and touch the store only when told to, so
  // process start-up overlaps with the previous run and the checks.
  const booting = [startWriter(path), startWriter(path)];
  let lastHeight = 0;
  let progressed = 0;
  let earlyKills = 0;
  t.teardown(() => Promise.all(booting.map((w) => kill(w.child))));
  for (let i = 0; i < ITERATIONS; i++) {
    const { child, ready, committed } = booting.shift()!;
    booting.push(startWriter(path));
    child.stdin!.write('go\n');
    // One kill in four lands anywhere from start-up on (opening, loading state); the others
    // while blocks are being committed.
    if (random() < 0.25) {
      earlyKills++;
      await sleep(Math.floor(random() * 400));
    } else {
      const start = await ready;
      if (start < 0) t.fail(`iteration ${i}: writer exited before it was ready`);
      if (!(await committed)) t.fail(`iteration ${i}: writer exited before its first commit`);
      await sleep(Math.floor(random() * 250));
    }
    await kill(child);
    const { height, problems } = await checkStore(path);
    t.same(problems, [], `iteration ${i}: store consistent at height ${height}`);
    t.ok(height >= lastHeight, `iteration ${i}: height ${height} did not go back from ${lastHeight}`);
    if (height > lastHeight) progressed++;
    lastHeight = height;
  }
  t.ok(progressed >= ITERATIONS / 3, `the writer made progress in ${progressed} of ${ITERATIONS} runs`);
  t.comment(`final height ${lastHeight}; ${earlyKills} kills during start-up`);
});
