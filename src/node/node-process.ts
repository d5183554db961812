/**
 * A node as an operating-system process: start it, log `started` as a JSON line on stdout, and on
 * SIGTERM or SIGINT stop every service in reverse order, within a bound. A stop that overruns the
 * bound, or a second signal, exits at once with code 1 (the stores are crash-safe: a block is one
 * atomic batch and votes are persisted before they are sent); a clean stop exits 0, so a service
 * manager restarts the node only when it failed (`Restart=on-failure`, docs/datagrant.service).
 */
import type { Logger } from '../common/logger.js';

/** Default bound on a clean stop (ms); below the systemd unit's `TimeoutStopSec`. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** What `runNodeProcess` needs of a node. */
export interface StartableNode {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly apiUrl: string;
}

/** Options of `runNodeProcess`. */
export interface NodeProcessOptions {
  stopTimeoutMs?: number;
  /** Ends the process (default `process.exit`); injected by tests. */
  exit?: (code: number) => void;
  /** Where SIGTERM and SIGINT arrive (default `process`); injected by tests. */
  signals?: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
}

/** Starts `node`, then resolves with the exit code once a signal has stopped it. */
export async function runNodeProcess(
  node: StartableNode,
  logger: Logger,
  options: NodeProcessOptions = {},
): Promise<number> {
  const bound = options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals = options.signals ?? process;
  // A start that fails part-way (a store refused after the network is up) stops what it started.
  await node.start().catch(async (err: unknown) => {
    await node.stop();
    throw err;
  });
  logger.info({ event: 'started', api: node.apiUrl }, 'started');
  return new Promise<number>((resolve) => {
    let stopping = false;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (code: number, hard: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      signals.off('SIGINT', shutdown);
      signals.off('SIGTERM', shutdown);
      if (hard) exit(code);
      resolve(code);
    };
    const shutdown = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting without a clean stop');
        finish(1, true);
        return;
      }
      stopping = true;
      const began = Date.now();
      logger.info({ signal, stopTimeoutMs: bound }, 'stopping');
      timer = setTimeout(() => {
        logger.error({ stopTimeoutMs: bound }, 'stop overran its bound: exiting');
        finish(1, true);
      }, bound);
      node.stop().then(
        () => {
          if (!finished) logger.info({ event: 'stopped', ms: Date.now() - began }, 'stopped');
          finish(0, false);
        },
        (err: unknown) => {
          logger.error({ err }, 'stop failed');
          finish(1, false);
        },
      );
    };
    signals.on('SIGINT', shutdown);
    signals.on('SIGTERM', shutdown);
  });
}
