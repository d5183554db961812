/** Byte helpers shared by node, CLI and browser code (no Node-only APIs). */
import { concatBytes, hexToBytes, bytesToHex as nobleBytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { DatagrantError } from './errors.js';

export { concatBytes, utf8ToBytes };

/** Node's Buffer where there is one (a browser has none). */
const NodeBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;

/**
 * Lower-case hex of bytes. In Node, through Buffer: one flat string made natively, where the
 * portable version concatenates one piece per byte (a rope that every Map lookup must flatten).
 */
export const bytesToHex: (bytes: Uint8Array) => string = NodeBuffer
  ? (bytes) => NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
  : nobleBytesToHex;

const HEX_RE = /^(?:[0-9a-f]{2})*$/;

/** Decodes lower-case hex, naming the field in the error when it is malformed or of the wrong length. */
export function fromHex(hex: string, field = 'value', length?: number): Uint8Array {
  if (typeof hex !== 'string' || !HEX_RE.test(hex)) {
    throw new DatagrantError('CRYPTO_BAD_ENCODING', `${field} must be lower-case hex`);
  }
  const bytes = hexToBytes(hex);
  if (length !== undefined && bytes.length !== length) {
    throw new DatagrantError('CRYPTO_BAD_ENCODING', `${field} must be ${length} bytes`);
  }
  return bytes;
}

const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64_LOOKUP = new Map<string, number>([...B64_ALPHABET].map((c, i) => [c, i]));

/**
 * Byte `i` of `hex`, lower-case hex known to be well formed (a hash this code computed), without
 * validating or allocating: for lookups that run tens of thousands of times a block.
 */
export function hexByteAt(hex: string, i: number): number {
  return (hexDigit(hex.charCodeAt(2 * i)) << 4) | hexDigit(hex.charCodeAt(2 * i + 1));
}

function hexDigit(c: number): number {
  return c <= 57 ? c - 48 : c - 87; // '0'-'9', 'a'-'f'
}

/**
 * Decodes the lower-case hex from `from` to the end of `hex` into `out`, without allocating; false
 * (and `out` unspecified) unless that is exactly `out.length` bytes of well-formed digits.
 */
export function hexInto(hex: string, out: Uint8Array, from = 0): boolean {
  if (hex.length !== from + out.length * 2) return false;
  for (let i = 0; i < out.length; i++) {
    const hi = checkedHexDigit(hex.charCodeAt(from + 2 * i));
    const lo = checkedHexDigit(hex.charCodeAt(from + 2 * i + 1));
    if (hi < 0 || lo < 0) return false;
    out[i] = (hi << 4) | lo;
  }
  return true;
}

function checkedHexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** base64url without padding (RFC 4648 §5); works the same in Node and browsers. */
export function toBase64url(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out +=
      B64_ALPHABET[n >> 18]! +
      B64_ALPHABET[(n >> 12) & 63]! +
      B64_ALPHABET[(n >> 6) & 63]! +
      B64_ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += B64_ALPHABET[n >> 18]! + B64_ALPHABET[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64_ALPHABET[n >> 18]! + B64_ALPHABET[(n >> 12) & 63]! + B64_ALPHABET[(n >> 6) & 63]!;
  }
  return out;
}

/** Inverse of `toBase64url`; rejects characters outside the alphabet, impossible lengths and non-zero padding bits. */
export function fromBase64url(text: string, field = 'value'): Uint8Array {
  if (typeof text !== 'string' || text.length % 4 === 1) {
    throw new DatagrantError('CRYPTO_BAD_ENCODING', `${field} must be base64url`);
  }
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (const ch of text) {
    const v = B64_LOOKUP.get(ch);
    if (v === undefined) throw new DatagrantError('CRYPTO_BAD_ENCODING', `${field} must be base64url`);
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  // Leftover bits must be zero (RFC 4648 §3.5), so each byte string has exactly one encoding.
  if ((acc & ((1 << bits) - 1)) !== 0) {
    throw new DatagrantError('CRYPTO_BAD_ENCODING', `${field} must be canonical base64url`);
  }
  return out;
}

/** Constant-time comparison of two byte arrays of equal length. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
