// DICOM text with code extensions (ISO 2022: Japanese, Korean and Chinese names, and single-byte sets switched
// within a value), decoded from its bytes with Node's own decoders (PS3.3 C.12.1.1.2, PS3.5 6.1.2.5). dcmjs
// decodes only a single character set; part10.ts hands the bytes of each text value here.

/** What a code element (G0: bytes 0x21-0x7E, G1: bytes 0xA0-0xFF) holds, named by the decoder that reads it. */
type Code =
  | 'ascii'
  | 'jis0208'
  | 'jis0212'
  | 'katakana'
  | 'latin1'
  | 'iso-8859-2'
  | 'iso-8859-3'
  | 'iso-8859-4'
  | 'iso-8859-5'
  | 'iso-8859-6'
  | 'iso-8859-7'
  | 'iso-8859-8'
  | 'iso-8859-9'
  | 'tis-620'
  | 'euc-kr'
  | 'gbk';

/** Bytes 0x80-0x9F: C1 control codes under every ISO 2022 set DICOM names (G1 sits in 0xA0-0xFF). */
type Kind = Code | 'c1';

export interface State {
  g0: Code;
  g1: Code;
}

// The defined terms for code extensions (PS3.3 Tables C.12-3 and C.12-4), the escape sequence that designates
// each, and the code element it designates. IR 13 designates JIS X 0201 katakana to G1; its romaji G0 half is
// designated by ESC ( J, read as ASCII (it differs in two marks, and 0x5C is DICOM's delimiter whatever it shows).
const TERMS: Record<string, { seq: number[]; g0?: Code; g1?: Code }> = {
  'ISO 2022 IR 6': { seq: [0x28, 0x42], g0: 'ascii' }, // ESC ( B
  'ISO 2022 IR 13': { seq: [0x29, 0x49], g1: 'katakana' }, // ESC ) I
  'ISO 2022 IR 100': { seq: [0x2d, 0x41], g1: 'latin1' }, // ESC - A
  'ISO 2022 IR 101': { seq: [0x2d, 0x42], g1: 'iso-8859-2' },
  'ISO 2022 IR 109': { seq: [0x2d, 0x43], g1: 'iso-8859-3' },
  'ISO 2022 IR 110': { seq: [0x2d, 0x44], g1: 'iso-8859-4' },
  'ISO 2022 IR 144': { seq: [0x2d, 0x4c], g1: 'iso-8859-5' },
  'ISO 2022 IR 127': { seq: [0x2d, 0x47], g1: 'iso-8859-6' },
  'ISO 2022 IR 126': { seq: [0x2d, 0x46], g1: 'iso-8859-7' },
  'ISO 2022 IR 138': { seq: [0x2d, 0x48], g1: 'iso-8859-8' },
  'ISO 2022 IR 148': { seq: [0x2d, 0x4d], g1: 'iso-8859-9' },
  'ISO 2022 IR 166': { seq: [0x2d, 0x54], g1: 'tis-620' },
  'ISO 2022 IR 87': { seq: [0x24, 0x42], g0: 'jis0208' }, // ESC $ B
  'ISO 2022 IR 159': { seq: [0x24, 0x28, 0x44], g0: 'jis0212' }, // ESC $ ( D
  'ISO 2022 IR 149': { seq: [0x24, 0x29, 0x43], g1: 'euc-kr' }, // ESC $ ) C
  'ISO 2022 IR 58': { seq: [0x24, 0x29, 0x41], g1: 'gbk' }, // ESC $ ) A
};

const ESCAPES: [number[], Partial<State>][] = [
  ...Object.values(TERMS).map(({ seq, g0, g1 }): [number[], Partial<State>] => [seq, { g0, g1 }]),
  [[0x28, 0x4a], { g0: 'ascii' }], // ESC ( J: IR 13's romaji half (IR 14)
  [[0x24, 0x40], { g0: 'jis0208' }], // ESC $ @: JIS C 6226, JIS X 0208's first edition
];

// Multi-byte sets (IR 87, 159, 149, 58) are designated by escapes only: they cannot be the initial set.
const FIRST_TERMS = new Set(Object.keys(TERMS).filter((t) => !['87', '159', '149', '58'].includes(t.slice(12))));

/**
 * The state text starts in (and returns to at each delimiter, PS3.5 6.1.2.5.3), from the Specific Character Set's
 * values; a string saying why when the first value cannot start text with code extensions. Terms are compared as
 * real archives write them: in any case, padded, `ISO_IR 100` for `ISO 2022 IR 100` (the same repertoire); an
 * empty first value is ISO 2022 IR 6 (PS3.3 C.12.1.1.2). Later values are designated by escapes in the text,
 * which are checked there.
 */
export function initialState(values: string[]): State | string {
  const first = (values[0] ?? '')
    .trim()
    .toUpperCase()
    .replace(/^ISO[_ ](?:2022[_ ])?IR[_ ](\d+)$/, 'ISO 2022 IR $1');
  const term = first === '' ? 'ISO 2022 IR 6' : first;
  if (!FIRST_TERMS.has(term)) {
    return (
      'with code extensions, cxr reads as the first value only ISO 2022 IR 6 (ASCII), ISO 2022 IR 13 (Japanese ' +
      'katakana) or a single-byte set (ISO 2022 IR 100, 101, 109, 110, 126, 127, 138, 144, 148, 166)'
    );
  }
  // With ASCII alone, a byte over 0x9F designates nothing: it is read as Latin-1, as before the extensions came.
  return { g0: 'ascii', g1: TERMS[term].g1 ?? 'latin1' };
}

/** A stretch of decoded text and the delimiter byte that ended it (null at the end of the value). */
export interface Piece {
  text: string;
  end: number | null;
}

const ESC = 0x1b;
const decoders = new Map<string, TextDecoder>();
function decoder(label: string): TextDecoder {
  let d = decoders.get(label);
  if (!d) decoders.set(label, (d = new TextDecoder(label)));
  return d;
}

function decodeRun(kind: Kind, b: Uint8Array): string {
  switch (kind) {
    case 'ascii':
    case 'latin1':
      return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
    case 'c1':
      return '\ufffd'.repeat(b.length);
    // JIS X 0208 in G0 is EUC-JP's code set 1 with the high bit cleared; JIS X 0212, its code set 3 (0x8F first).
    case 'jis0208':
      return decoder('euc-jp').decode(b.map((x) => x | 0x80));
    case 'jis0212': {
      const out = new Uint8Array(Math.ceil(b.length / 2) * 3);
      let n = 0;
      for (let i = 0; i < b.length; i++) {
        if (i % 2 === 0) out[n++] = 0x8f;
        out[n++] = b[i] | 0x80;
      }
      return decoder('euc-jp').decode(out.subarray(0, n));
    }
    case 'katakana': {
      // JIS X 0201 katakana is 0xA1-0xDF, one byte each as in Shift JIS; other bytes there would start a
      // two-byte Shift JIS character, which this set has not.
      const ok = b.map((x) => (x >= 0xa1 && x <= 0xdf ? x : 0x3f));
      const text = decoder('shift_jis').decode(ok).split('');
      return text.map((c, i) => (ok[i] === 0x3f ? '\ufffd' : c)).join('');
    }
    default:
      return decoder(kind).decode(b);
  }
}

/**
 * ISO 2022 text (bytes) as Unicode, cut at the `delimiters`, bytes that delimit only where G0 holds ASCII; each
 * piece starts in the `initial` state (PS3.5 6.1.2.5.3). Linear in the length, however many escapes it holds.
 * C1 bytes (0x80-0x9F) become U+FFFD. Throws on an escape sequence it does not know (its bytes in hex).
 */
export function splitIso2022(
  b: Uint8Array,
  delimiters: number[] = [],
  initial: State = { g0: 'ascii', g1: 'latin1' },
): Piece[] {
  const pieces: Piece[] = [];
  let parts: string[] = [];
  let { g0, g1 } = initial;
  let kind: Kind = 'ascii';
  let start = 0;
  const flush = (end: number) => {
    if (end > start) parts.push(decodeRun(kind, b.subarray(start, end)));
  };
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c === ESC) {
      flush(i);
      const known = ESCAPES.find(([seq]) => seq.every((x, k) => b[i + 1 + k] === x));
      if (!known) {
        const seq = [...b.subarray(i, i + 4)].map((x) => x.toString(16).padStart(2, '0').toUpperCase()).join(' ');
        throw new Error(`uses a character set cxr does not know (escape sequence ${seq} at byte ${i})`);
      }
      g0 = known[1].g0 ?? g0;
      g1 = known[1].g1 ?? g1;
      i += 1 + known[0].length;
      start = i;
      continue;
    }
    const twoByte = g0 === 'jis0208' || g0 === 'jis0212';
    const k: Kind = c >= 0xa0 ? g1 : c >= 0x80 ? 'c1' : twoByte && c >= 0x21 && c <= 0x7e ? g0 : 'ascii';
    if (k === 'ascii' && delimiters.includes(c)) {
      flush(i);
      pieces.push({ text: parts.join(''), end: c });
      parts = [];
      ({ g0, g1 } = initial);
      start = i + 1;
    } else if (k !== kind) {
      flush(i);
      start = i;
    }
    kind = k;
    i++;
  }
  flush(b.length);
  pieces.push({ text: parts.join(''), end: null });
  return pieces;
}

/** ISO 2022 text (as the bytes of a Latin-1 string) as Unicode; throws on a code extension it does not know. */
export function decodeIso2022(s: string): string {
  return splitIso2022(Buffer.from(s, 'latin1'))[0].text;
}

/**
 * `s` with the control characters a value of this VR may not hold as U+FFFD: C0, DEL and C1 (PS3.5 6.1.2.3 and
 * 6.2: text VRs allow none but ESC, which code extensions consume, and ST, LT and UT also TAB, LF, FF and CR).
 * One replacement for all: a name read is shown and written back into the report, where a control byte from the
 * header could break a line or a terminal; an odd byte is no reason to refuse the film.
 */
export function withoutControls(s: string, vr: string): string {
  const prose = vr === 'ST' || vr === 'LT' || vr === 'UT';
  let out: string[] | undefined;
  for (let i = 0; i < s.length; i++) {
    const n = s.charCodeAt(i);
    const control =
      n < 0x20 ? !(prose && (n === 0x09 || n === 0x0a || n === 0x0c || n === 0x0d)) : n >= 0x7f && n <= 0x9f;
    if (control) (out ??= s.slice(0, i).split(''))[i] = '\ufffd';
    else if (out) out[i] = s[i];
  }
  return out ? out.join('') : s;
}
