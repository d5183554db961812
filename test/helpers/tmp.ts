/** Temporary directories for tests: fresh per call, removed when the test ends. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Something with tap's `teardown` (a `Test`). */
export interface HasTeardown {
  teardown(fn: () => unknown): void;
}

/** Creates an empty directory under the OS temp dir and removes it (recursively) at `t`'s teardown. */
export async function makeTempDir(t: HasTeardown, prefix = 'datagrant-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
