// How long the audit log keeps images, and how small they are. Rows (the audit itself) are kept;
// heat maps and thumbnails are what made the log grow by 166 KB per prediction, forever.
// Stored images are re-encoded compactly: the heat map as a palette PNG (about a quarter of
// the size, visually the same overlay) and the thumbnail as the predictor made it (160 px; a DICOM's 512 px,
// the film the page shows in its place), never larger.
import sharp from 'sharp';
import { auditTime } from './audit_sql';
import type { AuditImages } from './audit_store';

const DAY_MS = 86_400_000;

/** '30d', '12h', '90m' or '0' (keep none) to milliseconds. */
export function parseRetention(text: string): number {
  const m = /^(\d{1,6})([dhm]?)$/.exec(text.trim());
  if (!m)
    throw new Error(
      `--retain-images: expected a duration such as 30d, 12h or 0 (keep none), got '${text.slice(0, 40)}'`,
    );
  const n = Number(m[1]);
  if (n > 0 && !m[2]) throw new Error(`--retain-images: say the unit, e.g. ${n}d (d, h or m), or 0 to keep none`);
  return n * (m[2] === 'h' ? 3_600_000 : m[2] === 'm' ? 60_000 : DAY_MS);
}

export const DEFAULT_RETENTION_MS = 30 * DAY_MS;

/** The cut-off: images of predictions made before this are removed. */
export function retentionCutoff(retainMs: number, now = Date.now()): string {
  // Through auditTime: a retention longer than the calendar's reach is clamped to the log's first year, not
  // written as an extended year ('-000001-...') that no reader of times takes.
  return auditTime(now - retainMs);
}

/**
 * The bound on a stored thumbnail's side: the predictor's largest (predictor.ts DICOM_THUMBNAIL_SIDE; not imported,
 * `cxr history` would load the model's runtime for it); one from elsewhere is fitted inside.
 */
export const THUMBNAIL_STORED_SIDE = 512;

export async function compactImages(images: AuditImages): Promise<AuditImages> {
  const out: AuditImages = {};
  if (images.heatmapPng) {
    out.heatmapPng = await sharp(images.heatmapPng)
      .png({ palette: true, quality: 80, effort: 7, compressionLevel: 9 })
      .toBuffer();
  }
  if (images.thumbnailPng) {
    out.thumbnailPng = await sharp(images.thumbnailPng)
      .resize(THUMBNAIL_STORED_SIDE, THUMBNAIL_STORED_SIDE, { fit: 'inside', withoutEnlargement: true })
      .toColourspace('b-w')
      // Adaptive filtering: a third smaller on chest films (a 512 px one 70 to 120 KB instead of 110 to 180 KB).
      .png({ compressionLevel: 9, adaptiveFiltering: true })
      .toBuffer();
  }
  return out;
}
