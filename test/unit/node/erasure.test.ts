/**
 * Guaranteed erasure: the sweep deletes every payload whose record the ledger marks erased, and
 * orphans (no committed record after the deadline), whatever happened while the node was away;
 * it is idempotent, and a committed erase deletes at once.
 */
import { EventEmitter } from 'node:events';
import t from 'tap';
import { sha256Hex } from '../../../src/common/crypto.js';
import { silentLogger } from '../../../src/common/logger.js';
import type { ChainView, CommittedBlockEvent } from '../../../src/ledger/index.js';
import { ErasureRole } from '../../../src/node/roles.js';
import { MemoryPayloadStore } from '../../../src/records/index.js';
import { makeTestChain } from '../../helpers/chain.js';
import { TestLedger } from '../../helpers/ledger.js';

function setup(now: { t: number }) {
  const chain = makeTestChain();
  const ledger = new TestLedger(chain);
  const payloads = new MemoryPayloadStore(() => now.t);
  const events = new EventEmitter<{ committed: [CommittedBlockEvent] }>();
  const view = {
    genesis: chain.genesis,
    state: ledger.state,
    store: undefined as never,
    get height() {
      return ledger.height;
    },
    validatorsAt: () => chain.genesis.validators,
    validatorEpochs: () => [],
    on: (e: 'committed', l: (event: CommittedBlockEvent) => void) => events.on(e, l),
    off: (e: 'committed', l: (event: CommittedBlockEvent) => void) => events.off(e, l),
  } satisfies ChainView;
  const role = new ErasureRole(
    { sweepEveryBlocks: 3, orphanAfterMs: 60_000 },
    { chain: view, payloads, logger: silentLogger, now: () => now.t },
  );
  return { chain, ledger, payloads, role, events };
}

const bytes = (text: string) => new TextEncoder().encode(text);

t.test('the start-up sweep erases what was erased while the node was away, and orphans', async (t) => {
  const now = { t: 1_700_000_000_000 };
  const { chain, ledger, payloads, role } = setup(now);
  const bank = chain.institutions[0]!;
  const alice = chain.subjects[0]!;
  const erased = ledger.requestWithRecords(bank, alice, ['tax']);
  const kept = ledger.requestWithRecords(bank, alice, ['property']);
  // The node holds the payloads under the digests the ledger names (test digests: the store only
  // checks that the bytes hash to the digest, so store bytes whose hash we then make the record's).
  const erasedBytes = bytes('erased ciphertext');
  const keptBytes = bytes('kept ciphertext');
  const orphanBytes = bytes('a ciphertext whose record.put never committed');
  const young = bytes('a ciphertext whose record.put is still on its way');
  for (const b of [erasedBytes, keptBytes, orphanBytes]) await payloads.put(sha256Hex(b), b);
  // Re-key the ledger's records to these digests: the role only looks records up by digest.
  const recordOf = (digest: string) => ledger.state.get(`rec/${digest}`) as Record<string, unknown>;
  const tax = recordOf(erased.records.tax!);
  const prop = recordOf(kept.records.property!);
  ledger.state.load(`rec/${sha256Hex(erasedBytes)}`, { ...tax, digest: sha256Hex(erasedBytes) } as never);
  ledger.state.load(`rec/${sha256Hex(keptBytes)}`, { ...prop, digest: sha256Hex(keptBytes) } as never);
  // While the node is away: the subject erases the first request (marked on its record).
  ledger.state.load(`rec/${sha256Hex(erasedBytes)}`, {
    ...tax,
    digest: sha256Hex(erasedBytes),
    erased: true,
  } as never);
  now.t += 61_000;
  await payloads.put(sha256Hex(young), young);

  await role.start();
  t.equal(await payloads.has(sha256Hex(erasedBytes)), false, 'the erased payload is gone after start-up');
  t.equal(await payloads.has(sha256Hex(orphanBytes)), false, 'the old orphan is collected');
  t.equal(await payloads.has(sha256Hex(keptBytes)), true, 'a live record keeps its payload');
  t.equal(await payloads.has(sha256Hex(young)), true, 'a young payload waits for its record.put');
  t.equal(role.erased(sha256Hex(erasedBytes)), true, 'and the node knows not to serve it');
  t.same(await role.sweep(), { erased: 0, orphaned: 0 }, 'sweeping again changes nothing (idempotent)');
  await role.stop();
});

t.test('a committed erase deletes at once; a periodic sweep catches what that missed', async (t) => {
  const now = { t: 1_700_000_000_000 };
  const { chain, ledger, payloads, role, events } = setup(now);
  const bank = chain.institutions[0]!;
  const alice = chain.subjects[0]!;
  await role.start();
  const { request, records } = ledger.requestWithRecords(bank, alice, ['tax']);
  const cipher = bytes('tax ciphertext');
  await payloads.put(sha256Hex(cipher), cipher);
  const tax = ledger.state.get(`rec/${records.tax!}`) as Record<string, unknown>;
  ledger.state.load(`rec/${sha256Hex(cipher)}`, { ...tax, digest: sha256Hex(cipher) } as never);
  const req = ledger.state.get(`req/${request}`) as Record<string, unknown>;
  ledger.state.load(`req/${request}`, { ...req, records: { tax: sha256Hex(cipher) } } as never);
  const block = ledger.commit([ledger.erase(alice, request)]);
  events.emit('committed', { certified: block.certified, hash: 'h', txHashes: [] });
  for (let i = 0; i < 50 && (await payloads.has(sha256Hex(cipher))); i++)
    await new Promise((r) => setImmediate(r));
  t.equal(await payloads.has(sha256Hex(cipher)), false, 'deleted on the erase commit');

  // A payload the commit-time deletion could not see (e.g. fetched again later): the sweep gets it.
  await payloads.put(sha256Hex(cipher), cipher);
  ledger.state.load(`rec/${sha256Hex(cipher)}`, { ...tax, digest: sha256Hex(cipher), erased: true } as never);
  const empty = ledger.commit([]);
  for (let i = 0; i < 3; i++)
    events.emit('committed', { certified: empty.certified, hash: 'h', txHashes: [] });
  for (let i = 0; i < 50 && (await payloads.has(sha256Hex(cipher))); i++)
    await new Promise((r) => setImmediate(r));
  t.equal(await payloads.has(sha256Hex(cipher)), false, 'the sweep every few blocks deletes it');
  await role.stop();
});
