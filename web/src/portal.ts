/**
 * The individual's portal: open a key file in the page, see the requests about you, grant (with
 * narrowed types, expiry and use count) or deny them, pause, resume or revoke grants, erase a
 * request's data, and read the access history with every entry verified in this browser.
 * What a request asks, the institution's name and key and a grant's status are proven in this
 * browser by the light client (docs/light-client.md) and marked verified; a node whose answer
 * does not verify is named as lying and nothing is signed on its word. The key never leaves the
 * page: only signed transactions are sent to the node. A person whose subject id is not on the
 * chain yet registers here with her registrar's one-time code (registration.ts).
 */
import { bytesToHex } from '../../src/common/bytes.js';
import { DatagrantError } from '../../src/common/errors.js';
import type { KeySet } from '../../src/common/keyfile.js';
import { quorumSize } from '../../src/ledger/genesis.js';
import { type Blame, nodeLabel, requestViewFaults, type ViewFault } from '../../src/ledger/light-client.js';
import {
  type GrantState,
  type InstitutionState,
  type RequestState,
  type SubjectState,
  stateKey,
} from '../../src/ledger/records.js';
import type { AnyTx, DataType, Tx } from '../../src/ledger/tx.js';
import type { SignContext } from '../../src/platform/consent.js';
import type { AuditEntry, RequestView } from '../../src/platform/views.js';
import { ApiError, apiBase, getJson, onBlocks, signedGetJson, submitTx, waitForCommit } from './api.js';
import { byId, type Child, fill, h, nextPaint } from './dom.js';
import {
  errorNotice,
  fromNow,
  hashEl,
  notice,
  short,
  statusBadge,
  timeEl,
  typeLabel,
  typesLabel,
} from './format.js';
import {
  pinMismatch,
  setPin,
  type TrustedGenesis,
  trustedGenesis,
  type Verification,
  verifyEntry,
} from './proofs.js';
import { askRegistrar, checkAttestation, registrarUrl, signRegistration } from './registration.js';
import {
  checkSubjectKeys,
  installSigningHook,
  openKeyFile,
  readKeyFileJson,
  signDecision,
  signGrant,
  wipeKeys,
} from './signing.js';

const SUBJECT_KEY = 'datagrant.subject';
const REGISTRAR_KEY = 'datagrant.registrarUrl';
const ID_RE = /^[a-z0-9][a-z0-9-]{2,63}$/;
const PENDING = new Set(['waiting-for-consent', 'waiting-for-data']);
const EXPIRY_CHOICES: [number, string][] = [
  [3_600_000, '1 hour'],
  [86_400_000, '1 day'],
  [7 * 86_400_000, '7 days'],
  [30 * 86_400_000, '30 days'],
  [90 * 86_400_000, '90 days'],
];

const el = {
  form: byId<HTMLFormElement>('unlock-form'),
  subject: byId<HTMLInputElement>('subject'),
  keyfile: byId<HTMLInputElement>('keyfile'),
  passphrase: byId<HTMLInputElement>('passphrase'),
  unlock: byId<HTMLButtonElement>('unlock-button'),
  loaded: byId('key-loaded'),
  registerForm: byId<HTMLFormElement>('register-form'),
  registerSubject: byId('register-subject'),
  registrarUrl: byId<HTMLInputElement>('registrar-url'),
  registrarCode: byId<HTMLInputElement>('registrar-code'),
  registerButton: byId<HTMLButtonElement>('register-button'),
  registerCancel: byId<HTMLButtonElement>('register-cancel'),
  summary: byId('key-summary'),
  keyNotice: byId('key-notice'),
  refresh: byId<HTMLButtonElement>('refresh-button'),
  forget: byId<HTMLButtonElement>('forget-button'),
  pendingSection: byId('pending-section'),
  pendingNotice: byId('pending-notice'),
  pendingList: byId('pending-list'),
  grantsSection: byId('grants-section'),
  grantsNotice: byId('grants-notice'),
  grantsList: byId('grants-list'),
  historySection: byId('history-section'),
  genesisInfo: byId('genesis-info'),
  historyNotice: byId('history-notice'),
  historyList: byId<HTMLOListElement>('history-list'),
};

interface Session {
  subject: string;
  keys: KeySet;
}

let session: Session | null = null;
/** A key opened for a subject id the chain does not hold yet: the register step. */
let unregistered: Session | null = null;
let events: EventSource | null = null;
let requestsById = new Map<string, RequestView>();
const institutions = new Map<string, Promise<InstitutionState>>();
const institutionNames = new Map<string, string>();
const pendingCards = new Map<string, { sig: string; el: HTMLElement }>();
const grantCards = new Map<string, { sig: string; el: HTMLElement }>();
const verifications = new Map<string, Verification>();
let historySig = '';

installSigningHook();
try {
  el.subject.value = window.localStorage.getItem(SUBJECT_KEY) ?? '';
  el.registrarUrl.value = window.localStorage.getItem(REGISTRAR_KEY) ?? '';
} catch {
  // Storage may be disabled; the subject id is then typed each time.
}
el.form.addEventListener('submit', (event) => {
  event.preventDefault();
  void unlock();
});
el.registerForm.addEventListener('submit', (event) => {
  event.preventDefault();
  void register();
});
el.registerCancel.addEventListener('click', forget);
el.forget.addEventListener('click', forget);
el.refresh.addEventListener('click', () => void refresh());

async function unlock(): Promise<void> {
  el.keyNotice.replaceChildren();
  const subject = el.subject.value.trim();
  if (!ID_RE.test(subject)) {
    fill(
      el.keyNotice,
      notice(
        'error',
        'Enter your subject id: 3 to 64 lower-case letters, digits or dashes.',
        'PORTAL_BAD_SUBJECT',
      ),
    );
    el.subject.focus();
    return;
  }
  const file = el.keyfile.files?.[0];
  if (!file) {
    fill(el.keyNotice, notice('error', 'Choose your key file.', 'PORTAL_NO_KEY_FILE'));
    el.keyfile.focus();
    return;
  }
  el.unlock.disabled = true;
  fill(el.keyNotice, notice('info', 'Opening your key in this page…'));
  await nextPaint();
  let keys: KeySet | undefined;
  try {
    keys = openKeyFile(await readKeyFileJson(file), el.passphrase.value);
    const registered = await getJson<SubjectState>(`v1/subjects/${subject}`);
    checkSubjectKeys(keys, registered, subject);
  } catch (err) {
    if (keys && err instanceof ApiError && err.code === 'PLATFORM_SUBJECT_NOT_FOUND') {
      // Her key is open but her subject id is not on the chain: offer to register it.
      el.unlock.disabled = false;
      el.passphrase.value = '';
      el.keyfile.value = '';
      showRegister({ subject, keys });
      return;
    }
    if (keys) wipeKeys(keys);
    // Extractor-only nodes serve the pages and the chain API but not the subjects' API.
    const notPlatform = err instanceof ApiError && err.code === 'API_NOT_FOUND';
    fill(
      el.keyNotice,
      notPlatform
        ? notice(
            'error',
            'This node does not serve subjects (it is not a platform node): open the portal on a platform node.',
            'PORTAL_NOT_A_PLATFORM',
          )
        : errorNotice(err),
    );
    el.unlock.disabled = false;
    if ((err as { code?: string }).code === 'KEYFILE_BAD_PASSPHRASE') el.passphrase.select();
    return;
  }
  el.unlock.disabled = false;
  el.passphrase.value = '';
  el.keyfile.value = '';
  await startSession(subject, keys, `Key loaded: it matches the keys registered for ${subject}.`);
}

/** The register step: her key is open, her subject id is not registered yet. */
function showRegister(s: Session): void {
  unregistered = s;
  el.form.hidden = true;
  el.registerForm.hidden = false;
  fill(el.registerSubject, s.subject);
  fill(
    el.keyNotice,
    notice(
      'info',
      `${s.subject} is not registered on this chain: register it with the one-time code your registrar gave you.`,
      'PLATFORM_SUBJECT_NOT_FOUND',
    ),
  );
  (el.registrarUrl.value === '' ? el.registrarUrl : el.registrarCode).focus();
}

/**
 * Registers the open key's subject id: asks the registrar service for its attestation, checks it
 * in this page (her keys, her subject id, a genesis registrar), and only then signs
 * `subject.register` and submits it. On any refusal nothing is signed and the code is shown.
 */
async function register(): Promise<void> {
  const u = unregistered;
  if (!u) return;
  const code = el.registrarCode.value.trim();
  el.registerButton.disabled = true;
  try {
    const base = registrarUrl(el.registrarUrl.value);
    if (code.length === 0)
      throw new DatagrantError('PORTAL_NO_CODE', 'Enter the one-time code of your registrar.');
    const trusted = await trustedGenesis();
    if (pinMismatch(trusted))
      throw new DatagrantError(
        'PORTAL_GENESIS_NOT_PINNED',
        'the node serves a different genesis than the one pinned in this browser',
      );
    fill(el.keyNotice, notice('info', 'Asking your registrar to attest your keys…'));
    const answer = await askRegistrar(base, trusted.genesis.chain, u.subject, u.keys, code);
    const checked = checkAttestation(trusted.genesis, u.subject, u.keys, answer);
    try {
      window.localStorage.setItem(REGISTRAR_KEY, base.href);
    } catch {
      // Not remembered; typed again next time.
    }
    fill(el.keyNotice, notice('info', 'Attestation checked: signing your registration in this page…'));
    const hash = await submitTx(signRegistration(trusted.genesis.chain, u.subject, u.keys, checked));
    const { height } = await waitForCommit(hash);
    checkSubjectKeys(u.keys, await getJson<SubjectState>(`v1/subjects/${u.subject}`), u.subject);
    if (unregistered !== u) return;
    unregistered = null;
    el.registerForm.hidden = true;
    el.registrarCode.value = '';
    el.registerButton.disabled = false;
    await startSession(
      u.subject,
      u.keys,
      `Registered: ${u.subject} is on the chain with your keys (height ${height}, tx ${hash.slice(0, 16)}…).`,
    );
  } catch (err) {
    el.registerButton.disabled = false;
    if (unregistered === u) fill(el.keyNotice, errorNotice(err, 'Not registered: '));
  }
}

/** Shows the requests view for an open key registered for `subject`. */
async function startSession(subject: string, keys: KeySet, message: string): Promise<void> {
  try {
    window.localStorage.setItem(SUBJECT_KEY, subject);
  } catch {
    // Not remembered; nothing else depends on it.
  }
  session = { subject, keys };
  el.form.hidden = true;
  el.loaded.hidden = false;
  fill(
    el.summary,
    'Key open for ',
    h('strong', { 'data-subject': subject }, subject),
    ' — signing key ',
    hashEl(bytesToHex(keys.signing.publicKey)),
    '. It stays in this page’s memory only; reloading the page or “Forget key” drops it.',
  );
  fill(el.keyNotice, notice('ok', message));
  for (const section of [el.pendingSection, el.grantsSection, el.historySection]) section.hidden = false;
  el.summary.focus();
  events = onBlocks(
    (block) => {
      if (block.txCount > 0) scheduleRefresh();
    },
    () => {},
  );
  await refresh();
}

function forget(): void {
  if (session) wipeKeys(session.keys);
  if (unregistered) wipeKeys(unregistered.keys);
  session = null;
  unregistered = null;
  el.registerForm.hidden = true;
  el.registerButton.disabled = false;
  events?.close();
  events = null;
  el.form.hidden = false;
  el.loaded.hidden = true;
  for (const section of [el.pendingSection, el.grantsSection, el.historySection]) section.hidden = true;
  for (const list of [el.pendingList, el.grantsList, el.historyList]) list.replaceChildren();
  pendingCards.clear();
  grantCards.clear();
  historySig = '';
  fill(el.keyNotice, notice('info', 'Key forgotten.'));
  el.subject.focus();
}

let refreshing: Promise<void> | null = null;
let refreshAgain = false;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;

function scheduleRefresh(): void {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => void refresh(), 150);
}

/** Reloads requests and history; concurrent calls coalesce into one more pass. */
function refresh(): Promise<void> {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      await loadOnce();
    } while (refreshAgain);
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** Whether the chain extracts only after consent (genesis `params.extraction`). */
let onConsent = false;

async function loadOnce(): Promise<void> {
  const s = session;
  if (!s) return;
  try {
    onConsent = (await trustedGenesis()).genesis.params.extraction === 'on-consent';
  } catch {
    // The history section reports a genesis that cannot be loaded.
  }
  try {
    const { requests } = await signedGetJson<{ requests: RequestView[] }>(
      `v1/subjects/${s.subject}/requests?all=true`,
      `subject:${s.subject}`,
      s.keys.signing.secretKey,
    );
    const [proven] = await Promise.all([
      Promise.all(requests.map((r) => proveView(s, r))),
      ...[...new Set(requests.map((r) => r.institution))].map((id) => institutionName(id)),
    ]);
    if (session !== s) return;
    requestsById = new Map(proven.map((p) => [p.view.id, p.view]));
    renderRequests(proven);
  } catch (err) {
    fill(el.pendingNotice, errorNotice(err, 'Your requests could not be loaded. '));
  }
  try {
    const trusted = await trustedGenesis();
    const entries: AuditEntry[] = [];
    for (let after: number | undefined; ; ) {
      const page: { entries: AuditEntry[]; next?: number } = await signedGetJson(
        `v1/subjects/${s.subject}/audit${after === undefined ? '' : `?after=${after}`}`,
        `subject:${s.subject}`,
        s.keys.signing.secretKey,
      );
      entries.push(...page.entries);
      if (page.next === undefined) break;
      after = page.next;
    }
    if (session !== s) return;
    renderHistory(trusted, entries);
  } catch (err) {
    fill(el.historyNotice, errorNotice(err, 'Your access history could not be loaded. '));
  }
}

/** The node's answer did not verify against genesis: it is lying (`code` PORTAL_NODE_LIED). */
class NodeLiedError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Who the portal's node is, by its name in genesis. */
async function nodeName(): Promise<string> {
  const [trusted, status] = await Promise.all([trustedGenesis(), getJson<{ self: string }>('v1/status')]);
  return trusted.names.get(status.self) ?? `the node with key ${status.self.slice(0, 16)}…`;
}

let blaming: Promise<Blame> | undefined;

/** The portal's node as a lie names it: PORTAL_NODE_LIED, its URL and its name in genesis. */
function blame(): Promise<Blame> {
  blaming ??= nodeName().then(
    (name) => ({ code: 'PORTAL_NODE_LIED', node: apiBase.href, name }),
    (err: unknown) => {
      blaming = undefined;
      throw err;
    },
  );
  return blaming;
}

/** The message that names the node as lying about `what`. */
function liedText(b: Blame, what: string, why: string): string {
  return `${nodeLabel(b)} gave facts about ${what} that do not verify against the genesis validators (${why}): it is lying. Nothing can be signed on its word; connect to another node.`;
}

/**
 * An institution as the chain holds it, proven in this browser by the light client against the
 * genesis validators (its name and the key a grant is wrapped to are never taken from the node's
 * word). On a chain whose headers commit to no provable state, what the node says.
 */
async function provenInstitution(id: string): Promise<InstitutionState> {
  const trusted = await trustedGenesis();
  if (!trusted.light.provable) return getJson<InstitutionState>(`v1/institutions/${id}`);
  if (pinMismatch(trusted))
    throw new Error('the node serves a different genesis than the one pinned in this browser');
  const b = await blame();
  try {
    const proven = await trusted.light.provenEntry<InstitutionState>(
      (path) => getJson(path.slice(1)),
      `/v1/state/institutions/${id}`,
      stateKey.institution(id),
      b,
    );
    if (!proven?.value)
      throw new NodeLiedError(`${id} is not registered on this chain.`, 'PORTAL_UNKNOWN_INSTITUTION');
    return proven.value;
  } catch (err) {
    if ((err as { code?: string }).code !== b.code) throw err;
    throw new NodeLiedError(
      liedText(b, id, String((err as { meta?: { proof?: string } }).meta?.proof)),
      b.code,
    );
  }
}

// ---- facts proven in this browser ----

/** One fact of a card (what a request asks, a grant's status) as this browser checked it. */
interface FactCheck {
  state: 'verified' | 'lied' | 'failed' | 'unprovable';
  text: string;
  code?: string;
}

/** A request as shown, with what this browser proved of it. */
interface ProvenView {
  view: RequestView;
  request: FactCheck;
  /** Present when the request is granted (on the node's word or the chain's). */
  grant?: FactCheck;
}

const UNPROVABLE: FactCheck = {
  state: 'unprovable',
  text: 'This chain commits to no provable state: shown as the node gives it.',
};

/**
 * Proves what a request asks and its grant's status in this browser: its entries on the chain
 * with their proofs against the genesis validators (light client), compared with what the node
 * shows. A mismatch is read once more before the node is called a liar (a block may commit
 * between the list and the proof).
 */
async function proveView(s: Session, v: RequestView): Promise<ProvenView> {
  const trusted = await trustedGenesis();
  const light = trusted.light;
  if (!light.provable) return { view: v, request: UNPROVABLE, ...(v.grant ? { grant: UNPROVABLE } : {}) };
  const failed = (text: string, code = 'PORTAL_UNVERIFIED'): FactCheck => ({ state: 'failed', text, code });
  if (pinMismatch(trusted)) {
    const f = failed(
      'The node serves a different genesis than the one pinned in this browser.',
      'PORTAL_GENESIS_NOT_PINNED',
    );
    return { view: v, request: f, ...(v.grant ? { grant: f } : {}) };
  }
  let b: Blame;
  try {
    b = await blame();
  } catch (err) {
    const f = failed(`The node could not be identified: ${(err as Error).message}`);
    return { view: v, request: f, ...(v.grant ? { grant: f } : {}) };
  }
  const caller = `subject:${s.subject}`;
  const get = (path: string) => signedGetJson<unknown>(path.slice(1), caller, s.keys.signing.secretKey);
  const lied = (what: string, why: string): FactCheck => ({
    state: 'lied',
    text: liedText(b, what, why),
    code: b.code,
  });
  const unverified = (what: string, err: unknown): FactCheck =>
    (err as { code?: string }).code === b.code
      ? lied(what, String((err as { meta?: { proof?: string } }).meta?.proof))
      : failed(`${what} could not be checked: ${(err as Error).message}`);
  let view = v;
  let faults: ViewFault[] = [];
  let heights = { request: 0, grant: 0 };
  for (let attempt = 0; attempt < 2; attempt++) {
    if (attempt > 0) {
      try {
        view = await signedGetJson<RequestView>(`v1/requests/${v.id}`, caller, s.keys.signing.secretKey);
      } catch (err) {
        const f = failed(`request ${v.id} could not be read again: ${(err as Error).message}`);
        return { view: v, request: f, ...(v.grant ? { grant: f } : {}) };
      }
    }
    let request: { value: RequestState | null; height: number; time: number } | undefined;
    try {
      request = await light.provenEntry<RequestState>(
        get,
        `/v1/state/requests/${view.id}`,
        stateKey.request(view.id),
        b,
      );
    } catch (err) {
      const r = unverified(`request ${view.id}`, err);
      const notChecked = failed('The grant was not checked: the request it belongs to did not verify.');
      return { view, request: r, ...(view.grant ? { grant: notChecked } : {}) };
    }
    const grantId = request?.value?.grant ?? view.grant?.id;
    let grant: { value: GrantState | null; height: number; time: number } | undefined;
    if (grantId) {
      try {
        grant = await light.provenEntry<GrantState>(
          get,
          `/v1/state/grants/${grantId}`,
          stateKey.grant(grantId),
          b,
        );
      } catch (err) {
        return {
          view,
          request: verifiedRequest(request!.height),
          grant: unverified(`the grant of request ${view.id}`, err),
        };
      }
    }
    heights = { request: request!.height, grant: grant?.height ?? 0 };
    faults = requestViewFaults(view, request!.value, grant?.value, {
      time: Math.min(request!.time, grant?.time ?? request!.time),
      now: Date.now(),
      policy: trusted.genesis.params.extraction ?? 'on-request',
    });
    if (faults.length === 0)
      return {
        view,
        request: verifiedRequest(heights.request),
        ...(grantId ? { grant: verifiedGrant(heights.grant) } : {}),
      };
  }
  const about = (fact: ViewFault['fact']) => faults.filter((f) => f.fact === fact).map((f) => f.what);
  const rf = about('request');
  const gf = about('grant');
  return {
    view,
    request:
      rf.length > 0
        ? lied(`request ${view.id}`, `shown otherwise: ${rf.join(', ')}`)
        : verifiedRequest(heights.request),
    ...(view.grant || gf.length > 0
      ? {
          grant:
            gf.length > 0
              ? lied(`the grant of request ${view.id}`, `shown otherwise: ${gf.join(', ')}`)
              : verifiedGrant(heights.grant),
        }
      : {}),
  };
}

function verifiedRequest(height: number): FactCheck {
  return {
    state: 'verified',
    text: `What is asked (the institution, the data, the purpose, the period and the deadline) was verified in this browser against the genesis validators (block ${height}).`,
  };
}

function verifiedGrant(height: number): FactCheck {
  return {
    state: 'verified',
    text: `The grant's status (valid until, uses left, paused or revoked) was verified in this browser against the genesis validators (block ${height}).`,
  };
}

/** The visible mark of one fact: verified, or the node named as lying. */
function factMark(fact: 'institution' | 'request' | 'grant', check: FactCheck): HTMLElement {
  const kind = check.state === 'verified' ? 'ok' : check.state === 'unprovable' ? 'warn' : 'error';
  const shown = notice(kind, `${check.state === 'verified' ? '✓ verified: ' : ''}${check.text}`, check.code);
  shown.dataset.fact = fact;
  shown.dataset.proof = check.state;
  return shown;
}

function institution(id: string): Promise<InstitutionState> {
  let p = institutions.get(id);
  if (!p) {
    p = provenInstitution(id);
    institutions.set(id, p);
    p.then(
      (inst) => institutionNames.set(id, inst.name),
      () => institutions.delete(id),
    );
  }
  return p;
}

async function institutionName(id: string): Promise<string> {
  try {
    return (await institution(id)).name;
  } catch {
    return id;
  }
}

function nameOf(institutionId: string): string {
  return institutionNames.get(institutionId) ?? institutionId;
}

// ---- requests ----

/** Awaiting her decision: not decided yet (under on-consent a granted request also waits for its data). */
function awaitingDecision(r: RequestView): boolean {
  return r.grant === undefined && r.denyReason === undefined && PENDING.has(r.status);
}

function renderRequests(requests: ProvenView[]): void {
  const pending = requests.filter((p) => awaitingDecision(p.view));
  const decided = requests.filter((p) => !awaitingDecision(p.view));
  sync(el.pendingList, pendingCards, pending, pendingCard, 'No requests are waiting for your decision.');
  sync(el.grantsList, grantCards, decided, decidedCard, 'You have not decided on any request yet.');
  const lie = requests.flatMap((p) => [p.request, p.grant]).find((c) => c?.state === 'lied');
  if (lie) {
    const shown = notice('error', lie.text, lie.code);
    shown.dataset.nodeLied = 'true';
    fill(el.pendingNotice, shown);
  } else el.pendingNotice.querySelector('[data-node-lied]')?.remove();
}

/** Keeps cards whose request did not change (so a half-filled form survives a refresh). */
function sync(
  container: HTMLElement,
  cards: Map<string, { sig: string; el: HTMLElement }>,
  items: ProvenView[],
  render: (p: ProvenView) => HTMLElement,
  empty: string,
): void {
  if (items.length === 0) {
    cards.clear();
    fill(container, h('p', { class: 'muted empty' }, empty));
    return;
  }
  const next = new Map<string, { sig: string; el: HTMLElement }>();
  const wanted: HTMLElement[] = [];
  for (const item of items) {
    const v = item.view;
    const sig = JSON.stringify([
      v.status,
      v.records.length,
      v.failures.length,
      v.grant ?? null,
      item.request.state,
      item.grant?.state ?? null,
    ]);
    const prev = cards.get(v.id);
    const card = prev && prev.sig === sig ? prev.el : render(item);
    next.set(v.id, { sig, el: card });
    wanted.push(card);
  }
  cards.clear();
  for (const [k, v] of next) cards.set(k, v);
  for (const child of Array.from(container.children))
    if (!wanted.includes(child as HTMLElement)) child.remove();
  wanted.forEach((card, i) => {
    if (container.children[i] !== card) container.insertBefore(card, container.children[i] ?? null);
  });
}

function requestHead(v: RequestView, headingId: string): HTMLElement {
  return h(
    'div',
    { class: 'request-head' },
    h('h3', { id: headingId }, nameOf(v.institution), h('span', { class: 'muted' }, ` (${v.institution})`)),
    statusBadge(v.status),
  );
}

function requestFacts(v: RequestView, extra: Child[] = []): HTMLElement {
  const fields = Object.entries(v.fields);
  return h(
    'dl',
    { class: 'facts' },
    h('dt', null, 'Purpose'),
    h('dd', null, v.purpose),
    h('dt', null, 'Data asked for'),
    h('dd', null, typesLabel(v.types)),
    v.dataFrom || v.dataTo
      ? [h('dt', null, 'Period'), h('dd', null, `${v.dataFrom ?? '…'} to ${v.dataTo ?? '…'}`)]
      : null,
    fields.length > 0
      ? [
          h('dt', null, 'Fields'),
          h('dd', null, fields.map(([column, source]) => `${column} ← ${source}`).join(', ')),
        ]
      : null,
    ...extra,
    h('dt', null, 'Asked'),
    h('dd', null, timeEl(v.openedAt), ` (block ${v.height})`),
    h('dt', null, 'Request id'),
    h('dd', null, h('code', null, v.id)),
  );
}

function pendingCard(p: ProvenView): HTMLElement {
  const v = p.view;
  const key = v.id.slice(0, 16);
  const headingId = `req-${key}`;
  const status = h('div', { class: 'status-line', role: 'status', 'aria-live': 'polite' });
  const recordByType = new Map<string, RequestView['records'][number]>(v.records.map((r) => [r.type, r]));
  const failureByType = new Map(v.failures.map((f) => [f.type, f]));
  const boxes = v.types.map((type) => {
    const record = recordByType.get(type);
    const failure = failureByType.get(type);
    const id = `${key}-type-${type}`;
    const why = record
      ? ` — from ${record.source}`
      : failure
        ? ` — not available (${failure.reason})`
        : onConsent
          ? ' — fetched only if you grant it'
          : ' — not extracted yet';
    const choosable = onConsent || !!record;
    return h(
      'div',
      { class: 'check' },
      h('input', {
        type: 'checkbox',
        id,
        name: 'types',
        value: type,
        checked: choosable,
        disabled: !choosable,
      }),
      h('label', { for: id }, typeLabel(type), h('span', { class: 'muted' }, why)),
    );
  });
  const expires = h(
    'select',
    { id: `${key}-expires`, name: 'expires' },
    EXPIRY_CHOICES.map(([ms, label]) => h('option', { value: ms, selected: ms === 7 * 86_400_000 }, label)),
  );
  const uses = h('input', {
    type: 'number',
    id: `${key}-uses`,
    name: 'uses',
    min: 1,
    max: 1000,
    step: 1,
    value: 1,
    required: true,
  });
  const retain = h('input', {
    type: 'number',
    id: `${key}-retain`,
    name: 'retain',
    min: 0,
    max: 3650,
    step: 1,
    value: 30,
    required: true,
  });
  const grantButton = h('button', { type: 'submit', class: 'primary' }, 'Grant access');
  const waiting = !onConsent && v.records.length === 0;
  // Nothing is signed until what is asked and the institution's key are proven in this browser.
  grantButton.disabled = true;
  const proof = h(
    'p',
    { class: 'notice info', 'data-fact': 'institution', 'data-proof': 'pending' },
    `Checking ${v.institution}'s registered key against the genesis validators…`,
  );
  const asked = factMark('request', p.request);
  const askedOk = p.request.state === 'verified' || p.request.state === 'unprovable';
  const form = h(
    'form',
    { class: 'grant-form', novalidate: true, 'aria-label': `Grant ${nameOf(v.institution)} access` },
    h('fieldset', null, h('legend', null, 'Share'), boxes),
    h(
      'div',
      { class: 'grid' },
      h('div', null, h('label', { for: expires.id }, 'Access valid for'), expires),
      h('div', null, h('label', { for: uses.id }, 'Number of uses'), uses),
      h('div', null, h('label', { for: retain.id }, 'Bank may keep the data (days)'), retain),
    ),
    h('div', { class: 'actions' }, grantButton),
  );
  const reason = h('input', { type: 'text', id: `${key}-reason`, maxlength: 300, autocomplete: 'off' });
  const denyButton = h('button', { type: 'button', class: 'danger' }, 'Deny request');
  const deny = h(
    'details',
    { class: 'deny' },
    h('summary', null, 'Deny this request'),
    h(
      'div',
      { class: 'field' },
      h('label', { for: reason.id }, 'Reason (optional, written on the ledger)'),
      reason,
    ),
    h('div', { class: 'actions' }, denyButton),
  );
  const buttons = [grantButton, denyButton];

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const types = boxes
      .map((b) => b.querySelector('input')!)
      .filter((i) => i.checked)
      .map((i) => i.value as DataType);
    const usesN = Number(uses.value);
    const retainN = Number(retain.value);
    if (types.length === 0) {
      fill(status, notice('error', 'Choose at least one kind of data to share.', 'PORTAL_NO_TYPES'));
      return;
    }
    if (!Number.isInteger(usesN) || usesN < 1 || usesN > 1000) {
      fill(
        status,
        notice('error', 'Number of uses must be a whole number from 1 to 1000.', 'PORTAL_BAD_INPUT'),
      );
      uses.focus();
      return;
    }
    if (!Number.isInteger(retainN) || retainN < 0 || retainN > 3650) {
      fill(
        status,
        notice('error', 'Days to keep must be a whole number from 0 to 3650.', 'PORTAL_BAD_INPUT'),
      );
      retain.focus();
      return;
    }
    void act(buttons, status, el.pendingNotice, async (keys, ctx) => {
      const inst = await institution(v.institution);
      return {
        tx: signGrant(keys, {
          ctx,
          request: v,
          grantee: { institution: v.institution, encKey: inst.encKey },
          choice: { types, expiresInMs: Number(expires.value), uses: usesN, retainDays: retainN },
        }),
        done: `You granted ${nameOf(v.institution)} access to ${typesLabel(types)}`,
      };
    });
  });
  denyButton.addEventListener('click', () => {
    const text = reason.value.trim();
    void act(buttons, status, el.pendingNotice, async (keys, ctx) => ({
      tx: signDecision(keys, ctx, 'deny', { request: v.id, ...(text ? { reason: text } : {}) }),
      done: `You denied ${nameOf(v.institution)}’s request`,
    }));
  });

  const card = h(
    'article',
    { class: 'request', 'data-request': v.id, 'data-status': v.status, 'aria-labelledby': headingId },
    requestHead(v, headingId),
    requestFacts(v, [
      h('dt', null, 'Decide by'),
      h('dd', null, timeEl(v.consentBy), ` (${fromNow(v.consentBy)})`),
    ]),
    waiting
      ? h('p', { class: 'notice info' }, 'The data is still being fetched from the public data platforms.')
      : onConsent
        ? h(
            'p',
            { class: 'notice info' },
            'Nothing has been fetched yet: the public data platforms are asked only for what you grant, once you grant it.',
          )
        : null,
    asked,
    proof,
    form,
    deny,
    status,
  );
  // A node that lied about the request gets nothing signed on its word, not even a refusal.
  if (p.request.state === 'lied') {
    card.dataset.lied = 'true';
    form.remove();
    deny.remove();
  }
  institution(v.institution).then(
    (inst) => {
      proof.replaceWith(
        factMark('institution', {
          state: 'verified',
          text: `${inst.name}'s registered name and key were verified in this browser against the genesis validators.`,
        }),
      );
      grantButton.disabled = waiting || !askedOk;
    },
    (err: unknown) => {
      const lied = err instanceof NodeLiedError;
      const shown = lied
        ? notice('error', err.message, err.code)
        : notice(
            'error',
            `${v.institution}'s key could not be checked: ${(err as Error).message}`,
            'PORTAL_UNVERIFIED',
          );
      shown.dataset.fact = 'institution';
      shown.dataset.proof = lied ? 'lied' : 'failed';
      proof.replaceWith(shown);
      if (lied) {
        card.dataset.lied = 'true';
        form.remove();
        deny.remove();
      }
    },
  );
  return card;
}

function decidedCard(p: ProvenView): HTMLElement {
  const v = p.view;
  const headingId = `dec-${v.id.slice(0, 16)}`;
  const status = h('div', { class: 'status-line', role: 'status', 'aria-live': 'polite' });
  const g = v.grant;
  const facts: Child[] = [];
  if (g) {
    facts.push(
      h('dt', null, 'Granted'),
      h('dd', null, typesLabel(g.types), ' on ', timeEl(g.grantedAt)),
      h('dt', null, 'Valid until'),
      h('dd', null, timeEl(g.expires), ` (${fromNow(g.expires)})`),
      h('dt', null, 'Uses'),
      h('dd', null, `${g.used} of ${g.uses} used`),
      h('dt', null, 'Kept at most'),
      h('dd', null, `${g.retainDays} days after delivery`),
    );
  }
  if (v.denyReason) facts.push(h('dt', null, 'Your reason'), h('dd', null, v.denyReason));
  if (g && v.status === 'waiting-for-data')
    facts.push(
      h('dt', null, 'Data'),
      h('dd', null, 'being fetched from the public data platforms: only what you granted'),
    );
  const actions = h('div', { class: 'actions' });
  const buttons: HTMLButtonElement[] = [];
  const decide = (kind: 'pause' | 'resume' | 'revoke', label: string, done: string, danger = false) => {
    const b = h('button', { type: 'button', class: danger ? 'danger' : undefined }, label);
    b.addEventListener('click', () => {
      if (!g) return;
      void act(buttons, status, el.grantsNotice, async (keys, ctx) => ({
        tx: signDecision(keys, ctx, kind, { grant: g.id }),
        done: `${done} ${nameOf(v.institution)}`,
      }));
    });
    buttons.push(b);
    actions.append(b);
  };
  if (g && (v.status === 'granted' || v.status === 'delivered' || v.status === 'waiting-for-data')) {
    decide('pause', 'Pause grant', 'You paused the grant to');
    decide('revoke', 'Revoke grant', 'You revoked the grant to', true);
  } else if (g && v.status === 'paused') {
    decide('resume', 'Resume grant', 'You resumed the grant to');
    decide('revoke', 'Revoke grant', 'You revoked the grant to', true);
  }
  if (v.records.length > 0 && v.status !== 'erased') {
    const erase = h('button', { type: 'button', class: 'danger' }, 'Erase data…');
    buttons.push(erase);
    actions.append(erase);
    const confirmBox = h('div', { class: 'notice warn', hidden: true });
    erase.addEventListener('click', () => {
      const yes = h('button', { type: 'button', class: 'danger' }, 'Erase now');
      const no = h('button', { type: 'button' }, 'Cancel');
      fill(
        confirmBox,
        h(
          'p',
          null,
          'This deletes the encrypted records of this request on every node. The ledger keeps only ' +
            'their digests and the erasure. It cannot be undone.',
        ),
        h('div', { class: 'actions' }, yes, no),
      );
      confirmBox.hidden = false;
      yes.focus();
      no.addEventListener('click', () => {
        confirmBox.hidden = true;
        erase.focus();
      });
      yes.addEventListener('click', () => {
        confirmBox.hidden = true;
        void act(buttons, status, el.grantsNotice, async (keys, ctx) => ({
          tx: signDecision(keys, ctx, 'erase', { request: v.id }),
          done: `You erased the data of ${nameOf(v.institution)}’s request`,
        }));
      });
    });
    return card(p, headingId, facts, actions, confirmBox, status);
  }
  return card(p, headingId, facts, actions.childElementCount > 0 ? actions : null, null, status);
}

function card(
  p: ProvenView,
  headingId: string,
  facts: Child[],
  actions: HTMLElement | null,
  confirmBox: HTMLElement | null,
  status: HTMLElement,
): HTMLElement {
  const v = p.view;
  // Nothing is signed on the word of a node that lied about this request or its grant.
  const lied = p.request.state === 'lied' || p.grant?.state === 'lied';
  return h(
    'article',
    {
      class: 'request',
      'data-request': v.id,
      'data-status': v.status,
      'data-lied': lied ? 'true' : undefined,
      'aria-labelledby': headingId,
    },
    requestHead(v, headingId),
    requestFacts(v, facts),
    factMark('request', p.request),
    p.grant ? factMark('grant', p.grant) : null,
    lied ? null : actions,
    lied ? null : confirmBox,
    status,
  );
}

/**
 * Signs a transaction with the open key (in this page), submits it, waits for the commit and
 * reports the outcome; the buttons are disabled meanwhile.
 */
async function act(
  buttons: HTMLButtonElement[],
  status: HTMLElement,
  outcome: HTMLElement,
  build: (keys: KeySet, ctx: SignContext) => Promise<{ tx: Tx; done: string }>,
): Promise<void> {
  const s = session;
  if (!s) return;
  for (const b of buttons) b.disabled = true;
  try {
    fill(status, notice('info', 'Signing in this browser…'));
    await nextPaint();
    const trusted = await trustedGenesis();
    const { tx, done } = await build(s.keys, {
      chain: trusted.genesis.chain,
      now: Date.now(),
      extraction: trusted.genesis.params.extraction ?? 'on-request',
    });
    const hash = await submitTx(tx);
    fill(status, notice('info', `Submitted (tx ${short(hash)}); waiting for the ledger to commit it…`));
    const { height } = await waitForCommit(hash);
    fill(status);
    const doneNotice = h(
      'p',
      { class: 'notice ok', role: 'status', tabindex: -1, 'data-tx': hash },
      `${done}. Committed in block ${height}, tx `,
      h('a', { href: `../explorer/#/tx/${hash}` }, hashEl(hash)),
      '.',
    );
    fill(outcome, doneNotice);
    await refresh();
    // The card acted on has moved or changed; keep keyboard focus on the outcome.
    if (!document.activeElement || document.activeElement === document.body) doneNotice.focus();
  } catch (err) {
    fill(status, errorNotice(err, err instanceof ApiError ? 'The node refused it: ' : ''));
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

// ---- history ----

function renderHistory(trusted: TrustedGenesis, entries: AuditEntry[]): void {
  const sig = JSON.stringify([trusted.hash, trusted.pinned, entries.map((e) => e.hash), requestsById.size]);
  renderGenesis(trusted);
  if (sig === historySig) return;
  const results = entries.map((e) => {
    const key = `${e.hash}|${trusted.pinned}|${JSON.stringify(e.proof)}`;
    let v = verifications.get(key);
    if (!v) {
      v = verifyEntry(trusted, e.hash, e.proof);
      verifications.set(key, v);
    }
    return v;
  });
  const grantTypes = new Map<string, string[]>();
  for (const e of entries) {
    const tx = e.proof.tx;
    if (tx.kind === 'grant') grantTypes.set(e.hash, tx.body.types);
  }
  const items = entries.map((e, i) => entryItem(trusted, e, results[i]!, grantTypes)).reverse();
  fill(el.historyList, items);
  const failed = results.filter((r) => !r.ok).length;
  if (entries.length === 0) fill(el.historyNotice, notice('info', 'Nothing about you is on the ledger yet.'));
  else if (failed > 0)
    fill(
      el.historyNotice,
      notice(
        'error',
        `${failed} of ${entries.length} entries could NOT be verified against the genesis validators. Do not trust them.`,
        'PORTAL_PROOF_FAILED',
      ),
    );
  else
    fill(
      el.historyNotice,
      notice('ok', `All ${entries.length} entries verified in this browser against the genesis validators.`),
    );
  historySig = sig;
}

function renderGenesis(trusted: TrustedGenesis): void {
  const g = trusted.genesis;
  const state =
    trusted.pinned === null
      ? 'not pinned'
      : trusted.pinned === trusted.hash
        ? 'pinned in this browser'
        : 'DIFFERENT from the one pinned in this browser';
  const pin = h('button', { type: 'button' }, trusted.pinned === trusted.hash ? 'Unpin' : 'Pin this genesis');
  pin.addEventListener('click', () => {
    setPin(trusted.pinned === trusted.hash ? null : trusted.hash);
    trusted.pinned = trusted.pinned === trusted.hash ? null : trusted.hash;
    historySig = '';
    void refresh();
  });
  fill(
    el.genesisInfo,
    h(
      'span',
      null,
      `Genesis of ${g.chain}: sha256 `,
      hashEl(trusted.hash),
      ` · ${g.validators.length} validator${g.validators.length === 1 ? '' : 's'}, quorum ${quorumSize(g.validators.length)} · ${state}`,
    ),
    pin,
  );
}

function entryItem(
  trusted: TrustedGenesis,
  e: AuditEntry,
  v: Verification,
  grantTypes: Map<string, string[]>,
): HTMLElement {
  const tx = e.proof.tx;
  const request = e.request ? requestsById.get(e.request) : undefined;
  const inst = request ? nameOf(request.institution) : (trusted.names.get(tx.signer) ?? 'An institution');
  return h(
    'li',
    { class: 'entry', 'data-kind': tx.kind, 'data-hash': e.hash, 'data-verified': String(v.ok) },
    h('p', { class: 'when' }, timeEl(e.proof.header.time), ` · block ${e.proof.header.height}`),
    h('p', { class: 'what' }, describe(tx, inst, trusted, grantTypes)),
    h(
      'p',
      { class: 'tx' },
      h('span', null, 'tx ', h('a', { href: `../explorer/#/tx/${e.hash}` }, hashEl(e.hash))),
      mark(v),
    ),
  );
}

function mark(v: Verification): HTMLElement {
  if (v.ok)
    return h(
      'span',
      {
        class: 'mark ok',
        title: `Inclusion proof checked in this browser: block ${v.height} (${short(v.blockHash)}) is certified by a quorum of the genesis validators`,
      },
      '✓ verified',
    );
  return h('span', { class: 'mark bad', title: v.message }, `✗ NOT verified: ${v.code}`);
}

function describe(
  tx: AnyTx,
  inst: string,
  trusted: TrustedGenesis,
  grantTypes: Map<string, string[]>,
): Child[] {
  const who = (key: string) => trusted.names.get(key) ?? `key ${short(key)}`;
  switch (tx.kind) {
    case 'subject.register':
      return [h('strong', null, 'Your identity was registered'), ` by ${who(tx.body.registrar)}.`];
    case 'subject.recover':
      return [
        h('strong', null, 'New keys were bound to your identity'),
        ` (a recovery attested by ${who(tx.body.registrar)}); your earlier key can no longer act for you.`,
      ];
    case 'request.open':
      return [
        h('strong', null, `${inst} asked for ${typesLabel(tx.body.types)}`),
        ` — purpose: “${tx.body.purpose}”; to be answered by `,
        timeEl(tx.body.consentBy),
        '.',
      ];
    case 'record.put':
      return [
        h('strong', null, `${typeLabel(tx.body.type)} data extracted`),
        ` from ${tx.body.source} by ${who(tx.signer)}, encrypted to your key (${tx.body.size} bytes, fetched `,
        timeEl(tx.body.fetchedAt),
        ').',
      ];
    case 'record.fail':
      return [
        h('strong', null, `${typeLabel(tx.body.type)} data could not be extracted`),
        `: ${tx.body.reason}${tx.body.detail ? ` (${tx.body.detail})` : ''}, reported by ${who(tx.signer)}.`,
      ];
    case 'grant':
      return [
        h('strong', null, `You granted ${inst} access to ${typesLabel(tx.body.types)}`),
        ` for “${tx.body.purpose}”, until `,
        timeEl(tx.body.expires),
        `, ${tx.body.uses} use${tx.body.uses === 1 ? '' : 's'}, kept at most ${tx.body.retainDays} days.`,
      ];
    case 'deny':
      return [
        h('strong', null, `You denied ${inst}’s request`),
        tx.body.reason ? `: “${tx.body.reason}”.` : '.',
      ];
    case 'revoke':
      return [h('strong', null, `You revoked the grant to ${inst}`), '.'];
    case 'pause':
      return [h('strong', null, `You paused the grant to ${inst}`), '.'];
    case 'resume':
      return [h('strong', null, `You resumed the grant to ${inst}`), '.'];
    case 'usage': {
      const types = grantTypes.get(tx.body.grant);
      return [
        h('strong', null, `${inst} used your ${types ? typesLabel(types) : ''} data`.replace('  ', ' ')),
        `: it received your encrypted records for a ${tx.body.format.toUpperCase()} document (bundle sha256 `,
        hashEl(tx.body.bundle),
        ') under your grant, opened only with its own key.',
      ];
    }
    case 'erase':
      return [
        h('strong', null, `You erased the data of ${inst}’s request`),
        '; the ledger keeps its digests.',
      ];
    default:
      return [h('strong', null, tx.kind), ` signed by ${who(tx.signer)}.`];
  }
}
