// A newcomer's first changes, as docs/architecture.md ("Where a change goes") describes them (session 38):
// - a new recipe is one entry in RECIPES (train/presets.ts): every entry, looked up by its name as
//   `cxr train --recipe NAME` does, passes the checks training makes before it reads any data, so a recipe that
//   cannot train fails here and not an hour into a run;
// - a new folder under src/ or a new file directly in src/ goes into docs/architecture.md's floor table:
//   module-map.js (which test/module-map.test.ts runs with --check) fails until it is there, and fails on a table
//   that puts a folder on another floor than floors.js or names a ground-floor file that is gone.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RECIPES } from '../src/train/presets';
import { runTraining } from '../src/train/run';

const PKG = path.join(__dirname, '..', '..');
const REPO = path.join(PKG, '..', '..');
const MISSING_DATA = path.join(os.tmpdir(), 'cxr-newcomer-s38-no-data');

/** What `cxr train --recipe NAME` says before it reads data; `--data: no such folder` means the recipe passed. */
async function refusalBeforeData(name: string, overrides: Record<string, unknown> = {}): Promise<string> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-newcomer-s38-run-'));
  try {
    await runTraining({ recipeName: name, overrides, data: MISSING_DATA, out, log: () => {} });
    return 'trained';
  } catch (e) {
    return (e as Error).message;
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

test('every named recipe passes the checks `cxr train --recipe NAME` makes before it reads data', async () => {
  const names = Object.keys(RECIPES);
  assert.ok(names.length > 20, `${names.length} recipes`);
  for (const name of names) {
    // The GAN recipes need the generator's folder, which the command takes as --gan-model.
    const overrides = RECIPES[name].recipe.ganImages ? { ganModel: path.join(MISSING_DATA, 'gan') } : {};
    const said = await refusalBeforeData(name, overrides);
    assert.ok(said.includes('no such folder') && said.includes(MISSING_DATA), `${name}: ${said}`);
  }
});

test('a recipe that cannot train is refused by that lookup, before any data', async () => {
  const name = 'newcomer-s38-head-first-from-scratch';
  // A probe phase of the head alone belongs to a backbone trained end to end, not to a from-scratch network.
  RECIPES[name] = { title: 'not a recipe', recipe: { ...RECIPES.cxr.recipe, headFirst: { epochs: 1, lr: 1e-3 } } };
  try {
    const said = await refusalBeforeData(name);
    assert.ok(/headFirst/.test(said) && !said.includes('no such folder'), said);
  } finally {
    delete RECIPES[name];
  }
});

/** A copy of module-map.js, floors.js, src/ and docs/architecture.md, laid out as in the repository. */
function mapFixture(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-newcomer-s38-map-'));
  fs.mkdirSync(path.join(root, 'packages', 'cxr', 'scripts'), { recursive: true });
  for (const f of ['module-map.js', 'floors.js'])
    fs.copyFileSync(path.join(PKG, 'scripts', f), path.join(root, 'packages', 'cxr', 'scripts', f));
  fs.cpSync(path.join(PKG, 'src'), path.join(root, 'packages', 'cxr', 'src'), { recursive: true });
  fs.mkdirSync(path.join(root, 'docs'));
  fs.copyFileSync(path.join(REPO, 'docs', 'architecture.md'), path.join(root, 'docs', 'architecture.md'));
  return root;
}

/** Rewrites docs/modules.md in the fixture (as a newcomer is told to), then checks it as the test suite does. */
function moduleMap(root: string) {
  const script = path.join(root, 'packages', 'cxr', 'scripts', 'module-map.js');
  const write = spawnSync(process.execPath, [script], { encoding: 'utf8', cwd: root });
  const check = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8', cwd: root });
  return { write: write.status, check: check.status, said: write.stderr + check.stderr };
}

function editFile(file: string, edit: (text: string) => string): void {
  const before = fs.readFileSync(file, 'utf8');
  const after = edit(before);
  assert.notEqual(after, before, `the edit of ${path.basename(file)} changed nothing`);
  fs.writeFileSync(file, after);
}

test("module-map.js fails until docs/architecture.md's floor table has a new folder or ground-floor file", () => {
  const root = mapFixture();
  try {
    const src = path.join(root, 'packages', 'cxr', 'src');
    const arch = path.join(root, 'docs', 'architecture.md');
    assert.deepEqual(moduleMap(root), { write: 0, check: 0, said: '' }, 'the copy of the tree as it is passes');

    fs.writeFileSync(path.join(src, 'retry_budget.ts'), '// How many times a caller may retry.\nexport {};\n');
    let r = moduleMap(root);
    assert.ok(r.write === 1 && r.check === 1, `a ground-floor file missing from the table: ${JSON.stringify(r)}`);
    assert.ok(r.said.includes('src/retry_budget.ts'), r.said);
    editFile(arch, (t) => t.replace('`config_file.ts` |', '`config_file.ts`, `retry_budget.ts` |'));
    assert.equal(moduleMap(root).check, 0, 'listed on floor 0, it passes');

    fs.mkdirSync(path.join(src, 'triage'));
    fs.writeFileSync(path.join(src, 'triage', 'rank.ts'), '// Which films a reader sees first.\nexport {};\n');
    editFile(path.join(root, 'packages', 'cxr', 'scripts', 'floors.js'), (t) =>
      t.replace('  cli: 6,', '  triage: 5,\n  cli: 6,'),
    );
    r = moduleMap(root);
    assert.ok(r.check === 1 && r.said.includes('src/triage/'), `a folder of floors.js missing: ${JSON.stringify(r)}`);
    editFile(arch, (t) => t.replace('`queue/` |', '`queue/`, `triage/` |'));
    assert.equal(moduleMap(root).check, 0, 'listed on floor 5, it passes');

    // The table moving a folder to another floor than floors.js gives it, or naming a file src/ no longer has.
    editFile(arch, (t) =>
      t.replace(', `triage/` |', ' |').replace('`predict/`, `report/` |', '`predict/`, `report/`, `triage/` |'),
    );
    r = moduleMap(root);
    assert.ok(r.check === 1 && r.said.includes('triage/'), `a folder on the wrong floor: ${JSON.stringify(r)}`);
    editFile(arch, (t) => t.replace(', `triage/` |', ' |').replace('`queue/` |', '`queue/`, `triage/` |'));
    fs.rmSync(path.join(src, 'retry_budget.ts'));
    r = moduleMap(root);
    assert.ok(r.check === 1 && r.said.includes('retry_budget.ts'), `a file that is gone: ${JSON.stringify(r)}`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
