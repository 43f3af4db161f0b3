// Shutting down without hanging: keep-alive sockets that finish a request after close() began
// would hold the server open until their idle timeout, so those answers tell the client to disconnect.
import type { FastifyInstance } from 'fastify';

export function closeKeepAliveOnShutdown(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_req, reply) => {
    if (closing) reply.header('Connection', 'close');
  });
}
