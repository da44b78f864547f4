/** Model export/import (SAELens, openai names, sparsify), scale-out configs, checkpoints (OPFS). */
export * from './checkpoint.ts';
export * from './export.ts';
export * from './forward.ts';
