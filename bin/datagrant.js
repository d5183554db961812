#!/usr/bin/env node
// Entry point of the `datagrant` command: shims first, then TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../src/common/polyfill.ts');
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
