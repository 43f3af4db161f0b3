// Shutting down without hanging: keep-alive sockets that finish a request after close() began
// would hold the server open until their idle timeout, so those answers tell the client to disconnect.
// A request that arrives while in-flight ones finish is answered 503 BUSY as a problem (fastify's
// own return503OnClosing answers in its own format, without Retry-After).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { problem, sendProblem } from './problem';

/** `refused`: told of each request answered 503 BUSY for the shutdown, before its route (app.ts counts them). */
export function closeKeepAliveOnShutdown(
  app: FastifyInstance,
  refused: (req: FastifyRequest) => void = () => {},
): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (req, reply) => {
    if (!closing) return;
    refused(req);
    return sendProblem(reply, problem(503, 'BUSY', 'the server is shutting down; retry shortly'));
  });
  app.addHook('onSend', async (_req, reply) => {
    if (closing) reply.header('Connection', 'close');
  });
}
