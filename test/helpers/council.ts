/**
 * Governance in end-to-end tests: a change as the council makes it on a chain from `datagrant
 * init` (three council keys, any two approve): the first member's `gov.propose`, then the second
 * member's `gov.approve`, which enacts it. Submit the proposal and wait for it to commit before
 * the approval (an approval of a proposal not yet committed is refused).
 */

import { bytesToHex } from '../../src/common/bytes.js';
import type { KeySet } from '../../src/common/keyfile.js';
import { readKeyFile } from '../../src/common/keyfile-fs.js';
import { type AnyTx, type GovChange, signTx, txHash } from '../../src/ledger/index.js';

/** The council's key sets from an init result's `keys.council` paths. */
export async function councilKeys(paths: readonly string[]): Promise<KeySet[]> {
  return Promise.all(paths.map((p) => readKeyFile(p)));
}

/** `gov.propose` of `change` by `proposer` and the `gov.approve` by `approver` that enacts it. */
export function councilChange(
  chain: string,
  change: GovChange,
  proposer: KeySet,
  approver: KeySet,
  deadline = Date.now() + 24 * 3600 * 1000,
): { propose: AnyTx; approve: AnyTx; proposal: string } {
  const propose = signTx(
    { chain, kind: 'gov.propose', body: { change, deadline } },
    proposer.signing.publicKey,
    proposer.signing.secretKey,
  );
  const proposal = txHash(propose);
  const approve = signTx(
    { chain, kind: 'gov.approve', body: { proposal } },
    approver.signing.publicKey,
    approver.signing.secretKey,
  );
  return { propose, approve, proposal };
}

/** The change that adds institution `id` with `keys`, named `name`. */
export function addInstitutionChange(id: string, name: string, keys: KeySet): GovChange {
  return {
    type: 'institution.add',
    institution: id,
    name,
    signKey: bytesToHex(keys.signing.publicKey),
    encKey: bytesToHex(keys.encryption.publicKey),
  };
}

/**
 * Adds an institution through the council: submits the proposal, waits for it with `submit` (which
 * must resolve once the transaction commits), then the approval.
 */
export async function addInstitutionByCouncil(
  submit: (tx: AnyTx) => Promise<unknown>,
  chain: string,
  councilPaths: readonly string[],
  id: string,
  name: string,
  keys: KeySet,
): Promise<void> {
  const [first, second] = await councilKeys(councilPaths);
  const { propose, approve } = councilChange(chain, addInstitutionChange(id, name, keys), first!, second!);
  await submit(propose);
  await submit(approve);
}
