import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { type Label, scanDataset } from '../src/data/dataset';
import { splitByPatient } from '../src/data/split';

import { DATA, needsData } from './shared-data';

const skip = needsData();

// File names only: splitting needs no pixels, so the whole train list is cheap to use.
const trainRecords = skip ? Promise.resolve([]) : scanDataset(path.join(DATA, 'chest_xray', 'train'));

test('no patient is on both sides', { skip }, async () => {
  const records = await trainRecords;
  const { train, val } = splitByPatient(records, { seed: 7 });
  assert.equal(train.length + val.length, records.length);
  const trainPatients = new Set(train.map((r) => r.patient));
  const leaked = val.filter((r) => trainPatients.has(r.patient));
  assert.deepEqual(leaked, []);
});

test('stratified: each class keeps about the requested fraction', { skip }, async () => {
  const records = await trainRecords;
  for (const valFraction of [0.15, 0.2]) {
    const { val } = splitByPatient(records, { seed: 1, valFraction });
    for (const label of [0, 1]) {
      const all = records.filter((r) => r.label === label).length;
      const got = val.filter((r) => r.label === label).length / all;
      assert.ok(Math.abs(got - valFraction) < 0.01, `class ${label}: ${got} vs ${valFraction}`);
    }
  }
});

test('deterministic for a seed, independent of input order, different for another seed', { skip }, async () => {
  const records = await trainRecords;
  const a = splitByPatient(records, { seed: 3 });
  const b = splitByPatient([...records].reverse(), { seed: 3 });
  const c = splitByPatient(records, { seed: 4 });
  const names = (rs: { path: string }[]) => rs.map((r) => r.path).sort();
  assert.deepEqual(names(a.val), names(b.val));
  assert.notDeepEqual(names(a.val), names(c.val));
  assert.deepEqual(
    a.valIndices.map((i) => records[i]),
    a.val,
  );
});

test('a patient with mixed labels goes by its majority and stays whole', () => {
  const items: Array<{ patient: string; label: Label }> = [];
  for (let p = 0; p < 40; p++)
    for (let k = 0; k < 3; k++) items.push({ patient: `p${p}`, label: (p % 4 === 0 ? (k === 0 ? 1 : 0) : 1) as Label });
  for (let seed = 0; seed < 5; seed++) {
    const { trainIndices, valIndices } = splitByPatient(items, { seed, valFraction: 0.25 });
    const side = new Map<string, string>();
    for (const [name, idx] of [
      ['train', trainIndices],
      ['val', valIndices],
    ] as const) {
      for (const i of idx) {
        const prev = side.get(items[i].patient);
        assert.ok(prev === undefined || prev === name, `${items[i].patient} on both sides`);
        side.set(items[i].patient, name);
      }
    }
    // Majority-NORMAL patients (p0, p4, …) form 10 of 40 patients: a quarter of them is 2–3.
    const mixedInVal = new Set(valIndices.map((i) => items[i].patient).filter((p) => Number(p.slice(1)) % 4 === 0));
    assert.ok(mixedInVal.size >= 2 && mixedInVal.size <= 3, `${mixedInVal.size} majority-NORMAL patients in val`);
  }
});

test('valFraction outside [0, 1) is refused', () => {
  assert.throws(() => splitByPatient([], { valFraction: 1 }), RangeError);
});

test("mode 'block': the lowest patient numbers of each series, whole patients, about the fraction per class", () => {
  const items = [
    ...Array.from({ length: 20 }, (_, i) => ({ patient: `IM-${String(100 + i).padStart(4, '0')}`, label: 0 as Label })),
    ...Array.from({ length: 20 }, (_, i) => ({
      patient: `NORMAL2-IM-${String(500 + i).padStart(4, '0')}`,
      label: 0 as Label,
    })),
    // Two images each; numbers given out of order and without zero padding.
    ...Array.from({ length: 40 }, (_, i) => ({ patient: `person${((i * 7) % 40) + 1}`, label: 1 as Label })).flatMap(
      (r) => [r, { ...r }],
    ),
  ];
  const { train, val } = splitByPatient(items, { valFraction: 0.25, mode: 'block', seed: 9 });
  const valIds = new Set(val.map((r) => r.patient));
  const expected = [
    ...['0100', '0101', '0102', '0103', '0104'].map((n) => `IM-${n}`),
    ...['0500', '0501', '0502', '0503', '0504'].map((n) => `NORMAL2-IM-${n}`),
    ...Array.from({ length: 10 }, (_, i) => `person${i + 1}`),
  ];
  assert.deepEqual([...valIds].sort(), expected.sort());
  assert.ok(
    train.every((r) => !valIds.has(r.patient)),
    'no patient on both sides',
  );
  // The seed plays no part: the block is fixed by the numbers.
  assert.deepEqual(
    splitByPatient(items, { valFraction: 0.25, mode: 'block', seed: 1 }).valIndices,
    splitByPatient(items, { valFraction: 0.25, mode: 'block', seed: 9 }).valIndices,
  );
});
