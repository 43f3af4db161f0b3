// API tokens: CXR_API_TOKEN (one token, named "default"), or named tokens from CXR_API_TOKENS
// or a --tokens-file (`name:token` lines), so that the audit log can record who asked. Tokens
// are never taken from the command line (they would show in `ps` and shell history).
//
// A named token may be limited to some scopes (least privilege: a PACS bridge that only queues jobs need not
// read the whole audit log): `pacs[jobs]:TOKEN`, `ward[predict, audit]:TOKEN`. A name without brackets has
// every scope, so every file and variable written before scopes existed means what it meant (a bracket was
// never valid in a name). What each scope opens is decided in security.ts.
//
// Every presented token is compared with every configured one in constant time over digests,
// so neither a token's content, its length nor which one matched leaks through timing.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

/** What a token may do: predict (and read its own), queue and follow jobs, read the audit log, read /metrics. */
export const SCOPES = ['predict', 'jobs', 'audit', 'metrics'] as const;
export type Scope = (typeof SCOPES)[number];

export interface NamedToken {
  name: string;
  token: string;
  /** What the token may do; absent: every scope (a token as it was before scopes). */
  scopes?: readonly Scope[];
}

/** The token a request carried: its name (recorded in the audit log) and scopes (null: every scope). */
export interface TokenMatch {
  name: string;
  scopes: readonly Scope[] | null;
}

/**
 * Why the configured tokens were refused (a program starting the server branches on it, as on ModelLoadError's):
 * - BAD_TOKEN: a token that is not 8-512 printable characters without spaces (too short, a space, ...);
 * - BAD_NAME: a token's name that is not 1-64 letters, digits or . _ @ -;
 * - BAD_SCOPES: unknown scopes, or none;
 * - DUPLICATE: a name, or a token, given twice;
 * - BAD_ENTRY: a tokens file's or variable's entry that is not `name:token` (or two entries on one line);
 * - EMPTY: CXR_API_TOKEN(S) set but empty, a tokens file without tokens, or a set emptied while it runs;
 * - UNREADABLE: the tokens file cannot be read;
 * - CONFLICT: apiToken given with a TokenSet, or tokens given to a set started without any.
 */
export type ApiTokenErrorCode =
  | 'BAD_TOKEN'
  | 'BAD_NAME'
  | 'BAD_SCOPES'
  | 'DUPLICATE'
  | 'BAD_ENTRY'
  | 'EMPTY'
  | 'UNREADABLE'
  | 'CONFLICT';

/** A token configuration refused; the message names the token (never its value) and what to do. */
export class ApiTokenError extends Error {
  constructor(
    readonly code: ApiTokenErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ApiTokenError';
  }
}

/** How to make a token that is no guess away (the check only sets a floor). */
export const MAKE_TOKEN = 'make a strong one with `openssl rand -hex 32`';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const SCOPED_NAME = /^([^[\]]*)\[([^\]]*)\]$/;
const TOKEN = /^[\x21-\x7e]{8,512}$/; // printable ASCII, no spaces: what fits in a Bearer header
/** What `openssl rand -hex 16` and longer make: no person's or system's name. */
const SECRET_LIKE = /^[0-9a-f]{32,}$/i;

/**
 * The one rule every configured token meets, however it is given (CXR_API_TOKEN, CXR_API_TOKENS, a
 * tokens file, or the library's apiToken and tokens options): a one-letter token is a guess away from
 * the audit log. `what` names the token in the error, never its value.
 */
export function checkToken(token: unknown, what: string): string {
  if (typeof token !== 'string' || !TOKEN.test(token))
    throw new ApiTokenError('BAD_TOKEN', `${what} must be 8-512 printable characters without spaces; ${MAKE_TOKEN}`);
  return token;
}

/** The same rules for a list of named tokens: valid names, no name or token twice. `where(i)` names entry i. */
export function checkNamedTokens(
  tokens: readonly { name: string; token: string; scopes?: readonly unknown[] }[],
  where: string | ((i: number) => string),
): NamedToken[] {
  const out: NamedToken[] = [];
  for (const [i, { name, token }] of tokens.entries()) {
    const at = typeof where === 'string' ? where : where(i);
    // A refused name is never quoted: an entry written the wrong way round (TOKEN:name) has the secret there, and
    // the message goes to the log. A name that looks like a generated secret (`openssl rand -hex`) is refused too,
    // else TOKEN:long-name would be taken, the guessable word as the token and the secret stored as a name.
    if (typeof name !== 'string' || !NAME.test(name))
      throw new ApiTokenError(
        'BAD_NAME',
        `${at}: the token name (before the colon) must be 1-64 letters, digits or . _ @ -` +
          (/[[\]]/.test(String(name)) ? ', its scopes in brackets after it (name[jobs,audit]:TOKEN)' : ''),
      );
    if (SECRET_LIKE.test(name))
      throw new ApiTokenError(
        'BAD_NAME',
        `${at}: the token name (before the colon) looks like a token (${name.length} hex digits): ` +
          'is the entry written TOKEN:name? Write name:TOKEN',
      );
    checkToken(token, `${at}: the token of '${name}'`);
    if (out.some((t) => t.name === name))
      throw new ApiTokenError('DUPLICATE', `${at}: token name '${name}' appears twice`);
    if (out.some((t) => t.token === token))
      throw new ApiTokenError('DUPLICATE', `${at}: '${name}' has the same token as another name`);
    const scopes = tokens[i].scopes;
    out.push(scopes === undefined ? { name, token } : { name, token, scopes: checkScopes(scopes, `${at}: '${name}'`) });
  }
  return out;
}

/** A token's scopes: known names, at least one (a token that may do nothing is a mistake), each once. */
function checkScopes(scopes: unknown, at: string): Scope[] {
  if (!Array.isArray(scopes))
    throw new ApiTokenError('BAD_SCOPES', `${at}: scopes must be a list of ${SCOPES.join(', ')}`);
  if (!scopes.length)
    throw new ApiTokenError(
      'BAD_SCOPES',
      `${at}: no scopes: a token that may do nothing (scopes: ${SCOPES.join(', ')})`,
    );
  for (const s of scopes)
    if (!(SCOPES as readonly unknown[]).includes(s))
      throw new ApiTokenError(
        'BAD_SCOPES',
        `${at}: unknown scope '${String(s).slice(0, 64)}' (scopes: ${SCOPES.join(', ')})`,
      );
  return [...new Set(scopes as Scope[])];
}

/** `name` or `name[scope,scope]` as written before the colon of an entry. */
function splitName(written: string): { name: string; scopes?: string[] } {
  const m = SCOPED_NAME.exec(written);
  return m ? { name: m[1], scopes: m[2] === '' ? [] : m[2].split(',') } : { name: written };
}

/**
 * The entries of a line: separated by `separators` (whitespace in a file; commas too in a variable), except
 * between the brackets of a name (`pacs[jobs,predict]:TOKEN`), where whitespace is dropped: `pacs[jobs, audit]`,
 * as lists are often written, is `pacs[jobs,audit]`. Only a name's brackets count: a token after its colon may
 * hold brackets.
 */
function lineEntries(text: string, separators: RegExp): string[] {
  const out: string[] = [];
  let entry = '';
  let inName = true;
  let inBrackets = false;
  for (const c of text) {
    if (inName && c === '[') inBrackets = true;
    else if (inBrackets && c === ']') inBrackets = false;
    else if (inName && !inBrackets && c === ':') inName = false;
    if (inBrackets && /\s/.test(c)) continue;
    if (separators.test(c) && !inBrackets) {
      if (entry) out.push(entry);
      entry = '';
      inName = true;
      inBrackets = false;
    } else entry += c;
  }
  if (entry) out.push(entry);
  return out;
}

function digest(s: string): Buffer {
  return crypto.createHash('sha256').update(s, 'utf8').digest();
}

/**
 * `name:token` entries: one per line in a file (a comma is part of a token, as any printable character is; a
 * line with a space between two entries is refused, not read as two), separated by commas or whitespace in an
 * environment variable (CXR_*: it has no lines). Blank lines and `#` comments are skipped. Errors name the
 * source and line, never the token.
 */
export function parseTokenList(text: string, source: string, from: 'file' | 'variable' = 'file'): NamedToken[] {
  const inVariable = from === 'variable';
  const entries = text.split(/\r?\n/).flatMap((line, i) => {
    const bare = line.replace(/(^|\s)#.*$/, '').trim();
    if (!bare) return [];
    const parts = lineEntries(bare, inVariable ? /[\s,]/ : /\s/);
    if (!inVariable && parts.length > 1)
      throw new ApiTokenError('BAD_ENTRY', `${source}:${i + 1}: one name:token per line (a token has no spaces)`);
    return parts.map((entry) => ({ entry, line: i + 1 }));
  });
  const parsed = entries.map(({ entry, line }) => {
    const colon = entry.indexOf(':');
    const where = `${source}${inVariable ? '' : `:${line}`}`;
    if (colon < 0) throw new ApiTokenError('BAD_ENTRY', `${where}: expected name:token, got an entry without ':'`);
    return { ...splitName(entry.slice(0, colon)), token: entry.slice(colon + 1), where };
  });
  return checkNamedTokens(parsed, (i) => parsed[i].where);
}

/**
 * The tokens a server is started with in code (buildApp, startServer): `tokens`, and `apiToken` as one
 * more named "default", held to the rules the environment's tokens meet; [] = no auth.
 */
export function serverTokens(opts: { apiToken?: string; tokens?: readonly NamedToken[] | TokenSet }): NamedToken[] {
  if (opts.tokens instanceof TokenSet) {
    if (opts.apiToken !== undefined)
      throw new ApiTokenError('CONFLICT', 'apiToken cannot be given with a TokenSet: add it to the set');
    return opts.tokens.list();
  }
  const single = opts.apiToken === undefined ? [] : [{ name: 'default', token: checkToken(opts.apiToken, 'apiToken') }];
  return checkNamedTokens([...(opts.tokens ?? []), ...single], 'tokens');
}

/**
 * The configured tokens: --tokens-file, else CXR_API_TOKENS, else CXR_API_TOKEN as "default"; [] = no auth.
 * A tokens file others can read is said to `warn` (as the Redis and Orthanc config files are): every user of
 * the machine could call the API, and read its history, with the tokens in it.
 */
export function loadTokens(
  env: NodeJS.ProcessEnv,
  tokensFile?: string,
  warn: (line: string) => void = () => {},
): NamedToken[] {
  if (tokensFile) {
    let text: string;
    try {
      text = fs.readFileSync(tokensFile, 'utf8');
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? String(e);
      throw new ApiTokenError('UNREADABLE', `--tokens-file ${tokensFile}: cannot read (${why})`);
    }
    const tokens = parseTokenList(text, tokensFile);
    if (!tokens.length) throw new ApiTokenError('EMPTY', `--tokens-file ${tokensFile}: no name:token lines`);
    if ((fs.statSync(tokensFile).mode & 0o077) !== 0)
      warn(`warning: ${tokensFile} holds API tokens and is readable by others (chmod 600 it)`);
    return tokens;
  }
  // Set but empty is refused, not read as "no authentication": a deploy template whose secret did not
  // arrive would otherwise start the server open. Unset the variable to run without tokens.
  const unset = ' (unset it to run without authentication)';
  if (env.CXR_API_TOKENS !== undefined) {
    if (!env.CXR_API_TOKENS.trim()) throw new ApiTokenError('EMPTY', `CXR_API_TOKENS is set but empty${unset}`);
    return parseTokenList(env.CXR_API_TOKENS, 'CXR_API_TOKENS', 'variable');
  }
  if (env.CXR_API_TOKEN !== undefined) {
    if (!env.CXR_API_TOKEN) throw new ApiTokenError('EMPTY', `CXR_API_TOKEN is set but empty${unset}`);
    return [{ name: 'default', token: checkToken(env.CXR_API_TOKEN, 'CXR_API_TOKEN') }];
  }
  return [];
}

/** The token in an `Authorization: Bearer` header (its name and scopes), or null when it matches none. */
export function tokenMatcher(tokens: NamedToken[]): (authorization: string | undefined) => TokenMatch | null {
  const wanted = tokens.map((t) => ({ match: { name: t.name, scopes: t.scopes ?? null }, digest: digest(t.token) }));
  return (authorization) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    const got = digest(m ? m[1] : '');
    let found: TokenMatch | null = null;
    // No early exit: the time taken does not depend on which token matched.
    for (const w of wanted) if (crypto.timingSafeEqual(got, w.digest) && m) found = w.match;
    return found;
  };
}

/**
 * A server's tokens, replaceable while it runs (`cxr serve` reads its --tokens-file again on SIGHUP): a revoked
 * token stops working without a restart. Whether the server asks for a token at all is decided at its start, so
 * a set that had tokens cannot be emptied (that would open the API while it runs).
 */
export class TokenSet {
  private tokens: NamedToken[];
  private matcher: (authorization: string | undefined) => TokenMatch | null;

  constructor(tokens: readonly NamedToken[]) {
    this.tokens = checkNamedTokens(tokens, 'tokens');
    this.matcher = tokenMatcher(this.tokens);
  }

  get size(): number {
    return this.tokens.length;
  }

  list(): NamedToken[] {
    return [...this.tokens];
  }

  /** The name of the token in an `Authorization: Bearer` header, or null when it matches none. */
  name(authorization: string | undefined): string | null {
    return this.matcher(authorization)?.name ?? null;
  }

  /** The token in an `Authorization: Bearer` header, its name and scopes, or null when it matches none. */
  match(authorization: string | undefined): TokenMatch | null {
    return this.matcher(authorization);
  }

  replace(tokens: readonly NamedToken[]): void {
    if (this.tokens.length && !tokens.length)
      throw new ApiTokenError('EMPTY', 'no tokens: the API would be open to anyone');
    if (!this.tokens.length && tokens.length)
      throw new ApiTokenError('CONFLICT', 'the server was started without tokens: restart it');
    const checked = checkNamedTokens(tokens, 'tokens');
    this.tokens = checked;
    this.matcher = tokenMatcher(checked);
  }
}
