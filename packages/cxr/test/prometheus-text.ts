// Reading /metrics in tests: a strict reader of the Prometheus text exposition format (0.0.4).
// Every line must be a HELP, a TYPE or a sample of a family declared by a TYPE line; label values
// are unescaped. (parse-prometheus-text-format was tried: it returns [] for garbage and drops the
// labels of histogram buckets written le-first, as prom-client does, so it could not fail a test.)

export interface Sample {
  /** The sample's own name: for a histogram, family_bucket, family_sum or family_count. */
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  name: string;
  type: string;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/y;
// Special values in any case, as Prometheus reads them (Go's ParseFloat): prom-client writes "Nan".
const VALUE = '[-+]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][-+]?\\d+)?|[-+]?[Ii][Nn][Ff]|[Nn][Aa][Nn]';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (${VALUE})(?: -?\\d+)?$`);
const HELP = new RegExp(`^# HELP (${NAME}) .*$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let at = 0;
  while (at < text.length) {
    LABEL_RE.lastIndex = at;
    const m = LABEL_RE.exec(text);
    if (!m) throw new Error(`${where}: bad label syntax at '${text.slice(at, at + 30)}'`);
    if (m[1] in labels) throw new Error(`${where}: label ${m[1]} twice`);
    labels[m[1]] = m[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    at = LABEL_RE.lastIndex;
    if (text[at] === ',') at++;
    else if (at < text.length) throw new Error(`${where}: expected ',' between labels`);
  }
  return labels;
}

function toNumber(v: string): number {
  const lower = v.toLowerCase();
  if (lower === 'nan') return Number.NaN;
  if (lower.endsWith('inf')) return lower.startsWith('-') ? -Infinity : Infinity;
  return Number(v);
}

/** The families by name; throws, naming the line, on anything that is not exposition format. */
export function parseMetrics(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  text.split('\n').forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line === '') return;
    const t = TYPE.exec(line);
    if (t) {
      if (families.has(t[1])) throw new Error(`${where}: second TYPE for ${t[1]}`);
      families.set(t[1], { name: t[1], type: t[2], samples: [] });
      return;
    }
    if (HELP.test(line)) return;
    const s = SAMPLE.exec(line);
    if (!s) throw new Error(`${where} is not exposition format: ${line}`);
    const family = families.get(s[1]) ?? families.get(s[1].replace(/_(bucket|sum|count)$/, ''));
    if (!family) throw new Error(`${where}: sample of ${s[1]} without a TYPE line`);
    family.samples.push({ name: s[1], labels: parseLabels(s[2] ?? '', where), value: toNumber(s[3]) });
  });
  return families;
}

/** Samples named `name` (a family name, or e.g. family_count) whose labels include `labels`. */
export function samplesOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): Sample[] {
  const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''));
  return (family?.samples ?? []).filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

/** The sum of the matching samples' values (0 when there is none). */
export function metricValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  return samplesOf(families, name, labels).reduce((sum, s) => sum + s.value, 0);
}
