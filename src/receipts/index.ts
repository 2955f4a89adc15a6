// The receipts layer: signed hash-chained receipts, their verification, the Merkle log.
export * from './receipt.ts';
export * from './merkle.ts';
export * from './log.ts';
export * from './tree-head.ts';
export * from './proof.ts';
