/**
 * Activation-data layer: readers (npy, npz, safetensors, raw), sharding, streaming
 * batches with shuffle + held-out split, dataset statistics, sidecars, synthetic
 * data, and small writers for export. Runs in a Web Worker and in node (Blob only).
 */
export { DataError } from './errors.ts';
export * from './half.ts';
export { type NpyHeader, npyHeaderBytes, openNpy, readNpyHeader, writeNpy } from './npy.ts';
export { listNpz, type NpzArrayInfo, openNpz, readZipDirectory } from './npz.ts';
export { detectFormat, type FileFormat, type OpenOptions, openActivationFile, openRaw } from './open.ts';
export { hashU32, Rng } from './rng.ts';
export {
  openSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  type SafetensorsHeader,
  type StDtype,
  type StTensorIn,
  type StTensorOut,
  writeSafetensors,
} from './safetensors.ts';
export { displayToken, loadVocab, openTokenIds, parseVocab, type TokenIdSource } from './sidecars.ts';
export type { ActivationSource, FloatDtype } from './source.ts';
export { decodeFloats, openShards } from './source.ts';
export {
  type ActivationStats,
  assertFinite,
  Batcher,
  type BatcherOptions,
  computeStats,
  HoldoutSplit,
  type NonFinitePolicy,
  rowIsFinite,
  type StatsOptions,
} from './stream.ts';
export {
  makeSynthetic,
  type SyntheticData,
  type SyntheticOptions,
  type SyntheticSource,
  syntheticSource,
} from './synthetic.ts';
