/**
 * An institution rotates its keys on a dev chain (`datagrant institution rotate`): a grant made
 * before stays usable (the bank client signs its use with the new signing key and opens the
 * document with the old encryption key, kept as a previous key), a request opened before stays
 * live and its new grant is wrapped to the new key, and the old signing key can no longer act.
 */
import '../../src/common/polyfill.js';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { DatagrantClient } from '../../src/client/index.js';
import { bytesToHex } from '../../src/common/bytes.js';
import { generateKeySet } from '../../src/common/keyfile.js';
import { writeKeyFile } from '../../src/common/keyfile-fs.js';
import { buildGrantTx } from '../../src/platform/consent.js';
import { registerSubject, startDevNode } from '../helpers/dev-node.js';

const run = promisify(execFile);

/** The coded error a call fails with (or `resolved` if it did not). */
async function failure(p: Promise<unknown>): Promise<{ code?: string; message?: string } | 'resolved'> {
  return p.then(
    () => 'resolved' as const,
    (err: unknown) => ({ code: (err as { code?: string }).code, message: (err as Error).message }),
  );
}
const BIN = resolve('bin/datagrant.js');

t.test(
  "an institution's key rotation keeps its live grants and wraps new grants to the new key",
  async (t) => {
    const chain = 'datagrant-rotation';
    const dev = await startDevNode(t, { chain });
    const { api, net, bank } = dev;
    const alice = await registerSubject(api, net.genesis, dev.registrar, 'alice-rot');
    const before = dev.client();
    const ask = () =>
      before.openRequest({
        subject: 'alice-rot',
        types: ['tax'],
        purpose: 'rotation',
        format: 'json',
        fields: {},
      });
    const grantTo = async (client: DatagrantClient, id: string, encKey: Uint8Array) => {
      const ready = await client.waitFor(id, ['waiting-for-consent']);
      return buildGrantTx(
        { chain, now: Date.now() },
        ready,
        alice,
        { institution: net.institutionId, encKey: bytesToHex(encKey) },
        { expiresInMs: 3_600_000, uses: 2, retainDays: 1 },
      );
    };
    const granted = await ask();
    await before.submit(await grantTo(before, granted.id, bank.encryption.publicKey));
    await before.waitFor(granted.id, ['granted']);
    const pending = await ask();
    await before.waitFor(pending.id, ['waiting-for-consent']);

    const next = generateKeySet('demo-bank-next');
    const nextPath = join(dev.dir, 'demo-bank-next.json');
    await writeKeyFile(nextPath, next);
    const rotated = await run(process.execPath, [
      BIN,
      'institution',
      'rotate',
      '--key',
      net.keys.institution,
      '--new-key',
      nextPath,
      '--institution',
      net.institutionId,
      '--api',
      api,
    ]);
    t.match(rotated.stdout, /rotated demo-bank's keys/, 'rotated through the CLI');
    const inst = (await (await fetch(`${api}/v1/institutions/${net.institutionId}`)).json()) as {
      signKey: string;
      encKey: string;
    };
    t.equal(inst.signKey, bytesToHex(next.signing.publicKey), 'the chain holds the new signing key');
    t.equal(inst.encKey, bytesToHex(next.encryption.publicKey), 'and the new encryption key');

    const after = new DatagrantClient({
      api,
      institution: net.institutionId,
      keys: next,
      previousKeys: [bank],
      genesis: net.genesis,
    });
    const doc = await after.document(granted.id);
    t.equal(
      doc.records.length,
      1,
      'the grant made before the rotation still delivers, opened with the previous key',
    );
    const noPrevious = new DatagrantClient({
      api,
      institution: net.institutionId,
      keys: next,
      genesis: net.genesis,
    });
    t.match(
      await failure(noPrevious.document(granted.id)),
      { code: 'CLIENT_BUNDLE_MISMATCH' },
      'without its old keys the client does not take the old grant as its own',
    );

    // The request opened before is live; a grant to the old key is refused, the new key's delivers.
    await t.rejects(after.submit(await grantTo(after, pending.id, bank.encryption.publicKey)), {
      code: 'LEDGER_GRANTEE_KEY_MISMATCH',
    });
    await after.submit(await grantTo(after, pending.id, next.encryption.publicKey));
    const fresh = await after.document(pending.id);
    t.equal(fresh.records.length, 1, 'a new grant is wrapped to the new key and opens with it');
    t.match(
      await failure(
        before.openRequest({
          subject: 'alice-rot',
          types: ['tax'],
          purpose: 'x',
          format: 'json',
          fields: {},
        }),
      ),
      { code: 'LEDGER_NOT_INSTITUTION' },
      'the old signing key acts no more',
    );
  },
);
