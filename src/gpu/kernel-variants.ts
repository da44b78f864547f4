/**
 * The names of the kernel variants, without the kernels (no WGSL imports), for the CLI's flags in
 * node. src/gpu/kernels/encode.ts and encode-topk.ts take their variant types from these lists.
 */
export const ENCODE_VARIANT_NAMES = [
  'naive',
  'blocked4x4',
  'blocked2x4',
  'blocked4x8',
  'vec4x4',
  'vec4x8',
  'tiled',
  'wgtile4x4',
] as const;
export const ENCODE_TOPK_VARIANT_NAMES = [
  'blocked1x4',
  'blocked2x4',
  'blocked4x4',
  'blocked4x8',
  'vec4x4',
  'vec4x8',
] as const;
