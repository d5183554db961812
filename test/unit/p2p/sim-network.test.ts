import '../../../src/common/polyfill.js';
import t from 'tap';
import { bytesToHex } from '../../../src/common/bytes.js';
import { generateSigningKeyPair } from '../../../src/common/crypto.js';
import { SimHub, SimNetwork } from '../../helpers/sim-network.js';
import { type Fixture, type NodeSpec, networkCompliance } from './network-compliance.js';

async function simFixture(specs: NodeSpec[]): Promise<Fixture> {
  const hub = new SimHub({ delayMs: 2 });
  const pairs = specs.map(() => generateSigningKeyPair());
  const keys = pairs.map((p) => bytesToHex(p.publicKey));
  const validatorKeys = keys.filter((_, i) => specs[i]!.validator);
  const nodes = specs.map((spec, i) => ({
    key: keys[i]!,
    net: new SimNetwork(
      {
        secretKey: pairs[i]!.secretKey,
        allowedKeys: spec.validator ? validatorKeys : [...validatorKeys, keys[i]!],
        maxMessageBytes: spec.maxMessageBytes,
      },
      { hub },
    ),
  }));
  for (const node of nodes) await node.net.start();
  return {
    nodes,
    close: async () => {
      for (const node of nodes) await node.net.stop();
    },
  };
}

t.test('SimNetwork passes the network compliance suite', async (t) => {
  networkCompliance(t, simFixture);
});
