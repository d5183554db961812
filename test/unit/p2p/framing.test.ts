import '../../../src/common/polyfill.js';
import fc from 'fast-check';
import t from 'tap';
import { DatagrantError, isDatagrantError } from '../../../src/common/errors.js';
import {
  decodeResponse,
  encodeErrorResponse,
  encodeFrame,
  encodeOkResponse,
  encodeVarint,
  MAX_ERROR_MESSAGE_CHARS,
  readFrame,
} from '../../../src/p2p/framing.js';

async function* chunksOf(bytes: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    if (cut <= at || cut >= bytes.length) continue;
    yield bytes.subarray(at, cut);
    at = cut;
  }
  yield bytes.subarray(at);
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return isDatagrantError(err) ? err.code : String(err);
  }
}

t.test('varint known answers', async (t) => {
  const cases: [number, number[]][] = [
    [0, [0]],
    [1, [1]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [300, [0xac, 0x02]],
    [16384, [0x80, 0x80, 0x01]],
    [0x7fffffff, [0xff, 0xff, 0xff, 0xff, 0x07]],
  ];
  for (const [value, bytes] of cases) t.same([...encodeVarint(value)], bytes, `varint(${value})`);
  for (const bad of [-1, 1.5, 2 ** 31]) {
    t.throws(() => encodeVarint(bad), { code: 'P2P_PROTOCOL_ERROR' }, `refuses ${bad}`);
  }
});

t.test('a frame survives any chunking', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 600 }),
      fc.array(fc.nat(700), { maxLength: 8 }),
      fc.uint8Array({ maxLength: 4 }),
      async (body, cuts, trailing) => {
        const wire = new Uint8Array([...encodeFrame(body), ...trailing]);
        const out = await readFrame(chunksOf(wire, cuts), 600, 'TOO_BIG');
        if (out.length !== body.length || out.some((b, i) => b !== body[i])) throw new Error('frame changed');
      },
    ),
    { numRuns: 300 },
  );
});

t.test('readFrame refuses oversize, truncated and malformed frames', async (t) => {
  t.equal(
    await codeOf(readFrame(chunksOf(encodeFrame(new Uint8Array(11)), []), 10, 'X_TOO_LARGE')),
    'X_TOO_LARGE',
  );
  t.equal(
    await codeOf(readFrame(chunksOf(encodeFrame(new Uint8Array(10)), []), 10, 'X')),
    'resolved',
    'limit is inclusive',
  );
  const truncated = encodeFrame(new Uint8Array(20)).subarray(0, 15);
  t.equal(
    await codeOf(readFrame(chunksOf(truncated, [3]), 100, 'X')),
    'P2P_PROTOCOL_ERROR',
    'truncated body',
  );
  t.equal(
    await codeOf(readFrame(chunksOf(new Uint8Array(0), []), 100, 'X')),
    'P2P_PROTOCOL_ERROR',
    'empty stream',
  );
  const endless = Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
  t.equal(
    await codeOf(readFrame(chunksOf(endless, []), 2 ** 40, 'X')),
    'P2P_PROTOCOL_ERROR',
    'overlong varint',
  );
  t.equal(
    await codeOf(readFrame(chunksOf(encodeFrame(new Uint8Array(0)), []), 0, 'X')),
    'resolved',
    'empty frame',
  );
});

t.test('response envelopes', async (t) => {
  const ok = decodeResponse(encodeOkResponse(Uint8Array.of(1, 2, 3)));
  t.same(ok.ok ? [...ok.data] : null, [1, 2, 3], 'ok response');
  const coded = decodeResponse(
    encodeErrorResponse(new DatagrantError('LEDGER_BLOCK_NOT_FOUND', 'no block 7')),
  );
  t.same(coded, { ok: false, code: 'LEDGER_BLOCK_NOT_FOUND', message: 'no block 7' }, 'coded error');
  const plain = decodeResponse(encodeErrorResponse(new Error('secret path /home/x')));
  t.same(
    plain,
    { ok: false, code: 'P2P_HANDLER_FAILED', message: 'the request handler failed' },
    'plain error hidden',
  );
  const long = decodeResponse(encodeErrorResponse(new DatagrantError('A_B', 'z'.repeat(5000))));
  t.equal(long.ok ? -1 : long.message.length, MAX_ERROR_MESSAGE_CHARS, 'message truncated');
  const forged = decodeResponse(
    Uint8Array.from([1, ...new TextEncoder().encode('{"code":"lower case","message":7}')]),
  );
  t.same(forged, { ok: false, code: 'P2P_HANDLER_FAILED', message: '' }, 'malformed fields sanitised');
  t.throws(() => decodeResponse(new Uint8Array(0)), { code: 'P2P_PROTOCOL_ERROR' }, 'empty');
  t.throws(() => decodeResponse(Uint8Array.of(2)), { code: 'P2P_PROTOCOL_ERROR' }, 'unknown status');
  t.throws(() => decodeResponse(Uint8Array.of(1, 0xff)), { code: 'P2P_PROTOCOL_ERROR' }, 'bad JSON');
});
