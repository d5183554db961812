import t from 'tap';
import { lookupJsonPath, parseJsonPath } from '../../../src/plugins/json-path.js';

t.test('parses dotted and bracketed paths', async (t) => {
  t.same(parseJsonPath('data.monthlyContribution'), ['data', 'monthlyContribution']);
  t.same(parseJsonPath('items[0].amount'), ['items', 0, 'amount']);
  t.same(parseJsonPath('items.1.amount'), ['items', 1, 'amount']);
  t.same(parseJsonPath('grid[1][2]'), ['grid', 1, 2]);
  for (const bad of ['', '.a', 'a.', 'a..b', 'a[x]', 'a b']) {
    t.throws(() => parseJsonPath(bad), /invalid JSON path/, `refuses ${JSON.stringify(bad)}`);
  }
});

t.test('follows own properties and array indexes only', async (t) => {
  const doc = JSON.parse('{"data":{"a":1,"n":null,"list":[{"x":"y"}]}}');
  t.same(lookupJsonPath(doc, parseJsonPath('data.a')), { found: true, value: 1 });
  t.same(lookupJsonPath(doc, parseJsonPath('data.n')), { found: true, value: null });
  t.same(lookupJsonPath(doc, parseJsonPath('data.list[0].x')), { found: true, value: 'y' });
  t.same(lookupJsonPath(doc, parseJsonPath('data.list[1].x')), { found: false });
  t.same(lookupJsonPath(doc, parseJsonPath('data.missing')), { found: false });
  t.same(lookupJsonPath(doc, parseJsonPath('data.a.b')), { found: false });
  t.same(lookupJsonPath(doc, parseJsonPath('data.constructor')), { found: false }, 'no prototype walk');
  t.same(lookupJsonPath(doc, parseJsonPath('data.__proto__')), { found: false });
  t.same(lookupJsonPath(doc, parseJsonPath('data.list.length')), { found: false }, 'no array properties');
});
