/**
 * The payload replicator over the simulated network: a validator stores for extractors and signs
 * receipts the ledger accepts; an extractor collects f + 1 (and whatever else arrives in the grace);
 * refusals (not an extractor, oversize, erased, busy, not a validator) and lying validators; and a
 * fetch asks the record's holders first.
 */
import t, { type Test } from 'tap';
import { utf8ToBytes } from '../../../src/common/bytes.js';
import { sha256Hex } from '../../../src/common/crypto.js';
import { signFast, verifyFast } from '../../../src/common/crypto-node.js';
import { DatagrantError, isDatagrantError } from '../../../src/common/errors.js';
import { silentLogger } from '../../../src/common/logger.js';
import { checkStorageReceipts } from '../../../src/ledger/index.js';
import { MAX_STORED_PAYLOAD_BYTES, PayloadReplicator } from '../../../src/node/replicator.js';
import {
  encodeStorageReceipt,
  MemoryPayloadStore,
  type PayloadStore,
  signStorageReceipt,
} from '../../../src/records/index.js';
import { makeTestChain, type TestKeys } from '../../helpers/chain.js';
import { SimHub, SimNetwork } from '../../helpers/sim-network.js';

const MIB = 1024 * 1024;

interface Member {
  keys: TestKeys;
  net: SimNetwork;
  payloads: MemoryPayloadStore;
  replicator: PayloadReplicator;
  erased: Set<string>;
  /** Digests this member was asked for over `payload`, in order. */
  asked: string[];
}

async function cluster(
  t: Test,
  options: { payloads?: (i: number) => PayloadStore; maxConcurrentStores?: number; graceMs?: number } = {},
) {
  const chain = makeTestChain();
  const hub = new SimHub({ delayMs: 1 });
  const gateway = chain.keys('gateway-0');
  const members: Member[] = [];
  const everyone = [...chain.validators, gateway];
  for (const [i, keys] of everyone.entries()) {
    const net = new SimNetwork(
      {
        secretKey: keys.signing.secretKey,
        allowedKeys: everyone.map((k) => k.pub),
        maxRequestBytes: MAX_STORED_PAYLOAD_BYTES + MIB,
      },
      { hub },
    );
    const payloads = new MemoryPayloadStore();
    const erased = new Set<string>();
    const replicator = new PayloadReplicator(
      {
        chain: chain.genesis.chain,
        self: keys.pub,
        secretKey: keys.signing.secretKey,
        validators: chain.genesis.validators,
        graceMs: options.graceMs ?? 50,
        ...(options.maxConcurrentStores ? { maxConcurrentStores: options.maxConcurrentStores } : {}),
      },
      {
        network: net,
        payloads: options.payloads?.(i) ?? payloads,
        height: () => 3,
        erased: (d) => erased.has(d),
        sign: signFast,
        verifier: verifyFast,
        logger: silentLogger,
      },
    );
    const member: Member = { keys, net, payloads, replicator, erased, asked: [] };
    net.handle('store', (req, from) => replicator.serve(req, from));
    net.handle('payload', async (req) => {
      const digest = new TextDecoder().decode(req);
      member.asked.push(digest);
      const bytes = await payloads.get(digest);
      if (!bytes) throw new DatagrantError('PAYLOAD_NOT_FOUND', 'none here');
      return bytes;
    });
    await net.start();
    t.teardown(() => net.stop());
    members.push(member);
  }
  return { chain, hub, members, gateway: members[members.length - 1]! };
}

function payload(text: string): { digest: string; bytes: Uint8Array } {
  const bytes = utf8ToBytes(text);
  return { digest: sha256Hex(bytes), bytes };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (isDatagrantError(err)) return (err.meta.remoteCode as string | undefined) ?? err.code;
    return String(err);
  }
}

t.test('an extractor collects receipts the ledger accepts; every validator holds the bytes', async (t) => {
  const { chain, members } = await cluster(t);
  const extractor = members[0]!; // node-0: platform + extractor
  const { digest, bytes } = payload('sealed record');
  await extractor.payloads.put(digest, bytes);
  const receipts = await extractor.replicator.replicate(digest, bytes);
  t.equal(receipts[0]!.validator, extractor.keys.pub, 'its own receipt first, signed locally');
  t.equal(receipts.length, 4, 'and every validator that answered within the grace');
  t.same(
    receipts.map((r) => [r.digest, r.size, r.chain, r.height]),
    receipts.map(() => [digest, bytes.length, chain.genesis.chain, 3]),
    'each names the digest, size, chain and the signer height',
  );
  const check = checkStorageReceipts(
    receipts,
    { chain: chain.genesis.chain, digest, size: bytes.length, height: 4 },
    chain.config.validators,
    verifyFast,
  );
  t.match(
    check,
    { ok: true, holders: [...chain.validators.map((v) => v.pub)].sort() },
    'the ledger takes them',
  );
  for (const [i, m] of members.slice(0, 4).entries())
    t.same(await m.payloads.get(digest), bytes, `validator ${i} holds the bytes`);
  t.equal(await members[4]!.payloads.has(digest), false, 'the gateway was not asked to');
  const listed = [];
  for await (const e of members[1]!.payloads.list()) listed.push(e.digest);
  t.same(listed, [digest], "a replica has its '~added' time like any payload: the orphan sweep sees it");
});

t.test('f + 1 is enough: a validator that is away does not stop the record', async (t) => {
  const { hub, members } = await cluster(t);
  const [v0, v1, v2, v3] = members as [Member, Member, Member, Member];
  hub.partition([[v0.keys.pub, v1.keys.pub, v2.keys.pub, members[4]!.keys.pub], [v3.keys.pub]]);
  const { digest, bytes } = payload('another sealed record');
  await v0.payloads.put(digest, bytes);
  const receipts = await v0.replicator.replicate(digest, bytes);
  t.same(
    receipts.map((r) => r.validator).sort(),
    [v0.keys.pub, v1.keys.pub, v2.keys.pub].sort(),
    'the three reachable validators hold it',
  );
  t.equal(await v3.payloads.has(digest), false);
});

t.test('receipts that do not verify are not counted; too few holders is a coded failure', async (t) => {
  const { chain, hub, members } = await cluster(t);
  const [v0, v1, v2, v3] = members as [Member, Member, Member, Member];
  const { digest, bytes } = payload('third sealed record');
  await v0.payloads.put(digest, bytes);
  v1.net.handle('store', async () =>
    encodeStorageReceipt(
      signStorageReceipt(
        {
          validator: v1.keys.pub,
          digest: sha256Hex(utf8ToBytes('other')),
          size: 5,
          chain: chain.genesis.chain,
          height: 3,
        },
        v1.keys.signing.secretKey,
      ),
    ),
  );
  v2.net.handle('store', async () =>
    encodeStorageReceipt(
      signStorageReceipt(
        { validator: v2.keys.pub, digest, size: bytes.length, chain: chain.genesis.chain, height: 3 },
        v1.keys.signing.secretKey,
      ),
    ),
  );
  const got = await v0.replicator.replicate(digest, bytes);
  t.same(
    got.map((r) => r.validator),
    [v0.keys.pub, v3.keys.pub],
    'the receipt for another digest and the one signed by another key are dropped',
  );

  hub.partition([[v0.keys.pub, v1.keys.pub, v2.keys.pub], [v3.keys.pub]]);
  const second = payload('fourth sealed record');
  await v0.payloads.put(second.digest, second.bytes);
  t.equal(
    await codeOf(v0.replicator.replicate(second.digest, second.bytes)),
    'EXTRACTOR_REPLICATION_FAILED',
    'with the honest validator away, fewer than f + 1 hold it: refused',
  );
  hub.heal();
  v3.erased.add(digest);
  const third = payload('fifth sealed record');
  await v0.payloads.put(third.digest, third.bytes);
  t.same(
    (await v0.replicator.replicate(third.digest, third.bytes)).map((r) => r.validator),
    [v0.keys.pub, v3.keys.pub],
    'healed: f + 1 again',
  );
  const controller = new AbortController();
  v3.net.handle('store', () => new Promise(() => {}));
  const pending = v0.replicator.replicate(third.digest, third.bytes, controller.signal);
  controller.abort(new Error('give up'));
  t.equal(await codeOf(pending), 'Error: give up', "the caller's signal ends the attempt");
});

t.test('a validator stores only for extractors, within bounds, never an erased digest', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const slow = new MemoryPayloadStore();
  const slowStore: PayloadStore = {
    put: async (d, b) => {
      await gate;
      await slow.put(d, b);
    },
    get: (d) => slow.get(d),
    has: (d) => slow.has(d),
    delete: (d) => slow.delete(d),
    list: () => slow.list(),
    compact: () => slow.compact(),
  };
  const { members } = await cluster(t, {
    payloads: (i) => (i === 3 ? slowStore : new MemoryPayloadStore()),
    maxConcurrentStores: 1,
  });
  const [v0, v1, v2, v3] = members as [Member, Member, Member, Member];
  const gateway = members[4]!;
  const { digest, bytes } = payload('to store');

  t.equal(
    await codeOf(v2.net.request(v1.keys.pub, 'store', bytes)),
    'PAYLOAD_STORE_FORBIDDEN',
    'a platform-only validator may not have payloads stored',
  );
  t.equal(
    await codeOf(gateway.net.request(v1.keys.pub, 'store', bytes)),
    'PAYLOAD_STORE_FORBIDDEN',
    'nor a gateway',
  );
  t.equal(
    await codeOf(gateway.replicator.serve(bytes, v0.keys.pub)),
    'PAYLOAD_STORE_REFUSED',
    'a gateway stores nothing for a record: it signs no receipt',
  );
  t.equal(
    await codeOf(v1.replicator.serve(new Uint8Array(MAX_STORED_PAYLOAD_BYTES + 1), v0.keys.pub)),
    'PAYLOAD_TOO_LARGE',
    'over 16 MiB',
  );
  t.equal(await codeOf(v1.replicator.serve(new Uint8Array(0), v0.keys.pub)), 'PAYLOAD_BAD_BYTES', 'empty');
  v1.erased.add(digest);
  t.equal(
    await codeOf(v0.net.request(v1.keys.pub, 'store', bytes)),
    'PAYLOAD_ERASED',
    'a digest the subject erased',
  );
  t.equal(await v1.payloads.has(digest), false, 'and nothing was written');

  const first = v0.net.request(v3.keys.pub, 'store', bytes);
  await new Promise((r) => setTimeout(r, 20));
  t.equal(
    await codeOf(v1.net.request(v3.keys.pub, 'store', payload('other').bytes)),
    'PAYLOAD_STORE_BUSY',
    'past the concurrent-store bound: refused at once, not queued',
  );
  release();
  t.equal(await codeOf(first), 'ok', 'the store in progress completes');
  t.equal(await slow.has(digest), true);
});

t.test('fetch asks the holders first, then the other peers', async (t) => {
  const { members } = await cluster(t);
  const [v0, v1, v2, v3] = members as [Member, Member, Member, Member];
  const gateway = members[4]!;
  const { digest, bytes } = payload('held by two');
  await v1.payloads.put(digest, bytes);
  await v3.payloads.put(digest, bytes);
  const got = await gateway.replicator.fetch(digest, [v3.keys.pub, v1.keys.pub]);
  t.same(got, bytes, 'fetched');
  t.same(
    [v0, v1, v2, v3].map((m) => m.asked.length),
    [0, 0, 0, 1],
    'only the first holder was asked',
  );
  t.same(await gateway.payloads.get(digest), bytes, 'and kept');

  const lost = payload('holder lost it');
  await v2.payloads.put(lost.digest, lost.bytes);
  const again = await gateway.replicator.fetch(lost.digest, [v1.keys.pub]);
  t.same(again, lost.bytes, 'a holder without it: the other peers are asked next');
  t.equal(v1.asked.at(-1), lost.digest, 'the holder was asked first');
  t.equal(await gateway.replicator.fetch(payload('nowhere').digest, []), undefined, 'nobody has it');
});

t.test('a lone dev validator is its own f + 1', async (t) => {
  const chain = makeTestChain({ validators: 1 });
  const only = chain.validators[0]!;
  const payloads = new MemoryPayloadStore();
  const replicator = new PayloadReplicator(
    {
      chain: chain.genesis.chain,
      self: only.pub,
      secretKey: only.signing.secretKey,
      validators: chain.genesis.validators,
    },
    {
      network: undefined,
      payloads,
      height: () => 9,
      erased: () => false,
      sign: signFast,
      verifier: verifyFast,
      logger: silentLogger,
    },
  );
  t.equal(replicator.quorum, 1);
  const { digest, bytes } = payload('dev');
  const receipts = await replicator.replicate(digest, bytes);
  t.same(
    receipts.map((r) => [r.validator, r.height]),
    [[only.pub, 9]],
  );
  t.equal(await payloads.has(digest), true, 'stored locally if it was not yet');
  t.equal(await codeOf(replicator.replicate(digest, utf8ToBytes('not it'))), 'EXTRACTOR_REPLICATION_FAILED');
});
