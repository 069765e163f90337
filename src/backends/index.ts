import type { BackendConfig } from '../config/types.js';
import type { Backend } from './backend.js';
import { FsBackend } from './fs.js';
import { S3Backend, type S3BackendOptions } from './s3.js';

export { BackendError, type Backend, type BackendErrorKind, type PhysicalMeta } from './backend.js';
export { FsBackend } from './fs.js';
export { S3Backend, type S3BackendOptions } from './s3.js';

/** Builds the backend a configuration entry describes. Nothing is contacted until `check()` or a call. */
export function createBackend(cfg: BackendConfig, s3Options?: S3BackendOptions): Backend {
  switch (cfg.type) {
    case 's3':
      return new S3Backend(cfg, s3Options);
    case 'fs':
      return new FsBackend(cfg);
  }
}
