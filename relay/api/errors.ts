// The one table from error codes to HTTP statuses for the relay's REST API: backend ApiError
// codes, auth failures, and the HTTP-layer errors Fastify raises. Every error reply has the
// same body, `{status:"error", error:{code, message, path?}}`, and never carries a stack trace.
import type { ApiErrorCode } from './backend.ts';
import type { AuthFailure } from './auth-types.ts';

export type HttpErrorCode =
  | ApiErrorCode
  | AuthFailure['code']
  | 'MALFORMED_JSON'
  | 'HTTPS_REQUIRED'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
  | 'METHOD_NOT_ALLOWED'
  | 'ROUTE_NOT_FOUND'
  | 'REQUEST_TIMEOUT'
  | 'SHUTTING_DOWN'
  | 'INTERNAL';

export const HTTP_STATUS: Readonly<Record<HttpErrorCode, number>> = {
  INVALID_INPUT: 400,
  INVALID_REQUEST: 400,
  UNSUPPORTED: 400,
  MALFORMED_JSON: 400,
  HTTPS_REQUIRED: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  UNKNOWN_OPERATOR: 404,
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  OPERATOR_FAILED: 422,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
  DEADLINE_EXCEEDED: 504,
};

/** Metadata names that carry the HyperSync error code (the same words REST answers) to gRPC clients. */
export const ERROR_CODE_TRAILER = 'hypersync-error-code';
export const ERROR_RETRYABLE_TRAILER = 'hypersync-retryable';
export const ERROR_PATH_TRAILER = 'hypersync-error-path';

/** Retry-After (seconds) on 503 when the backend gives no better hint. */
export const DEFAULT_RETRY_AFTER_S = 1;

export interface ErrorBody {
  status: 'error';
  error: { code: HttpErrorCode; message: string; path?: string; retryable?: boolean };
}

export function errorBody(code: HttpErrorCode, message: string, extra: { path?: string | undefined; retryable?: boolean } = {}): ErrorBody {
  const error: ErrorBody['error'] = { code, message };
  if (extra.path !== undefined) error.path = extra.path;
  if (extra.retryable === true) error.retryable = true;
  return { status: 'error', error };
}

/** Fastify's own error codes (FST_ERR_*) for malformed requests, mapped to ours. */
export const FASTIFY_ERRORS: Readonly<Record<string, HttpErrorCode>> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_VALIDATION: 'INVALID_REQUEST',
  FST_ERR_BAD_URL: 'INVALID_REQUEST',
  FST_ERR_ASYNC_CONSTRAINT: 'INVALID_REQUEST',
};

/** The fallback for any other 4xx Fastify raises (never a 500 for bad input). */
export function codeForStatus(status: number): HttpErrorCode {
  switch (status) {
    case 400:
      return 'INVALID_REQUEST';
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'PERMISSION_DENIED';
    case 404:
      return 'ROUTE_NOT_FOUND';
    case 405:
      return 'METHOD_NOT_ALLOWED';
    case 408:
      return 'REQUEST_TIMEOUT';
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 415:
      return 'UNSUPPORTED_MEDIA_TYPE';
    case 429:
      return 'RATE_LIMITED';
    case 503:
      return 'UNAVAILABLE';
    default:
      return status >= 400 && status < 500 ? 'INVALID_REQUEST' : 'INTERNAL';
  }
}
