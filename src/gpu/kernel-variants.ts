/**
 * The names of the kernel variants and the kernels' sizes that the buffer plan needs, without the kernels
 * (no WGSL imports), for the CLI's flags and plans in node. src/gpu/kernels/encode.ts and encode-topk.ts
 * take their variant types from these lists (topk.ts too).
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
  'unroll8x16',
  'unroll16x8',
  'unroll16x16',
  'tiled',
  'wgtile4x4',
] as const;
/**
 * bitonic: any k ≤ 512; insert and chunked (topk-chunked.wgsl): k ≤ 64; chunkmax: chunked over the
 * chunk maxima an unrolled encoder writes (with any other encoder, and for AuxK and tiles, chunked).
 */
export const TOPK_VARIANT_NAMES = ['bitonic', 'insert', 'chunked', 'chunkmax'] as const;
/** The per-row insertion TopKs (insert, chunked, chunkmax) keep KP entries in private memory: only for small k. */
export const TOPK_INSERT_MAX_K = 64;
/**
 * Floats of the 'chunkmax' TopK's chunk maxima [B, ⌈N / RN⌉] for the narrowest latent tile RN of the
 * unrolled encoders (4), so the plan holds them whichever encoder the autotuner keeps.
 */
export const chunkMaxWords = (B: number, N: number) => B * Math.ceil(N / CHUNKMAX_MIN_WIDTH);
const CHUNKMAX_MIN_WIDTH = Math.min(
  ...ENCODE_VARIANT_NAMES.flatMap((v) => {
    const m = /^unroll\d+x(\d+)$/.exec(v);
    return m ? [Number(m[1])] : [];
  }),
);
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
/**
 * sort-by-latent's row-block form (software adapters): the batch's rows in SORT_ROW_BLOCKS blocks, a
 * count per (block, latent) in a [G, N] buffer of at most SORT_BLOCK_BYTES. Ours: 64 blocks keep both
 * cores of a CPU busy with 16-lane workgroups; 4 MiB covers N ≤ 16384 at 64 blocks.
 */
const SORT_ROW_BLOCKS = 64;
const SORT_BLOCK_BYTES = 4 * 2 ** 20;
/** Row blocks of the sort's row-block form for B rows and N latents (< 2: the form does not apply). */
export const sortRowBlocks = (B: number, N: number, bindingCap: number) =>
  Math.min(SORT_ROW_BLOCKS, B, Math.floor(Math.min(SORT_BLOCK_BYTES, bindingCap) / (4 * N)));
/** Elements of the sort's long-list scratch: a count, then at most ⌊E/(SORT_SHORT+1)⌋ latents. */
export const sortLongSlots = (entries: number) => 1 + Math.max(1, Math.floor(entries / (SORT_SHORT + 1)));
/**
 * Most vec4 column groups one thread of the software gradient sums keeps in named sums (grad-reg.wgsl;
 * ours). SwiftShader, d = 768, N = 4096, k = 32: with 42 dead latents, one run each, 249 ms with 4,
 * 209–215 with 8, 205–235 with 16 (the array forms 282); with 2048 dead, alternating rounds, 48 vs 8:
 * 222 vs 240 and 273 vs 312. Columns as one block per thread instead of strided: 215–220. With gv
 * formed in the walk (no dead, alternating rounds): 48 / 24 / 12 → 163–167 / 174–182 / 190–224 ms.
 */
export const REG_MAX_Q = 48;
/** Threads sharing an item of dT columns, at most maxQ columns a thread, in SIMD batches of 4 (kernel.ts namedColumns). */
export const namedThreads = (dT: number, maxQ: number) => 4 * Math.ceil(dT / (4 * maxQ));
/** Threads per latent of those sums at d % 4 == 0: 4 up to d = 768. */
export const regThreads = (d: number) => namedThreads(d / 4, REG_MAX_Q);
/** Most gv parts an entry keeps in gvPart (ours): 8 covers d ≤ 1536 (GPT-2 medium's 1024 among them). */
export const GV_MAX_PARTS = 8;
/**
 * gv's parts (grad-latent.wgsl GV_TPL) for d % 4 == 0: the d/4 column groups split by residue mod
 * regThreads(d), so the software sums, a thread per part, form gv in their walk over a latent's list;
 * each part's sum goes to gvPart [E, parts], which grad_enc_reg adds up. 0 (gv keeps a kernel of its
 * own) past GV_MAX_PARTS threads a latent, where gvPart would keep growing with d.
 */
export const gvFusedParts = (d: number) => (d % 4 === 0 && regThreads(d) <= GV_MAX_PARTS ? regThreads(d) : 0);

/**
 * Words of deadInfo (dead.wgsl put_dead_info): the dead count, then indirect dispatches that
 * compact_dead sizes by what is dead (AuxK's TopK entries and decode at words 1–14, loss_grad_v4 at
 * 16–18; each at a 16-byte offset).
 */
export const DEAD_INFO_WORDS = 20;
