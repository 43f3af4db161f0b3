// The model card is regenerated from cxr.json (training, `cxr calibrate`); what a person wrote
// below the marker must survive that.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HAND_WRITTEN_MARKER, writeModelCard } from '../src/models/card';
import { readMeta } from '../src/models/io';

const shipped = path.resolve(__dirname, '..', '..', '..', '..', 'models', 'default');

test('regenerating a card keeps the hand-written part below the marker, and only that', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-card-'));
  const meta = readMeta(shipped);
  writeModelCard(dir, meta);
  const generated = fs.readFileSync(path.join(dir, 'MODEL_CARD.md'), 'utf8');
  assert.ok(!generated.includes(HAND_WRITTEN_MARKER));

  const notes = `${HAND_WRITTEN_MARKER}\n\n## Why this model\nChosen on validation.\n`;
  fs.writeFileSync(path.join(dir, 'MODEL_CARD.md'), generated.replace('## Recipe', '## Recipe (edited by hand, not kept)') + '\n' + notes);
  writeModelCard(dir, { ...meta, temperature: 1.234 });
  const card = fs.readFileSync(path.join(dir, 'MODEL_CARD.md'), 'utf8');
  assert.ok(card.endsWith(notes), 'the notes stay at the end, once');
  assert.equal(card.split(HAND_WRITTEN_MARKER).length, 2);
  assert.match(card, /T = 1\.234/, 'the generated part is regenerated');
  assert.doesNotMatch(card, /edited by hand, not kept/, 'edits above the marker are replaced');
});

test('the shipped card has its hand-written sections below the marker', () => {
  const card = fs.readFileSync(path.join(shipped, 'MODEL_CARD.md'), 'utf8');
  const tail = card.slice(card.indexOf(HAND_WRITTEN_MARKER));
  assert.ok(card.includes(HAND_WRITTEN_MARKER));
  assert.match(tail, /## How this folder was made/);
});
