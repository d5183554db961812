import '../../src/common/polyfill.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { generateKeySet } from '../../src/common/keyfile.js';
import { silentLogger } from '../../src/common/logger.js';
import { type Tx, type TxProof, verifyTxProof } from '../../src/ledger/index.js';
import { loadNodeConfig } from '../../src/node/config.js';
import { initTestnet } from '../../src/node/init.js';
import { DatagrantNode } from '../../src/node/node.js';
import { addInstitutionChange, councilChange, councilKeys } from '../helpers/council.js';

async function json(response: Response): Promise<{ status: number; body: Record<string, unknown> }> {
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

t.test('one-validator dev chain: commit, query, prove, refuse bad input and keep running', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-dev-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const net = await initTestnet({
    dir,
    validators: 1,
    chain: 'datagrant-test',
    basePort: 0,
    blockIntervalMs: 100,
    minBlockIntervalMs: 5,
  });
  const config = await loadNodeConfig(net.nodes[0]!.configPath);
  const node = new DatagrantNode({ ...config, api: { ...config.api, port: 0 } }, silentLogger);
  await node.start();
  t.teardown(() => node.stop());
  const api = node.apiUrl;
  const post = (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(`${api}/v1/txs`, { method: 'POST', headers, body }).then(json);

  const [first, second] = await councilKeys(net.keys.council);
  const bank = generateKeySet('bank-two');
  const tx = councilChange(
    'datagrant-test',
    addInstitutionChange('bank-two', 'Bank Two', bank),
    first!,
    second!,
  ).propose as Tx<'gov.propose'>;

  const submitted = await post(JSON.stringify(tx));
  t.equal(submitted.status, 202, 'accepted for inclusion');
  const hash = submitted.body.hash as string;

  let committed: Record<string, unknown> = {};
  for (let i = 0; i < 400; i++) {
    committed = (await fetch(`${api}/v1/txs/${hash}`).then(json)).body;
    if (committed.status === 'committed') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(committed.status, 'committed', 'tx appears in a block');

  const proof = (await fetch(`${api}/v1/txs/${hash}/proof`).then(json)).body as unknown as TxProof;
  const verified = verifyTxProof(net.genesis, proof);
  t.ok(verified.ok, 'proof verifies against genesis alone');
  t.equal(verified.ok && verified.height, committed.height);

  const replay = await post(JSON.stringify(tx));
  t.equal(replay.status, 409, 'replay refused');
  t.equal((replay.body.error as { code: string }).code, 'LEDGER_TX_REPLAYED');

  const forged = { ...tx, body: { ...tx.body, deadline: tx.body.deadline + 1 } };
  const bad = await post(JSON.stringify(forged));
  t.equal(bad.status, 400);
  t.equal((bad.body.error as { code: string }).code, 'LEDGER_BAD_SIGNATURE', 'forged tx refused with a code');

  const cases: [string, string, Record<string, string> | undefined, number, string][] = [
    ['malformed JSON', '{"v":1,', undefined, 400, 'API_BAD_JSON'],
    ['off-schema tx', JSON.stringify({ ...tx, extra: 1 }), undefined, 400, 'LEDGER_TX_MALFORMED'],
    ['oversized body', JSON.stringify({ pad: 'x'.repeat(200_000) }), undefined, 413, 'API_BODY_TOO_LARGE'],
    ['wrong media type', 'hello', { 'content-type': 'text/plain' }, 415, 'API_UNSUPPORTED_MEDIA_TYPE'],
    ['wrong chain', JSON.stringify({ ...tx, chain: 'other-chain' }), undefined, 400, 'LEDGER_WRONG_CHAIN'],
  ];
  for (const [name, body, headers, status, code] of cases) {
    const r = await post(body, headers ?? { 'content-type': 'application/json' });
    t.equal(r.status, status, `${name}: status`);
    t.equal((r.body.error as { code: string } | undefined)?.code, code, `${name}: code`);
  }

  const status1 = (await fetch(`${api}/v1/status`).then(json)).body;
  await new Promise((r) => setTimeout(r, 300));
  const status2 = (await fetch(`${api}/v1/status`).then(json)).body;
  t.ok((status2.height as number) > (status1.height as number), 'still committing blocks after bad input');

  const block = (await fetch(`${api}/v1/blocks/${committed.height}`).then(json)).body;
  t.ok((block.txHashes as string[]).includes(hash), 'block lists the tx');
  const missing = await fetch(`${api}/v1/blocks/999999`).then(json);
  t.equal(missing.status, 404);
  t.equal((missing.body.error as { code: string }).code, 'LEDGER_BLOCK_NOT_FOUND');
  const openapi = (await fetch(`${api}/openapi.json`).then(json)).body;
  t.ok((openapi.paths as Record<string, unknown>)['/v1/txs/{hash}/proof'], 'OpenAPI lists the routes');
});
