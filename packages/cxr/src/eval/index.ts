// The evaluation floor as one import for the floors above it: metrics, their schema, statistics, calibration
// and the rules that choose operating points.
export * from './metrics';
export * from './metrics_schema';
export * from './stats';
export * from './calibration';
export * from './operating_points';
// Screening's target lives with the reading of the recorded rules, on the models floor (the model card shares it).
export { SCREENING_SENSITIVITY } from '../models/operating_point_rules';
export * from './format';
export * from './groups';
