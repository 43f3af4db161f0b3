#!/usr/bin/env node
// bench/serve/job-key.js: how long POST /api/v1/jobs spends on its request thread keying one DICOM upload by its
// SOP Instance UID (queue/job.ts sopInstanceUid, which reads up to the UID's tag) against the full header read it
// used before (dicom_out/part10.ts readHeader, which reads and splits every value), on a film whose Patient's Name
// is megabytes of value delimiters, as a hostile uploader sends it, with its UID and without one.
// Medians over --runs of each, and of the per-run ratios.
'use strict';
require('../args').checkArgs('usage: node bench/serve/job-key.js [--runs 5] [--mb 9]', {
  values: ['--runs', '--mb'],
});
const { DIST, machine, median, opt } = require('./common');
const { sopInstanceUid } = require(`${DIST}/src/queue/job.js`);
const { readHeader } = require(`${DIST}/src/dicom_out/part10.js`);
const { writeDicom } = require(`${DIST}/test/dicom-writer.js`);

const RUNS = Number(opt('runs', 5));
const MB = Number(opt('mb', 9));
// With its UID, and without one (nothing to key by: the full read must not be the fallback then either).
const film = (uid) =>
  writeDicom(
    [
      { tag: 0x00080005, vr: 'CS', value: 'ISO_IR 100' },
      { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1' },
      ...(uid ? [{ tag: 0x00080018, vr: 'UI', value: uid }] : []),
      { tag: 0x00100010, vr: 'PN', value: '\\=A'.repeat(Math.round((MB * 2 ** 20) / 3)) },
    ],
    { transferSyntax: '1.2.840.10008.1.2' },
  );
const hostile = film('1.2.826.0.1.3680043.8.498.1');
const noUid = film(null);
const time = (f) => {
  const t = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t) / 1e6;
};
const rows = [];
for (let r = 0; r < RUNS; r++) {
  const quick = time(() => sopInstanceUid(hostile));
  const quickNoUid = time(() => sopInstanceUid(noUid));
  const full = time(() => readHeader(hostile));
  rows.push({ quick, quickNoUid, full, ratio: full / quick });
}
const m = (k) => median(rows.map((x) => x[k]));
console.log(
  JSON.stringify(
    {
      machine: machine(),
      film: `${(hostile.length / 2 ** 20).toFixed(1)} MiB header, Patient's Name of value delimiters`,
      runs: RUNS,
      medianMs: {
        keyByUidTag: +m('quick').toFixed(2),
        keyWithoutUid: +m('quickNoUid').toFixed(2),
        fullHeaderRead: +m('full').toFixed(1),
      },
      medianRatio: +m('ratio').toFixed(0),
    },
    null,
    2,
  ),
);
