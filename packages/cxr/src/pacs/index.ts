// The PACS side: Orthanc's change feed in, DICOM results back (see docs/deployment.md).
export { loadOrthancConfig, type OrthancConfig } from './config';
export { OrthancClient, OrthancError } from './client';
export { classifyInstance } from './filter';
export { readState, writeState, type SyncState } from './state';
export { type StoredResults, storedResults } from './stored_results';
export { type InstanceOutcome, processInstance, resultText, syncOnce, type SyncOptions, type SyncStats } from './sync';
