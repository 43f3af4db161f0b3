// The PostgreSQL password of a postgres:// URL that carries none, found as libpq finds it: PGPASSWORD, else the
// pass file (PGPASSFILE, else ~/.pgpass). The driver (pg 8) can read the pass file itself, but then prints a Node
// DeprecationWarning on stderr at the first connection (a line that is not JSON in `cxr serve`'s log; its next
// major drops that support and advises calling the `pgpass` module from a password function, as here), and with
// no password found the login fails in the SCRAM exchange's words ("client password must be a string"), which say
// nothing of where a password goes. So cxr asks pgpass itself, and says what is missing when it finds nothing: the
// file, the line it lacks, or a mode that makes PostgreSQL's own tools (and pgpass) ignore it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import pgpass = require('pgpass');

/** What the driver passes the password function: the connection's parameters. */
export interface PgLoginParams {
  host?: string;
  port?: number | string;
  database?: string;
  user?: string;
}

const WHERE =
  'give it in CXR_DB or --db (postgres://USER:PASSWORD@HOST/DATABASE, percent-encoded), in PGPASSWORD, or in a ' +
  'pass file (PGPASSFILE, else ~/.pgpass: a line HOST:PORT:DATABASE:USER:PASSWORD, mode 600)';

/** pgpass's answer; its warnings (an unsafe mode, a read error) kept out of stderr, which may be a JSON log. */
function askPgpass(p: PgLoginParams): Promise<string | undefined> {
  const quiet = new PassThrough();
  quiet.resume();
  const before = pgpass.warnTo(quiet);
  return new Promise<string | undefined>((resolve) => pgpass(p, resolve)).finally(() => pgpass.warnTo(before));
}

/** Why the pass file gave nothing, in words that name it and the fix ('' when there is none to name). */
function whyNothing(file: string, named: boolean, want: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') return ` (the pass file ${file} cannot be read: ${code})`;
    return named ? ` (PGPASSFILE names ${file}, which does not exist)` : '';
  }
  if (!stat.isFile()) return ` (the pass file ${file} is not a plain file)`;
  // libpq and pgpass ignore a pass file that others may read: say so, with the mend.
  if ((stat.mode & 0o077) !== 0)
    return (
      ` (the pass file ${file} is ignored, as PostgreSQL ignores it: others may read it ` +
      `(mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it)`
    );
  return ` (the pass file ${file} has no line for ${want})`;
}

/**
 * The driver's `password` option for a URL without one: PGPASSWORD (when not empty), else the pass file's line for
 * this host, port, database and user (read by pgpass, which takes PGPASSFILE and HOME from the environment). Called
 * only when the server asks for a password; throws, in words that say where a password goes and never any
 * password, when none is found.
 */
export function pgPasswordLookup(env: NodeJS.ProcessEnv = process.env): (p: PgLoginParams) => Promise<string> {
  return async (p) => {
    if (env.PGPASSWORD) return env.PGPASSWORD;
    const found = await askPgpass(p);
    if (found !== undefined) return found;
    const file = env.PGPASSFILE || path.join(env.HOME || os.homedir(), '.pgpass');
    const want = [p.host ?? 'localhost', p.port ?? 5432, p.database ?? p.user ?? '', p.user ?? ''].join(':');
    const why = whyNothing(file, Boolean(env.PGPASSFILE), want);
    throw new Error(`no password for PostgreSQL role "${p.user ?? ''}", which the server asks for${why}: ${WHERE}`);
  };
}
