/**
 * Build of the individual portal and the explorer: two pages with relative asset paths (the node
 * serves them under /portal/ and /explorer/ and redirects / to the portal), no CDN, nothing
 * fetched at run time but the node's own API.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: './',
  publicDir: false,
  logLevel: 'warn',
  resolve: {
    // TypeBox's compiler generates code with `new Function`, which the pages' Content-Security-Policy
    // forbids; in the browser the same schemas are checked by TypeBox's interpreter instead.
    alias: [{ find: /^@sinclair\/typebox\/compiler$/, replacement: here('src/shims/typebox-compiler.ts') }],
  },
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    modulePreload: { polyfill: false },
    rollupOptions: {
      input: {
        portal: here('portal/index.html'),
        explorer: here('explorer/index.html'),
      },
      output: {
        chunkFileNames: 'assets/shared-[hash].js',
        assetFileNames: 'assets/style-[hash][extname]',
      },
    },
  },
});
