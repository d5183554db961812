/** Server-sent events: one place that opens a stream, keeps it alive and cleans up on close. */
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Sends one named event with a JSON payload. */
export type SendEvent = (event: string, data: unknown) => void;

/**
 * Takes over the reply as a `text/event-stream`, calls `open(send)` to emit the first events and
 * subscribe; the function it returns unsubscribes when the client goes away. Pings every 15 s.
 */
export function openEventStream(
  request: FastifyRequest,
  reply: FastifyReply,
  open: (send: SendEvent) => () => void,
): void {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  const unsubscribe = open((event, data) => raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
  const ping = setInterval(() => raw.write(': ping\n\n'), 15_000);
  request.raw.on('close', () => {
    clearInterval(ping);
    unsubscribe();
  });
}
