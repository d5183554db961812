/**
 * The ledger's fixed lists that the command definitions name in their help text. The ledger's
 * own modules build their schemas when loaded, which is most of the CLI's start-up time, so the
 * lists are repeated here; the types below stop the build when either copy changes alone.
 */
import type { GATEWAY_ROLES as LEDGER_GATEWAY_ROLES } from '../ledger/genesis.js';
import type { DATA_TYPES as LEDGER_DATA_TYPES, NODE_ROLES as LEDGER_NODE_ROLES } from '../ledger/tx.js';

/** The data types (ledger/tx.ts DATA_TYPES). */
export const DATA_TYPES = ['social-insurance', 'tax', 'housing-fund', 'property'] as const;
/** A validator's roles (ledger/tx.ts NODE_ROLES). */
export const NODE_ROLES = ['platform', 'extractor'] as const;
/** A gateway's roles (ledger/genesis.ts GATEWAY_ROLES). */
export const GATEWAY_ROLES = ['platform'] as const;

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Holds<T extends true> = T;

/** Compiles only while every list above equals the ledger's, element for element and in order. */
export type ListsMatchLedger = [
  Holds<Same<typeof DATA_TYPES, typeof LEDGER_DATA_TYPES>>,
  Holds<Same<typeof NODE_ROLES, typeof LEDGER_NODE_ROLES>>,
  Holds<Same<typeof GATEWAY_ROLES, typeof LEDGER_GATEWAY_ROLES>>,
];
