/** Reading a chain's `genesis.json` from disk: a light module the CLI loads without the node. */
import { readFile } from 'node:fs/promises';
import { DatagrantError } from '../common/errors.js';
import { type Genesis, parseGenesis } from '../ledger/genesis.js';

/** Reads and validates a genesis file. */
export async function readGenesis(path: string): Promise<Genesis> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new DatagrantError(
      'LEDGER_GENESIS_INVALID',
      `cannot read genesis ${path}: ${(err as Error).message}`,
    );
  }
  return parseGenesis(json);
}
