/**
 * The admin routes (src/api/admin-routes.ts) over the real signed-call verifier: the backup streams
 * only for a call signed as `node:<name>` with the node's own key; unsigned, another node's name,
 * another key or an institution are refused with their codes; a second backup while one streams is
 * API_BUSY, and once it is done the next one streams.
 */
import '../../../src/common/polyfill.js';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { adminRoutes } from '../../../src/api/admin-routes.js';
import { HttpAuthVerifier } from '../../../src/api/http-auth.js';
import { MemoryReplayGuard } from '../../../src/api/replay-guard.js';
import { createApi } from '../../../src/api/server.js';
import { bytesToHex } from '../../../src/common/bytes.js';
import { verifyFast } from '../../../src/common/crypto-node.js';
import { DatagrantError } from '../../../src/common/errors.js';
import { institutionCaller, SIGNED_CALL_HEADERS, signCall } from '../../../src/common/http-signature.js';
import { generateKeySet } from '../../../src/common/keyfile.js';
import { silentLogger } from '../../../src/common/logger.js';

const CHAIN = 'admin-chain';

t.test('only the node itself gets a backup, one at a time', async (t) => {
  const node = generateKeySet('node3');
  const other = generateKeySet('node0');
  const bank = generateKeySet('bank');
  const self = bytesToHex(node.signing.publicKey);
  const auth = new HttpAuthVerifier(
    { maxSkewMs: 60_000, audience: self, chain: CHAIN },
    {
      // As the node answers: its operator is its own name with its own key; the bank is known.
      callerKey: (c) =>
        c.kind === 'node'
          ? c.id === 'node3'
            ? self
            : undefined
          : c.kind === 'institution' && c.id === 'demo-bank'
            ? bytesToHex(bank.signing.publicKey)
            : undefined,
      verifier: verifyFast,
      replay: new MemoryReplayGuard(),
      now: Date.now,
    },
  );
  let open: PassThrough | undefined;
  const app = await createApi({ bodyLimit: 1024, logger: silentLogger, rateLimit: false });
  t.teardown(() => app.close());
  await adminRoutes(app, {
    identify: async (request) =>
      request.headers[SIGNED_CALL_HEADERS.signature] === undefined
        ? undefined
        : auth.verify(request.method, request.url, '', request.headers),
    backup: {
      async open() {
        if (open) throw new DatagrantError('API_BUSY', 'a backup is already being taken');
        const stream = new PassThrough();
        open = stream;
        stream.on('close', () => {
          open = undefined;
        });
        stream.end(Buffer.from('backup-bytes'));
        return { header: { height: 7, blockHash: 'ab'.repeat(32) }, stream };
      },
    },
    snapshot: {
      async open() {
        const stream = new PassThrough();
        stream.end(Buffer.from('snapshot-bytes'));
        return { header: { height: 9, blockHash: 'cd'.repeat(32) }, stream };
      },
    },
  });
  const call = (caller: string, secretKey: Uint8Array, path = '/v1/admin/backup') =>
    app.inject({
      method: 'GET',
      url: path,
      headers: signCall({ method: 'GET', path, body: '', caller, audience: self, chain: CHAIN }, secretKey),
    });
  const refused = async (
    res: Awaited<ReturnType<typeof call>>,
    status: number,
    code: string,
    what: string,
  ) => {
    t.equal(res.statusCode, status, `${what}: ${status}`);
    t.equal(res.json().error.code, code, `${what}: ${code}`);
  };
  await refused(
    await app.inject({ method: 'GET', url: '/v1/admin/backup' }),
    401,
    'API_UNAUTHENTICATED',
    'unsigned',
  );
  await refused(
    await call('node:node3', other.signing.secretKey),
    401,
    'API_BAD_SIGNATURE',
    'its name, another key',
  );
  await refused(
    await call('node:node0', other.signing.secretKey),
    401,
    'API_UNAUTHENTICATED',
    'another node',
  );
  await refused(
    await call(institutionCaller('demo-bank'), bank.signing.secretKey),
    403,
    'API_FORBIDDEN',
    'an institution',
  );

  const ok = await call('node:node3', node.signing.secretKey);
  t.equal(ok.statusCode, 200, 'the node itself: 200');
  t.equal(ok.headers['content-type'], 'application/octet-stream', 'a byte stream');
  t.equal(ok.headers['x-datagrant-backup-height'], '7', 'naming the height');
  t.equal(ok.body, 'backup-bytes', 'of the backup');

  // A backup still streaming: the next caller is told to wait.
  const streaming = new PassThrough();
  open = streaming;
  streaming.on('close', () => {
    open = undefined;
  });
  await refused(await call('node:node3', node.signing.secretKey), 503, 'API_BUSY', 'while one streams');
  streaming.destroy();
  await new Promise((r) => setImmediate(r));
  t.equal((await call('node:node3', node.signing.secretKey)).statusCode, 200, 'after it, the next streams');

  // The state snapshot route: the same operator, and only it.
  const snap = '/v1/admin/snapshot';
  await refused(
    await app.inject({ method: 'GET', url: snap }),
    401,
    'API_UNAUTHENTICATED',
    'snapshot, unsigned',
  );
  await refused(
    await call(institutionCaller('demo-bank'), bank.signing.secretKey, snap),
    403,
    'API_FORBIDDEN',
    'snapshot, an institution',
  );
  await refused(
    await call('node:node0', other.signing.secretKey, snap),
    401,
    'API_UNAUTHENTICATED',
    'snapshot, another node',
  );
  const snapshot = await call('node:node3', node.signing.secretKey, snap);
  t.equal(snapshot.statusCode, 200, 'snapshot, the node itself: 200');
  t.equal(snapshot.headers['x-datagrant-snapshot-height'], '9', 'naming its height');
  t.equal(snapshot.body, 'snapshot-bytes', 'of the snapshot');
});
