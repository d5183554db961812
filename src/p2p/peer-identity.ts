/**
 * A validator's libp2p identity is its Ed25519 node key: the peer id is derived from the same
 * public key that genesis lists in hex, so a peer id maps to a validator key and back.
 */
import { generateKeyPairFromSeed, publicKeyFromRaw } from '@libp2p/crypto/keys';
import type { Ed25519PrivateKey } from '@libp2p/interface';
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id';
import { bytesToHex, fromHex } from '../common/bytes.js';
import { DatagrantError } from '../common/errors.js';

/** The libp2p private key for a validator's 32-byte Ed25519 secret key (the RFC 8032 seed). */
export async function libp2pPrivateKey(secretKey: Uint8Array): Promise<Ed25519PrivateKey> {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) {
    throw new DatagrantError('P2P_BAD_CONFIG', 'secretKey must be 32 bytes');
  }
  return generateKeyPairFromSeed('Ed25519', secretKey);
}

/** The libp2p peer id (base58btc string) of a validator key given as lower-case hex. */
export function peerIdFromValidatorKey(keyHex: string): string {
  const key = publicKeyFromRaw(fromHex(keyHex, 'validator key', 32));
  return peerIdFromPublicKey(key).toString();
}

/** The validator key (hex) behind a peer id string, or undefined when it is not an Ed25519 peer id. */
export function validatorKeyFromPeerId(peerId: string): string | undefined {
  try {
    const id = peerIdFromString(peerId);
    if (id.type !== 'Ed25519') return undefined;
    return bytesToHex(id.publicKey.raw);
  } catch {
    return undefined;
  }
}

/** A dialable bootstrap address for a validator listening on TCP `host:port` (IPv4 or IPv6 literal). */
export function bootstrapAddress(host: string, port: number, keyHex: string): string {
  const family = host.includes(':') ? 'ip6' : 'ip4';
  return `/${family}/${host}/tcp/${port}/p2p/${peerIdFromValidatorKey(keyHex)}`;
}
