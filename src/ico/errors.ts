// Typed rejections of the ICO codec and lifecycle. Every one carries a stable `code`
// (PROTOCOL.md lists them); drivers count and score them, nothing throws past the codec.
import type { IcoErrorCode } from './types.ts';

export class IcoError extends Error {
  readonly code: IcoErrorCode;
  override name = 'IcoError';
  constructor(code: IcoErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export class MalformedEnvelopeError extends IcoError {
  override name = 'MalformedEnvelopeError';
  constructor(message: string) { super('ICO_MALFORMED', message); }
}
export class UnknownTypeError extends IcoError {
  override name = 'UnknownTypeError';
  constructor(message: string) { super('ICO_UNKNOWN_TYPE', message); }
}
export class BadSignatureError extends IcoError {
  override name = 'BadSignatureError';
  constructor(message: string) { super('ICO_BAD_SIGNATURE', message); }
}
export class SenderMismatchError extends IcoError {
  override name = 'SenderMismatchError';
  constructor(message: string) { super('ICO_SENDER_MISMATCH', message); }
}
export class ReplayedError extends IcoError {
  override name = 'ReplayedError';
  constructor(message: string) { super('ICO_REPLAYED', message); }
}
export class TimestampSkewError extends IcoError {
  override name = 'TimestampSkewError';
  constructor(message: string) { super('ICO_TIMESTAMP_SKEW', message); }
}
export class FrameTooLargeError extends IcoError {
  override name = 'FrameTooLargeError';
  constructor(message: string) { super('ICO_FRAME_TOO_LARGE', message); }
}
export class VersionMismatchError extends IcoError {
  override name = 'VersionMismatchError';
  constructor(message: string) { super('ICO_VERSION_MISMATCH', message); }
}
export class ClusterMismatchError extends IcoError {
  override name = 'ClusterMismatchError';
  constructor(message: string) { super('ICO_CLUSTER_MISMATCH', message); }
}
export class NotAdmittedError extends IcoError {
  override name = 'NotAdmittedError';
  constructor(message: string) { super('ICO_NOT_ADMITTED', message); }
}
export class ProtocolViolationError extends IcoError {
  override name = 'ProtocolViolationError';
  constructor(message: string) { super('ICO_PROTOCOL_VIOLATION', message); }
}
