// The report floor as one import for the floors above it: the per-run HTML report, the experiments
// comparison, reading a run folder back, and the charts and their renderer.
export { writeReport, type ReportResult } from './write_report';
export { writeComparison, ExperimentSummary, type ComparisonOptions } from './comparison';
export { readRunDir, type RunData, type SplitData } from './run_dir';
export * from './charts';
export { renderSvg, svgToPng, writeChart, type ChartSpec } from './render';
