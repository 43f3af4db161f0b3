// Square gray tiles laid out in a grid with a black gap around each, written as a PNG.
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { makeDirs } from '../make_dirs';

export const GRID_GAP = 2;

/** Pixel width and height of a rows × cols grid of size-px tiles. */
export function gridDims(rows: number, cols: number, size: number, gap = GRID_GAP): { width: number; height: number } {
  return { width: cols * size + (cols + 1) * gap, height: rows * size + (rows + 1) * gap };
}

/** tiles[r][c]: size*size gray bytes, or undefined for an empty cell. */
export function gridPixels(
  tiles: Array<Array<Uint8Array | undefined>>,
  size: number,
  gap = GRID_GAP,
): { width: number; height: number; pixels: Uint8Array } {
  const cols = Math.max(0, ...tiles.map((r) => r.length));
  const { width, height } = gridDims(tiles.length, cols, size, gap);
  const pixels = new Uint8Array(width * height);
  tiles.forEach((row, r) =>
    row.forEach((tile, c) => {
      if (!tile) return;
      if (tile.length !== size * size)
        throw new RangeError(`grid tile (${r}, ${c}) has ${tile.length} bytes, expected ${size * size}`);
      const x0 = gap + c * (size + gap),
        y0 = gap + r * (size + gap);
      for (let y = 0; y < size; y++) pixels.set(tile.subarray(y * size, (y + 1) * size), (y0 + y) * width + x0);
    }),
  );
  return { width, height, pixels };
}

export async function grayPng(pixels: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(pixels, { raw: { width, height, channels: 1 } })
    .toColourspace('b-w')
    .png({ compressionLevel: 6 })
    .toBuffer();
}

export async function writeGrid(
  file: string,
  tiles: Array<Array<Uint8Array | undefined>>,
  size: number,
): Promise<void> {
  const g = gridPixels(tiles, size);
  makeDirs(path.dirname(file));
  fs.writeFileSync(file, await grayPng(g.pixels, g.width, g.height));
}

/** Splits n concatenated size×size images into tiles. */
export function tilesOf(pixels: Uint8Array, n: number, size: number): Uint8Array[] {
  const per = size * size;
  return Array.from({ length: n }, (_, i) => pixels.subarray(i * per, (i + 1) * per));
}
