#!/usr/bin/env node
// Entry point of the `datagrant` command. It runs the compiled sources in build/ (`npm run
// build:node`) when they are at least as new as every file under src/, and otherwise the
// TypeScript sources through tsx, so an edit is never run stale. DATAGRANT_FROM_SOURCE=1 forces
// the sources. Shims (src/common/polyfill) load before anything else either way.
import { readdirSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);

/** Newest modification time (ms) of the files under `dir`. */
function newest(dir) {
  let max = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = new URL(entry.name + (entry.isDirectory() ? '/' : ''), dir);
    max = Math.max(max, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return max;
}

function builtIsFresh() {
  if (process.env.DATAGRANT_FROM_SOURCE === '1') return false;
  try {
    return statSync(new URL('build/.stamp', root)).mtimeMs >= newest(new URL('src/', root));
  } catch {
    return false;
  }
}

if (builtIsFresh()) {
  await import('../build/common/polyfill.js');
  const { main } = await import('../build/cli/main.js');
  await main(process.argv);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/common/polyfill.ts');
  const { main } = await import('../src/cli/main.ts');
  await main(process.argv);
}
