#!/usr/bin/env node
// The gray-level span (1st to 99th percentile, of 255) of every film under a Kaggle-layout data root,
// at the model input size, as the LOW_CONTRAST image check measures it (explain/image_checks.ts):
// prints how many films there are, the lowest spans with their files, and how many fall under a few
// bounds. The check's bound of 70 was chosen from this (docs/generalisation.md, round 17).
// Usage: node packages/cxr/scripts/level-spans.js [DATA_ROOT] [SIZE]   (after a build)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const dist = path.join(__dirname, '..', 'dist', 'src');
const { decodeBuffer } = require(path.join(dist, 'data', 'decode'));
const { squareStats } = require(path.join(dist, 'explain', 'image_checks'));

async function main() {
  const root = process.argv[2] ?? path.join(__dirname, '..', '..', '..', '..', 'shared', 'data', 'chest_xray');
  const size = Number(process.argv[3] ?? 160);
  const spans = [];
  for (const split of ['train', 'val']) {
    for (const cls of ['NORMAL', 'PNEUMONIA']) {
      const dir = path.join(root, split, cls);
      if (!fs.existsSync(dir)) continue;
      for (const f of fs
        .readdirSync(dir)
        .filter((n) => !n.startsWith('.'))
        .sort()) {
        try {
          const img = await decodeBuffer(fs.readFileSync(path.join(dir, f)), size);
          spans.push([squareStats(img.pixels, size).levelSpan, `${split}/${cls}/${f}`]);
        } catch {
          // A file that does not decode is not a film the check ever sees.
        }
      }
    }
  }
  spans.sort((a, b) => a[0] - b[0]);
  console.log(`${spans.length} films under ${root} at ${size} px; the lowest spans:`);
  for (const [span, file] of spans.slice(0, 10)) console.log(`  ${span}  ${file}`);
  for (const bound of [70, 85, 90, 100, 102]) {
    console.log(`  under ${bound}: ${spans.filter(([s]) => s < bound).length}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
