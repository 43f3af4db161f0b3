// The committed docs/experiments/comparison.md and .html are remade, byte for byte apart from the
// "Generated" time, by `cxr experiments seed --resume` from the committed run folders: the
// comparison's format may only grow in ways that leave those tables alone.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runSeedExperiments } from '../src/experiments/seed';
import { REPO } from './shared-data';

const COMMITTED = path.join(REPO, 'docs', 'experiments');
const withoutTime = (s: string) => s.replace(/Generated \d{4}-\d\d-\d\d \d\d:\d\d UTC/g, 'Generated (time) UTC');

test('experiments seed --resume remakes the committed comparison from the committed runs', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-exp-golden-'));
  try {
    fs.cpSync(COMMITTED, out, { recursive: true });
    // Every row is finished, so nothing trains and neither the data nor the GAN is read.
    await runSeedExperiments({
      data: path.join(out, 'no-data'),
      out,
      resume: true,
      ganModel: path.join(out, 'no-gan'),
      log: () => {},
    });
    for (const file of ['comparison.md', 'comparison.html']) {
      const made = withoutTime(fs.readFileSync(path.join(out, file), 'utf8')).split('\n');
      const committed = withoutTime(fs.readFileSync(path.join(COMMITTED, file), 'utf8')).split('\n');
      // The first line that differs, not assert.equal's diff of the two pages: the test runner spent over 15
      // minutes at full CPU reporting that diff, and a CI run would have hung on it.
      const at = made.findIndex((line, i) => line !== committed[i]);
      const line = at < 0 ? made.length : at;
      if (at >= 0 || made.length !== committed.length)
        assert.fail(
          `${file} differs from the committed one at line ${line + 1}:\n  made:      ${made[line]?.slice(0, 300)}` +
            `\n  committed: ${committed[line]?.slice(0, 300)}`,
        );
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
