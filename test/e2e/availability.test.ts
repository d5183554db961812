/**
 * Availability certificates end to end (real processes, 4 validators and the bank's own gateway):
 * a record.put commits only with storage receipts of f + 1 validators, so after it commits the
 * extractor that made it can lose its disk — process killed, payload store deleted — and the bank
 * still gets its document and its sealed bundle, the ciphertext served by another holder.
 */
import '../../src/common/polyfill.js';
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { syntheticSensitiveValues } from '../../scripts/synthetic-data-platform.js';
import { DatagrantClient } from '../../src/client/index.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { buildGrantTx } from '../../src/platform/consent.js';
import { registerSubject } from '../helpers/dev-node.js';
import { startTestnet } from '../helpers/testnet.js';

const SUBJECT = 'alice-0077';

t.test(
  'after record.put commits, the extractor loses its disk and the bank still gets the data',
  async (t) => {
    const { testnet, net } = await startTestnet(
      t,
      'datagrant-avail-',
      {
        validators: 4,
        gateways: 1,
        chain: 'datagrant-avail',
        blockIntervalMs: 500,
        minBlockIntervalMs: 20,
        viewTimeoutMs: 1500,
        logLevel: 'info',
      },
      { withSource: true },
    );
    const gatewayIndex = net.nodes.findIndex((n) => n.kind === 'gateway');
    const platformIndex = net.nodes.findIndex((n) => n.kind === 'validator' && n.roles.includes('platform'));
    const bank = await readKeyFile(net.keys.institution);
    const alice = await registerSubject(
      testnet.api(platformIndex),
      net.genesis,
      await readKeyFile(net.keys.registrar),
      SUBJECT,
    );
    const client = (i: number) =>
      new DatagrantClient({
        api: testnet.api(i),
        institution: 'demo-bank',
        keys: bank,
        genesis: net.genesis,
      });
    const atGateway = client(gatewayIndex);

    const opened = await atGateway.openRequest({
      subject: SUBJECT,
      types: ['tax'],
      purpose: 'mortgage',
      format: 'csv',
      fields: { income: 'tax.annualIncome' },
    });
    const ready = await atGateway.waitFor(opened.id, ['waiting-for-consent', 'failed'], {
      timeoutMs: 60_000,
    });
    t.equal(ready.status, 'waiting-for-consent', 'the record was extracted and committed');
    const record = ready.records[0]!;
    const validators = net.genesis.validators.map((v) => v.key);
    t.ok(record.holders.length >= 2, `f + 1 = 2 validators hold it (${record.holders.length} do)`);
    t.ok(
      record.holders.every((h) => validators.includes(h)),
      'every holder is a genesis validator',
    );
    t.ok(record.holders.includes(record.extractor), 'the extractor signed its own receipt');
    const extractorIndex = net.nodes.findIndex((n) => n.key === record.extractor);
    t.ok(
      extractorIndex >= 0 && net.nodes[extractorIndex]!.roles.includes('extractor'),
      'made by an extractor node',
    );

    // Its disk is lost: the process dies and its payload store is gone.
    await testnet.signal(extractorIndex, 'SIGKILL');
    const payloadsDir = join(net.nodes[extractorIndex]!.home, 'data', 'payloads');
    await access(payloadsDir);
    await rm(payloadsDir, { recursive: true, force: true });
    await t.rejects(access(payloadsDir), 'the extractor payload store is deleted');
    t.notOk(testnet.running(extractorIndex), 'and the extractor is down');

    // Three validators of four still commit: the subject grants, the bank uses it.
    await atGateway.submit(
      buildGrantTx(
        { chain: net.genesis.chain, now: Date.now() },
        ready,
        alice,
        { institution: 'demo-bank', encKey: bytesToHex(bank.encryption.publicKey) },
        { expiresInMs: 3_600_000, uses: 2, retainDays: 1 },
      ),
    );
    await atGateway.waitFor(opened.id, ['granted'], { timeoutMs: 60_000 });
    const values = syntheticSensitiveValues(SUBJECT);

    // The bank's own gateway holds no copy (it stores for no one): it fetches from the record's holders.
    const overGateway = await atGateway.document(opened.id);
    t.ok(
      values.some((v) => overGateway.body.includes(v)),
      'the bundle from the bank gateway opens to the data',
    );
    t.equal(overGateway.bundleDigest.length, 64, 'a bundle released against a committed usage');
    // And over a data-blind validator's platform, opened on the bank's side.
    const overValidator = await client(platformIndex).document(opened.id);
    t.ok(
      values.some((v) => overValidator.body.includes(v)),
      'so does the sealed bundle from a validator platform',
    );
    const after = await atGateway.request(opened.id);
    t.equal(after.grant?.used, 2, 'both uses spent on the ledger');
  },
);
