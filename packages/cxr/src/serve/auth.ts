// Optional bearer token for the API (CXR_API_TOKEN). Compared in constant time over digests, so
// neither the token's content nor its length leaks through response timing.
import * as crypto from 'node:crypto';

function digest(s: string): Buffer {
  return crypto.createHash('sha256').update(s, 'utf8').digest();
}

export function tokenMatcher(token: string): (authorization: string | undefined) => boolean {
  const want = digest(token);
  return (authorization) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    return m !== null && crypto.timingSafeEqual(digest(m[1]), want);
  };
}
