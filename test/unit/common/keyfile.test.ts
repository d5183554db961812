import { chmod, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { bytesToHex, fromBase64url, toBase64url } from '../../../src/common/bytes.js';
import {
  decodeKeyFile,
  encodeKeyFile,
  generateKeySet,
  isSealed,
  type KeyFileJson,
  type KeySet,
  type ScryptParams,
} from '../../../src/common/keyfile.js';
import { readKeyFile, writeKeyFile } from '../../../src/common/keyfile-fs.js';
import { makeTempDir } from '../../helpers/tmp.js';

// Small scrypt cost keeps the suite fast; the format records the parameters it was sealed with.
const FAST: ScryptParams = { N: 1 << 10, r: 8, p: 1 };
const PASS = 'correct horse battery staple';

function sameKeys(t: Test, got: KeySet, want: KeySet, name: string): void {
  t.equal(bytesToHex(got.signing.secretKey), bytesToHex(want.signing.secretKey), `${name}: signing secret`);
  t.equal(bytesToHex(got.signing.publicKey), bytesToHex(want.signing.publicKey), `${name}: signing public`);
  t.equal(bytesToHex(got.encryption.secretKey), bytesToHex(want.encryption.secretKey), `${name}: enc secret`);
  t.equal(bytesToHex(got.encryption.publicKey), bytesToHex(want.encryption.publicKey), `${name}: enc public`);
  t.equal(got.label, want.label, `${name}: label`);
}

const clone = (json: KeyFileJson): KeyFileJson => JSON.parse(JSON.stringify(json)) as KeyFileJson;

function flipB64(text: string): string {
  const raw = fromBase64url(text);
  raw[0] = raw[0]! ^ 1;
  return toBase64url(raw);
}

t.test('unsealed key file round trip', async (t) => {
  const keys = generateKeySet('alice');
  const json = encodeKeyFile(keys);
  t.notOk(isSealed(json));
  t.equal(json.type, 'datagrant-key');
  t.equal(json.signPublicKey, bytesToHex(keys.signing.publicKey));
  t.ok(json.secret, 'secret keys present');
  sameKeys(t, decodeKeyFile(JSON.parse(JSON.stringify(json))), keys, 'unsealed');
  t.same(encodeKeyFile(keys, ''), json, 'an empty passphrase means unsealed');
});

t.test('sealed key file round trip and failures', async (t) => {
  const keys = generateKeySet('bob');
  const json = encodeKeyFile(keys, PASS, FAST);
  t.ok(isSealed(json));
  t.equal(json.secret, undefined, 'no plaintext secret in a sealed file');
  t.notMatch(JSON.stringify(json), bytesToHex(keys.signing.secretKey), 'secret hex absent');
  t.match(json.sealed, { kdf: 'scrypt', N: FAST.N, r: FAST.r, p: FAST.p });
  sameKeys(t, decodeKeyFile(clone(json), PASS), keys, 'sealed');
  // NFKC: the same passphrase typed with a composed or decomposed accent opens it.
  const accented = encodeKeyFile(keys, 'caf\u00e9', FAST);
  sameKeys(t, decodeKeyFile(accented, 'cafe\u0301'), keys, 'normalised passphrase');

  t.throws(() => decodeKeyFile(clone(json), 'wrong'), { code: 'KEYFILE_BAD_PASSPHRASE' }, 'wrong passphrase');
  t.throws(() => decodeKeyFile(clone(json)), { code: 'KEYFILE_PASSPHRASE_REQUIRED' }, 'missing passphrase');
  t.throws(() => decodeKeyFile(clone(json), ''), { code: 'KEYFILE_PASSPHRASE_REQUIRED' }, 'empty passphrase');

  const tampered = (edit: (j: KeyFileJson) => void): KeyFileJson => {
    const j = clone(json);
    edit(j);
    return j;
  };
  const badPass: [string, KeyFileJson][] = [
    ['tampered ciphertext', tampered((j) => (j.sealed!.ciphertext = flipB64(j.sealed!.ciphertext)))],
    ['tampered nonce', tampered((j) => (j.sealed!.nonce = flipB64(j.sealed!.nonce)))],
    ['tampered salt', tampered((j) => (j.sealed!.salt = flipB64(j.sealed!.salt)))],
    ['different scrypt r', tampered((j) => (j.sealed!.r = 4))],
  ];
  for (const [name, j] of badPass) {
    t.throws(() => decodeKeyFile(j, PASS), { code: 'KEYFILE_BAD_PASSPHRASE' }, name);
  }
  // The public keys are the AEAD's associated data: changing one is detected.
  const other = generateKeySet();
  for (const [name, j] of [
    ['tampered signing public key', tampered((j) => (j.signPublicKey = bytesToHex(other.signing.publicKey)))],
    [
      'tampered encryption public key',
      tampered((j) => (j.encPublicKey = bytesToHex(other.encryption.publicKey))),
    ],
  ] as const) {
    t.throws(() => decodeKeyFile(j, PASS), { code: /^KEYFILE_(TAMPERED|BAD_PASSPHRASE)$/ }, name);
  }
});

t.test('unsealed tampering and malformed files', async (t) => {
  const keys = generateKeySet('carol');
  const json = encodeKeyFile(keys);
  const other = generateKeySet();
  const tamperedPub = { ...clone(json), signPublicKey: bytesToHex(other.signing.publicKey) };
  t.throws(
    () => decodeKeyFile(tamperedPub),
    { code: 'KEYFILE_TAMPERED' },
    'public key does not match secret',
  );
  const tamperedEnc = { ...clone(json), encPublicKey: bytesToHex(other.encryption.publicKey) };
  t.throws(() => decodeKeyFile(tamperedEnc), { code: 'KEYFILE_TAMPERED' }, 'enc key does not match secret');

  const sealed = encodeKeyFile(keys, PASS, FAST);
  const malformed: [string, unknown][] = [
    ['null', null],
    ['a string', 'key'],
    ['wrong type', { ...clone(json), type: 'other' }],
    ['wrong version', { ...clone(json), version: 2 }],
    ['no public key', { ...clone(json), signPublicKey: undefined }],
    ['neither secret nor sealed', { ...clone(json), secret: undefined }],
    ['short secret', { ...clone(json), secret: { sign: 'abcd', enc: json.secret!.enc } }],
    [
      'upper-case secret',
      { ...clone(json), secret: { sign: json.secret!.sign.toUpperCase(), enc: json.secret!.enc } },
    ],
    ['unknown kdf', { ...clone(sealed), sealed: { ...sealed.sealed!, kdf: 'pbkdf2' } }],
    ['N too large', { ...clone(sealed), sealed: { ...sealed.sealed!, N: 1 << 21 } }],
    ['N not a power of two', { ...clone(sealed), sealed: { ...sealed.sealed!, N: 1000 } }],
    ['salt not base64url', { ...clone(sealed), sealed: { ...sealed.sealed!, salt: '**' } }],
  ];
  for (const [name, input] of malformed) {
    t.throws(() => decodeKeyFile(input, PASS), { code: 'KEYFILE_MALFORMED' }, name);
  }
});

t.test('writeKeyFile writes 0600; readKeyFile reads it back', async (t) => {
  const dir = await makeTempDir(t);
  const keys = generateKeySet('dave');
  const sealedPath = join(dir, 'sealed.key.json');
  await writeKeyFile(sealedPath, keys, { passphrase: PASS, scrypt: FAST });
  t.equal((await stat(sealedPath)).mode & 0o777, 0o600, 'sealed file mode');
  sameKeys(t, await readKeyFile(sealedPath, PASS), keys, 'sealed from disk');
  await t.rejects(readKeyFile(sealedPath, 'nope'), { code: 'KEYFILE_BAD_PASSPHRASE' });
  await t.rejects(readKeyFile(sealedPath), { code: 'KEYFILE_PASSPHRASE_REQUIRED' });

  const plainPath = join(dir, 'plain.key.json');
  await writeKeyFile(plainPath, keys);
  t.equal((await stat(plainPath)).mode & 0o777, 0o600, 'unsealed file mode');
  sameKeys(t, await readKeyFile(plainPath), keys, 'unsealed from disk');

  await t.rejects(writeKeyFile(plainPath, keys), { code: 'KEYFILE_EXISTS' }, 'no silent overwrite');
  await t.rejects(readKeyFile(join(dir, 'missing.json')), { code: 'KEYFILE_NOT_FOUND' });
});

t.test('overwriting a loose file tightens it to 0600', async (t) => {
  const dir = await makeTempDir(t);
  const path = join(dir, 'loose.key.json');
  await writeFile(path, 'old', { mode: 0o644 });
  await chmod(path, 0o644);
  const keys = generateKeySet('erin');
  await writeKeyFile(path, keys, { overwrite: true });
  t.equal((await stat(path)).mode & 0o777, 0o600);
  sameKeys(t, await readKeyFile(path), keys, 'overwritten');
});

t.test('readKeyFile refuses files others can read', async (t) => {
  const dir = await makeTempDir(t);
  const path = join(dir, 'k.json');
  await writeKeyFile(path, generateKeySet());
  for (const mode of [0o644, 0o640, 0o604, 0o660]) {
    await chmod(path, mode);
    await t.rejects(readKeyFile(path), { code: 'KEYFILE_INSECURE' }, `mode ${mode.toString(8)}`);
  }
  await chmod(path, 0o600);
  await t.resolves(readKeyFile(path));
  await writeFile(path, 'not json');
  await t.rejects(readKeyFile(path), { code: 'KEYFILE_MALFORMED' }, 'not JSON');
});
