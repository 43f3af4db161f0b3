// What marks a DICOM object as written by cxr, and the fixed words every result carries. The
// PACS sync recognises its own outputs by these, so it never feeds a result back to the model.
export const MANUFACTURER = 'cxr';

/** Burned into the heat map and written into every report: the results are advisory. */
export const CAVEAT = 'AI-generated, not a diagnosis; a decision aid for trained readers';

export const SOP_CLASS = {
  comprehensiveSr: '1.2.840.10008.5.1.4.1.1.88.33',
  secondaryCapture: '1.2.840.10008.5.1.4.1.1.7',
} as const;

export const SERIES_NUMBER = { sr: 9801, sc: 9802 } as const;

export const TRANSFER_SYNTAX_EXPLICIT_LE = '1.2.840.10008.1.2.1';

const SERIES_WHAT = { sr: 'AI pneumonia report', sc: 'AI heat map' } as const;

/** Series description of a result series: names the model version the series belongs to. */
export function seriesDescription(kind: 'sr' | 'sc', model: { name: string; version: string }): string {
  // LO holds 64 characters: the version comes before the (often long) name, so a cut keeps it.
  return `${MANUFACTURER} ${SERIES_WHAT[kind]} ${model.version} ${model.name}`.slice(0, 64);
}

/**
 * Whether an instance is one of cxr's own results, from its header: every result names `cxr` as its Manufacturer
 * and has a series description seriesDescription wrote. Either one is enough (a PACS or a router that rewrites one
 * of them still leaves the other). The SOP class is not: a radiologist's Comprehensive SR or another vendor's
 * Secondary Capture is no result of cxr's, and must not be counted as one.
 */
export function isOwnResult(tags: { manufacturer: string; seriesDescription: string }): boolean {
  if (tags.manufacturer.trim() === MANUFACTURER) return true;
  const description = tags.seriesDescription.trim();
  return Object.values(SERIES_WHAT).some((what) => description.startsWith(`${MANUFACTURER} ${what} `));
}
