/**
 * Server-sent events: one place that opens a stream, keeps it alive and cleans up on close, and
 * bounds how many a node holds open at once (each costs a socket and a listener): past the bound a
 * new stream is refused with 503 API_TOO_MANY_STREAMS and Retry-After.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DatagrantError } from '../common/errors.js';

/** Default bound of open event streams per node. */
export const DEFAULT_MAX_EVENT_STREAMS = 1000;

const open = new WeakMap<FastifyInstance, { count: number; max: number }>();

/** Sets the bound of open event streams for an app (before routes open any). */
export function limitEventStreams(app: FastifyInstance, max: number): void {
  open.set(app, { count: open.get(app)?.count ?? 0, max });
}

/** Number of event streams open on an app. */
export function openEventStreams(app: FastifyInstance): number {
  return open.get(app)?.count ?? 0;
}

/** Sends one named event with a JSON payload. */
export type SendEvent = (event: string, data: unknown) => void;

/**
 * Takes over the reply as a `text/event-stream`, calls `open(send)` to emit the first events and
 * subscribe; the function it returns unsubscribes when the client goes away. Pings every 15 s.
 */
export function openEventStream(
  request: FastifyRequest,
  reply: FastifyReply,
  subscribe: (send: SendEvent) => () => void,
): void {
  let slot = open.get(request.server);
  if (!slot) {
    slot = { count: 0, max: DEFAULT_MAX_EVENT_STREAMS };
    open.set(request.server, slot);
  }
  if (slot.count >= slot.max) {
    reply.header('retry-after', '5');
    throw new DatagrantError(
      'API_TOO_MANY_STREAMS',
      `this node serves at most ${slot.max} event streams at once`,
    );
  }
  slot.count++;
  const held = slot;
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  const ping = setInterval(() => raw.write(': ping\n\n'), 15_000);
  let unsubscribe = () => {};
  request.raw.on('close', () => {
    held.count--;
    clearInterval(ping);
    unsubscribe();
  });
  unsubscribe = subscribe((event, data) => raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
}
