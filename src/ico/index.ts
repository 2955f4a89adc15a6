// The ICO layer's public API: envelope codec, replay guard, admission, lifecycle.
export * from './types.ts';
export * from './errors.ts';
export * from './envelope.ts';
export * from './replay.ts';
export * from './admission.ts';
export * from './lifecycle.ts';
