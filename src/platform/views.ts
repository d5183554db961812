/**
 * What the platform API returns about requests and audit trails (types only, so the bank client
 * and the portal can share them without loading the platform).
 */
import type {
  ExtractionPolicy,
  GrantState,
  RecordState,
  RequestStatus,
  TxBody,
  TxProof,
} from '../ledger/index.js';

/** What an institution asks for (the `request.open` body; `consentBy` defaults on the server side). */
export type RequestInput = Omit<TxBody<'request.open'>, 'consentBy'> & { consentBy?: number };

/** A request as institutions and subjects see it (no secrets, no plaintext). */
export interface RequestView {
  id: string;
  status: RequestStatus;
  institution: string;
  subject: string;
  types: string[];
  purpose: string;
  format: string;
  fields: Record<string, string>;
  dataFrom?: string;
  dataTo?: string;
  consentBy: number;
  openedAt: number;
  height: number;
  /** Records on the request; `key` is the data key wrapped to the subject (public ledger data). */
  records: Omit<RecordState, 'subject' | 'request'>[];
  failures: { type: string; reason: string; detail: string }[];
  grant?: Omit<GrantState, 'keys'>;
  denyReason?: string;
  /** Its extraction policy where it is not genesis' (opened after a council changed it). */
  policy?: ExtractionPolicy;
}

/** One entry of a subject's audit trail. */
export interface AuditEntry {
  hash: string;
  kind: string;
  height: number;
  time: number;
  signer: string;
  request?: string;
  grant?: string;
  summary: Record<string, unknown>;
  proof: TxProof;
}
