import t from 'tap';
import {
  faultTolerance,
  type Genesis,
  genesisHash,
  parseGenesis,
  quorumSize,
} from '../../../src/ledger/index.js';
import { makeTestChain } from '../../helpers/chain.js';

const base = (): Genesis => JSON.parse(JSON.stringify(makeTestChain().genesis)) as Genesis;

t.test('quorum arithmetic: f = floor((n-1)/3), quorum = n - f', async (t) => {
  const table: [number, number, number][] = [
    [1, 0, 1],
    [2, 0, 2],
    [3, 0, 3],
    [4, 1, 3],
    [5, 1, 4],
    [6, 1, 5],
    [7, 2, 5],
    [10, 3, 7],
    [100, 33, 67],
  ];
  for (const [n, f, q] of table) {
    t.equal(faultTolerance(n), f, `f for n=${n}`);
    t.equal(quorumSize(n), q, `quorum for n=${n}`);
  }
  for (let n = 1; n <= 100; n++) {
    const f = faultTolerance(n);
    const q = quorumSize(n);
    // Two quorums always share at least f + 1 validators, so at least one honest one.
    t.ok(2 * q - n >= f + 1, `n=${n}: quorums intersect in an honest validator`);
    t.ok(q <= n - f, `n=${n}: a quorum is reachable with f validators down`);
  }
});

t.test('parseGenesis accepts the test genesis and refuses bad ones', async (t) => {
  t.same(parseGenesis(base()), base());
  const bad: [string, (g: Genesis & Record<string, unknown>) => void][] = [
    ['extra field', (g) => (g.extra = 1)],
    ['bad chain id', (g) => (g.chain = 'Bad Chain')],
    ['no validators', (g) => (g.validators = [])],
    ['duplicate validator key', (g) => g.validators.push({ ...g.validators[0]!, name: 'dup' })],
    ['unknown role', (g) => ((g.validators[0]!.roles as string[]) = ['miner'])],
    ['unknown data type', (g) => ((g.validators[0]!.types as string[]) = ['medical'])],
    ['upper-case key', (g) => (g.registrars = [g.registrars[0]!.toUpperCase()])],
    ['missing params', (g) => delete (g as Partial<Genesis>).params],
    ['tx TTL below 1 s', (g) => (g.params.maxTxTtlMs = 10)],
    ['extra param', (g) => ((g.params as Record<string, unknown>).x = 1)],
    ['negative time', (g) => (g.time = -1)],
  ];
  for (const [name, edit] of bad) {
    const g = base() as Genesis & Record<string, unknown>;
    edit(g);
    t.throws(() => parseGenesis(g), { code: 'LEDGER_GENESIS_INVALID' }, name);
  }
});

t.test('genesisHash is canonical: key order does not matter, content does', async (t) => {
  const g = base();
  const reordered = Object.fromEntries(Object.entries(g).reverse()) as Genesis;
  t.equal(genesisHash(reordered), genesisHash(g));
  t.not(genesisHash({ ...g, time: g.time + 1 }), genesisHash(g));
  t.equal(
    genesisHash(makeTestChain().genesis),
    genesisHash(makeTestChain().genesis),
    'test chain is deterministic',
  );
  t.not(genesisHash(makeTestChain({ seed: 'x' }).genesis), genesisHash(g), 'seed changes keys');
});

t.test('genesis sources: optional, hashed, and checked', async (t) => {
  const tax = makeTestChain().keys('tax-office');
  const land = makeTestChain().keys('land-registry');
  const withSources = (): Genesis => ({
    ...base(),
    sources: [
      { id: 'tax-office', key: tax.pub, types: ['tax'] },
      { id: 'land-registry', key: land.pub, types: ['property', 'housing-fund'] },
    ],
  });
  t.same(parseGenesis(withSources()), withSources(), 'a genesis with sources parses');
  t.notOk('sources' in parseGenesis(base()), 'one without them stays valid as it was');
  t.not(genesisHash(withSources()), genesisHash(base()), 'sources are part of the genesis hash');
  const swapped = withSources();
  swapped.sources![0]!.types = ['property'];
  t.not(genesisHash(swapped), genesisHash(withSources()), "a source's types are too");
  const bad: [string, (g: Genesis) => void][] = [
    ['duplicate source id', (g) => (g.sources![1]!.id = 'tax-office')],
    ['duplicate source key', (g) => (g.sources![1]!.key = tax.pub)],
    ['unknown data type', (g) => ((g.sources![0]!.types as string[]) = ['medical'])],
    ['no data type', (g) => (g.sources![0]!.types = [])],
    ['a type twice', (g) => (g.sources![0]!.types = ['tax', 'tax'])],
    ['a key that is no Ed25519 point', (g) => (g.sources![0]!.key = `${'00'.repeat(31)}80`)],
    ['a bad id', (g) => (g.sources![0]!.id = 'Tax Office')],
    ['an extra field', (g) => ((g.sources![0] as Record<string, unknown>).url = 'https://x')],
  ];
  for (const [name, edit] of bad) {
    const g = withSources();
    edit(g);
    t.throws(() => parseGenesis(g), { code: 'LEDGER_GENESIS_INVALID' }, name);
  }
});
