/**
 * Block sync with blocks at the byte budget (real processes): on a 4-validator testnet with the
 * default budget (`maxBlockBytes`, 4 MiB) one validator is stopped while the others commit blocks
 * filled to the budget with the largest transactions the ledger takes (`request.open` with 64
 * fields of the longest names and sources: about 11 KB each, so the byte budget binds long before
 * `maxBlockTxs`). Restarted, the validator syncs past the largest block to the others' tip and
 * agrees with them on every block hash and votes again; then, its block data wiped (its signing
 * state kept), it syncs the whole chain from genesis and follows the tip. Catch-up times are
 * printed, not asserted.
 */
import '../../src/common/polyfill.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { apiCall, signedApiCall } from '../../src/cli/client.js';
import { signFast } from '../../src/common/crypto-node.js';
import { institutionCaller } from '../../src/common/http-signature.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import {
  type AnyTx,
  blockTxBytes,
  DEFAULT_MAX_BLOCK_BYTES,
  MAX_TX_BYTES,
  maxBlockBytes,
  signTx,
  txBytes,
  txHash,
} from '../../src/ledger/index.js';
import { LocalTestnet } from '../../src/node/local-testnet.js';
import { registerSubject } from '../helpers/dev-node.js';
import { until } from '../helpers/until.js';

const SUBJECT = 'sam-0100';
/** Full blocks to commit while the validator is down. */
const FULL_BLOCKS = 2;
/** Transactions per batch submission. */
const BATCH = 128;

/** The largest `request.open` the schema allows: 64 fields, each a 64-char column reading a 96-char source. */
function largeRequestBody(i: number, consentBy: number) {
  const fields: Record<string, string> = {};
  for (let f = 0; f < 64; f++) {
    const column = `c${String(f).padStart(2, '0')}_${String(i).padStart(8, '0')}`.padEnd(64, 'x');
    fields[column] = `social-insurance.${`f${f}_`.padEnd(79, 'y')}`;
  }
  return {
    subject: SUBJECT,
    types: ['social-insurance' as const],
    purpose: `bulk review ${i} `.padEnd(200, 'p'),
    format: 'json' as const,
    fields,
    consentBy,
  };
}

t.test('a node far behind syncs past the largest block', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-sync-'));
  // Blocks at least 1 s apart while transactions wait, so a backlog builds up and each block is
  // filled to the budget; on-consent extraction, so the requests trigger no extraction.
  const testnet = new LocalTestnet({
    dir,
    validators: 4,
    chain: 'datagrant-sync',
    extraction: 'on-consent',
    blockIntervalMs: 2000,
    minBlockIntervalMs: 1000,
    viewTimeoutMs: 4000,
  });
  t.teardown(async () => {
    await testnet.stopAll();
    await rm(dir, { recursive: true, force: true });
  });
  const net = await testnet.init();
  const budget = maxBlockBytes(net.genesis.params);
  t.equal(budget, DEFAULT_MAX_BLOCK_BYTES, `genesis has the default block budget (${budget} bytes)`);
  testnet.startAll();
  await testnet.waitAllReady(90_000);
  const status = (i: number) => apiCall<{ height: number }>(testnet.api(i), 'GET', '/v1/status');
  await until('every validator at height 2', async () => {
    for (let i = 0; i < 4; i++) if ((await status(i)).height < 2) return undefined;
    return true;
  });

  const registrar = await readKeyFile(net.keys.registrar);
  const bank = await readKeyFile(net.keys.institution);
  await registerSubject(testnet.api(0), net.genesis, registrar, SUBJECT);

  const behind = 3;
  await testnet.signal(behind, 'SIGTERM');
  const stoppedAt = (await status(behind).catch(() => undefined))?.height;
  t.equal(stoppedAt, undefined, `node${behind} is down`);
  const fromHeight = (await status(0)).height;

  // Enough of the largest transactions for FULL_BLOCKS blocks at the budget, and some over.
  const consentBy = Date.now() + 24 * 3600 * 1000;
  const sample = signTx(
    { chain: net.genesis.chain, kind: 'request.open', body: largeRequestBody(0, consentBy) },
    bank.signing.publicKey,
    bank.signing.secretKey,
    Date.now(),
    signFast,
  );
  const txSize = txBytes(sample).length;
  t.ok(txSize <= MAX_TX_BYTES && txSize > MAX_TX_BYTES / 2, `each transaction is ${txSize} bytes`);
  const perBlock = Math.floor(budget / txSize);
  const count = perBlock * FULL_BLOCKS + Math.floor(perBlock / 2);
  const txs: AnyTx[] = [];
  for (let i = 1; i <= count; i++)
    txs.push(
      signTx(
        { chain: net.genesis.chain, kind: 'request.open', body: largeRequestBody(i, consentBy) },
        bank.signing.publicKey,
        bank.signing.secretKey,
        Date.now(),
        signFast,
      ),
    );
  const sizes = new Map(txs.map((tx) => [txHash(tx), txBytes(tx).length]));
  t.comment(`${count} request.open transactions of ${txSize} bytes, ${perBlock} fit in a block`);

  // Submitted a block's worth at a time (in batches, round-robin over the running validators),
  // at most three blocks' worth waiting: the proposer always has a full block in its mempool, and
  // the mempool never fills (a full one is retried anyway).
  const submitStarted = Date.now();
  const committed = (tx: AnyTx) => async () =>
    (await apiCall<{ status: string }>(testnet.api(0), 'GET', `/v1/txs/${txHash(tx)}`)).status === 'committed'
      ? true
      : undefined;
  const waves: AnyTx[][] = [];
  for (let i = 0; i < txs.length; i += perBlock) waves.push(txs.slice(i, i + perBlock));
  let refused = 0;
  let node = 0;
  for (let w = 0; w < waves.length; w++) {
    if (w >= 3) await until(`wave ${w - 3} committed`, committed(waves[w - 3]!.at(-1)!), 90_000);
    const queue = [...waves[w]!];
    while (queue.length > 0) {
      const batch = queue.splice(0, BATCH);
      const r = await apiCall<{ results: { error?: { code: string } }[] }>(
        testnet.api(node++ % 3),
        'POST',
        '/v1/txs/batch',
        batch,
      );
      const other = r.results.filter((x) => x.error && x.error.code !== 'LEDGER_MEMPOOL_FULL');
      if (other.length > 0) throw new Error(`refused: ${JSON.stringify(other[0])}`);
      const again = batch.filter((_, k) => r.results[k]?.error?.code === 'LEDGER_MEMPOOL_FULL');
      if (again.length > 0) {
        refused += again.length;
        queue.push(...again);
        await new Promise((res) => setTimeout(res, 500));
      }
    }
  }
  // Every transaction committed, found in the blocks after the stop; their sizes from our own
  // transactions (every one in these blocks is ours).
  const blockSizes: { height: number; txs: number; bytes: number }[] = [];
  let seen = 0;
  let scanned = fromHeight;
  await until(
    'every transaction committed',
    async () => {
      const tip = (await status(0)).height;
      for (; scanned < tip; scanned++) {
        const h = scanned + 1;
        const b = await apiCall<{ txHashes: string[] }>(testnet.api(0), 'GET', `/v1/blocks/${h}`);
        let bytes = 0;
        for (const hash of b.txHashes) {
          const size = sizes.get(hash);
          if (size === undefined) throw new Error(`block ${h} holds a transaction of another kind`);
          bytes += size;
        }
        seen += b.txHashes.length;
        if (b.txHashes.length > 0) blockSizes.push({ height: h, txs: b.txHashes.length, bytes });
      }
      return seen >= count ? true : undefined;
    },
    90_000,
  );
  const tip = scanned;
  t.comment(
    `submitted and committed in ${Date.now() - submitStarted} ms (${refused} retried when the mempool was full)`,
  );
  t.equal(seen, count, 'every transaction is in a block after the validator stopped');
  const largest = blockSizes.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const nearFull = blockSizes.filter((b) => b.bytes >= 0.9 * budget);
  t.comment(
    `blocks ${fromHeight + 1}..${tip}: ${blockSizes.map((b) => `${b.height}:${b.txs}tx/${b.bytes}B`).join(' ')}`,
  );
  t.comment(
    `largest block: height ${largest.height}, ${largest.bytes} bytes of transactions (${((100 * largest.bytes) / budget).toFixed(1)}% of the budget)`,
  );
  t.ok(largest.bytes <= budget, 'no block is over the budget');
  t.ok(
    nearFull.length >= FULL_BLOCKS / 2,
    `${nearFull.length} blocks within 10% of the budget (heights ${nearFull.map((b) => b.height).join(', ')})`,
  );
  // Read in full by the bank (the institution concerned), the largest block as another validator has it.
  const stored = await signedApiCall<{ block: { txs: AnyTx[] } }>(
    testnet.api(1),
    'GET',
    `/v1/blocks/${largest.height}`,
    institutionCaller(net.institutionId),
    bank.signing.secretKey,
  );
  t.equal(
    blockTxBytes(stored.block.txs),
    largest.bytes,
    `the ledger's own count of its bytes agrees (${largest.bytes})`,
  );

  /** Block hashes 1..to as node i has them. */
  const hashesOf = async (i: number, to: number): Promise<string[]> => {
    const out: string[] = new Array(to);
    for (let before = to + 1; before > 1; before -= 100) {
      const r = await apiCall<{ blocks: { hash: string; header: { height: number } }[] }>(
        testnet.api(i),
        'GET',
        `/v1/blocks?before=${before}&limit=100`,
      );
      for (const b of r.blocks) if (b.header.height <= to) out[b.header.height - 1] = b.hash;
    }
    return out;
  };
  const catchUp = async (label: string) => {
    const target = (await status(0)).height;
    const started = Date.now();
    testnet.start(behind);
    await testnet.waitReady(behind, 90_000);
    await until(
      `node${behind} at height ${target}`,
      async () => ((await status(behind)).height >= target ? true : undefined),
      90_000,
    );
    const ms = Date.now() - started;
    t.comment(`${label}: node${behind} reached height ${target} in ${ms} ms (process start included)`);
    const reference = await hashesOf(0, target);
    t.equal(reference.filter(Boolean).length, target, `node0 lists all ${target} block hashes`);
    for (let i = 1; i < 4; i++)
      t.same(await hashesOf(i, target), reference, `node${i} agrees on every block hash up to ${target}`);
    t.ok(target >= largest.height, `${label}: synced past the largest block (height ${largest.height})`);
  };

  await catchUp('restart');
  const voting = await until('it votes again', async () => {
    const s = await apiCall<{ voting: boolean }>(testnet.api(behind), 'GET', '/v1/status');
    return s.voting ? true : undefined;
  });
  t.ok(voting, `node${behind} votes again`);

  // Its blocks wiped but not its signing state: it syncs the whole chain again, from genesis.
  await testnet.signal(behind, 'SIGTERM');
  await rm(join(net.nodes[behind]!.home, 'data'), { recursive: true, force: true });
  await catchUp('from genesis');

  const after = await until('the chain moves on with it', async () => {
    const a = (await status(behind)).height;
    const b = (await status(0)).height;
    return a > tip + 2 && Math.abs(a - b) <= 2 ? a : undefined;
  });
  t.ok(after > tip, `it follows the tip (height ${after})`);
});
