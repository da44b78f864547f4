/**
 * The names of a training step's buffers and the sizes fixed in its shaders: the [N, d] tensors split
 * into latent shards, the whole buffers (GpuSae.b), the metrics ring. The plan (plan.ts) sizes each one.
 */

/** The [N, d] tensors split by latent range (parameters, gradients, Adam moments, EMA). */
export const SHARDED = [
  'W_enc',
  'W_dec',
  'dW_enc',
  'dW_dec',
  'm_W_enc',
  'v_W_enc',
  'm_W_dec',
  'v_W_dec',
  'ema_W_enc',
  'ema_W_dec',
] as const;
export type ShardedName = (typeof SHARDED)[number];

/** The step's per-latent vectors [N] (whole: N·4 bytes stays far under any binding limit up to N = 2^25). */
export const PER_LATENT = [
  'firesStep',
  'tokensSince',
  'firesTotal',
  'deadFlag',
  'deadList',
  'counts',
  'cursor',
  'normPart',
  'decNorm',
  'zerosN',
] as const;

/** The step's whole (unsharded) buffers by name: GpuSae.b is a record of exactly these. */
export const STEP_BUFFERS = [
  // the small parameters, their gradients, Adam moments and EMA
  ...(['b_enc', 'b_pre', 'extra'] as const).flatMap(
    (p) => [p, `d${p}`, `m_${p}`, `v_${p}`, `ema_${p}`] as const,
  ),
  'emaDummy',
  // the batch
  'x',
  'xHat',
  'eHat',
  'g',
  'gAux',
  'xInner',
  'rowScale',
  'rowStats',
  // pre-activations and the threshold family's activations
  'pre',
  'preMax',
  'act',
  'gact',
  'gpre',
  'actAux',
  'gactAux',
  // entries and their order by latent
  'idxAll',
  'valAll',
  'gvAll',
  'gvPart',
  'unordered',
  'rows',
  'longList',
  'sortBlocks',
  'fusedIdx',
  'fusedVal',
  'tileIdx',
  'tileVal',
  'bestIdx',
  'bestVal',
  'bestAuxIdx',
  'bestAuxVal',
  // per latent
  ...PER_LATENT,
  'start',
  'latStats',
  // small
  'deadInfo',
  'colR',
  'zerosD',
  'encPart',
  'scal',
  'metrics',
  'tau',
  'params',
  'paramsCodes',
] as const;
export type StepBufferName = (typeof STEP_BUFFERS)[number];
/** A tensor of the step by name: a whole buffer, or a sharded one (its shards in latent order). */
export type TensorName = StepBufferName | ShardedName;

/** Floats per latent of the threshold family's statistics (src/gpu/kernels/activation.ts LAT_STATS; a unit test keeps them equal). Here so the CLI can plan in node. */
export const LAT_STATS = 6;
/** Most code entries per row kept by the forward pass of the threshold family (the largest activations). */
export const DENSE_CODES_MAX = 512;
export const METRICS = 8;
export const METRIC_SLOTS = 64;
