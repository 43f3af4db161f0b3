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

/**
 * The error codes of a file read that failed because the storage it is on is away: a network share (NFS,
 * SMB) whose server is down or unreachable, a stale NFS handle after the server restarted, an I/O error.
 * The file is still there, only not now: the job queue waits such a read out as an outage (queue/retry.ts),
 * whereas a file that is gone (ENOENT) or may not be read (EACCES) is the film's fault.
 */
export const FILE_SHARE_ERROR_CODES: ReadonlySet<string> = new Set([
  ...NETWORK_ERROR_CODES,
  'EIO',
  'ENOTCONN',
  'ESTALE',
  'EREMOTEIO',
]);
