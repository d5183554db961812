/** The `datagrant` command line in end-to-end tests: one call, its exit code and output. */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The CLI's entry point (compiled when `build/` is current, else TypeScript through tsx). */
export const BIN = resolve('bin/datagrant.js');

/** What one CLI call gave. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `datagrant <args>` (60 s at most) and returns its exit code and output; never throws for a non-zero exit. */
export async function cli(args: string[]): Promise<CliResult> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
