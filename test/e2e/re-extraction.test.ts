/**
 * A subject recovered through her registrar grants a record extracted before she recovered: a dev
 * node extracts her request sealed to her key; she recovers (new keys bound to her id); her
 * `datagrant refresh` with her new key file has the record extracted again, sealed to the new key;
 * `datagrant grant` with the new key file consents; the bank's document opens; the refresh is on
 * her audit trail.
 */
import '../../src/common/polyfill.js';
import { join } from 'node:path';
import t from 'tap';
import { signedApiCall, submitAndWait } from '../../src/cli/client.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { sign } from '../../src/common/crypto.js';
import { generateKeySet, type KeySet } from '../../src/common/keyfile.js';
import { writeKeyFile } from '../../src/common/keyfile-fs.js';
import { recoveryBytes, signTx } from '../../src/ledger/index.js';
import type { RequestView } from '../../src/platform/views.js';
import { cli } from '../helpers/cli.js';
import { registerSubject, startDevNode } from '../helpers/dev-node.js';
import { until } from '../helpers/until.js';

t.test('a subject recovered through her registrar can grant again (CLI)', async (t) => {
  const dev = await startDevNode(t, { chain: 'datagrant-refresh' });
  const { api, genesis } = dev;
  const subject = 'alice-refresh';
  const lost = await registerSubject(api, genesis, dev.registrar, subject);
  const bank = dev.client();
  const opened = await bank.openRequest({
    subject,
    types: ['tax'],
    purpose: 'loan',
    format: 'csv',
    fields: { income: 'tax.annualIncome' },
    consentInMs: 3_600_000,
  });
  const view = (keys: KeySet) =>
    signedApiCall<RequestView>(
      api,
      'GET',
      `/v1/requests/${opened.id}`,
      `subject:${subject}`,
      keys.signing.secretKey,
    );
  const first = await until('the record sealed to her first key', async () => {
    const v = await view(lost);
    return v.status === 'waiting-for-consent' ? v : undefined;
  });
  const oldDigest = first.records[0]!.digest;

  // Her key file is lost: the registrar attests new keys, bound to her id by subject.recover.
  const next = generateKeySet('alice-new');
  const nextFile = join(dev.dir, 'alice-new.json');
  await writeKeyFile(nextFile, next);
  const signKey = bytesToHex(next.signing.publicKey);
  const encKey = bytesToHex(next.encryption.publicKey);
  const issued = Date.now() - 1000;
  const attestation = bytesToHex(
    sign(recoveryBytes(genesis.chain, subject, signKey, encKey, issued), dev.registrar.signing.secretKey),
  );
  await submitAndWait(
    api,
    signTx(
      {
        chain: genesis.chain,
        kind: 'subject.recover',
        body: {
          subject,
          encKey,
          registrar: bytesToHex(dev.registrar.signing.publicKey),
          attestation,
          issued,
        },
      },
      next.signing.publicKey,
      next.signing.secretKey,
      Date.now(),
    ),
  );
  const mine = ['--key', nextFile, '--subject', subject, '--api', api];
  const stuck = await cli(['grant', ...mine, '--request', opened.id, '--genesis', dev.net.genesisPath]);
  t.not(stuck.code, 0, 'her new key cannot grant the record sealed to the lost one');
  t.match(stuck.stderr, /CRYPTO_UNWRAP_FAILED/, 'it cannot unwrap its data key');

  const help = await cli(['refresh', '--help']);
  t.match(help.stdout, /--types <list>/, 'refresh has --help');
  const refreshed = await cli(['refresh', ...mine, '--request', opened.id, '--json']);
  t.equal(refreshed.code, 0, `refresh exits 0 ${refreshed.stderr}`);
  const r = JSON.parse(refreshed.stdout) as { hash: string; types: string[] };
  t.same(r.types, ['tax'], 'the CLI found the record her key cannot open');

  const again = await until('the record extracted again', async () => {
    const v = await view(next);
    return v.status === 'waiting-for-consent' && v.records[0]?.digest !== oldDigest ? v : undefined;
  });
  t.equal(again.records[0]?.subjectKey, encKey, 'sealed to her new key');
  const nothing = await cli(['refresh', ...mine, '--request', opened.id]);
  t.match(nothing.stderr, /CLI_NOTHING_TO_REFRESH/, 'nothing is left to refresh');

  const granted = await cli(['grant', ...mine, '--request', opened.id, '--genesis', dev.net.genesisPath]);
  t.equal(granted.code, 0, `she grants with her new key ${granted.stderr}`);
  const doc = await bank.document(opened.id);
  t.match(doc.body, /income/, "the bank's document opens");
  t.match(doc.body.split('\n')[1] ?? '', /\d/, 'with her data');

  const audit = await cli(['audit', ...mine, '--json']);
  const kinds = (JSON.parse(audit.stdout) as { entries: { kind: string; hash: string }[] }).entries;
  t.ok(
    kinds.some((e) => e.kind === 'record.refresh' && e.hash === r.hash),
    'the refresh is on her audit trail',
  );
  t.equal(
    kinds.filter((e) => e.kind === 'record.put').length,
    2,
    'with both record.put, the old and the new',
  );
});
