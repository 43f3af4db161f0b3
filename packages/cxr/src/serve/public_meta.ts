// What GET /api/v1/model says of cxr.json: the model's facts, not where it was made. cxr.json records the folders
// a model came from (data.root: the data folder; ensemble.members[].from: each member's run folder) and may hold
// other paths or URLs (a recipe's backbone weights; a key another writer added, which the loose schema keeps). On a
// server that clients reach over the network those name a hospital's file server or internal hosts. Each is
// reduced to its last component (`/mnt/pacs-export/chest_xray` → `chest_xray`), which still tells one data set or
// run from another; everything else is kept as it is.

/** A string that is itself a path or URL: absolute, home- or dot-relative, a Windows drive or share, a URL. */
const PATH_START = /^(?:\/|~[\\/]|\.{1,2}[\\/]|[A-Za-z]:[\\/]|\\\\|[A-Za-z][A-Za-z0-9+.-]*:\/\/|file:)/;

/**
 * The same inside text (a recorded command: `cxr adapt --images /mnt/site/films`): a path after a space, a quote,
 * `=` or `(`, up to the next space or quote. Not after a letter or digit: `pixel/127.5` and `transfer/mobilenet`
 * are no paths.
 */
const PATH_IN_TEXT =
  /(^|[\s"'=(])((?:\/|~[\\/]|\.{1,2}[\\/]|[A-Za-z]:[\\/]|\\\\|[A-Za-z][A-Za-z0-9+.-]*:\/\/|file:)[^\s"')]+)/g;

/** The last component of a path, or of a URL's path (its host, credentials, query and fragment left out). */
export function lastComponent(p: string): string {
  let rest = p;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(p) && !/^[A-Za-z]:[\\/]/.test(p)) {
    try {
      rest = new URL(p).pathname;
    } catch {
      rest = p.replace(/^[A-Za-z][A-Za-z0-9+.-]*:(\/\/[^/]*)?/, '').replace(/[?#].*$/, '');
    }
  }
  return (
    rest
      .split(/[\\/]+/)
      .filter(Boolean)
      .at(-1) ?? ''
  );
}

/** `s` with every path or URL in it reduced to its last component. */
function reduceText(s: string): string {
  if (PATH_START.test(s)) return lastComponent(s);
  return s.replace(PATH_IN_TEXT, (_all, before: string, found: string) => before + lastComponent(found));
}

/**
 * Levels of nesting walked. cxr.json is a few levels deep; one any writer nested 10,000 levels (JSON.parse reads
 * that) overflowed the stack here, and the server did not start. What lies deeper is left out, said so in its place.
 */
export const MAX_META_DEPTH = 64;
export const TOO_DEEP = `(nested deeper than ${MAX_META_DEPTH} levels: left out)`;

function reduceAll(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return reduceText(v);
  if (v === null || typeof v !== 'object') return v;
  if (depth >= MAX_META_DEPTH) return TOO_DEEP;
  if (Array.isArray(v)) return v.map((x) => reduceAll(x, depth + 1));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reduceAll(x, depth + 1)]));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * cxr.json as a client may see it: the fields that are paths even when relative (data.root, ensemble members'
 * `from`) and every absolute path or URL anywhere reduced to their last component. The served model's own
 * metadata is not changed (a copy is returned).
 */
export function publicMeta<T extends object>(meta: T): T {
  const out = reduceAll(meta) as Record<string, unknown>;
  if (isRecord(out.data) && typeof out.data.root === 'string') out.data.root = lastComponent(out.data.root);
  const members = isRecord(out.ensemble) ? out.ensemble.members : undefined;
  if (Array.isArray(members))
    for (const m of members) if (isRecord(m) && typeof m.from === 'string') m.from = lastComponent(m.from);
  return out as T;
}

/**
 * An absolute path in running text (Markdown): after the start of a line, a space, a quote, `=`, `(` or a
 * backquote. Only absolute ones: a model card's relative paths and links (`../shared/data/chest_xray`,
 * `../../docs/cli.md`) name the repository's layout, and its URLs (a paper's) are for reading.
 */
const ABSOLUTE_IN_TEXT = /(^|[\s"'=(`])((?:\/|~[\\/]|[A-Za-z]:[\\/]|\\\\|file:)[^\s"'`)]+)/gm;

/**
 * MODEL_CARD.md as a client may read it: the training command it records (`cxr train --data /mnt/films/...`) and
 * a soup's member folders name where the model was made, as cxr.json's paths do; each absolute path is reduced to
 * its last component, as publicMeta reduces them.
 */
export function publicCard(markdown: string): string {
  return markdown.replace(ABSOLUTE_IN_TEXT, (_all, before: string, found: string) => before + lastComponent(found));
}
