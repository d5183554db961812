/**
 * Part 1, the crypto ceiling: Ed25519 sign and verify per second on one core, with the portable
 * noble implementation and with OpenSSL (the node's hot path), after asserting that both give
 * the same signatures and accept each other's; SHA-256 and XChaCha20-Poly1305 throughput; the
 * cost of hashing a transaction (canonical encoding + SHA-256), which the ledger does often.
 */
import { randomFillSync } from 'node:crypto';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { generateSigningKeyPair, randomBytes, sealPayload, sign, verify } from '../../src/common/crypto.js';
import { opensslSha256, signFast, verifyFast } from '../../src/common/crypto-node.js';
import { signTx, txHash } from '../../src/ledger/index.js';
import { benchKey } from './keys.js';
import { machineInfo, note, printTable, round, spread, writeResult } from './report.js';

/** What other parts need from this one. */
export interface CryptoCeiling {
  /** OpenSSL Ed25519 verifications per second on one core (median of repetitions). */
  opensslVerifyPerCore: number;
  cores: number;
  /** Verifications per second this machine can do with every core busy. */
  verifyPerMachine: number;
}

/** Runs `fn` repeatedly for about `ms` milliseconds (after a short warm-up); operations per second. */
function opsPerSecond(fn: (i: number) => void, ms: number): number {
  // Warm up so the JIT has compiled the path, but never for long on slow operations.
  const warm = performance.now();
  for (let i = 0; i < 200 && performance.now() - warm < 50; i++) fn(i);
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    fn(n++);
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

/** Random bytes of any size (the portable helper caps one call at 64 KiB). */
function bigRandom(size: number): Uint8Array {
  return randomFillSync(new Uint8Array(size));
}

function repeat(
  reps: number,
  fn: () => number,
): { median: number; min: number; max: number; spread: number } {
  const samples: number[] = [];
  for (let r = 0; r < reps; r++) samples.push(fn());
  return spread(samples);
}

/** A typical transaction's signing bytes (an institution.add, ~300 bytes). */
function sampleMessages(count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) out.push(randomBytes(300));
  return out;
}

/** Asserts the two Ed25519 implementations agree; throws on the first disagreement. */
export function assertImplementationsAgree(cases = 200): number {
  let checked = 0;
  for (let i = 0; i < cases; i++) {
    const { publicKey, secretKey } = generateSigningKeyPair();
    const message = randomBytes(1 + (i % 500));
    const a = sign(message, secretKey);
    const b = signFast(message, secretKey);
    if (bytesToHex(a) !== bytesToHex(b)) throw new Error(`case ${i}: noble and OpenSSL signatures differ`);
    if (!verify(b, message, publicKey)) throw new Error(`case ${i}: noble refuses an OpenSSL signature`);
    if (!verifyFast(a, message, publicKey)) throw new Error(`case ${i}: OpenSSL refuses a noble signature`);
    const bad = Uint8Array.from(a);
    bad[i % 64]! ^= 1;
    if (verify(bad, message, publicKey) || verifyFast(bad, message, publicKey))
      throw new Error(`case ${i}: a corrupted signature verified`);
    checked++;
  }
  return checked;
}

/** Measures only the OpenSSL verify rate (for parts run without part 1). */
export function measureCeiling(ms = 700, reps = 3): CryptoCeiling {
  const keys = generateSigningKeyPair();
  const messages = sampleMessages(64);
  const sigs = messages.map((m) => signFast(m, keys.secretKey));
  const r = repeat(reps, () =>
    opsPerSecond((i) => {
      if (!verifyFast(sigs[i & 63]!, messages[i & 63]!, keys.publicKey)) throw new Error('verify failed');
    }, ms),
  );
  const cores = machineInfo().cores;
  return { opensslVerifyPerCore: r.median, cores, verifyPerMachine: r.median * cores };
}

/** Runs part 1 and writes bench-results/crypto.json. */
export async function runCrypto(options: { quick: boolean }): Promise<CryptoCeiling> {
  const ms = options.quick ? 250 : 1500;
  const reps = options.quick ? 2 : 5;
  note(`crypto: ${reps} repetitions of ${ms} ms per figure, one core`);
  const agreed = assertImplementationsAgree(options.quick ? 50 : 500);
  note(`noble and OpenSSL agree on ${agreed} random signatures (identical bytes, cross-verified)`);

  const keys = generateSigningKeyPair();
  const messages = sampleMessages(64);
  const sigs = messages.map((m) => signFast(m, keys.secretKey));
  const many = Array.from({ length: 4096 + 64 }, benchKey);
  const manySigs = many.map((k, i) => signFast(messages[i & 63]!, k.secretKey));

  const figures: Record<string, { median: number; min: number; max: number; spread: number; unit: string }> =
    {};
  const add = (name: string, unit: string, fn: () => number) => {
    figures[name] = { ...repeat(reps, fn), unit };
  };
  add('ed25519.sign.noble', 'ops/s', () => opsPerSecond((i) => sign(messages[i & 63]!, keys.secretKey), ms));
  add('ed25519.sign.openssl', 'ops/s', () =>
    opsPerSecond((i) => signFast(messages[i & 63]!, keys.secretKey), ms),
  );
  add('ed25519.verify.noble', 'ops/s', () =>
    opsPerSecond((i) => {
      if (!verify(sigs[i & 63]!, messages[i & 63]!, keys.publicKey)) throw new Error('verify failed');
    }, ms),
  );
  add('ed25519.verify.openssl', 'ops/s', () =>
    opsPerSecond((i) => {
      if (!verifyFast(sigs[i & 63]!, messages[i & 63]!, keys.publicKey)) throw new Error('verify failed');
    }, ms),
  );
  // More distinct signers than the key cache holds: every verification imports its key.
  add('ed25519.verify.openssl.uncached-key', 'ops/s', () =>
    opsPerSecond((i) => {
      const j = i % many.length;
      if (!verifyFast(manySigs[j]!, messages[j & 63]!, many[j]!.publicKey)) throw new Error('verify failed');
    }, ms),
  );
  for (const [label, size] of [
    ['64B', 64],
    ['1KiB', 1024],
    ['1MiB', 1024 * 1024],
  ] as const) {
    const data = bigRandom(size);
    add(`sha256.noble.${label}`, 'MB/s', () => (opsPerSecond(() => nobleSha256(data), ms) * size) / 1e6);
    add(
      `sha256.openssl.${label}`,
      'MB/s',
      // What the node uses (crypto-node.ts): OpenSSL's one-shot digest.
      () => (opsPerSecond(() => opensslSha256.bytes(data), ms) * size) / 1e6,
    );
  }
  const key = randomBytes(32);
  for (const [label, size] of [
    ['1KiB', 1024],
    ['64KiB', 64 * 1024],
    ['1MiB', 1024 * 1024],
  ] as const) {
    const data = bigRandom(size);
    add(
      `aead.xchacha20poly1305.seal.${label}`,
      'MB/s',
      () => (opsPerSecond(() => sealPayload(key, data), ms) * size) / 1e6,
    );
  }
  const admin = generateSigningKeyPair();
  const tx = signTx(
    {
      chain: 'datagrant-bench',
      kind: 'institution.add',
      body: {
        institution: 'bench-inst-000001',
        name: 'bench-inst-000001',
        signKey: bytesToHex(randomBytes(32)),
        encKey: bytesToHex(randomBytes(32)),
      },
    },
    admin.publicKey,
    admin.secretKey,
    Date.now(),
    signFast,
  );
  // A fresh object each time: the ledger remembers a transaction object's encodings.
  add('tx.hash (canonical JSON + SHA-256)', 'ops/s', () => opsPerSecond(() => txHash({ ...tx }), ms));

  const perCore = figures['ed25519.verify.openssl']!.median;
  const cores = machineInfo().cores;
  const ceiling: CryptoCeiling = { opensslVerifyPerCore: perCore, cores, verifyPerMachine: perCore * cores };

  printTable(
    `Part 1 — crypto ceiling (one core, median of ${reps}; spread = (max-min)/median)`,
    ['figure', 'median', 'min', 'max', 'spread', 'unit'],
    Object.entries(figures).map(([name, f]) => [name, f.median, f.min, f.max, f.spread, f.unit]),
  );
  process.stdout.write(
    `  ceiling: ${round(perCore, 0)} OpenSSL verifies/s/core × ${cores} cores = ${round(perCore * cores, 0)} verifies/s on this machine\n` +
      `  (4 validators verifying each tx once: ${round((perCore * cores) / 4, 0)} tx/s; 1 validator: ${round(perCore * cores, 0)} tx/s)\n`,
  );
  const path = await writeResult(
    'crypto',
    { msPerFigure: ms, repetitions: reps, messageBytes: 300, agreementCases: agreed },
    { ...figures, ceiling },
  );
  note(`wrote ${path}`);
  return ceiling;
}
