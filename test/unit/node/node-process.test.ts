/**
 * A node process stops cleanly on SIGTERM (exit 0, services stopped), and a stop that overruns its
 * bound, or a second signal, ends the process with code 1 instead of hanging.
 */
import { EventEmitter } from 'node:events';
import t from 'tap';
import { silentLogger } from '../../../src/common/logger.js';
import { runNodeProcess, type StartableNode } from '../../../src/node/node-process.js';

function fakeNode(stop: () => Promise<void>): StartableNode & { stops: number } {
  const node = {
    stops: 0,
    apiUrl: 'http://127.0.0.1:1',
    start: async () => {},
    stop: async () => {
      node.stops++;
      await stop();
    },
  };
  return node;
}

t.test('SIGTERM stops the node and resolves 0', async (t) => {
  const signals = new EventEmitter();
  const exits: number[] = [];
  const node = fakeNode(async () => {});
  const running = runNodeProcess(node, silentLogger, { signals, exit: (c) => exits.push(c) });
  await new Promise((r) => setImmediate(r));
  signals.emit('SIGTERM', 'SIGTERM');
  t.equal(await running, 0);
  t.equal(node.stops, 1, 'stopped once');
  t.same(exits, [], 'no forced exit');
  t.equal(signals.listenerCount('SIGTERM'), 0, 'its signal handlers are removed');
});

t.test('a stop that overruns the bound exits 1', async (t) => {
  const signals = new EventEmitter();
  const exits: number[] = [];
  const node = fakeNode(() => new Promise<void>(() => {}));
  const running = runNodeProcess(node, silentLogger, {
    signals,
    exit: (c) => exits.push(c),
    stopTimeoutMs: 20,
  });
  await new Promise((r) => setImmediate(r));
  signals.emit('SIGTERM', 'SIGTERM');
  t.equal(await running, 1);
  t.same(exits, [1], 'forced exit with code 1');
});

t.test('a second signal exits 1 at once', async (t) => {
  const signals = new EventEmitter();
  const exits: number[] = [];
  const node = fakeNode(() => new Promise<void>(() => {}));
  const running = runNodeProcess(node, silentLogger, {
    signals,
    exit: (c) => exits.push(c),
    stopTimeoutMs: 60_000,
  });
  await new Promise((r) => setImmediate(r));
  signals.emit('SIGINT', 'SIGINT');
  signals.emit('SIGINT', 'SIGINT');
  t.equal(await running, 1);
  t.same(exits, [1]);
});

t.test('a failed start stops what it started and rethrows', async (t) => {
  const node = fakeNode(async () => {});
  node.start = async () => {
    throw new Error('store refused');
  };
  await t.rejects(runNodeProcess(node, silentLogger, { signals: new EventEmitter() }), /store refused/);
  t.equal(node.stops, 1);
});
