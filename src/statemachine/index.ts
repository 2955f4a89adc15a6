// The state machine layer: operators, their registry, deterministic execution with
// exactly-once sessions, snapshots, and the codec of the commands log entries carry.
export type * from './types.ts';
export * from './errors.ts';
export * from './registry.ts';
export * from './builtins.ts';
export * from './command.ts';
export * from './machine.ts';
