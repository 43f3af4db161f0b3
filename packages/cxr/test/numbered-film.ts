// A small chest film (a CR image, 256×256, 8 bits) of its own for each number, with its UIDs made from the
// number: for the tests that load several films into Orthanc and follow each by its UIDs.
import { imageElements, writeDicom } from './dicom-writer';

export interface NumberedFilmOptions {
  /** The UIDs are 2.25.(uidRoot + n * 10 + a digit per UID): a test's own range, apart from other tests'. */
  uidRoot: number;
  /** Pixel i's value (0-255) for film n: films that differ in their pixels too. */
  pixel: (i: number, n: number) => number;
  /** A Modality element ('CR'), where a test's filters read it; none by default. */
  modality?: string;
  /** A ViewPosition element ('PA', 'LL'), where a test's filters read it; none by default. */
  view?: string;
}

export function numberedFilm(n: number, o: NumberedFilmOptions): Buffer {
  const pixels = new Uint8Array(256 * 256);
  for (let i = 0; i < pixels.length; i++) pixels[i] = o.pixel(i, n);
  const uid = (tag: number) => ({ tag, vr: 'UI', value: `2.25.${o.uidRoot + n * 10 + (tag & 0xf)}` });
  return writeDicom(
    imageElements({
      rows: 256,
      columns: 256,
      bitsAllocated: 8,
      pixels,
      extra: [
        { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1' },
        ...(o.modality ? [{ tag: 0x00080060, vr: 'CS', value: o.modality }] : []),
        ...(o.view ? [{ tag: 0x00185101, vr: 'CS', value: o.view }] : []),
        uid(0x00080018),
        uid(0x0020000d),
        uid(0x0020000e),
      ],
    }),
  );
}
