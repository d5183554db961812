/**
 * Serving the built web pages: content types, the pages' security headers, the redirects, no way
 * out of the build folder, a coded 503 when nothing is built, and the /v1 API's JSON 404 intact.
 * Runs against a stand-in build folder with app.inject (no browser needed).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createApi } from '../../src/api/server.js';
import { webRoutes } from '../../src/api/web-routes.js';
import { silentLogger } from '../../src/common/logger.js';

async function app(root: string) {
  const api = await createApi({ bodyLimit: 1024, logger: silentLogger });
  api.get('/v1/ping', async () => ({ ok: true }));
  await webRoutes(api, { root });
  await api.ready();
  return api;
}

t.test('serves the pages and assets of a build', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-web-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const root = join(dir, 'dist');
  for (const page of ['portal', 'explorer']) {
    await mkdir(join(root, page), { recursive: true });
    await writeFile(join(root, page, 'index.html'), `<!doctype html><title>${page}</title>`);
  }
  await mkdir(join(root, 'assets'));
  await writeFile(join(root, 'assets', 'portal-abc123.js'), 'console.log(1);');
  await writeFile(join(root, 'assets', 'style-abc123.css'), 'body{}');
  await writeFile(join(dir, 'secret.txt'), 'outside the build');
  const api = await app(root);
  t.teardown(() => api.close());

  const root302 = await api.inject({ method: 'GET', url: '/' });
  t.equal(root302.statusCode, 302, '/ redirects');
  t.equal(root302.headers.location, 'portal/', 'to the portal, relative so a proxy prefix survives');
  for (const page of ['portal', 'explorer']) {
    const bare = await api.inject({ method: 'GET', url: `/${page}` });
    t.equal(bare.statusCode, 301, `/${page} redirects to the folder`);
    t.equal(bare.headers.location, `${page}/`);
    for (const url of [`/${page}/`, `/${page}/index.html`]) {
      const r = await api.inject({ method: 'GET', url });
      t.equal(r.statusCode, 200, `${url} is served`);
      t.equal(r.headers['content-type'], 'text/html; charset=utf-8', `${url} is HTML`);
      t.equal(r.body, `<!doctype html><title>${page}</title>`, `${url} body`);
      const csp = String(r.headers['content-security-policy']);
      t.match(csp, /script-src 'self'/, `${url} has a CSP`);
      t.notMatch(csp, /unsafe-eval|unsafe-inline/, `${url} CSP allows no eval or inline code`);
      t.match(csp, /frame-ancestors 'none'/, `${url} cannot be framed`);
      t.equal(r.headers['cache-control'], 'no-cache', `${url} is revalidated`);
    }
  }
  const js = await api.inject({ method: 'GET', url: '/assets/portal-abc123.js' });
  t.equal(js.statusCode, 200);
  t.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
  t.match(String(js.headers['cache-control']), /immutable/, 'hashed assets are cached for good');
  t.equal(js.headers['x-content-type-options'], 'nosniff');
  const css = await api.inject({ method: 'GET', url: '/assets/style-abc123.css' });
  t.equal(css.headers['content-type'], 'text/css; charset=utf-8');
  const head = await api.inject({ method: 'HEAD', url: '/assets/portal-abc123.js' });
  t.equal(head.statusCode, 200, 'HEAD works');

  for (const url of [
    '/assets/..%2Fsecret.txt',
    '/assets/..%2F..%2Fsecret.txt',
    '/assets/%2e%2e%2fsecret.txt',
    '/assets/../secret.txt',
    '/assets/.hidden',
    '/assets/missing.js',
    '/portal/../secret.txt',
    '/portal/other.html',
    '/secret.txt',
  ]) {
    const r = await api.inject({ method: 'GET', url });
    t.equal(r.statusCode, 404, `${url} is not found`);
    t.notMatch(r.body, /outside the build/, `${url} does not leak a file`);
    t.equal(r.json().error.code, 'API_NOT_FOUND', `${url} answers the coded JSON 404`);
  }

  const v1 = await api.inject({ method: 'GET', url: '/v1/nope' });
  t.equal(v1.statusCode, 404, 'unknown API routes still 404');
  t.same(v1.json(), { error: { code: 'API_NOT_FOUND', message: 'no route GET /v1/nope' } }, 'as coded JSON');
  t.same((await api.inject({ method: 'GET', url: '/v1/ping' })).json(), { ok: true }, 'API routes work');
  const openapi = (await api.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<string, unknown>;
  };
  t.notOk(
    Object.keys(openapi.paths).some((p) => p.startsWith('/portal') || p.startsWith('/assets')),
    'web routes stay out of the OpenAPI document',
  );
});

t.test('a node without a build answers a coded 503', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-web-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const api = await app(join(dir, 'missing-dist'));
  t.teardown(() => api.close());
  for (const url of ['/portal/', '/explorer/', '/assets/portal-abc123.js']) {
    const r = await api.inject({ method: 'GET', url });
    t.equal(r.statusCode, 503, `${url} is 503`);
    t.equal(r.json().error.code, 'API_WEB_NOT_BUILT', `${url} names the cause`);
    t.match(r.json().error.message, /npm run build:web/, `${url} says how to fix it`);
  }
  t.equal((await api.inject({ method: 'GET', url: '/v1/ping' })).statusCode, 200, 'the API is unaffected');
});
