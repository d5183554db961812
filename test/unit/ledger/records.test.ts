import t from 'tap';
import { type GrantState, type RequestState, requestStatus } from '../../../src/ledger/index.js';

const NOW = 1_700_000_000_000;
const request = (over: Partial<RequestState> = {}): RequestState => ({
  id: 'r',
  institution: 'bank-0',
  subject: 'subject-0',
  types: ['tax', 'property'],
  purpose: 'p',
  format: 'json',
  fields: {},
  consentBy: NOW + 1000,
  openedAt: NOW - 1000,
  height: 1,
  records: {},
  failures: {},
  decision: 'pending',
  erased: false,
  ...over,
});
const grant = (over: Partial<GrantState> = {}): GrantState => ({
  id: 'g',
  request: 'r',
  subject: 'subject-0',
  institution: 'bank-0',
  granteeKey: 'ee'.repeat(32),
  types: ['tax'],
  purpose: 'p',
  expires: NOW + 1000,
  uses: 2,
  used: 0,
  retainDays: 0,
  keys: [],
  paused: false,
  revoked: false,
  grantedAt: NOW - 10,
  height: 2,
  ...over,
});
const failure = { reason: 'SOURCE_DOWN', detail: '', extractor: 'x', height: 1 };

t.test('requestStatus covers every status', async (t) => {
  const granted = request({ decision: 'granted', records: { tax: 'd1', property: 'd2' } });
  const cases: [string, RequestState, GrantState | undefined, string][] = [
    ['nothing extracted yet', request(), undefined, 'waiting-for-data'],
    ['one of two extracted', request({ records: { tax: 'd1' } }), undefined, 'waiting-for-data'],
    ['all extracted', request({ records: { tax: 'd1', property: 'd2' } }), undefined, 'waiting-for-consent'],
    [
      'one extracted, one failed',
      request({ records: { tax: 'd1' }, failures: { property: failure } }),
      undefined,
      'waiting-for-consent',
    ],
    ['all failed', request({ failures: { tax: failure, property: failure } }), undefined, 'failed'],
    ['consent deadline reached', request({ consentBy: NOW }), undefined, 'expired'],
    ['denied', request({ decision: 'denied' }), undefined, 'denied'],
    ['denied and past deadline', request({ decision: 'denied', consentBy: NOW - 1 }), undefined, 'denied'],
    ['granted, unused', granted, grant(), 'granted'],
    ['granted, used once', granted, grant({ used: 1 }), 'delivered'],
    ['granted, used up', granted, grant({ used: 2 }), 'used-up'],
    ['granted, paused', granted, grant({ paused: true }), 'paused'],
    ['granted, expired at now', granted, grant({ expires: NOW }), 'expired'],
    ['granted, revoked', granted, grant({ revoked: true, used: 2 }), 'revoked'],
    ['granted, past the consent deadline', request({ ...granted, consentBy: NOW - 1 }), grant(), 'granted'],
    ['erased', request({ erased: true, decision: 'granted' }), grant({ revoked: true }), 'erased'],
    ['erased while pending', request({ erased: true }), undefined, 'erased'],
  ];
  for (const [name, req, g, want] of cases) t.equal(requestStatus(req, g, NOW), want, name);
});
