/**
 * Validator-set changes on real node processes over libp2p, under load: a 4-validator testnet's
 * council adds a fifth validator (a node written by `datagrant node join`, started from genesis
 * once the change is enacted) and then retires one of the original four. Every node, the new one
 * included, agrees on every block; the fifth signs certificates from the first height of its set
 * and the retired one none after its last; every transaction acknowledged is committed; and a
 * light client holding only genesis verifies transaction proofs from blocks on either side of
 * each change, and the proven schedule of sets, by following the chain of sets through certified
 * links.
 */
import '../../src/common/polyfill.js';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { generateKeySet } from '../../src/common/keyfile.js';
import {
  type AnyTx,
  type GovChange,
  LightClient,
  signTx,
  type TxProof,
  txHash,
  VALIDATOR_SETS_KEY,
  type ValidatorSchedule,
} from '../../src/ledger/index.js';
import { addInstitutionChange, councilChange, councilKeys } from '../helpers/council.js';
import { startTestnet } from '../helpers/testnet.js';
import { until } from '../helpers/until.js';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'datagrant.js');
const CHAIN = 'datagrant-vset';

interface BlockAnswer {
  hash: string;
  block: { header: { height: number } };
  cert: { votes: { validator: string }[] };
}

async function get<T>(url: string): Promise<T> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const body = (await r.json()) as T & { code?: string };
  if (!r.ok) throw Object.assign(new Error(`${url}: ${r.status} ${body.code}`), { code: body.code });
  return body;
}

t.test(
  'a council adds a fifth validator and retires one of the four under load; all agree; proofs verify from genesis',
  async (t) => {
    const { testnet, net, dir } = await startTestnet(t, 'datagrant-vset-', {
      validators: 4,
      chain: CHAIN,
      blockIntervalMs: 300,
      minBlockIntervalMs: 20,
      viewTimeoutMs: 1500,
    });
    const [c1, c2, c3] = await councilKeys(net.keys.council);
    const running = new Set([0, 1, 2, 3]);
    const api = (i: number) => testnet.api(i);
    const height = async (i: number) => (await get<{ height: number }>(`${api(i)}/v1/status`)).height;
    const committedAt = async (i: number, hash: string): Promise<number | undefined> => {
      const r = await get<{ status: string; height?: number }>(`${api(i)}/v1/txs/${hash}`).catch(
        () => undefined,
      );
      return r?.status === 'committed' ? r.height : undefined;
    };
    const submit = async (i: number, tx: AnyTx): Promise<string> => {
      const r = await fetch(`${api(i)}/v1/txs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(tx),
        signal: AbortSignal.timeout(5000),
      });
      if (!r.ok) throw new Error(`submit to node${i}: ${r.status} ${await r.text()}`);
      return txHash(tx);
    };
    const waitCommitted = async (hash: string, i = 0): Promise<number> => {
      return until(`tx ${hash.slice(0, 12)} committed on node${i}`, () => committedAt(i, hash));
    };

    // Load: open proposals nobody approves, round-robin over the running validators.
    const acknowledged: { hash: string }[] = [];
    let loading = true;
    let retiring = false;
    let n = 0;
    const load = (async () => {
      while (loading) {
        const nodes = [...running].filter((i) => i !== 3 || !retiring);
        const i = nodes[n % nodes.length]!;
        const keys = generateKeySet();
        const id = `load-${n++}`;
        const tx = signTx(
          {
            chain: CHAIN,
            kind: 'gov.propose',
            body: { change: addInstitutionChange(id, id, keys), deadline: Date.now() + 3600_000 },
          },
          c3!.signing.publicKey,
          c3!.signing.secretKey,
        );
        try {
          acknowledged.push({ hash: await submit(i, tx) });
        } catch {
          // A node restarting or being cut off refuses; nothing was acknowledged.
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    /** Proposes and approves `change` through the council; the height of the enacting approval. */
    const enact = async (change: GovChange): Promise<number> => {
      const { propose, approve } = councilChange(CHAIN, change, c1!, c2!);
      await waitCommitted(await submit(0, propose));
      return waitCommitted(await submit(1, approve));
    };

    // 1. The new node's home, as its operator writes it; the council seats its key.
    const five = await testnet.join('node4');
    const fifth = testnet.net.nodes[five]!;
    const { stdout } = await run(process.execPath, [BIN, 'gov', 'propose', '--help']);
    t.match(stdout, /validator-add/, '`gov propose --help` names the validator changes');
    const beforeAdd = acknowledged.length;
    const added = await enact({
      type: 'validator.add',
      validator: { name: 'node4', key: fifth.key, roles: [], types: [] },
    });
    const addFrom = added + 2;
    t.comment(`validator.add enacted at ${added}, in force from ${addFrom}`);
    const sets = await get<{ epochs: ValidatorSchedule['epochs'] }>(`${api(2)}/v1/gov/validator-sets`);
    t.same(
      sets.epochs.map((e) => [e.from, e.validators.length]),
      [[addFrom, 5]],
      'the schedule: five from h + 2',
    );
    testnet.start(five);
    running.add(five);
    await testnet.waitReady(five);

    // 2. The fifth syncs from genesis and signs certificates of its set.
    let scanned = addFrom - 1;
    const signedAt = await until(
      'the fifth validator in a commit certificate',
      async () => {
        const h = await height(0);
        for (; scanned < h; scanned++) {
          const block = await get<BlockAnswer>(`${api(0)}/v1/blocks/${scanned + 1}`);
          if (block.cert.votes.some((v) => v.validator === fifth.key)) return scanned + 1;
        }
        return undefined;
      },
      90_000,
    );
    t.ok(signedAt >= addFrom, `the fifth signs from its set's first height on (block ${signedAt})`);
    const before = (await get<BlockAnswer>(`${api(0)}/v1/blocks/${addFrom - 1}`)).cert.votes;
    t.notOk(
      before.some((v) => v.validator === fifth.key),
      'and is in no certificate before its set',
    );
    const fifthStatus = await get<{ voting: boolean; validators: number }>(`${api(five)}/v1/status`);
    t.equal(fifthStatus.validators, 5, 'its status counts five validators');

    // 3. Retire one of the original four (node3), still under load.
    const retired = net.nodes[3]!;
    const midAdd = acknowledged.length;
    retiring = true;
    const retiredAt = await enact({ type: 'validator.retire', key: retired.key });
    const retireFrom = retiredAt + 2;
    t.comment(`validator.retire enacted at ${retiredAt}, in force from ${retireFrom}`);
    await until('ten blocks after the retirement', async () =>
      (await height(0)) >= retireFrom + 10 ? true : undefined,
    );
    for (let b = retireFrom; b <= retireFrom + 10; b++) {
      const votes = (await get<BlockAnswer>(`${api(0)}/v1/blocks/${b}`)).cert.votes.map((v) => v.validator);
      if (votes.includes(retired.key)) t.fail(`the retired validator signed block ${b}`);
    }
    t.pass('the retired validator signs no certificate after its last height');
    const lastOfRetired = (await get<BlockAnswer>(`${api(0)}/v1/blocks/${retireFrom - 1}`)).cert.votes;
    t.ok(lastOfRetired.length >= 4, 'its last height still had a quorum of five');
    const status = await get<{ validators: number }>(`${api(0)}/v1/status`);
    t.equal(status.validators, 4, 'four validators again');

    // 4. Stop the load; everything acknowledged commits.
    const afterRetire = acknowledged.length;
    await until('more blocks', async () => ((await height(0)) >= retireFrom + 15 ? true : undefined));
    loading = false;
    await load;
    t.ok(acknowledged.length > 50, `${acknowledged.length} transactions of load acknowledged`);
    const heights = new Map<string, number>();
    for (const { hash } of acknowledged) heights.set(hash, await waitCommitted(hash));
    t.equal(heights.size, acknowledged.length, 'every acknowledged transaction committed');

    // 5. Every node agrees on every block it holds; the new one holds them all from genesis.
    const nodes = [0, 1, 2, five];
    const top = Math.min(...(await Promise.all(nodes.map(height))));
    const hashesOf = async (i: number, upTo: number) => {
      const out: string[] = [];
      for (let before = upTo + 1; before > 1; before -= 100) {
        const page = await get<{ blocks: { hash: string; header: { height: number } }[] }>(
          `${api(i)}/v1/blocks?before=${before}&limit=100`,
        );
        for (const b of page.blocks) out[b.header.height] = b.hash;
      }
      return out;
    };
    const reference = await hashesOf(0, top);
    for (const i of [...nodes, 3]) {
      const upTo = i === 3 ? Math.min(top, await height(3)) : top;
      const hashes = await hashesOf(i, upTo);
      let same = 0;
      for (let h = 1; h <= upTo; h++) if (hashes[h] === reference[h]) same++;
      t.equal(same, upTo, `${testnet.net.nodes[i]!.name} holds the same ${upTo} blocks`);
    }

    // 6. Proofs of transactions on either side of each change, from genesis alone, through node4.
    const light = new LightClient(net.genesis);
    const getFrom = (i: number) => (path: string) => get<unknown>(`${api(i)}${path}`);
    const blame = { code: 'CLIENT_NODE_LIED', node: api(five) };
    const pick = (from: number, to: number, label: string) => {
      const found = acknowledged.find((a) => {
        const h = heights.get(a.hash)!;
        return h >= from && h < to;
      });
      t.ok(found, `a transaction ${label}`);
      return found!.hash;
    };
    const samples = [
      pick(1, addFrom, 'before the fifth joined'),
      pick(addFrom, retireFrom, 'while five validated'),
      pick(retireFrom, Number.MAX_SAFE_INTEGER, 'after the retirement'),
    ];
    t.ok(beforeAdd <= midAdd && midAdd <= afterRetire, 'load ran through both changes');
    const proofs = await Promise.all(samples.map((h) => get<TxProof>(`${api(five)}/v1/txs/${h}/proof`)));
    t.match(light.verifyTx(proofs[0]!, samples[0]), { ok: true }, 'before the changes: the genesis set');
    t.match(
      light.verifyTx(proofs[2]!, samples[2]),
      { ok: false, code: 'LIGHT_VALIDATORS_UNKNOWN' },
      'after them: not before the client follows the sets',
    );
    await light.followValidatorSets(getFrom(five), blame);
    t.equal(light.epochs.length, 2, 'it followed both changes through their certified links');
    for (let i = 0; i < proofs.length; i++)
      t.match(light.verifyTx(proofs[i]!, samples[i]), { ok: true }, `proof ${i + 1} of 3 verifies`);
    const proven = await light.provenEntry<ValidatorSchedule>(
      getFrom(five),
      '/v1/state/validator-sets',
      VALIDATOR_SETS_KEY,
      blame,
      'present',
    );
    t.same(
      proven?.value?.epochs.map((e) => [e.from, e.validators.map((v) => v.name)]),
      [
        [addFrom, [...net.genesis.validators.map((v) => v.name), 'node4']],
        [
          retireFrom,
          [...net.genesis.validators.filter((v) => v.key !== retired.key).map((v) => v.name), 'node4'],
        ],
      ],
      'the proven schedule of sets',
    );
    // The CLI verifies the latest proof from genesis, following the sets through a node.
    const proofFile = join(dir, 'after-retire.proof.json');
    await writeFile(proofFile, JSON.stringify(proofs[2]));
    const verified = await run(process.execPath, [
      BIN,
      'verify',
      '--genesis',
      net.genesisPath,
      '--proof',
      proofFile,
      '--api',
      api(1),
    ]);
    t.match(verified.stdout, /^verified: tx/, '`datagrant verify` follows the sets and verifies it');
    const fresh = await new LightClient(net.genesis).provenEntry<ValidatorSchedule>(
      getFrom(2),
      '/v1/state/validator-sets',
      VALIDATOR_SETS_KEY,
      { code: 'CLIENT_NODE_LIED', node: api(2) },
      'present',
    );
    t.same(
      fresh?.value,
      proven?.value,
      'a fresh client follows the sets by itself when a proof is past them',
    );
    t.comment(`testnet in ${dir}`);
  },
);
