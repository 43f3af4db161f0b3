// An archive folder as hospital IT meets one, for `cxr predict FOLDER` and `cxr enqueue FOLDER`: two films, the
// images the decoder refuses by their leading bytes (a phone's HEIC or WebP, empty files, a 12-bit JPEG, an
// animated PNG), a PNG cut short (found from its last bytes by enqueue, by the decoder in predict), files that
// are no images by name and bytes, and an empty extensionless file (skipped and named). Made here from a
// gradient; no ../shared data.
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { WEBP, animatedPng, isoMedia, patchSof } from './image-bytes';

/** Each file refused from its leading bytes: its name, its reason (start) and code, as predict and enqueue say. */
export const REFUSED_BY_HEADER: [string, RegExp, string][] = [
  ['IMG_0001.HEIC', /^HEIC is not supported \(JPEG, PNG or DICOM expected\)/, 'UNSUPPORTED_FORMAT'],
  ['animated.png', /^animated PNG \(2 frames\) is not supported/, 'UNSUPPORTED_FORMAT'],
  ['deep.jpg', /^12-bit JPEG is not supported/, 'UNSUPPORTED_FORMAT'],
  ['empty.jpg', /^empty file \(0 bytes\)$/, 'EMPTY'],
  ['photo.webp', /^WEBP is not supported \(JPEG, PNG or DICOM expected\)/, 'UNSUPPORTED_FORMAT'],
];
/** The whole films. */
export const FILMS = ['a.jpeg', 'b.png'];
/** A PNG cut in half: its header is whole; it stops inside a chunk (TRUNCATED). */
export const CUT = 'cut.png';
/** No images by name and bytes: counted, never named. */
export const OTHERS = ['README', 'Thumbs.db', 'notes.txt'];
/** Empty and without an extension: no film that failed, yet skipped by name (an extensionless DICOM name too). */
export const EMPTY_SKIPPED = ['IM000002'];

export interface Archive {
  /** Every kind above. */
  archive: string;
  /** One film and a note. */
  good: string;
  /** Only refused images (a HEIC and an empty .jpg). */
  bad: string;
  jpeg: Buffer;
}

/** A 120×100 grey gradient, the films of these tests: real pixels, nothing a gate or a check refuses outright. */
const GRADIENT = Uint8Array.from({ length: 120 * 100 }, (_, i) => ((i % 120) * 3 + Math.floor(i / 120)) % 256);
const RAW = { raw: { width: 120, height: 100, channels: 1 as const } };

/** The gradient as a JPEG file's bytes. */
export const gradientJpeg = (): Promise<Buffer> => sharp(GRADIENT, RAW).jpeg().toBuffer();

/** The folders under `root`. */
export async function makeArchive(root: string): Promise<Archive> {
  const jpeg = await gradientJpeg();
  const png = await sharp(GRADIENT, RAW).png().toBuffer();
  const folder = (name: string, files: Record<string, Buffer | string>) => {
    const dir = path.join(root, name);
    fs.mkdirSync(dir, { recursive: true });
    for (const [file, data] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), data);
    return dir;
  };
  const archive = folder('archive', {
    'a.jpeg': jpeg,
    'b.png': png,
    'IMG_0001.HEIC': isoMedia('heic'),
    'animated.png': animatedPng(png, 2),
    [CUT]: png.subarray(0, Math.floor(png.length / 2)),
    'deep.jpg': patchSof(jpeg, 0xc0, 12),
    'empty.jpg': '',
    IM000002: '', // an extensionless DICOM name, left empty by a failed copy
    'photo.webp': WEBP,
    README: 'Study exported from PACS.\n',
    'Thumbs.db': Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0, 0, 1, 2]),
    'notes.txt': 'not a film',
  });
  const good = folder('good', { 'a.jpeg': jpeg, 'notes.txt': 'not a film' });
  const bad = folder('bad', { 'IMG_0001.HEIC': isoMedia('heic'), 'empty.jpg': '' });
  return { archive, good, bad, jpeg };
}
