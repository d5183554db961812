/**
 * The ledger side of consensus in one process, without network or HTTP: four validators'
 * mempools admit every transaction from its JSON text, the primary builds each block, the other
 * three decode the proposal from the wire and validate it, all four sign and check votes and
 * commit the certified block to LevelDB. CPU time per transaction here is what the node code costs
 * besides libp2p and Fastify, and is far less noisy on a shared machine than tx/s.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesToHex, fromHex } from '../../src/common/bytes.js';
import { generateSigningKeyPair, randomBytes } from '../../src/common/crypto.js';
import { signFast, verifyFast } from '../../src/common/crypto-node.js';
import { decodeMessage, signProposal, signVote, voteSigningBytes } from '../../src/consensus/index.js';
import {
  blockHash,
  type CertifiedBlock,
  DEFAULT_CHAIN_PARAMS,
  type Genesis,
  genesisHash,
  genesisState,
  LevelBlockStore,
  signTx,
} from '../../src/ledger/index.js';
import { Chain } from '../../src/node/chain.js';
import { Mempool } from '../../src/node/mempool.js';
import { round } from './report.js';

/** Result of one pipeline run. */
export interface PipelineResult {
  validators: number;
  txs: number;
  blockTxs: number;
  /** CPU milliseconds per transaction, all validators together. */
  cpuMsPerTx: number;
  /** Of which: admission (parse, decode, verify, mempool), per stage. */
  stagesMsPerTx: Record<string, number>;
  /** The same work expressed as transactions per second of one core. */
  txPerCoreSecond: number;
  /** Signature checks per transaction across all validators (OpenSSL), for the ceiling. */
  verifiesPerTx: number;
}

/** Runs `txs` transactions through `validators` in-process validators in blocks of `blockTxs`. */
export async function runPipeline(options: {
  txs: number;
  blockTxs: number;
  validators?: number;
}): Promise<PipelineResult> {
  const n = options.validators ?? 4;
  const dir = await mkdtemp(join(tmpdir(), 'datagrant-pipeline-'));
  const keys = Array.from({ length: n }, () => generateSigningKeyPair());
  const admin = generateSigningKeyPair();
  const genesis: Genesis = {
    chain: 'datagrant-pipeline',
    time: Date.now() - 1000,
    validators: keys.map((k, i) => ({
      name: `node${i}`,
      key: bytesToHex(k.publicKey),
      roles: [],
      types: [],
    })),
    registrars: [],
    admins: [bytesToHex(admin.publicKey)],
    institutions: [],
    params: {
      ...DEFAULT_CHAIN_PARAMS,
      maxBlockTxs: Math.max(options.blockTxs, DEFAULT_CHAIN_PARAMS.maxBlockTxs),
    },
  };
  const init = genesisState(genesis);
  const nodes = await Promise.all(
    keys.map(async (_, i) => {
      const store = new LevelBlockStore({
        path: join(dir, `node${i}`),
        genesis: {
          genesisHash: genesisHash(genesis),
          time: genesis.time,
          stateRoot: init.state.root,
          writes: init.writes,
        },
      });
      await store.open();
      let chain: Chain | undefined;
      const mempool = new Mempool(
        { chain: genesis.chain, maxTxs: 1_000_000, maxTxTtlMs: genesis.params.maxTxTtlMs },
        {
          verifier: verifyFast,
          isCommitted: async (hash) => chain!.committedRecently(hash),
          now: Date.now,
        },
      );
      chain = new Chain(genesis, store, { mempool, verifier: verifyFast });
      await chain.load();
      return { store, mempool, chain };
    }),
  );

  const expires = Date.now() + 30 * 60 * 1000;
  const texts: string[] = [];
  for (let i = 0; i < options.txs; i++) {
    const tx = signTx(
      {
        chain: genesis.chain,
        kind: 'institution.add',
        body: {
          institution: `pipe-${i.toString(36)}`,
          name: `Pipeline institution ${i}`,
          signKey: bytesToHex(randomBytes(32)),
          encKey: bytesToHex(randomBytes(32)),
        },
        expires,
      },
      admin.publicKey,
      admin.secretKey,
      Date.now(),
      signFast,
    );
    texts.push(JSON.stringify(tx));
  }

  const stages: Record<string, number> = { admit: 0, build: 0, validate: 0, votes: 0, commit: 0 };
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const timed = async (stage: string, fn: () => unknown) => {
    const t = cpu();
    await fn();
    stages[stage]! += cpu() - t;
  };
  const startCpu = cpu();
  let seq = 0;
  for (let start = 0; start < texts.length; start += options.blockTxs) {
    const batch = texts.slice(start, start + options.blockTxs);
    // Every validator admits every transaction: one from HTTP, the others from gossip.
    await timed('admit', async () => {
      for (const node of nodes) for (const text of batch) await node.mempool.add(JSON.parse(text));
    });
    const height = nodes[0]!.chain.height + 1;
    const p = height % n;
    const primary = nodes[p]!;
    const self = bytesToHex(keys[p]!.publicKey);
    let wire = '';
    await timed('build', () => {
      const block = primary.chain.buildBlock(self, 0, Date.now());
      const proposal = signProposal(genesis.chain, height, 0, block, self, (b) =>
        signFast(b, keys[p]!.secretKey),
      );
      wire = `{"r":${++seq},"m":${JSON.stringify(proposal)}}`;
    });
    let hash = '';
    let certified: CertifiedBlock | undefined;
    const blocks = new Map<number, CertifiedBlock['block']>();
    await timed('validate', () => {
      for (let i = 0; i < n; i++) {
        if (i === p) continue;
        const decoded = decodeMessage((JSON.parse(wire) as { m: unknown }).m);
        if (!decoded.ok || decoded.message.type !== 'proposal') throw new Error('proposal does not decode');
        const fault = nodes[i]!.chain.validateBlock(decoded.message.block, Date.now());
        if (fault) throw new Error(`block refused: ${fault.code}`);
        blocks.set(i, decoded.message.block);
      }
    });
    await timed('votes', () => {
      const block = blocks.get((p + 1) % n)!;
      hash = blockHash(block.header);
      const votes = {
        prepare: [] as { validator: string; sig: string }[],
        commit: [] as { validator: string; sig: string }[],
      };
      for (const phase of ['prepare', 'commit'] as const) {
        for (let i = 0; i < n; i++) {
          const v = signVote(phase, genesis.chain, height, 0, hash, bytesToHex(keys[i]!.publicKey), (b) =>
            signFast(b, keys[i]!.secretKey),
          );
          votes[phase].push({ validator: v.sender, sig: v.sig });
        }
        // Each validator checks the other validators' votes of the phase.
        const bytes = voteSigningBytes(phase, genesis.chain, height, 0, hash);
        for (let i = 0; i < n; i++)
          for (const v of votes[phase])
            if (
              v.validator !== bytesToHex(keys[i]!.publicKey) &&
              !verifyFast(fromHex(v.sig), bytes, fromHex(v.validator))
            )
              throw new Error('vote does not verify');
      }
      certified = {
        block,
        cert: { height, view: 0, block: hash, votes: votes.commit.slice(0, n - Math.floor((n - 1) / 3)) },
      };
    });
    await timed('commit', async () => {
      for (let i = 0; i < n; i++) {
        const own = i === p ? undefined : blocks.get(i);
        await nodes[i]!.chain.commit(own ? { block: own, cert: certified!.cert } : certified!);
      }
    });
  }
  const total = cpu() - startCpu;
  for (const node of nodes) await node.store.close();
  await rm(dir, { recursive: true, force: true });
  const perTx = (ms: number) => round(ms / texts.length, 4);
  return {
    validators: n,
    txs: texts.length,
    blockTxs: options.blockTxs,
    cpuMsPerTx: perTx(total),
    stagesMsPerTx: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, perTx(v)])),
    txPerCoreSecond: round(1000 / (total / texts.length)),
    verifiesPerTx: n,
  };
}
