// Shutting down without hanging: keep-alive sockets that finish a request after close() began
// would hold the server open until their idle timeout, so those answers tell the client to disconnect.
// A request that arrives while in-flight ones finish is answered 503 BUSY as a problem (fastify's
// own return503OnClosing answers in its own format, without Retry-After).
import type { FastifyInstance } from 'fastify';
import { problem, sendProblem } from './problem';

export function closeKeepAliveOnShutdown(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (_req, reply) => {
    if (closing) return sendProblem(reply, problem(503, 'BUSY', 'the server is shutting down; retry shortly'));
  });
  app.addHook('onSend', async (_req, reply) => {
    if (closing) reply.header('Connection', 'close');
  });
}
