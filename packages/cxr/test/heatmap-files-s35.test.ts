// `cxr predict --heatmaps DIR` run again and again into one folder: every run's map is kept under a name
// of its own, so each run's CSV still points at its own film's map (docs/cli.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HeatmapWriter } from '../src/predict/heatmap_files';

const png = (run: number) => Buffer.from(`map of run ${run}`);

test('HeatmapWriter: a third and fourth run into the same folder keep every earlier run’s map', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-heatmaps-'));
  try {
    const film = path.join(dir, 'films', 'IM-0001.dcm');
    const written = [1, 2, 3, 4].map((run) =>
      path.basename(new HeatmapWriter(dir).write('IM-0001.dcm.heatmap.png', film, png(run))),
    );
    assert.equal(new Set(written).size, 4, `four runs, four names: ${written.join(', ')}`);
    assert.equal(written[0], 'IM-0001.dcm.heatmap.png');
    assert.match(written[1], /^IM-0001\.dcm-[0-9a-f]{8}\.heatmap\.png$/);
    assert.equal(written[2], written[1].replace('.heatmap.png', '-2.heatmap.png'));
    assert.equal(written[3], written[1].replace('.heatmap.png', '-3.heatmap.png'));
    written.forEach((name, i) => assert.equal(fs.readFileSync(path.join(dir, name), 'utf8'), `map of run ${i + 1}`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('HeatmapWriter: in one run, the same film shares its map, another film under a taken name gets its own', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-heatmaps-'));
  try {
    const w = new HeatmapWriter(dir);
    const a = path.join(dir, 'a', 'IM-0001.dcm');
    const b = path.join(dir, 'b', 'IM-0001.dcm');
    const first = w.write('IM-0001.dcm.heatmap.png', a, png(1));
    assert.equal(w.write('IM-0001.dcm.heatmap.png', a, png(2)), first);
    const other = w.write('IM-0001.dcm.heatmap.png', b, png(3));
    assert.notEqual(other, first);
    assert.equal(fs.readFileSync(first, 'utf8'), 'map of run 2');
    assert.equal(fs.readFileSync(other, 'utf8'), 'map of run 3');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
