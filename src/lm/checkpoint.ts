/**
 * Reader for llama2.c "legacy" (version 0) checkpoints, the format written by
 * karpathy/llama2.c `export.py --version 0` / the old `model.py` exporter and
 * read by `run.c`.
 *
 * Layout (all little endian):
 *   header: 7 × int32 = dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *   then float32 tensors, in this order (matrices are (out, in), so y = W·x):
 *     token_embedding [vocab, dim]
 *     rms_att         [L, dim]
 *     wq              [L, dim, dim]          (dim = n_heads · head_size)
 *     wk              [L, kv_dim, dim]       (kv_dim = n_kv_heads · head_size)
 *     wv              [L, kv_dim, dim]
 *     wo              [L, dim, dim]
 *     rms_ffn         [L, dim]
 *     w1              [L, hidden, dim]
 *     w2              [L, dim, hidden]
 *     w3              [L, hidden, dim]
 *     rms_final       [dim]
 *     freq_cis_real   [seq_len, head_size/2]  (unused; some exporters omit both tables)
 *     freq_cis_imag   [seq_len, head_size/2]
 *     wcls            [vocab, dim]           only when vocab_size < 0 in the header
 *
 * A negative vocab_size is llama2.c's flag for "the classifier is NOT shared with
 * the token embedding"; |vocab_size| is the vocabulary size.
 *
 * Pure TS over ArrayBuffers (no fs) so it runs in node and in a browser worker.
 */

/** Hyper-parameters from the header, plus the derived sizes used everywhere. */
export interface LlamaConfig {
  /** Residual-stream width d. */
  dim: number;
  /** FFN inner width. */
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  /** |vocab_size| from the header. */
  vocabSize: number;
  /** Maximum context length the model was trained with (and the KV-cache capacity default). */
  seqLen: number;
  /** dim / nHeads. */
  headSize: number;
  /** nKvHeads · headSize: width of K and V. */
  kvDim: number;
  /** True when the header vocab_size was positive: wcls is token_embedding. */
  sharedClassifier: boolean;
}

/**
 * Weights as Float32Array views (zero-copy into the input buffer when it is
 * 4-byte aligned and the host is little endian). Shapes are row-major.
 */
export interface LlamaWeights {
  /** [vocab, dim] */
  tokenEmbedding: Float32Array;
  /** [L, dim] */
  rmsAtt: Float32Array;
  /** [L, dim, dim] (out, in) */
  wq: Float32Array;
  /** [L, kvDim, dim] */
  wk: Float32Array;
  /** [L, kvDim, dim] */
  wv: Float32Array;
  /** [L, dim, dim] */
  wo: Float32Array;
  /** [L, dim] */
  rmsFfn: Float32Array;
  /** [L, hidden, dim] gate projection (goes through SiLU) */
  w1: Float32Array;
  /** [L, dim, hidden] down projection */
  w2: Float32Array;
  /** [L, hidden, dim] up projection */
  w3: Float32Array;
  /** [dim] */
  rmsFinal: Float32Array;
  /** [vocab, dim]; the same array object as tokenEmbedding when the classifier is shared. */
  wcls: Float32Array;
}

export interface LlamaCheckpoint {
  config: LlamaConfig;
  weights: LlamaWeights;
  /** Whether the file carried the (unused) freq_cis tables. */
  hasFreqCis: boolean;
  /** Name used in error messages (usually the file name). */
  name: string;
}

const HEADER_BYTES = 7 * 4;

/** Upper bounds that no checkpoint this code could run would exceed; they catch wrong files early. */
const LIMITS = {
  dim: 1 << 16,
  hiddenDim: 1 << 18,
  nLayers: 1024,
  nHeads: 1024,
  vocabSize: 1 << 21,
  seqLen: 1 << 20,
} as const;

/** Number of float32 values in each tensor, in file order (excluding freq_cis and wcls). */
function tensorSizes(c: LlamaConfig): [keyof LlamaWeights, number][] {
  const { dim, hiddenDim: h, nLayers: L, kvDim, vocabSize: V } = c;
  return [
    ['tokenEmbedding', V * dim],
    ['rmsAtt', L * dim],
    ['wq', L * dim * dim],
    ['wk', L * kvDim * dim],
    ['wv', L * kvDim * dim],
    ['wo', L * dim * dim],
    ['rmsFfn', L * dim],
    ['w1', L * h * dim],
    ['w2', L * dim * h],
    ['w3', L * h * dim],
    ['rmsFinal', dim],
  ];
}

/**
 * Parses and validates the 28-byte header. Throws an Error naming `name` and
 * the offending field when a value is impossible.
 */
function readCheckpointHeader(buf: ArrayBuffer | ArrayBufferView, name = 'checkpoint'): LlamaConfig {
  const bytes = asBytes(buf);
  if (bytes.byteLength < HEADER_BYTES) {
    throw new Error(
      `${name}: too short for a llama2.c checkpoint (${bytes.byteLength} bytes; the header alone is ${HEADER_BYTES} bytes)`,
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const h = (i: number) => dv.getInt32(4 * i, true);
  const dim = h(0);
  const hiddenDim = h(1);
  const nLayers = h(2);
  const nHeads = h(3);
  const nKvHeads = h(4);
  const rawVocab = h(5);
  const seqLen = h(6);
  const header = `header [dim=${dim}, hidden_dim=${hiddenDim}, n_layers=${nLayers}, n_heads=${nHeads}, n_kv_heads=${nKvHeads}, vocab_size=${rawVocab}, seq_len=${seqLen}]`;
  const bad = (why: string): never => {
    throw new Error(`${name}: not a valid llama2.c checkpoint: ${why}; ${header}`);
  };
  const inRange = (field: string, v: number, max: number) => {
    if (!(v >= 1 && v <= max)) bad(`${field}=${v} is outside 1..${max}`);
  };
  inRange('dim', dim, LIMITS.dim);
  inRange('hidden_dim', hiddenDim, LIMITS.hiddenDim);
  inRange('n_layers', nLayers, LIMITS.nLayers);
  inRange('n_heads', nHeads, LIMITS.nHeads);
  inRange('n_kv_heads', nKvHeads, nHeads);
  inRange('|vocab_size|', Math.abs(rawVocab), LIMITS.vocabSize);
  inRange('seq_len', seqLen, LIMITS.seqLen);
  if (dim % nHeads !== 0) bad(`dim=${dim} is not a multiple of n_heads=${nHeads}`);
  if (nHeads % nKvHeads !== 0) bad(`n_heads=${nHeads} is not a multiple of n_kv_heads=${nKvHeads}`);
  const headSize = dim / nHeads;
  // RoPE rotates consecutive pairs inside each head, so a head needs an even size.
  if (headSize % 2 !== 0) bad(`head_size=${headSize} is odd; RoPE needs pairs`);
  return {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(rawVocab),
    seqLen,
    headSize,
    kvDim: nKvHeads * headSize,
    sharedClassifier: rawVocab > 0,
  };
}

/**
 * Expected file size in bytes for a config, with or without the freq_cis tables.
 * The two sizes differ by seq_len · head_size floats, so the actual size decides.
 */
export function checkpointByteLength(c: LlamaConfig, withFreqCis: boolean): number {
  let floats = 0;
  for (const [, n] of tensorSizes(c)) floats += n;
  if (withFreqCis) floats += c.seqLen * c.headSize; // real + imag, each [seq_len, head_size/2]
  if (!c.sharedClassifier) floats += c.vocabSize * c.dim;
  return HEADER_BYTES + 4 * floats;
}

/**
 * Reads a llama2.c legacy checkpoint.
 *
 * @param buf  the whole file
 * @param name shown in error messages (e.g. the file name)
 * @throws Error "<name>: too short …", "<name>: not a valid llama2.c checkpoint: …"
 *         or "<name>: size mismatch: …" when the byte count is not exactly what the header implies.
 */
export function readCheckpoint(buf: ArrayBuffer | ArrayBufferView, name = 'checkpoint'): LlamaCheckpoint {
  const bytes = asBytes(buf);
  const config = readCheckpointHeader(bytes, name);
  const withFreq = checkpointByteLength(config, true);
  const withoutFreq = checkpointByteLength(config, false);
  let hasFreqCis: boolean;
  if (bytes.byteLength === withFreq) hasFreqCis = true;
  else if (bytes.byteLength === withoutFreq) hasFreqCis = false;
  else {
    const what =
      bytes.byteLength < withoutFreq
        ? `is truncated (${withoutFreq - bytes.byteLength} bytes short)`
        : bytes.byteLength > withFreq
          ? `has ${bytes.byteLength - withFreq} extra bytes`
          : `is ${withFreq - bytes.byteLength} bytes short of the full size (truncated?)`;
    throw new Error(
      `${name}: size mismatch: the file is ${bytes.byteLength} bytes but its header ` +
        `(dim=${config.dim}, hidden_dim=${config.hiddenDim}, n_layers=${config.nLayers}, n_heads=${config.nHeads}, ` +
        `n_kv_heads=${config.nKvHeads}, vocab_size=${config.sharedClassifier ? '' : '-'}${config.vocabSize}, seq_len=${config.seqLen}) ` +
        `implies ${withFreq} bytes (with freq_cis tables) or ${withoutFreq} (without); the file ${what}` +
        ` (is it a llama2.c legacy/version-0 checkpoint and not a version-1/2 or rearranged export?)`,
    );
  }

  const floats = float32View(bytes, HEADER_BYTES, (bytes.byteLength - HEADER_BYTES) / 4);
  let offset = 0;
  const take = (n: number) => {
    const view = floats.subarray(offset, offset + n);
    offset += n;
    return view;
  };
  const w: Partial<LlamaWeights> = {};
  for (const [key, n] of tensorSizes(config)) w[key] = take(n);
  if (hasFreqCis) take(config.seqLen * config.headSize);
  w.wcls = config.sharedClassifier ? w.tokenEmbedding : take(config.vocabSize * config.dim);
  if (offset !== floats.length) {
    // Unreachable given the size check above; kept as an internal consistency guard.
    throw new Error(`${name}: internal error: consumed ${offset} of ${floats.length} floats`);
  }
  return { config, weights: w as LlamaWeights, hasFreqCis, name };
}

function asBytes(buf: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (buf instanceof Uint8Array) return buf;
  if (ArrayBuffer.isView(buf)) return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  return new Uint8Array(buf);
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * A Float32Array over `count` little-endian floats at `bytes[byteOffset…]`:
 * a zero-copy view when alignment and host endianness allow, a copy otherwise
 * (node Buffers from the shared pool are often not 4-byte aligned).
 */
function float32View(bytes: Uint8Array, byteOffset: number, count: number): Float32Array {
  const start = bytes.byteOffset + byteOffset;
  if (LITTLE_ENDIAN_HOST && start % 4 === 0) return new Float32Array(bytes.buffer, start, count);
  const out = new Float32Array(count);
  const dv = new DataView(bytes.buffer, start, count * 4);
  for (let i = 0; i < count; i++) out[i] = dv.getFloat32(4 * i, true);
  return out;
}
