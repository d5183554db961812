/** Where the CLI takes key-file passphrases from: a file, or the DATAGRANT_PASSPHRASE variable. */
import { readFile } from 'node:fs/promises';

/** Passphrase from --passphrase-file or the DATAGRANT_PASSPHRASE environment variable. */
export async function passphraseFrom(options: { passphraseFile?: string }): Promise<string | undefined> {
  if (options.passphraseFile) return (await readFile(options.passphraseFile, 'utf8')).replace(/\r?\n$/, '');
  return process.env.DATAGRANT_PASSPHRASE || undefined;
}
