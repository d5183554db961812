/**
 * Checking ledger entries in the browser: the genesis document is fetched once (and can be
 * pinned by its hash in this browser), then every proof is verified by the light client made
 * from it (src/ledger/light-client.ts, the same code the CLI and the bank client run).
 */
import { type Genesis, genesisHash, parseGenesis } from '../../src/ledger/genesis.js';
import { LightClient } from '../../src/ledger/light-client.js';
import type { TxProof } from '../../src/ledger/proof.js';
import { getJson } from './api.js';

/** The genesis the pages verify against. */
export interface TrustedGenesis {
  genesis: Genesis;
  /** SHA-256 of its canonical JSON (what block 1 points to). */
  hash: string;
  /** The hash pinned in this browser, if any. */
  pinned: string | null;
  /** Names of known keys: validators, registrars, governance, genesis institutions. */
  names: Map<string, string>;
  /** The light client every fact shown is proven with. */
  light: LightClient;
}

const PIN_KEY = 'datagrant.genesisPin';

let loading: Promise<TrustedGenesis> | undefined;

/** Fetches and checks the genesis once per page. */
export function trustedGenesis(): Promise<TrustedGenesis> {
  loading ??= (async () => {
    const genesis = parseGenesis(await getJson<unknown>('v1/genesis'));
    const names = new Map<string, string>();
    for (const v of genesis.validators) names.set(v.key, `validator ${v.name}`);
    for (const r of genesis.registrars) names.set(r, 'registrar');
    for (const a of genesis.admins) names.set(a, 'governance');
    for (const i of genesis.institutions) names.set(i.signKey, i.name);
    return { genesis, hash: genesisHash(genesis), pinned: readPin(), names, light: new LightClient(genesis) };
  })();
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}

function readPin(): string | null {
  try {
    return window.localStorage.getItem(PIN_KEY);
  } catch {
    return null;
  }
}

/** Pins (or with null, unpins) a genesis hash in this browser. */
export function setPin(hash: string | null): void {
  if (hash === null) window.localStorage.removeItem(PIN_KEY);
  else window.localStorage.setItem(PIN_KEY, hash);
  if (loading) void loading.then((g) => (g.pinned = hash));
}

/** Result of checking one entry. */
export type Verification =
  | { ok: true; height: number; blockHash: string }
  | { ok: false; code: string; message: string };

/**
 * Verifies that `proof` puts the transaction `expectedHash` in a block certified by a quorum of
 * the genesis validators. A pinned genesis that differs from the node's fails every proof.
 */
export function verifyEntry(trusted: TrustedGenesis, expectedHash: string, proof: TxProof): Verification {
  if (trusted.pinned !== null && trusted.pinned !== trusted.hash) {
    return {
      ok: false,
      code: 'PORTAL_GENESIS_NOT_PINNED',
      message: 'the node serves a different genesis than the one pinned in this browser',
    };
  }
  const r = trusted.light.verifyTx(proof, expectedHash);
  if (!r.ok) return r;
  return { ok: true, height: r.height, blockHash: r.blockHash };
}

/** A pinned genesis that differs from the node's: nothing the node says can be proven. */
export function pinMismatch(trusted: TrustedGenesis): boolean {
  return trusted.pinned !== null && trusted.pinned !== trusted.hash;
}
