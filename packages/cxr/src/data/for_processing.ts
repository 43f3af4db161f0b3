// What makes a DICOM image FOR PROCESSING, in one place: the decoder reads it from a file's header
// (data/dicom.ts) and the PACS filter from Orthanc's simplified tags (pacs/filter.ts), so that a film the
// decoder would answer "cannot assess" for is the film the sync and `cxr enqueue --orthanc-all` leave out.

/** The SOP classes of DX, mammography and intra-oral images FOR PROCESSING (PS3.4 B.5). */
export const FOR_PROCESSING_SOP_CLASSES: ReadonlySet<string> = new Set([
  '1.2.840.10008.5.1.4.1.1.1.1.1',
  '1.2.840.10008.5.1.4.1.1.1.2.1',
  '1.2.840.10008.5.1.4.1.1.1.3.1',
]);

/**
 * Whether an image is FOR PROCESSING: raw detector values, not meant to be shown (PS3.3 C.8.11.1.1.1), by its
 * PresentationIntentType (0008,0068) or its SOP class (0008,0016). Values as read: padding (spaces, NULs), runs of
 * spaces and the case of the code string do not count. Either attribute holds one value; where a writer put several
 * (backslash-separated), any one FOR PROCESSING counts: "FOR PROCESSING\FOR PRESENTATION" was read as neither,
 * and a raw detector image was assessed.
 */
export function isForProcessingImage(h: { presentationIntent?: string; sopClassUid?: string }): boolean {
  const values = (v: string | undefined) => (v ?? '').split('\\').map((x) => x.replace(/\0/g, '').trim());
  if (values(h.presentationIntent).some((v) => v.replace(/\s+/g, ' ').toUpperCase() === 'FOR PROCESSING')) return true;
  return values(h.sopClassUid).some((v) => FOR_PROCESSING_SOP_CLASSES.has(v));
}
