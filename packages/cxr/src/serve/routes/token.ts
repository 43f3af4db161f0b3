// The name and scopes of the API token a request carried (GET /token), never the token itself. A client (the
// page on a shared workstation) can then say whose token it holds before any answer names it in requestedBy.
import type { FastifyInstance } from 'fastify';
import { SCOPES } from '../auth';
import { tokenInfoSchema, type TokenInfo } from '../schemas';
import { API_ERRORS, noStore } from './common';

export function tokenRoute(api: FastifyInstance): void {
  api.get(
    '/token',
    {
      schema: {
        summary: 'The API token this request carried: its name and scopes',
        operationId: 'getToken',
        description:
          'Any valid token may call it (its own name and scopes, never its value); a server that needs no token ' +
          'answers a null name and every scope.',
        tags: ['service'],
        response: { 200: { description: 'The name and scopes of the token sent', ...tokenInfoSchema }, ...API_ERRORS },
      },
    },
    async (req, reply): Promise<TokenInfo> => {
      // Per token: no shared cache may hand one clinician's name to another.
      noStore(reply);
      return { name: req.tokenName, scopes: [...(req.tokenScopes ?? SCOPES)] };
    },
  );
}
