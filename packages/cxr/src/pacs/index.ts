// The PACS side: Orthanc's change feed in, DICOM results back (see docs/deployment.md).
export { ConfigFileError } from '../config_file';
export { loadOrthancConfig, type OrthancConfig, redactOrthanc } from './config';
export { isOrthancAuthError, OrthancClient, OrthancError, type OrthancErrorCode } from './client';
export { classifyInstance, FOR_PROCESSING_REASON, LATERAL_REASON } from './filter';
export { readState, writeState, type SyncState } from './state';
export { type StoredResults, storedResults } from './stored_results';
export {
  countFilm,
  INTERNAL_ATTEMPTS,
  InternalFailures,
  type InstanceOutcome,
  ProcessingError,
  processInstance,
  resultText,
  syncOnce,
  type SyncOptions,
  type SyncStats,
} from './sync';
