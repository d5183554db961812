/**
 * The explorer's governance pages: the council and its proposals (newest first, paged), a
 * proposal's page with its entry proven in this browser, and the validator set at any height
 * with the history of its changes, the schedule proven against a certified state root and the
 * chosen height's header checked against it.
 */
import { faultTolerance, quorumSize, type ValidatorInfo } from '../../src/ledger/genesis.js';
import {
  govKey,
  type ProposalState,
  type ProposalStatus,
  proposalStatus,
} from '../../src/ledger/governance.js';
import type { GovChange } from '../../src/ledger/tx.js';
import { VALIDATOR_SET_DELAY, validatorSetHash } from '../../src/ledger/validator-set.js';
import { getJson } from './api.js';
import { type Child, h } from './dom.js';
import { errorNotice, fact, hashEl, notice, short, timeEl } from './format.js';
import { pinMismatch, type TrustedGenesis, trustedGenesis } from './proofs.js';
import {
  certifiedHeader,
  councilLabel,
  describeSetChange,
  EXPLORER_BLAME,
  followSets,
  lightGet,
  rolesLabel,
  type Schedule,
  setAt,
  setChanges,
  typesText,
  validatorLabel,
  validatorSchedule,
} from './validators.js';

/** Proposals on one page of the governance view. */
const PROPOSALS_PAGE = 20;

/** A proposal as the node's routes show it: its status at the tip. */
type ProposalView = Omit<ProposalState, 'status'> & { status: ProposalStatus };

interface ProposalsAnswer {
  count: number;
  proposals: ProposalView[];
  next?: number;
}

interface LiveValidator extends ValidatorInfo {
  self: boolean;
  primary: boolean;
  connected: boolean;
  lastSeenAt: number | null;
}

const TONE: Record<ProposalStatus, string> = { open: 'wait', enacted: 'good', failed: 'bad', expired: '' };

function statusBadge(status: ProposalStatus): HTMLElement {
  return h('span', { class: `badge ${TONE[status] ?? ''}`, 'data-status': status }, status);
}

/** A governance change in words; validator keys by their names where known. */
export function describeChange(trusted: TrustedGenesis, change: GovChange): string {
  const name = (key: string) => validatorLabel(trusted, key);
  switch (change.type) {
    case 'institution.add':
      return `Add institution ${change.name} (${change.institution})`;
    case 'institution.retire':
      return `Retire institution ${change.institution}`;
    case 'registrar.add':
      return `Add registrar ${short(change.key)}`;
    case 'registrar.retire':
      return `Retire registrar ${short(change.key)}`;
    case 'params.set':
      return `Set parameters ${Object.entries(change.params)
        .map(([k, v]) => `${k} = ${String(v)}`)
        .join(', ')}`;
    case 'validator.add':
      return `Add validator ${change.validator.name} (${rolesLabel(change.validator.roles)}; data types ${typesText(change.validator.types)}), key ${short(change.validator.key)}`;
    case 'validator.retire':
      return `Retire validator ${name(change.key)}`;
    case 'validator.rotate':
      return `Rotate validator ${name(change.key)}'s key ${short(change.key)} → ${short(change.newKey)}`;
    case 'validator.update':
      return `Update validator ${name(change.key)}: roles ${rolesLabel(change.roles)}; data types ${typesText(change.types)}`;
    case 'gateway.add':
      return `Admit gateway ${change.gateway.name} (${rolesLabel(change.gateway.roles)}), key ${short(change.gateway.key)}`;
    case 'gateway.retire':
      return `Retire gateway ${short(change.key)}`;
    case 'source.add':
      return `Register data source ${change.source.id} (data types ${typesText(change.source.types)}), key ${short(change.source.key)}`;
    case 'source.retire':
      return `Retire data source ${change.id}`;
    case 'source.update':
      return `Update data source ${change.id}: data types ${typesText(change.types)}`;
    default:
      // A kind of change this page does not know yet: its type, the JSON on its page.
      return (change as { type: string }).type;
  }
}

function approvalsText(trusted: TrustedGenesis, p: ProposalView): string {
  const names = p.approvals.map((k) => councilLabel(trusted, k)).join(', ');
  return `${p.approvals.length}/${p.threshold}${names ? `: ${names}` : ''}`;
}

function blockLink(height: number): HTMLElement {
  return h('a', { href: `#/block/${height}` }, String(height));
}

/** A proof mark: verified in this browser, refused, or not provable here. */
function proofMark(
  name: string,
  result: { ok: boolean | null; code?: string; message: string },
): HTMLElement {
  if (result.ok === true)
    return h(
      'p',
      { class: 'notice ok', 'data-verified': 'true', 'data-proof': name },
      h('span', { class: 'mark ok' }, '✓ verified'),
      ` in this browser: ${result.message}`,
    );
  if (result.ok === false)
    return h(
      'p',
      { class: 'notice error', role: 'alert', 'data-verified': 'false', 'data-proof': name },
      h('span', { class: 'mark bad' }, `✗ NOT verified: ${result.code ?? 'EXPLORER_NODE_LIED'}`),
      ` — ${result.message}`,
    );
  return h('p', { class: 'notice info', 'data-proof': name }, `Not proven: ${result.message}.`);
}

// ---- council and proposals ----

/** The council (from genesis) and a page of proposals, newest first; `before` pages back. */
export async function governanceView(before?: number): Promise<HTMLElement[]> {
  const [trusted, page] = await Promise.all([
    trustedGenesis(),
    getJson<ProposalsAnswer>(
      `v1/gov/proposals?limit=${PROPOSALS_PAGE}${before === undefined ? '' : `&before=${before}`}`,
    ),
  ]);
  // Names of validators a change concerns (sets after genesis's).
  await followSets(trusted).catch(() => undefined);
  const council = trusted.genesis.council;
  return [
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'council-heading', 'data-council': council ? 'true' : 'false' },
      h('h2', { id: 'council-heading', tabindex: -1 }, 'Governance council'),
      council
        ? [
            h(
              'p',
              { 'data-fact': 'threshold' },
              `${council.threshold} of ${council.members.length} members approve a change; no single key changes anything.`,
            ),
            h(
              'div',
              { class: 'table-wrap' },
              h(
                'table',
                null,
                h('caption', { class: 'muted' }, `Council from genesis ${short(trusted.hash)}`),
                h(
                  'thead',
                  null,
                  h('tr', null, h('th', { scope: 'col' }, 'Member'), h('th', { scope: 'col' }, 'Key')),
                ),
                h(
                  'tbody',
                  null,
                  council.members.map((key, i) =>
                    h(
                      'tr',
                      { 'data-member': i + 1 },
                      h('td', null, `council ${i + 1}`),
                      h('td', null, hashEl(key, 16)),
                    ),
                  ),
                ),
              ),
            ),
          ]
        : h(
            'p',
            { class: 'muted' },
            'This chain has no governance council: its genesis names single-key admins instead.',
          ),
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'proposals-heading' },
      h('h2', { id: 'proposals-heading' }, 'Proposals'),
      h(
        'p',
        { class: 'muted', 'data-fact': 'proposal-count' },
        `${page.count} proposal${page.count === 1 ? '' : 's'} in all, newest first. A proposal is enacted in the block where its last needed approval commits; a validator-set change is in force ${VALIDATOR_SET_DELAY} blocks later.`,
      ),
      page.proposals.length === 0
        ? h('p', { class: 'muted' }, before === undefined ? 'No proposals yet.' : 'No older proposals.')
        : h('div', { class: 'table-wrap', id: 'proposals' }, proposalsTable(trusted, page.proposals)),
      h(
        'p',
        { class: 'actions' },
        before !== undefined ? h('a', { href: '#/gov' }, '← Newest proposals') : null,
        page.next !== undefined
          ? h('a', { href: `#/gov/before/${page.next}`, 'data-page': 'older' }, 'Older proposals →')
          : null,
      ),
    ),
  ];
}

function proposalsTable(trusted: TrustedGenesis, proposals: ProposalView[]): HTMLElement {
  return h(
    'table',
    null,
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', { scope: 'col' }, 'Change'),
        h('th', { scope: 'col' }, 'Approvals'),
        h('th', { scope: 'col' }, 'Status'),
        h('th', { scope: 'col', class: 'wide-only' }, 'Deadline'),
        h('th', { scope: 'col' }, 'Proposed'),
        h('th', { scope: 'col' }, 'Decided'),
      ),
    ),
    h(
      'tbody',
      null,
      proposals.map((p) =>
        h(
          'tr',
          { 'data-proposal': p.id },
          h('td', null, h('a', { href: `#/proposal/${p.id}` }, describeChange(trusted, p.change))),
          h('td', null, approvalsText(trusted, p)),
          h('td', null, statusBadge(p.status)),
          h('td', { class: 'wide-only' }, timeEl(p.deadline)),
          h('td', null, blockLink(p.height)),
          h('td', null, p.decidedAt === undefined ? '—' : blockLink(p.decidedAt)),
        ),
      ),
    ),
  );
}

/** One proposal: what the node says, and the ledger's entry proven in this browser. */
export async function proposalView(id: string): Promise<HTMLElement[]> {
  const [trusted, said] = await Promise.all([
    trustedGenesis(),
    getJson<ProposalView>(`v1/gov/proposals/${id}`),
  ]);
  await followSets(trusted).catch(() => undefined);
  let p: ProposalView = said;
  let mark: HTMLElement;
  if (!trusted.light.provable)
    mark = proofMark('proposal', { ok: null, message: "this chain's headers commit to no provable state" });
  else if (pinMismatch(trusted))
    mark = proofMark('proposal', {
      ok: false,
      code: 'PORTAL_GENESIS_NOT_PINNED',
      message: 'the node serves a different genesis than the one pinned in this browser',
    });
  else {
    try {
      const proven = await trusted.light.provenEntry<ProposalState>(
        lightGet,
        `/v1/state/proposals/${id}`,
        govKey.proposal(id),
        EXPLORER_BLAME,
        'present',
      );
      const value = proven?.value;
      if (!value)
        throw Object.assign(new Error('the chain holds no such proposal'), { code: 'PROOF_ENTRY_ABSENT' });
      p = { ...value, status: proposalStatus(value, proven.time) };
      mark = proofMark('proposal', {
        ok: true,
        message: `this is the proposal as the ledger holds it in the state of block ${proven.height}, whose certificate verifies against the validators in force there; its status is taken at that block's time.`,
      });
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if (e.code !== EXPLORER_BLAME.code && e.code !== 'PROOF_ENTRY_ABSENT') throw err;
      mark = proofMark('proposal', { ok: false, code: e.code, message: e.message ?? String(err) });
    }
  }
  const validatorChange = p.change.type.startsWith('validator.');
  const inForce = p.decidedAt === undefined ? undefined : p.decidedAt + VALIDATOR_SET_DELAY;
  return [
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'proposal-heading', 'data-proposal': id },
      h('h2', { id: 'proposal-heading', tabindex: -1 }, 'Proposal ', hashEl(id)),
      h('p', { class: 'actions' }, h('a', { href: '#/gov' }, '← Proposals')),
      mark,
      h(
        'dl',
        { class: 'facts' },
        fact('Change', describeChange(trusted, p.change), 'change'),
        fact('Status', statusBadge(p.status), 'status'),
        p.failure
          ? fact('Failure', [p.failure.message, ' ', h('code', null, p.failure.code)], 'failure')
          : null,
        fact('Approvals', approvalsText(trusted, p), 'approvals'),
        fact('Proposer', councilLabel(trusted, p.proposer), 'proposer'),
        fact('Proposed in block', blockLink(p.height), 'height'),
        fact('Deadline', timeEl(p.deadline), 'deadline'),
        fact('Decided in block', p.decidedAt === undefined ? 'not yet' : blockLink(p.decidedAt), 'decided'),
        validatorChange && p.status === 'enacted' && inForce !== undefined
          ? fact(
              'In force from',
              h('a', { href: `#/validators/${inForce}` }, `the validators at height ${inForce}`),
              'in-force',
            )
          : null,
        fact('Proposal transaction', h('a', { href: `#/tx/${id}` }, 'the gov.propose transaction'), 'tx'),
      ),
      h('h3', null, 'Change'),
      h('pre', { tabindex: 0, 'aria-label': 'The change as JSON' }, JSON.stringify(p.change, null, 2)),
    ),
  ];
}

// ---- validators at a height, and their history ----

/**
 * The validator set in force at `height` (default: the next block's), proven against the
 * schedule and, for a committed height, against that block's certified header; then every set
 * since genesis with what changed.
 */
export async function validatorsView(height?: number): Promise<HTMLElement[]> {
  const trusted = await trustedGenesis();
  const followed = await followSets(trusted).then(
    () => null,
    (err: unknown) => err as { code?: string; message?: string },
  );
  const status = await getJson<{ height: number }>('v1/status');
  const schedule = await validatorSchedule(trusted);
  const tip = status.height;
  const at = height ?? tip + 1;
  const set = setAt(trusted, schedule, at);
  let unheld: unknown;
  const header =
    at <= tip
      ? await certifiedHeader(trusted, at).catch((err: unknown) => {
          // A node started from a snapshot holds no block below it: the schedule alone stands.
          unheld = err;
          return null;
        })
      : null;
  const live = await getJson<{ validators: LiveValidator[] }>(`v1/validators?height=${at}`).catch(() => null);
  const genesisSet = set === trusted.genesis.validators;
  const setHash = validatorSetHash(set);

  const marks: Child[] = [];
  if (followed)
    marks.push(
      proofMark('links', {
        ok: false,
        code: followed.code,
        message: followed.message ?? 'a validator-set change does not verify',
      }),
    );
  const p = schedule.proof;
  marks.push(
    proofMark(
      'schedule',
      p.ok === true
        ? {
            ok: true,
            message: `the schedule of validator sets (${schedule.epochs.length === 0 ? 'never changed since genesis' : `${schedule.epochs.length} change${schedule.epochs.length === 1 ? '' : 's'} since genesis`}) is proven against the state root of certified block ${p.height}.`,
          }
        : p,
    ),
  );
  if (p.ok === true && at > p.height + VALIDATOR_SET_DELAY)
    marks.push(
      notice(
        'info',
        `Height ${at} is more than ${VALIDATOR_SET_DELAY} blocks past block ${p.height}: a council change enacted meanwhile could still change the set there.`,
      ),
    );
  if (unheld !== undefined)
    marks.push(errorNotice(unheld, `Block ${at} could not be fetched to check its header: `));
  if (header) {
    if (!header.ok) marks.push(proofMark('header', header));
    else {
      const named = header.block.block.header.validators;
      marks.push(
        named === (genesisSet ? undefined : setHash)
          ? proofMark('header', {
              ok: true,
              message: `block ${at}'s commit certificate (${header.block.cert.votes.length} signature${header.block.cert.votes.length === 1 ? '' : 's'}) verifies, and its header names this set${genesisSet ? ' (genesis’s: no set hash in the header)' : ` (hash ${short(setHash)})`}.`,
            })
          : proofMark('header', {
              ok: false,
              code: 'EXPLORER_SET_MISMATCH',
              message: `block ${at}'s header names another validator set than the proven schedule gives for its height`,
            }),
      );
    }
  }
  const liveKeys = live?.validators.map((v) => v.key).join(',');
  if (live && liveKeys !== set.map((v) => v.key).join(','))
    marks.push(
      h(
        'p',
        { class: 'notice warn', role: 'status', 'data-live-mismatch': 'true' },
        "The node's own list of the validators at this height differs from the proven set shown here.",
      ),
    );

  const input = h('input', {
    id: 'validators-height',
    name: 'height',
    type: 'number',
    min: 1,
    step: 1,
    inputmode: 'numeric',
    value: String(at),
  });
  const formNotice = h('div', { class: 'notices', 'aria-live': 'polite' });
  const form = h(
    'form',
    {
      class: 'search',
      id: 'validators-form',
      novalidate: true,
      onsubmit: (event: Event) => {
        event.preventDefault();
        const n = Number(input.value);
        if (Number.isSafeInteger(n) && n >= 1) window.location.hash = `#/validators/${n}`;
        else
          formNotice.replaceChildren(
            notice('error', 'Enter a block height (a whole number from 1).', 'EXPLORER_BAD_QUERY'),
          );
      },
    },
    h('label', { for: 'validators-height' }, 'Validators at height'),
    h('div', { class: 'search-row' }, input, h('button', { type: 'submit', class: 'primary' }, 'Show')),
  );

  const liveByKey = new Map((live?.validators ?? []).map((v) => [v.key, v]));
  return [
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'set-heading', 'data-validators-at': at },
      h('h2', { id: 'set-heading', tabindex: -1 }, `Validators at height ${at}`),
      h(
        'p',
        { class: 'actions' },
        at > 1 ? h('a', { href: `#/validators/${at - 1}` }, `← Height ${at - 1}`) : null,
        h('a', { href: `#/validators/${at + 1}` }, `Height ${at + 1} →`),
        at <= tip ? h('a', { href: `#/block/${at}` }, `Block ${at}`) : null,
        h('a', { href: '#/validators' }, 'Next block'),
      ),
      form,
      formNotice,
      marks,
      h(
        'dl',
        { class: 'facts' },
        fact(
          'Height',
          `${at}${at === tip + 1 ? ' (the next block)' : at > tip + 1 ? ` (not reached yet; the chain is at ${tip})` : ''}`,
          'height',
        ),
        fact(
          'Validators',
          `${set.length} (quorum ${quorumSize(set.length)}, tolerates ${faultTolerance(set.length)} faulty)`,
          'size',
        ),
        fact('Set hash', [hashEl(setHash, 16), genesisSet ? ' (genesis set)' : null], 'set-hash'),
      ),
      h('div', { class: 'table-wrap', id: 'validator-set' }, setTable(set, liveByKey, at === tip + 1)),
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'history-heading' },
      h('h2', { id: 'history-heading' }, 'History of the validator set'),
      h(
        'p',
        { class: 'muted' },
        `A council change enacted in block h is in force from height h + ${VALIDATOR_SET_DELAY}; the header of the block before it names the new set (next validators), so each set is certified by the one before.`,
      ),
      h('div', { class: 'table-wrap', id: 'validator-history' }, historyTable(trusted, schedule, tip, at)),
    ),
  ];
}

function setTable(
  set: readonly ValidatorInfo[],
  live: Map<string, LiveValidator>,
  current: boolean,
): HTMLElement {
  return h(
    'table',
    null,
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', { scope: 'col' }, 'Name'),
        h('th', { scope: 'col' }, 'Roles'),
        h('th', { scope: 'col' }, 'Data types'),
        current ? h('th', { scope: 'col' }, 'State') : null,
        h('th', { scope: 'col', class: 'wide-only' }, 'Key'),
      ),
    ),
    h(
      'tbody',
      null,
      set.map((v) => {
        const l = live.get(v.key);
        return h(
          'tr',
          { 'data-validator': v.name, 'data-key': v.key },
          h('td', null, v.name),
          h('td', { 'data-roles': v.roles.join(',') }, rolesLabel(v.roles)),
          h('td', { 'data-types': v.types.join(',') }, typesText(v.types)),
          current
            ? h(
                'td',
                null,
                l
                  ? [
                      l.primary ? 'primary' : null,
                      l.self ? 'this node' : null,
                      l.connected ? 'connected' : 'not connected',
                    ]
                      .filter(Boolean)
                      .join(', ')
                  : '—',
              )
            : null,
          h('td', { class: 'wide-only' }, hashEl(v.key, 16)),
        );
      }),
    ),
  );
}

function historyTable(trusted: TrustedGenesis, schedule: Schedule, tip: number, at: number): HTMLElement {
  const sets = [{ from: 1, validators: trusted.genesis.validators }, ...schedule.epochs];
  // The set certifying the next block.
  let current = 0;
  sets.forEach((e, i) => {
    if (e.from <= tip + 1) current = i;
  });
  let shown = 0;
  sets.forEach((e, i) => {
    if (e.from <= at) shown = i;
  });
  return h(
    'table',
    null,
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', { scope: 'col' }, 'From height'),
        h('th', { scope: 'col' }, 'What changed'),
        h('th', { scope: 'col' }, 'Validators'),
        h('th', { scope: 'col' }, 'State'),
      ),
    ),
    h(
      'tbody',
      null,
      sets.map((e, i) => {
        const prev = sets[i - 1];
        const changes = prev ? setChanges(prev.validators, e.validators) : [];
        return h(
          'tr',
          {
            'data-epoch': e.from,
            class: i === shown ? 'selected' : undefined,
            'aria-current': i === shown ? 'true' : undefined,
          },
          h('td', null, h('a', { href: `#/validators/${e.from}` }, String(e.from))),
          h(
            'td',
            null,
            prev
              ? [
                  h(
                    'ul',
                    { class: 'changes' },
                    changes.map((c) => h('li', { 'data-change': c.kind }, describeSetChange(c))),
                  ),
                  h(
                    'span',
                    { class: 'muted' },
                    'announced in the header of block ',
                    e.from - 1 <= tip ? blockLink(e.from - 1) : String(e.from - 1),
                  ),
                ]
              : 'the genesis set',
          ),
          h('td', null, `${e.validators.length}: ${e.validators.map((v) => v.name).join(', ')}`),
          h('td', null, i === current ? 'in force' : i < current ? 'past' : 'scheduled'),
        );
      }),
    ),
  );
}
