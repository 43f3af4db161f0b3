// Small DOM helpers: everything is built with textContent, never innerHTML, so no server or
// file-provided text can inject markup.
import { isDicom as isDicomBytes } from '../../data/dicom_syntax';

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

// How numbers are shown is shared with the results cxr writes into the PACS (dicom_out): one wording.
export { NBSP, percent, percentPair } from '../../predict/result_words';

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

/**
 * Whether the page takes a file for DICOM before sending it (to refuse it in the browser, which cannot read
 * DICOM): the server's own test of the first bytes (a Part-10 file, or a bare data set without preamble, as old
 * PACS exports named IMG0001 are), or a .dcm/.dicom name. What a server answer shows is decided by the server's
 * answer (`input.kind`), not by this guess.
 */
export function isDicom(head: Uint8Array, name: string): boolean {
  return isDicomBytes(head) || /\.(dcm|dicom)$/i.test(name);
}

/** Bytes of a file's start that isDicom reads: a bare data set's first elements fit in them. */
export const DICOM_HEAD_BYTES = 4096;

/** What to do with a film too large to analyze, in bytes or in pixels, on the server or on this computer. */
export const SMALLER_COPY = 'Export a smaller copy of the image (e.g. a JPEG of the film) and analyze that.';

/**
 * Files dropped anywhere on the page: given to `take` while `accepting()` (as on `zone`, which lights up while files
 * are dragged over the page), else refused. Never left to the browser, which opened a file dropped beside the zone
 * in the tab, and the page and every result of the night went with it.
 */
export function acceptFileDrops(zone: HTMLElement, accepting: () => boolean, take: (files: FileList) => void): void {
  const files = (e: DragEvent) => e.dataTransfer?.types.includes('Files') ?? false;
  // A link or URL dropped outside a text field: the browser navigated to it, and every card went. Text dropped
  // into a field (the age, History's filters) stays the browser's own.
  const link = (e: DragEvent) => {
    const t = e.target instanceof Element ? e.target : null;
    const field = t?.closest('input, textarea, [contenteditable=""], [contenteditable="true"]') ?? null;
    const types = e.dataTransfer?.types ?? [];
    return field === null && (types.includes('text/uri-list') || types.includes('text/plain'));
  };
  const refuse = (e: DragEvent) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'none';
  };
  window.addEventListener('dragover', (e) => {
    if (!files(e)) return link(e) ? refuse(e) : undefined;
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = accepting() ? 'copy' : 'none';
    zone.classList.toggle('over', accepting());
  });
  // Out of the window (no element it goes to): the zone goes back.
  window.addEventListener('dragleave', (e) => {
    if (e.relatedTarget === null) zone.classList.remove('over');
  });
  window.addEventListener('drop', (e) => {
    if (!files(e)) return link(e) ? refuse(e) : undefined;
    e.preventDefault();
    zone.classList.remove('over');
    if (accepting() && e.dataTransfer?.files.length) take(e.dataTransfer.files);
  });
}

export { distinctOperatingPoints } from '../../predict/operating_points';
