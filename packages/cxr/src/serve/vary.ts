// The Vary header, added to by more than one part of the server (the API's Accept rule, problems answered outside
// its scope): its own module, as the problem module and accept.ts, which imports that, both write it.
import type { FastifyReply } from 'fastify';

/**
 * Adds `field` to the reply's Vary, keeping what another part set there (CORS' Origin, compression's
 * Accept-Encoding); a Vary of `*` already says it all (RFC 9110 §12.5.5).
 */
export function addVary(reply: FastifyReply, field: string): void {
  const had = reply.getHeader('Vary');
  const fields = (Array.isArray(had) ? had.join(',') : had === undefined ? '' : String(had))
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  if (fields.some((f) => f === '*' || f.toLowerCase() === field.toLowerCase())) return;
  reply.header('Vary', [...fields, field].join(', '));
}
