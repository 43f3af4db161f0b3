// The evaluation floor as one import for the floors above it: metrics, their schema, statistics, calibration
// and the rules that choose operating points.
export * from './metrics';
export * from './metrics_schema';
export * from './stats';
export * from './calibration';
export * from './operating_points';
export * from './format';
export * from './groups';
