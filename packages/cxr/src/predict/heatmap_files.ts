// The file names of `cxr predict --heatmaps DIR`: from each input alone, never from the order files
// finish in, and never over a map an earlier run wrote, so a CSV kept from any run still points at
// its own film's map.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

const shortHash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 8);

/** `name` with a hash of the film's absolute path before `.heatmap.png`: unique to that path. */
const withPathHash = (name: string, absolute: string) =>
  name.replace(/\.heatmap\.png$/, `-${shortHash(absolute)}.heatmap.png`);

/**
 * Each job's heat map file name ('' if missing). PACS exports repeat IM-0001.dcm in every study, so
 * the name is the path inside the folder named, '/' as '__', extension kept. The same file named
 * twice shares its map; another file under a taken name (also in another case) gets its path's hash.
 */
export function heatmapNames(jobs: readonly { file: string; missing: boolean; name?: string }[]): string[] {
  const owners = new Map<string, string>();
  return jobs.map((job) => {
    if (job.missing) return '';
    const file = path.resolve(job.file);
    let stem = (job.name ?? path.basename(job.file)).replace(/[\\/]+/g, '__') || 'image';
    // A deep path could pass the 255-byte limit of a file name: keep its end (whole characters), and a hash.
    if (Buffer.byteLength(stem) > 200) stem = `${shortHash(stem)}-${Array.from(stem).slice(-50).join('')}`;
    let name = `${stem}.heatmap.png`;
    const owner = owners.get(name.toLowerCase());
    if (owner !== undefined && owner !== file) name = withPathHash(name, file);
    if (!owners.has(name.toLowerCase())) owners.set(name.toLowerCase(), file);
    return name;
  });
}

/**
 * Writes one run's maps into a folder. A name an earlier run left there is not overwritten (its CSV
 * names it): this run's map for that film goes under the name with the film path's hash instead, and
 * where a third run finds that taken too, under the hashed name with -2, -3... (each run's CSV keeps
 * pointing at its own map).
 */
export class HeatmapWriter {
  /** Names written by this run, and the film each is for. */
  private readonly mine = new Map<string, string>();

  constructor(private readonly dir: string) {}

  /** Writes `png` for `file` under `name` (or its hashed form); returns the path written. */
  write(name: string, file: string, png: Buffer): string {
    const absolute = path.resolve(file);
    const hashed = withPathHash(name, absolute);
    for (let k = 0; ; k++) {
      const target = k === 0 ? name : k === 1 ? hashed : hashed.replace(/\.heatmap\.png$/, `-${k}.heatmap.png`);
      const owner = this.mine.get(target);
      // The same film named twice in this run shares its map; another film's map of this run is kept.
      if (owner === absolute) {
        fs.writeFileSync(path.join(this.dir, target), png);
        return path.join(this.dir, target);
      }
      if (owner !== undefined) continue;
      try {
        fs.writeFileSync(path.join(this.dir, target), png, { flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw e;
      }
      this.mine.set(target, absolute);
      return path.join(this.dir, target);
    }
  }
}
