/**
 * The names of the kernel variants and the kernels' sizes that the buffer plan needs, without the kernels
 * (no WGSL imports), for the CLI's flags and plans in node. src/gpu/kernels/encode.ts and encode-topk.ts
 * take their variant types from these lists.
 */
export const ENCODE_VARIANT_NAMES = [
  'naive',
  'blocked4x4',
  'blocked2x4',
  'blocked4x8',
  'vec4x4',
  'vec4x8',
  'unroll2x4',
  'unroll4x4',
  'unroll4x8',
  'unroll8x4',
  'unroll8x8',
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

/**
 * sort-by-latent: the longest per-latent list one thread orders alone (O(n²) key reads); longer lists
 * get a workgroup each. Ours: 32 keeps a thread's work under ~1k reads.
 */
export const SORT_SHORT = 32;
/**
 * grad-latent's bpre_part: latents per chunk of the encoder's share of db_pre (encPart holds one
 * partial per chunk and column). Ours: 32 dependent loads per thread, and N·d/32 partials.
 */
export const BPRE_CHUNK = 32;
export const bpreChunks = (nLatents: number) => Math.ceil(nLatents / BPRE_CHUNK);
/** Elements of the sort's long-list scratch: a count, then at most ⌊E/(SORT_SHORT+1)⌋ latents. */
export const sortLongSlots = (entries: number) => 1 + Math.max(1, Math.floor(entries / (SORT_SHORT + 1)));
