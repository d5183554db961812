/** Event streams are bounded per node: past the bound a new one is refused with a code, and a closed one frees its slot. */
import t from 'tap';
import { openEventStream, openEventStreams } from '../../../src/api/event-stream.js';
import { createApi } from '../../../src/api/server.js';
import { silentLogger } from '../../../src/common/logger.js';

t.test('at most maxEventStreams open at once', async (t) => {
  const app = await createApi({
    bodyLimit: 4096,
    logger: silentLogger,
    rateLimit: false,
    maxEventStreams: 2,
  });
  app.get('/events', async (request, reply) => {
    openEventStream(request, reply, (send) => {
      send('hello', { ok: true });
      return () => {};
    });
  });
  const url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/events`;
  t.teardown(() => app.close());
  const first = new AbortController();
  const second = new AbortController();
  const a = await fetch(url, { signal: first.signal });
  const b = await fetch(url, { signal: second.signal });
  t.same([a.status, b.status], [200, 200], 'two streams open');
  t.equal(openEventStreams(app), 2);
  const third = await fetch(url);
  t.equal(third.status, 503, 'a third is refused');
  t.equal(((await third.json()) as { error: { code: string } }).error.code, 'API_TOO_MANY_STREAMS');
  t.ok(third.headers.get('retry-after'), 'with Retry-After');
  first.abort();
  for (let i = 0; i < 100 && openEventStreams(app) > 1; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(openEventStreams(app), 1, 'a closed stream frees its slot');
  const again = new AbortController();
  const c = await fetch(url, { signal: again.signal });
  t.equal(c.status, 200, 'and a new one is served');
  second.abort();
  again.abort();
});
