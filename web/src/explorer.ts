/**
 * The chain explorer: status and validators, the latest blocks (updated live from the node's
 * block events), a block page, a transaction page with its inclusion proof verified in this
 * browser, governance (the council, its proposals, a proposal's page) and the validator set at
 * any height with its history (explorer-gov.ts), and search by transaction hash, block hash or
 * height. Routes live in the URL fragment (`#/block/12`, `#/tx/<hash>`, `#/gov`,
 * `#/proposal/<id>`, `#/validators/12`), so every view can be linked and bookmarked.
 */
import type { BlockHeader, CertifiedBlock } from '../../src/ledger/block.js';
import type { ValidatorInfo } from '../../src/ledger/genesis.js';
import type { TxProof } from '../../src/ledger/proof.js';
import type { Tx } from '../../src/ledger/tx.js';
import { ApiError, getJson, onBlocks, type RedactedTx, type TxStatus } from './api.js';
import { byId, type Child, fill, h } from './dom.js';
import { governanceView, proposalView, validatorsView } from './explorer-gov.js';
import { errorNotice, fact, fromNow, hashEl, notice, short, timeEl } from './format.js';
import { type TrustedGenesis, trustedGenesis } from './proofs.js';
import { followSets, validatorLabel, verifyTxFollowing } from './validators.js';

interface StatusResponse {
  chain: string;
  height: number;
  hash: string;
  time: number;
  mode: 'dev' | 'pbft';
  view: number;
  primary: string;
  self: string;
  peers: string[];
  lastCommitAt: number | null;
  mempool: number;
  validators: number;
  quorum: number;
}

type LiveValidator = ValidatorInfo & {
  self: boolean;
  primary: boolean;
  connected: boolean;
  lastSeenAt: number | null;
};

interface BlocksResponse {
  height: number;
  blocks: { hash: string; header: BlockHeader; votes: number }[];
}

interface BlockResponse extends Omit<CertifiedBlock, 'block'> {
  hash: string;
  block: { header: CertifiedBlock['block']['header']; txs: (Tx | RedactedTx)[] };
  txHashes: string[];
  signerRoles: string[];
}

/** The hidden-body notice of a transaction about a subject. */
const HIDDEN =
  'This transaction concerns a person: its body and proof are shown only to that person and the institution concerned (a read signed with their key). Node operators, who replicate the ledger, do see it.';

type Route =
  | { page: 'home' }
  | { page: 'block'; id: string }
  | { page: 'tx'; hash: string }
  | { page: 'gov'; before?: number }
  | { page: 'proposal'; id: string }
  | { page: 'validators'; height?: number };

const view = byId('view');
const live = byId('live');
const searchForm = byId<HTMLFormElement>('search-form');
const searchInput = byId<HTMLInputElement>('search');
const searchNotice = byId('search-notice');
const HASH_RE = /^[0-9a-f]{64}$/;

let renderToken = 0;
let homeShown = false;
/** A pending transaction is on screen: re-render when a block commits. */
let pendingShown = false;
let lastTop = 0;

function route(): Route {
  const parts = window.location.hash.replace(/^#\/?/, '').split('/');
  if (parts[0] === 'block' && parts[1] && /^([0-9]{1,15}|[0-9a-f]{64}|latest)$/.test(parts[1]))
    return { page: 'block', id: parts[1] };
  if (parts[0] === 'tx' && parts[1] && HASH_RE.test(parts[1])) return { page: 'tx', hash: parts[1] };
  if (parts[0] === 'gov')
    return parts[1] === 'before' && /^[1-9][0-9]{0,14}$/.test(parts[2] ?? '')
      ? { page: 'gov', before: Number(parts[2]) }
      : { page: 'gov' };
  if (parts[0] === 'proposal' && parts[1] && HASH_RE.test(parts[1]))
    return { page: 'proposal', id: parts[1] };
  if (parts[0] === 'validators')
    return /^[1-9][0-9]{0,14}$/.test(parts[1] ?? '')
      ? { page: 'validators', height: Number(parts[1]) }
      : { page: 'validators' };
  return { page: 'home' };
}

/** The view of a route. */
function content(r: Route): Promise<HTMLElement[]> {
  switch (r.page) {
    case 'home':
      return homeView();
    case 'block':
      return blockView(r.id);
    case 'tx':
      return txView(r.hash);
    case 'gov':
      return governanceView(r.before);
    case 'proposal':
      return proposalView(r.id);
    case 'validators':
      return validatorsView(r.height);
  }
}

/** Marks the explorer's tab of the route shown. */
function markTab(r: Route): void {
  const tab =
    r.page === 'proposal'
      ? 'gov'
      : r.page === 'validators'
        ? 'validators'
        : r.page === 'gov'
          ? 'gov'
          : 'home';
  document.querySelectorAll<HTMLElement>('[data-tab]').forEach((a) => {
    if (a.dataset.tab === tab) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
}

async function render(focus: boolean): Promise<void> {
  const token = ++renderToken;
  const r = route();
  homeShown = false;
  pendingShown = false;
  markTab(r);
  try {
    const shown = await content(r);
    if (token !== renderToken) return;
    fill(view, shown);
    homeShown = r.page === 'home';
  } catch (err) {
    if (token !== renderToken) return;
    fill(view, h('section', { class: 'card' }, h('h2', { tabindex: -1 }, 'Not found'), errorNotice(err)));
  }
  if (focus) view.querySelector<HTMLElement>('h2')?.focus();
}

// ---- home: status, validators, latest blocks ----

async function homeView(): Promise<HTMLElement[]> {
  const [trusted, status, validators, blocks] = await Promise.all([
    trustedGenesis(),
    getJson<StatusResponse>('v1/status'),
    getJson<{ quorum: number; validators: LiveValidator[] }>('v1/validators'),
    getJson<BlocksResponse>('v1/blocks?limit=20'),
  ]);
  lastTop = blocks.blocks[0]?.header.height ?? 0;
  return [
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'status-heading' },
      h('h2', { id: 'status-heading', tabindex: -1 }, 'Chain status'),
      h('dl', { class: 'stats', id: 'stats' }, statusStats(trusted, status)),
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'validators-heading' },
      h('h2', { id: 'validators-heading' }, 'Validators'),
      h('div', { class: 'table-wrap', id: 'validators' }, validatorsTable(trusted, validators.validators)),
      h(
        'p',
        { class: 'actions' },
        h('a', { href: '#/validators' }, 'The set at any height, and its history →'),
      ),
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'blocks-heading' },
      h('h2', { id: 'blocks-heading' }, 'Latest blocks'),
      h('div', { class: 'table-wrap', id: 'blocks' }, blocksTable(trusted, blocks, new Set())),
    ),
  ];
}

function stat(name: string, label: string, value: Child): HTMLElement {
  return h('div', { 'data-stat': name }, h('dt', null, label), h('dd', null, value));
}

function validatorName(trusted: TrustedGenesis, key: string): string {
  return validatorLabel(trusted, key);
}

function statusStats(trusted: TrustedGenesis, s: StatusResponse): HTMLElement[] {
  return [
    stat('chain', 'Chain', s.chain),
    stat('height', 'Height', String(s.height)),
    stat('view', 'View', String(s.view)),
    stat('primary', 'Primary', validatorName(trusted, s.primary)),
    stat('mode', 'Consensus', s.mode === 'dev' ? 'dev (one validator)' : 'PBFT'),
    stat('validators', 'Validators', `${s.validators} (quorum ${s.quorum})`),
    stat('peers', 'Peers connected', String(s.peers.length)),
    stat('mempool', 'Pending txs', String(s.mempool)),
    stat('last', 'Last block', s.time ? timeEl(s.time) : '—'),
  ];
}

function validatorsTable(trusted: TrustedGenesis, validators: LiveValidator[]): HTMLElement {
  return h(
    'table',
    null,
    h(
      'caption',
      { class: 'muted' },
      `Validators certifying the next block; chain from genesis ${short(trusted.hash)}`,
    ),
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', { scope: 'col' }, 'Name'),
        h('th', { scope: 'col' }, 'Roles'),
        h('th', { scope: 'col' }, 'State'),
        h('th', { scope: 'col' }, 'Last seen'),
        h('th', { scope: 'col', class: 'wide-only' }, 'Key'),
      ),
    ),
    h(
      'tbody',
      null,
      validators.map((v) =>
        h(
          'tr',
          { 'data-validator': v.name },
          h('td', null, v.name),
          h('td', null, v.roles.join(', ') || 'consensus only'),
          h(
            'td',
            null,
            [
              v.primary ? 'primary' : null,
              v.self ? 'this node' : null,
              v.connected ? 'connected' : 'not connected',
            ]
              .filter(Boolean)
              .join(', '),
          ),
          h('td', null, v.lastSeenAt === null ? 'never' : fromNow(v.lastSeenAt)),
          h('td', { class: 'wide-only' }, hashEl(v.key)),
        ),
      ),
    ),
  );
}

function blocksTable(trusted: TrustedGenesis, blocks: BlocksResponse, fresh: Set<number>): HTMLElement {
  return h(
    'table',
    null,
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', { scope: 'col' }, 'Height'),
        h('th', { scope: 'col' }, 'Time'),
        h('th', { scope: 'col' }, 'Txs'),
        h('th', { scope: 'col' }, 'Proposer'),
        h('th', { scope: 'col', class: 'wide-only' }, 'Votes'),
        h('th', { scope: 'col', class: 'wide-only' }, 'Hash'),
      ),
    ),
    h(
      'tbody',
      null,
      blocks.blocks.map((b) =>
        h(
          'tr',
          { 'data-height': b.header.height, class: fresh.has(b.header.height) ? 'flash' : undefined },
          h('td', null, h('a', { href: `#/block/${b.header.height}` }, String(b.header.height))),
          h('td', null, timeEl(b.header.time)),
          h('td', null, String(b.header.txCount)),
          h('td', null, validatorName(trusted, b.header.proposer)),
          h('td', { class: 'wide-only' }, String(b.votes)),
          h('td', { class: 'wide-only' }, hashEl(b.hash)),
        ),
      ),
    ),
  );
}

let updating = false;
let updateAgain = false;
let lastValidatorsAt = 0;

/** Refreshes the home view in place after new blocks (at most one request set in flight). */
async function updateHome(): Promise<void> {
  if (updating) {
    updateAgain = true;
    return;
  }
  updating = true;
  try {
    do {
      updateAgain = false;
      const token = renderToken;
      const withValidators = Date.now() - lastValidatorsAt > 5000;
      const [trusted, status, blocks, validators] = await Promise.all([
        trustedGenesis(),
        getJson<StatusResponse>('v1/status'),
        getJson<BlocksResponse>('v1/blocks?limit=20'),
        withValidators ? getJson<{ validators: LiveValidator[] }>('v1/validators') : Promise.resolve(null),
      ]);
      if (token !== renderToken || !homeShown) return;
      const fresh = new Set(blocks.blocks.map((b) => b.header.height).filter((height) => height > lastTop));
      lastTop = Math.max(lastTop, blocks.blocks[0]?.header.height ?? 0);
      const stats = document.getElementById('stats');
      if (stats) fill(stats, statusStats(trusted, status));
      const table = document.getElementById('blocks');
      if (table) fill(table, blocksTable(trusted, blocks, fresh));
      const vt = document.getElementById('validators');
      if (vt && validators) {
        fill(vt, validatorsTable(trusted, validators.validators));
        lastValidatorsAt = Date.now();
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    } while (updateAgain);
  } catch {
    // The next block event retries.
  } finally {
    updating = false;
  }
}

// ---- block page ----

async function blockView(id: string): Promise<HTMLElement[]> {
  const [trusted, b] = await Promise.all([trustedGenesis(), getJson<BlockResponse>(`v1/blocks/${id}`)]);
  const hd = b.block.header;
  // Names of the validators of sets after genesis's, for the proposer and the certificate.
  if (hd.validators !== undefined || hd.nextValidators !== undefined)
    await followSets(trusted).catch(() => undefined);
  const setChanges = (hd.nextValidators ?? null) !== (hd.validators ?? null);
  const nav = h(
    'p',
    { class: 'actions' },
    hd.height > 1 ? h('a', { href: `#/block/${hd.height - 1}` }, `← Block ${hd.height - 1}`) : null,
    h('a', { href: `#/block/${hd.height + 1}` }, `Block ${hd.height + 1} →`),
    h('a', { href: '#/' }, 'Latest blocks'),
    h('a', { href: `#/validators/${hd.height}`, 'data-link': 'validators-at' }, 'Validators at this height'),
  );
  return [
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'block-heading', 'data-block': hd.height },
      h('h2', { id: 'block-heading', tabindex: -1 }, `Block ${hd.height}`),
      nav,
      setChanges
        ? h(
            'p',
            { class: 'notice warn', role: 'status', 'data-set-change': 'true' },
            'The validator set changes after this block: its header names the next set, which certifies block ',
            h('a', { href: `#/validators/${hd.height + 1}` }, String(hd.height + 1)),
            ' on.',
          )
        : null,
      h(
        'dl',
        { class: 'facts' },
        fact('Hash', h('code', null, b.hash)),
        fact('Time', timeEl(hd.time)),
        fact('Proposer', `${validatorName(trusted, hd.proposer)} (view ${hd.view})`),
        fact('Transactions', String(hd.txCount)),
        fact(
          'Previous',
          hd.height > 1
            ? h('a', { href: `#/block/${hd.height - 1}` }, hashEl(hd.prev, 16))
            : hashEl(hd.prev, 16),
        ),
        fact('Tx root', hashEl(hd.txRoot, 16)),
        fact('State root', hashEl(hd.stateRoot, 16)),
        fact(
          'Validator set',
          [
            hd.validators === undefined ? 'the genesis set' : hashEl(hd.validators, 16),
            ' · ',
            h('a', { href: `#/validators/${hd.height}` }, 'validators at this height'),
          ],
          'validators',
        ),
        hd.nextValidators !== undefined || setChanges
          ? fact(
              'Next validator set',
              hd.nextValidators === undefined ? 'the genesis set' : hashEl(hd.nextValidators, 16),
              'next-validators',
            )
          : null,
        fact(
          'Certificate',
          `${b.cert.votes.length} commit vote${b.cert.votes.length === 1 ? '' : 's'} in view ${b.cert.view}: ` +
            b.cert.votes.map((v) => validatorName(trusted, v.validator)).join(', '),
        ),
      ),
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'block-txs-heading' },
      h('h2', { id: 'block-txs-heading' }, 'Transactions'),
      b.block.txs.length === 0
        ? h('p', { class: 'muted' }, 'No transactions: an empty block showing the chain is alive.')
        : h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              null,
              h(
                'thead',
                null,
                h(
                  'tr',
                  null,
                  h('th', { scope: 'col' }, '#'),
                  h('th', { scope: 'col' }, 'Hash'),
                  h('th', { scope: 'col' }, 'Kind'),
                  h('th', { scope: 'col', class: 'wide-only' }, 'Signer'),
                  h('th', { scope: 'col', class: 'wide-only' }, 'Role'),
                ),
              ),
              h(
                'tbody',
                null,
                b.block.txs.map((tx, i) =>
                  h(
                    'tr',
                    { 'data-tx': b.txHashes[i] },
                    h('td', null, String(i)),
                    h('td', null, h('a', { href: `#/tx/${b.txHashes[i]}` }, hashEl(b.txHashes[i] ?? ''))),
                    h('td', null, tx.kind),
                    h('td', { class: 'wide-only' }, trusted.names.get(tx.signer) ?? hashEl(tx.signer)),
                    h(
                      'td',
                      { class: 'wide-only' },
                      b.signerRoles?.[i] ?? '',
                      'redacted' in tx ? h('span', { class: 'muted' }, ' · body hidden') : null,
                    ),
                  ),
                ),
              ),
            ),
          ),
    ),
  ];
}

// ---- transaction page ----

async function txView(hash: string): Promise<HTMLElement[]> {
  const [trusted, s] = await Promise.all([trustedGenesis(), getJson<TxStatus>(`v1/txs/${hash}`)]);
  const head = h('h2', { id: 'tx-heading', tabindex: -1 }, 'Transaction ', hashEl(hash));
  if (s.status === 'rejected')
    return [
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'tx-heading', 'data-tx': hash },
        head,
        notice('error', `Rejected by the ledger: ${s.error.message}`, s.error.code),
      ),
    ];
  const tx = s.tx;
  pendingShown = s.status === 'pending';
  const hidden = 'redacted' in tx;
  let proofPart: Child = null;
  if (s.status === 'committed' && hidden)
    proofPart = [
      h('h3', null, 'Inclusion proof'),
      h('p', { class: 'notice info', 'data-redacted': 'true' }, HIDDEN),
    ];
  else if (s.status === 'committed') {
    let mark: HTMLElement;
    let details: Child = null;
    try {
      const proof = await getJson<TxProof>(`v1/txs/${hash}/proof`);
      const v = await verifyTxFollowing(trusted, hash, proof);
      const set = trusted.light.validatorsAt(proof.header.height);
      const signers =
        set === trusted.genesis.validators
          ? `the ${set.length} genesis validator${set.length === 1 ? '' : 's'}`
          : `the ${set.length} validator${set.length === 1 ? '' : 's'} in force there`;
      mark = v.ok
        ? h(
            'p',
            { class: 'notice ok', 'data-verified': 'true' },
            h('span', { class: 'mark ok' }, '✓ verified'),
            ` in this browser: included in block ${v.height}, whose header carries ${proof.cert.votes.length} valid commit signature${proof.cert.votes.length === 1 ? '' : 's'} of ${signers}.`,
          )
        : h(
            'p',
            { class: 'notice error', role: 'alert', 'data-verified': 'false' },
            h('span', { class: 'mark bad' }, `✗ NOT verified: ${v.code}`),
            ` — ${v.message}`,
          );
      details = h(
        'p',
        { class: 'help' },
        `Merkle path of ${proof.path.length} hash${proof.path.length === 1 ? '' : 'es'} to the tx root of block ${proof.header.height}; certificate of view ${proof.cert.view}.`,
      );
    } catch (err) {
      mark = errorNotice(err, 'The inclusion proof could not be fetched: ');
    }
    proofPart = [h('h3', null, 'Inclusion proof'), mark, details];
  }
  return [
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'tx-heading', 'data-tx': hash },
      head,
      h(
        'dl',
        { class: 'facts' },
        fact('Hash', h('code', null, hash)),
        fact('Status', s.status === 'committed' ? 'committed' : 'pending (in the mempool)'),
        s.status === 'committed'
          ? [
              fact('Block', h('a', { href: `#/block/${s.height}` }, String(s.height))),
              fact('Position', String(s.index)),
              fact('Time', timeEl(s.time)),
            ]
          : null,
        fact('Kind', tx.kind),
        fact(
          'Signer',
          trusted.names.get(tx.signer)
            ? `${trusted.names.get(tx.signer)} (${short(tx.signer)})`
            : hashEl(tx.signer, 16),
        ),
        s.signerRole ? fact('Signer role', s.signerRole) : null,
        fact('Chain', tx.chain),
        'redacted' in tx ? null : fact('Nonce', h('code', null, tx.nonce)),
        fact('Valid until', timeEl(tx.expires)),
        'redacted' in tx ? null : fact('Signature', hashEl(tx.sig, 16)),
      ),
      proofPart,
      h('h3', null, 'Body'),
      'redacted' in tx
        ? h('p', { class: 'notice info', 'data-redacted': 'true' }, HIDDEN)
        : h(
            'pre',
            { tabindex: 0, 'aria-label': 'Transaction body as JSON' },
            JSON.stringify(tx.body, null, 2),
          ),
    ),
  ];
}

// ---- search and wiring ----

async function search(query: string): Promise<void> {
  searchNotice.replaceChildren();
  const q = query.trim().toLowerCase();
  if (/^[0-9]{1,15}$/.test(q)) {
    window.location.hash = `#/block/${Number(q)}`;
    return;
  }
  if (!HASH_RE.test(q)) {
    fill(
      searchNotice,
      notice(
        'error',
        'Enter a block height (a number) or a hash of 64 hex characters.',
        'EXPLORER_BAD_QUERY',
      ),
    );
    return;
  }
  try {
    await getJson<TxStatus>(`v1/txs/${q}`);
    window.location.hash = `#/tx/${q}`;
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'LEDGER_TX_NOT_FOUND')) {
      fill(searchNotice, errorNotice(err));
      return;
    }
    try {
      await getJson<BlockResponse>(`v1/blocks/${q}`);
      window.location.hash = `#/block/${q}`;
    } catch (err2) {
      fill(
        searchNotice,
        err2 instanceof ApiError && err2.code === 'LEDGER_BLOCK_NOT_FOUND'
          ? notice('error', 'No transaction or block has this hash.', 'LEDGER_TX_NOT_FOUND')
          : errorNotice(err2),
      );
    }
  }
}

searchForm.addEventListener('submit', (event) => {
  event.preventDefault();
  void search(searchInput.value);
});
window.addEventListener('hashchange', () => void render(true));
onBlocks(
  () => {
    if (homeShown) void updateHome();
    else if (pendingShown) void render(false);
  },
  (on) => {
    live.classList.toggle('on', on);
    live.textContent = on ? 'Live: new blocks appear as they are committed' : 'Reconnecting to live updates…';
  },
);
void render(false);
