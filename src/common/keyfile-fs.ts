/** Reading and writing key files on disk: written 0600, refused when group- or world-readable. */
import { type FileHandle, open, readFile, stat } from 'node:fs/promises';
import { DatagrantError } from './errors.js';
import { decodeKeyFile, encodeKeyFile, type KeySet, type ScryptParams } from './keyfile.js';

/** Writes a key file with mode 0600; refuses to overwrite unless `overwrite` is set. */
export async function writeKeyFile(
  path: string,
  keys: KeySet,
  options: { passphrase?: string; overwrite?: boolean; scrypt?: ScryptParams } = {},
): Promise<void> {
  const json = encodeKeyFile(keys, options.passphrase, options.scrypt);
  let file: FileHandle;
  try {
    file = await open(path, options.overwrite ? 'w' : 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new DatagrantError('KEYFILE_EXISTS', `${path} already exists`);
    }
    throw err;
  }
  try {
    // The mode given to open applies only to a new file; an overwritten one keeps its old mode.
    await file.chmod(0o600);
    await file.writeFile(`${JSON.stringify(json, null, 2)}\n`);
  } finally {
    await file.close();
  }
}

/** Reads a key file; `KEYFILE_INSECURE` if others can read it, `KEYFILE_NOT_FOUND` if missing. */
export async function readKeyFile(path: string, passphrase?: string): Promise<KeySet> {
  let text: string;
  try {
    const info = await stat(path);
    if ((info.mode & 0o077) !== 0 && process.platform !== 'win32') {
      throw new DatagrantError('KEYFILE_INSECURE', `${path} is readable by group or others: chmod 600 it`);
    }
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof DatagrantError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DatagrantError('KEYFILE_NOT_FOUND', `${path} does not exist`);
    }
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new DatagrantError('KEYFILE_MALFORMED', `${path} is not JSON`);
  }
  return decodeKeyFile(json, passphrase);
}
