// Where the PACS is and how to log in: from the environment (CXR_ORTHANC_URL, _USER, _PASSWORD,
// as scripts/stack.sh writes them) or a JSON config file, never from command-line flags, which
// other users can read in the process list. Both are outside input: validated with zod.
//
// A URL may carry the login (http://USER:PASSWORD@HOST), as the audit log's and Redis's URLs may: it is
// taken out of the URL and sent as basic authentication (fetch refuses URLs with credentials), and the
// URL is only ever printed with its password as *****. Where the login is also given on its own
// (CXR_ORTHANC_USER/_PASSWORD, the config file's user/password), the two must agree: picking one
// silently would log in as someone the operator did not mean.
import { readConfigFile, warnIfOpen } from '../config_file';
import { z } from 'zod';
import { redactSecret, redactUrl } from '../serve/audit_target';

export interface OrthancConfig {
  url: string;
  user?: string;
  password?: string;
}

const UrlSchema = z
  .string()
  .trim()
  .refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), {
    message: 'must be an http:// or https:// URL',
  });

const FileSchema = z
  .object({
    url: UrlSchema.optional(),
    user: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
  })
  .strict();

export interface ConfigSources {
  /** A JSON file {url, user, password}; its values win over the environment's. */
  configFile?: string;
  /** --url: overrides the URL (not the credentials; a password in it is refused: flags show in `ps`). */
  url?: string;
  env?: NodeJS.ProcessEnv;
  warn?: (line: string) => void;
}

export function loadOrthancConfig(src: ConfigSources): OrthancConfig {
  const env = src.env ?? process.env;
  let file: z.infer<typeof FileSchema> = {};
  if (src.configFile) {
    file = readConfigFile(src.configFile, 'Orthanc', FileSchema);
    const holdsPassword = !!file.password || (!!file.url && URL.canParse(file.url) && !!new URL(file.url).password);
    warnIfOpen(src.configFile, holdsPassword, src.warn);
  }
  const rawUrl = src.url ?? file.url ?? env.CXR_ORTHANC_URL;
  if (!rawUrl)
    throw new Error(
      'no Orthanc URL: set CXR_ORTHANC_URL (scripts/stack.sh writes it to .stack/env), or give --url or --config',
    );
  const parsed = UrlSchema.safeParse(rawUrl);
  if (!parsed.success) throw new Error(`Orthanc URL '${redactUrl(rawUrl)}' ${parsed.error.issues[0].message}`);
  const inUrl = splitCredentials(parsed.data);
  const from =
    src.url !== undefined ? '--url' : file.url !== undefined ? `the url in ${src.configFile}` : 'CXR_ORTHANC_URL';
  if (src.url !== undefined && inUrl.password !== undefined) {
    throw new Error(
      `--url ${inUrl.display} carries a password, which other users can read in the process list (ps): ` +
        'give it in CXR_ORTHANC_PASSWORD (with CXR_ORTHANC_USER) or in the --config file instead',
    );
  }
  const user = file.user ?? (env.CXR_ORTHANC_USER || undefined);
  const password = file.password ?? (env.CXR_ORTHANC_PASSWORD || undefined);
  const given =
    src.configFile && (file.user || file.password)
      ? `the user and password in ${src.configFile}`
      : 'CXR_ORTHANC_USER/CXR_ORTHANC_PASSWORD';
  if (inUrl.user !== undefined && user !== undefined && inUrl.user !== user) {
    throw new Error(
      `two Orthanc users: '${inUrl.user}' in ${from} (${inUrl.display}) and '${user}' in ${given}: ` +
        'give the login one way',
    );
  }
  if (inUrl.password !== undefined && password !== undefined && inUrl.password !== password) {
    throw new Error(
      `two different Orthanc passwords: one in ${from} (${inUrl.display}) and one in ${given}: give the login one way`,
    );
  }
  const login = { user: inUrl.user ?? user, password: inUrl.password ?? password };
  if ((login.user === undefined) !== (login.password === undefined)) {
    throw new Error(
      'Orthanc credentials need both a user and a password (CXR_ORTHANC_USER and CXR_ORTHANC_PASSWORD, ' +
        "the config file's user and password, or http://USER:PASSWORD@HOST in the URL)",
    );
  }
  return { url: inUrl.url, ...login };
}

/** The URL with its login taken out (no trailing slash), the login (decoded), and the URL as it may be printed. */
export function splitCredentials(raw: string): { url: string; user?: string; password?: string; display: string } {
  const display = redactUrl(raw);
  if (!URL.canParse(raw)) return { url: raw.replace(/\/+$/, ''), display };
  const u = new URL(raw);
  if (!u.username && !u.password) return { url: raw.replace(/\/+$/, ''), display };
  const decode = (s: string, what: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new Error(`Orthanc URL '${display}': the ${what} in it is not valid percent-encoding`);
    }
  };
  const user = u.username ? decode(u.username, 'user') : undefined;
  const password = u.password ? decode(u.password, 'password') : undefined;
  u.username = '';
  u.password = '';
  return { url: u.href.replace(/\/+$/, ''), user, password, display };
}

/** `text` with every URL's password, and `password` wherever it appears, shown as *****. */
export function redactOrthanc(text: string, password?: string): string {
  return redactSecret(
    text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s'"()]*/gi, (m) => redactUrl(m)),
    password ?? null,
  );
}
