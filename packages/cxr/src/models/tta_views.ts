// The test-time views a model may average over (models/infer.ts draws them). A name outside this
// list is an error wherever it enters (cxr.json, a recipe, the command line), never a silent
// identity view. No imports: the web page bundles it. The gamma views change the mid-tones only
// (black and white stay), for films whose exposure curve differs from the training site's.
export const TTA_VIEWS = [
  'identity',
  'zoom-in',
  'zoom-out',
  'shift-left',
  'shift-right',
  'gamma-up',
  'gamma-down',
] as const;
export type TtaView = (typeof TTA_VIEWS)[number];
