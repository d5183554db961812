/**
 * A validator's signing state — the consensus write-ahead snapshot of everything it signed at the
 * height being decided — kept in its own file beside the node home, apart from the block data, so
 * losing one does not lose the other. Written atomically and durably (temporary file, fsync,
 * rename, fsync of the folder) before any signed message leaves the node.
 *
 * A validator whose signing state is missing (a wiped or restored home) cannot know what it signed
 * before: the consensus driver then follows the chain without voting until it is past every
 * height it could have voted on (see `PbftDriver`'s double-sign check).
 */
import { open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DatagrantError } from '../common/errors.js';

/** Default file of the signing state, in the node home (beside `data/`, not in it). */
export const SIGNING_STATE_FILE = 'signing-state.json';

/** Where a validator keeps its signing state. */
export interface SigningStateStore {
  /** `present` is false when there is no signing state at all; `wal` is the last snapshot saved. */
  load(): Promise<{ present: boolean; wal?: string }>;
  /** Saves a snapshot durably (or `null`: a validator that has signed nothing yet). */
  save(wal: string | null): Promise<void>;
}

interface SigningFile {
  v: 1;
  wal: string | null;
}

/** The signing state in one JSON file. */
export class FileSigningState implements SigningStateStore {
  constructor(readonly path: string) {}

  async load(): Promise<{ present: boolean; wal?: string }> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { present: false };
      throw err;
    }
    let parsed: SigningFile;
    try {
      parsed = JSON.parse(text) as SigningFile;
    } catch {
      throw new DatagrantError(
        'CONSENSUS_SIGNING_STATE_CORRUPT',
        `${this.path} is not JSON: refusing to guess what was signed`,
      );
    }
    if (parsed?.v !== 1 || (parsed.wal !== null && typeof parsed.wal !== 'string'))
      throw new DatagrantError('CONSENSUS_SIGNING_STATE_CORRUPT', `${this.path} is not a signing state file`);
    return { present: true, ...(parsed.wal !== null ? { wal: parsed.wal } : {}) };
  }

  async save(wal: string | null): Promise<void> {
    const body = `${JSON.stringify({ v: 1, wal } satisfies SigningFile)}\n`;
    const tmp = `${this.path}.tmp`;
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(body);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.path);
    const dir = await open(dirname(this.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

/** A signing state in memory, for tests (`present` unless made `absent`, as after a wipe). */
export class MemorySigningState implements SigningStateStore {
  wal: string | null | undefined;

  constructor(options: { absent?: boolean } = {}) {
    this.wal = options.absent ? undefined : null;
  }

  async load(): Promise<{ present: boolean; wal?: string }> {
    if (this.wal === undefined) return { present: false };
    return { present: true, ...(this.wal !== null ? { wal: this.wal } : {}) };
  }

  async save(wal: string | null): Promise<void> {
    this.wal = wal;
  }
}
