export * from './metrics';
export * from './metrics_schema';
export * from './stats';
export * from './calibration';
export * from './operating_points';
export * from './format';
export * from './groups';
