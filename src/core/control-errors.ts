/**
 * Errors of the control plane (runtime changes made through the admin API: backends, and any other
 * area that wants them). The admin layer maps each code to a Connect code in one place and turns
 * `details` into typed error details; `field` names the request field at fault.
 */
export type ControlErrorCode =
  /** The named entry does not exist. */
  | 'NotFound'
  /** An entry with that name already exists. */
  | 'AlreadyExists'
  /** The request is well-formed but the current state does not allow it (the message says why). */
  | 'FailedPrecondition'
  /** A field of the request is not acceptable (`field` names it). */
  | 'InvalidArgument';

/** Why an entry owned by the config file cannot be changed through the API. */
export interface ConfigOwnership {
  /** The configuration file that declares the entry. */
  file: string;
  /** The key path of the value that would change, e.g. `backends[2].quota_bytes`. */
  keyPath: string;
}

/** A provider refused the probe object an Add writes, reads back and deletes. */
export interface ProbeFailure {
  /** check | put | get | compare | delete */
  step: string;
  /** The backend error kind (AccessDenied, Unavailable, NotFound, Other…). */
  kind: string;
  /** The provider's error message. */
  providerError: string;
}

export class ControlError extends Error {
  readonly code: ControlErrorCode;
  /** Request field at fault (InvalidArgument), in the proto's snake_case. */
  readonly field: string | undefined;
  readonly configOwned: ConfigOwnership | undefined;
  readonly probe: ProbeFailure | undefined;

  constructor(
    code: ControlErrorCode,
    message: string,
    extra: { field?: string; configOwned?: ConfigOwnership; probe?: ProbeFailure; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'ControlError';
    this.code = code;
    this.field = extra.field;
    this.configOwned = extra.configOwned;
    this.probe = extra.probe;
  }
}

/** InvalidArgument naming `field`. */
export function invalidField(field: string, message: string): ControlError {
  return new ControlError('InvalidArgument', `${field}: ${message}`, { field });
}
