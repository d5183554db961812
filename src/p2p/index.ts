/**
 * Public surface of the networking layer: the `Network` contract, the libp2p implementation,
 * and the helpers that turn validator keys into libp2p identities.
 */
export { Libp2pNetwork, type Libp2pNetworkModules, type Libp2pNetworkOptions } from './libp2p-network.js';
export {
  copyStats,
  DROP_REASONS,
  type DropReason,
  emptyStats,
  type MessageHandler,
  type Network,
  type NetworkStats,
  P2P_ERROR_CODES,
  PROTOCOL_NAMES,
  type ProtocolName,
  type RequestHandler,
  type RequestOptions,
  TOPICS,
  type Topic,
} from './network.js';
export { bootstrapAddress, peerIdFromValidatorKey, validatorKeyFromPeerId } from './peer-identity.js';
