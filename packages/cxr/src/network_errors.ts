// The error codes of a connection that failed or broke (Node's sockets and DNS): a server away, not a
// request cxr got wrong. One list for the audit log's outage answer (serve/audit_pg.ts) and the job
// queue's retries (queue/retry.ts), so the two agree on what an outage is.
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
