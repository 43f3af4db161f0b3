'use strict';
// The floors of packages/cxr/src, bottom up: check-layers.js forbids an import from a lower floor to a higher
// one, and module-map.js lists the modules floor by floor. A module's floor is that of its first folder under
// src/; files directly in src/ (engine.ts, paths.ts, ...) are the bottom floor, all but index.ts (the library
// API, which stands above them all: check-layers.js).
const FLOORS = {
  '': 0,
  data: 1,
  models: 2,
  eval: 3,
  explain: 3,
  predict: 4,
  report: 4,
  train: 5,
  serve: 5,
  web: 5,
  gan: 5,
  experiments: 5,
  adapt: 5,
  robustness: 5,
  pacs: 5,
  dicom_out: 5,
  queue: 5,
  cli: 6,
};

module.exports = { FLOORS };
