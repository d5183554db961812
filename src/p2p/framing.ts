/**
 * Wire format of the request-response protocols: one frame each way, a frame being an unsigned
 * LEB128 varint length followed by that many bytes. A response frame starts with a status byte:
 * 0 then the response bytes, or 1 then a UTF-8 JSON `{code, message}` error.
 */
import { concatBytes } from '../common/bytes.js';
import { DatagrantError, isDatagrantError } from '../common/errors.js';

/** Largest frame length the varint reader accepts at all (2^31 - 1), whatever the limit. */
export const MAX_FRAME_LENGTH = 0x7fffffff;

/** Longest error message sent back in an error response. */
export const MAX_ERROR_MESSAGE_CHARS = 256;

const STATUS_OK = 0;
const STATUS_ERROR = 1;

/** Anything that yields its bytes: a Uint8Array or a libp2p Uint8ArrayList chunk. */
export interface ByteChunk {
  subarray(): Uint8Array;
}

/** Unsigned LEB128 encoding of a non-negative safe integer up to MAX_FRAME_LENGTH. */
export function encodeVarint(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > MAX_FRAME_LENGTH) {
    throw new DatagrantError('P2P_PROTOCOL_ERROR', 'frame length out of range', { value });
  }
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Uint8Array.from(out);
}

/** `body` prefixed with its varint length. */
export function encodeFrame(body: Uint8Array): Uint8Array {
  return concatBytes(encodeVarint(body.length), body);
}

/**
 * Reads one frame from `source`, refusing a declared length over `maxBytes` with `tooLargeCode`
 * before buffering it. Bytes after the frame are ignored. Throws `P2P_PROTOCOL_ERROR` when the
 * source ends early or the length prefix is malformed.
 */
export async function readFrame(
  source: AsyncIterable<ByteChunk>,
  maxBytes: number,
  tooLargeCode: string,
): Promise<Uint8Array> {
  let length = -1;
  let shift = 0;
  let header = 0;
  let body: Uint8Array | undefined;
  let filled = 0;
  for await (const chunk of source) {
    const bytes = chunk.subarray();
    let i = 0;
    while (length < 0 && i < bytes.length) {
      const b = bytes[i++]!;
      header += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) {
        length = header;
        if (length > maxBytes) {
          throw new DatagrantError(tooLargeCode, 'frame is larger than the limit', { length, maxBytes });
        }
        body = new Uint8Array(length);
      } else if (shift >= 35) {
        throw new DatagrantError('P2P_PROTOCOL_ERROR', 'malformed frame length');
      }
    }
    if (body === undefined) continue;
    const take = Math.min(body.length - filled, bytes.length - i);
    body.set(bytes.subarray(i, i + take), filled);
    filled += take;
    if (filled === body.length) return body;
  }
  if (body !== undefined && filled === body.length) return body;
  throw new DatagrantError('P2P_PROTOCOL_ERROR', 'stream ended before a whole frame was read');
}

/** A decoded response frame. */
export type ResponseEnvelope = { ok: true; data: Uint8Array } | { ok: false; code: string; message: string };

/** The body of a success response. */
export function encodeOkResponse(data: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(STATUS_OK), data);
}

/** The body of an error response for `err`: its code when it is a DatagrantError, else `P2P_HANDLER_FAILED`. */
export function encodeErrorResponse(err: unknown): Uint8Array {
  const code = isDatagrantError(err) ? err.code : 'P2P_HANDLER_FAILED';
  const raw = isDatagrantError(err) ? err.message : 'the request handler failed';
  const message = raw.slice(0, MAX_ERROR_MESSAGE_CHARS);
  return concatBytes(
    Uint8Array.of(STATUS_ERROR),
    new TextEncoder().encode(JSON.stringify({ code, message })),
  );
}

const CODE_RE = /^[A-Z][A-Z0-9_]{0,63}$/;

/** Parses a response body; `P2P_PROTOCOL_ERROR` if it is neither form. */
export function decodeResponse(body: Uint8Array): ResponseEnvelope {
  if (body.length === 0) throw new DatagrantError('P2P_PROTOCOL_ERROR', 'empty response');
  if (body[0] === STATUS_OK) return { ok: true, data: body.subarray(1) };
  if (body[0] !== STATUS_ERROR) throw new DatagrantError('P2P_PROTOCOL_ERROR', 'unknown response status');
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body.subarray(1)));
  } catch {
    throw new DatagrantError('P2P_PROTOCOL_ERROR', 'malformed error response');
  }
  const obj = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const code = typeof obj.code === 'string' && CODE_RE.test(obj.code) ? obj.code : 'P2P_HANDLER_FAILED';
  const message = typeof obj.message === 'string' ? obj.message.slice(0, MAX_ERROR_MESSAGE_CHARS) : '';
  return { ok: false, code, message };
}

/** The error a requester raises for an error response. */
export function remoteError(peer: string, code: string, message: string): DatagrantError {
  return new DatagrantError('P2P_REMOTE_ERROR', `peer answered with an error: ${message || code}`, {
    peer,
    remoteCode: code,
  });
}
