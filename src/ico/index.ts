// The ICO layer's public API: envelope codec, binary frames, replay guard, admission, lifecycle.
export * from './types.ts';
export * from './errors.ts';
export * from './envelope.ts';
export * from './frame.ts';
export * from './replay.ts';
export * from './admission.ts';
export * from './lifecycle.ts';
