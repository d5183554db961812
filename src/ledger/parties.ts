/**
 * Who a transaction concerns and who signed it, as readers of the ledger are told: the subject
 * and the institution of the request it belongs to, and the signer's role. The public explorer
 * shows bodies only of transactions that concern no subject; the subject and the institution
 * concerned prove who they are (a signed call) to read the rest.
 */
import type { Genesis } from './genesis.js';
import { type GatewayState, govKey, type RegistrarState } from './governance.js';
import { type GrantState, type RequestState, stateKey } from './records.js';
import type { StateReader } from './state.js';
import type { AnyTx } from './tx.js';

/** The subject and institution a transaction concerns (none for governance). */
export interface TxParties {
  subject?: string;
  institution?: string;
}

/** Roles a signer can have. */
export type SignerRole =
  | 'validator'
  | 'gateway'
  | 'registrar'
  | 'governance'
  | 'institution'
  | 'subject'
  | 'unknown';

function requestParties(state: StateReader, id: string): TxParties {
  const r = state.get(stateKey.request(id)) as RequestState | undefined;
  return r ? { subject: r.subject, institution: r.institution } : {};
}

function grantParties(state: StateReader, id: string): TxParties {
  const g = state.get(stateKey.grant(id)) as GrantState | undefined;
  return g ? { subject: g.subject, institution: g.institution } : {};
}

/**
 * The parties of `tx`, read from committed state (a transaction of a request or grant that state
 * does not know yet is treated as concerning an unknown subject: `subject` is '?').
 */
export function txParties(state: StateReader, tx: AnyTx): TxParties {
  switch (tx.kind) {
    case 'institution.add':
    case 'institution.retire':
    case 'institution.rotate':
    case 'gov.propose':
    case 'gov.approve':
      return {};
    case 'subject.register':
    case 'subject.recover':
      return { subject: tx.body.subject };
    case 'request.open': {
      const institution = state.get(stateKey.institutionByKey(tx.signer));
      return { subject: tx.body.subject, ...(typeof institution === 'string' ? { institution } : {}) };
    }
    case 'record.put':
    case 'record.fail':
    case 'record.refresh':
    case 'grant':
    case 'deny':
    case 'erase':
      return withUnknown(requestParties(state, tx.body.request));
    case 'revoke':
    case 'pause':
    case 'resume':
    case 'usage':
      return withUnknown(grantParties(state, tx.body.grant));
  }
}

function withUnknown(p: TxParties): TxParties {
  return p.subject === undefined ? { ...p, subject: '?' } : p;
}

/** The role of the key that signed a transaction. */
export function signerRole(genesis: Genesis, state: StateReader, signer: string): SignerRole {
  if (genesis.validators.some((v) => v.key === signer)) return 'validator';
  // A gateway's key stays a gateway's once retired (governance never gives it another role).
  if (genesis.gateways?.some((g) => g.key === signer)) return 'gateway';
  if ((state.get(govKey.gateway(signer)) as GatewayState | undefined) !== undefined) return 'gateway';
  const registrar = state.get(govKey.registrar(signer)) as RegistrarState | undefined;
  if (registrar ? registrar.active : genesis.registrars.includes(signer)) return 'registrar';
  if (genesis.admins.includes(signer) || genesis.council?.members.includes(signer)) return 'governance';
  if (state.get(stateKey.institutionByKey(signer)) !== undefined) return 'institution';
  if (state.get(stateKey.subjectByKey(signer)) !== undefined) return 'subject';
  return 'unknown';
}
