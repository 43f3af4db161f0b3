// Small DOM helpers: everything is built with textContent, never innerHTML, so no server or
// file-provided text can inject markup.

export function $(sel: string, root: ParentNode = document): HTMLElement {
  const el = root.querySelector<HTMLElement>(sel);
  if (!el) throw new Error(`page is missing ${sel}`);
  return el;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
}

/** One decimal; never rounds to a certainty the model did not state (0.9996 is "> 99.9 %", not "100.0 %"). */
export function percent(p: number): string {
  if (p > 0.999 && p < 1) return '> 99.9 %';
  if (p < 0.001 && p > 0) return '< 0.1 %';
  return `${(p * 100).toFixed(1)} %`;
}

/** A byte count as people read file sizes: MB of 1024 × 1024 bytes, as `cxr serve --max-upload-mb` counts them. */
export function megabytes(bytes: number): string {
  const mb = bytes / (1024 * 1024);
  if (mb < 0.1) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${Number.isInteger(mb) ? mb : mb.toFixed(1)} MB`;
}

/** A file's size and a limit as people can tell them apart: in MB, or in bytes where the MB would read the same
 * ("1.0 MB, over the 1 MB limit" says nothing; "1,048,577 bytes, over the 1 MB limit (1,048,576 bytes)" does).
 * `exact` is said after "limit": the limit in bytes, or nothing. */
export function sizeAndLimit(size: number, limit: number): { size: string; limit: string; exact: string } {
  const [s, l] = [megabytes(size), megabytes(limit)];
  const [sn, su] = s.split(' ');
  const [ln, lu] = l.split(' ');
  if (su !== lu || Number(sn) !== Number(ln)) return { size: s, limit: l, exact: '' };
  const bytes = (n: number) => `${n.toLocaleString('en-US')} bytes`;
  return { size: bytes(size), limit: l, exact: ` (${bytes(limit)})` };
}

/** Whether the reader asked for less motion: scrolling then jumps instead of gliding. */
export function reducedMotion(): boolean {
  return window.matchMedia('(prefers-reduced-motion: reduce)').matches;
}

export function isDicom(bytes: Uint8Array, name: string): boolean {
  const magic =
    bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
  return magic || /\.(dcm|dicom)$/i.test(name);
}

export { distinctOperatingPoints } from '../../predict/operating_points';
