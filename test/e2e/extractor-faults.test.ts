/**
 * Extractor faults end to end on the dev chain: a data source that is down, slow or returns
 * garbage ends in `record.fail` with a reason the institution can read, nothing hangs, and an
 * institution following the request over server-sent events sees each change live.
 */
import '../../src/common/polyfill.js';
import t from 'tap';
import { registerSubject, startDevNode } from '../helpers/dev-node.js';

t.test('data source down, slow or garbage → record.fail with a reason; live events', async (t) => {
  const dev = await startDevNode(t, {
    chain: 'datagrant-xfault',
    // The healthy source fails once and answers the retry, so its record.put lands while the stream is open.
    faults: {
      property: { down: true },
      tax: { slowMs: 5000 },
      'housing-fund': { garbage: 'not-json' },
      'social-insurance': { flaky: 1 },
    },
    extractor: { timeoutMs: 300, retries: 1 },
  });
  const { api, source } = dev;
  await registerSubject(api, dev.genesis, dev.registrar, 'bob-0002');

  const started = Date.now();
  const client = dev.client();
  const view = await client.openRequest({
    subject: 'bob-0002',
    types: ['property', 'tax', 'housing-fund', 'social-insurance'],
    purpose: 'fault drill',
    format: 'json',
    fields: {},
  });

  // Follow it live.
  const events: string[] = [];
  const controller = new AbortController();
  const stream = (async () => {
    for await (const e of client.follow(view.id, { signal: controller.signal })) events.push(e.event);
  })();
  stream.catch(() => {});
  const unsigned = await fetch(`${api}/v1/requests/${view.id}/events`);
  t.equal(unsigned.status, 401, 'the event stream of a request is not served to an unsigned reader');

  const done = await client.waitFor(view.id, ['waiting-for-consent', 'failed'], { timeoutMs: 30_000 });
  const elapsed = Date.now() - started;
  const reasons = Object.fromEntries(done.failures.map((f) => [f.type, f.reason]));
  t.same(
    reasons,
    { property: 'PLUGIN_UNAVAILABLE', tax: 'PLUGIN_TIMEOUT', 'housing-fund': 'PLUGIN_BAD_RESPONSE' },
    'each fault ends in record.fail with its reason',
  );
  t.equal(done.records.length, 1, 'the healthy source still delivered social-insurance');
  t.equal(done.status, 'waiting-for-consent', 'a partial extraction can still be granted');
  t.pass(`nothing hung: every type settled (in ${elapsed} ms; the 30 s wait above is the hang guard)`);
  t.ok(source.requestCount('property') >= 2, 'the unavailable source was retried');
  t.equal(source.requestCount('housing-fund'), 1, 'garbage is not retried');
  for (const f of done.failures)
    t.notMatch(f.detail, /\d{17}[\dX]/, `failure detail of ${f.type} carries no ID number`);

  for (let i = 0; i < 50 && !events.includes('record.put'); i++) await new Promise((r) => setTimeout(r, 100));
  controller.abort();
  t.ok(events[0] === 'state', 'the event stream opens with the current state');
  t.ok(
    events.includes('record.fail') && events.includes('record.put'),
    `live events seen: ${[...new Set(events)].join(', ')}`,
  );
});
