/** Public surface of the ledger: transactions, state machine, blocks, proofs and storage. */
export * from './block.js';
export * from './block-store.js';
export * from './chain-view.js';
export * from './executor.js';
export * from './genesis.js';
export * from './light-client.js';
export * from './merkle.js';
export * from './parties.js';
export * from './patterns.js';
export * from './proof.js';
export * from './records.js';
export * from './state.js';
export * from './state-machine.js';
export * from './state-tree.js';
export * from './storage-receipt.js';
export * from './tx.js';
export * from './tx-codec.js';
