import '../../../src/common/polyfill.js';
import fc from 'fast-check';
import t from 'tap';
import { bytesToHex } from '../../../src/common/bytes.js';
import { generateSigningKeyPair } from '../../../src/common/crypto.js';
import {
  bootstrapAddress,
  libp2pPrivateKey,
  peerIdFromValidatorKey,
  validatorKeyFromPeerId,
} from '../../../src/p2p/peer-identity.js';

// RFC 8032 section 7.1, test 1.
const RFC_SECRET = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const RFC_PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';

t.test('the libp2p key derived from a node secret has the genesis public key', async (t) => {
  const key = await libp2pPrivateKey(Uint8Array.from(Buffer.from(RFC_SECRET, 'hex')));
  t.equal(bytesToHex(key.publicKey.raw), RFC_PUBLIC);
  const peerId = peerIdFromValidatorKey(RFC_PUBLIC);
  t.match(peerId, /^12D3KooW[1-9A-HJ-NP-Za-km-z]+$/, 'an Ed25519 peer id');
  t.equal(validatorKeyFromPeerId(peerId), RFC_PUBLIC, 'maps back');
  await t.rejects(libp2pPrivateKey(new Uint8Array(31)), { code: 'P2P_BAD_CONFIG' });
});

t.test('validator key and peer id round trip', async () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
      const key = bytesToHex(generateSigningKeyPair(seed).publicKey);
      if (validatorKeyFromPeerId(peerIdFromValidatorKey(key)) !== key)
        throw new Error(`round trip failed for ${key}`);
    }),
    { numRuns: 50 },
  );
});

t.test('bad input', async (t) => {
  t.equal(validatorKeyFromPeerId('not a peer id'), undefined);
  t.equal(
    validatorKeyFromPeerId('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'),
    undefined,
    'RSA-style id',
  );
  t.throws(() => peerIdFromValidatorKey('ABCD'), { code: 'CRYPTO_BAD_ENCODING' });
});

t.test('bootstrap addresses', async (t) => {
  const peerId = peerIdFromValidatorKey(RFC_PUBLIC);
  t.equal(bootstrapAddress('127.0.0.1', 7001, RFC_PUBLIC), `/ip4/127.0.0.1/tcp/7001/p2p/${peerId}`);
  t.equal(bootstrapAddress('::1', 7001, RFC_PUBLIC), `/ip6/::1/tcp/7001/p2p/${peerId}`);
});
