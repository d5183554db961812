/** Human wording shared by the portal and the explorer: data types, statuses, times, hashes, errors. */
import { type Child, h } from './dom.js';

const TYPE_LABELS: Record<string, string> = {
  'social-insurance': 'Social insurance',
  tax: 'Tax',
  'housing-fund': 'Housing fund',
  property: 'Property',
};

/** Display name of a data type. */
export function typeLabel(type: string): string {
  return TYPE_LABELS[type] ?? type;
}

/** Display names of data types, comma separated. */
export function typesLabel(types: readonly string[]): string {
  return types.map(typeLabel).join(', ');
}

const STATUS: Record<string, { label: string; tone: 'good' | 'wait' | 'bad' | '' }> = {
  'waiting-for-data': { label: 'waiting for data', tone: 'wait' },
  'waiting-for-consent': { label: 'waiting for your decision', tone: 'wait' },
  granted: { label: 'granted', tone: 'good' },
  delivered: { label: 'granted, data used', tone: 'good' },
  paused: { label: 'paused', tone: 'wait' },
  denied: { label: 'denied', tone: 'bad' },
  expired: { label: 'expired', tone: '' },
  revoked: { label: 'revoked', tone: 'bad' },
  'used-up': { label: 'all uses spent', tone: '' },
  failed: { label: 'no data could be extracted', tone: 'bad' },
  erased: { label: 'data erased', tone: '' },
};

/** A status badge for a request status. */
export function statusBadge(status: string): HTMLElement {
  const s = STATUS[status] ?? { label: status, tone: '' };
  return h('span', { class: `badge ${s.tone}`, 'data-status': status }, s.label);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** A <time> element for a unix-ms instant. */
export function timeEl(ms: number): HTMLTimeElement {
  const d = new Date(ms);
  return h('time', { datetime: d.toISOString() }, dateTime.format(d));
}

/** "in 3 days", "5 minutes ago". */
export function fromNow(ms: number, now = Date.now()): string {
  const diff = ms - now;
  const abs = Math.abs(diff);
  const units: [Intl.RelativeTimeFormatUnit, number][] = [
    ['day', 86_400_000],
    ['hour', 3_600_000],
    ['minute', 60_000],
    ['second', 1000],
  ];
  for (const [unit, size] of units) {
    if (abs >= size || unit === 'second') return relative.format(Math.round(diff / size), unit);
  }
  return '';
}

/** First and last characters of a hex string. */
export function short(hex: string, keep = 8): string {
  return hex.length <= keep * 2 + 1 ? hex : `${hex.slice(0, keep)}…${hex.slice(-4)}`;
}

/** A <code> with a shortened hash and the full one in its title. */
export function hashEl(hex: string, keep = 8): HTMLElement {
  return h('code', { title: hex }, short(hex, keep));
}

const FRIENDLY: Record<string, string> = {
  KEYFILE_BAD_PASSPHRASE: 'Wrong passphrase, or the key file was altered.',
  KEYFILE_PASSPHRASE_REQUIRED: 'This key file is sealed: enter its passphrase.',
  KEYFILE_MALFORMED: 'This file is not a datagrant key file.',
  KEYFILE_TAMPERED: 'This key file is damaged: its public and secret keys do not match.',
  PORTAL_KEY_MISMATCH: 'This key file belongs to another subject.',
  PLATFORM_SUBJECT_NOT_FOUND: 'No subject with this id is registered on this chain.',
  PORTAL_NODE_UNREACHABLE: 'The node cannot be reached.',
  CRYPTO_UNWRAP_FAILED: "Your key cannot open this request's data keys.",
  GRANT_RECORD_MISSING: 'Some of the chosen data has not been extracted yet.',
  LEDGER_TX_REPLAYED: 'This decision was already submitted.',
  API_WEB_NOT_BUILT: 'The web pages are not built on this node.',
};

// Codes whose own message adds something (which subject, which file problem, which record).
const WITH_DETAIL = new Set([
  'PORTAL_KEY_MISMATCH',
  'KEYFILE_MALFORMED',
  'GRANT_RECORD_MISSING',
  'PORTAL_NODE_UNREACHABLE',
]);

function capitalize(text: string): string {
  const t = text.endsWith('.') ? text : `${text}.`;
  return t.charAt(0).toUpperCase() + t.slice(1);
}

/** Code and message of any error, for display. */
export function describeError(err: unknown): { code: string; message: string } {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : 'PORTAL_UNEXPECTED';
  const detail = typeof e?.message === 'string' ? e.message : String(err);
  const friendly = FRIENDLY[code];
  if (!friendly) return { code, message: detail };
  return { code, message: WITH_DETAIL.has(code) ? `${friendly} ${capitalize(detail)}` : friendly };
}

/** A term and its value in a <dl>, the term also as `data-fact` on the value (the key the tests read). */
export function fact(label: string, value: Child, name?: string): Child[] {
  return [h('dt', null, label), h('dd', { 'data-fact': name }, value)];
}

/** A notice element; errors are announced immediately (role=alert), the rest politely. */
export function notice(kind: 'ok' | 'error' | 'info' | 'warn', text: string, code?: string): HTMLElement {
  return h(
    'p',
    { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-code': code },
    text,
    code ? [' ', h('code', null, code)] : null,
  );
}

/** An error notice for `err`: its friendly message and its code. */
export function errorNotice(err: unknown, prefix = ''): HTMLElement {
  const { code, message } = describeError(err);
  return notice('error', `${prefix}${message}`, code);
}
