// What Fastify writes per request on the server's logger. By default a line when a request
// arrives and one when it is answered; with --quiet only the requests that failed (an error
// thrown by a handler, a 5xx), so that a quiet server still says what went wrong.
import { LogController } from 'fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';

class FailuresOnly extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) super.requestCompleted(error, request, reply);
  }

  override routeNotFound(): void {}
}

export function requestLogController(everyRequest: boolean): LogController {
  return everyRequest ? new LogController() : new FailuresOnly();
}
