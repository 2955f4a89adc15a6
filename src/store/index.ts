// Browser-safe entry of the storage layer (the LevelDB adapter is imported from
// './level.ts' by Node code only).
export * from './types.ts';
export { MemoryStore } from './memory.ts';
