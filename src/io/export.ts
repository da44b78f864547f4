/**
 * Export of a trained SAE in the layout a PyTorch tool reads: SAELens 6 (saelens-export.ts) or
 * openai/sparse_autoencoder's names (openai.ts), with the input normalization folded into the
 * weights where the tool cannot express it (fold.ts) and a `sae_lab` block recording what import
 * needs to restore the trained weights exactly (sae-files.ts). Import is import.ts.
 */
import type { Activation } from '../sae/config.ts';
import type { ParamsF32 } from '../sae/step-buffers.ts';
import { foldFactor, foldParams } from './fold.ts';
import { exportOpenai } from './openai.ts';
import { type ExportFormat, type ExportInput, saeLabBlock, type WeightDtype } from './sae-files.ts';
import { exportSaelens, saelensArchitecture } from './saelens-export.ts';

export interface ExportOptions {
  /** Default 'saelens'. */
  format?: ExportFormat;
  /** Tensor dtype in the file (default F32; F16/BF16 round to nearest even). */
  dtype?: WeightDtype;
  /** Fold the scalar normalization into the weights (default true); see fold.ts. */
  foldScalar?: boolean;
}

/** Every tensor of `p` has its length for d and N: W_enc, W_dec [N, d], b_enc [N], b_pre [d], extra [2N] (gated, jumprelu). */
function checkParams(p: ParamsF32, d: number, N: number, activation: Activation): void {
  const want: ['W_enc' | 'b_enc' | 'W_dec' | 'b_pre', number][] = [
    ['W_enc', N * d],
    ['b_enc', N],
    ['W_dec', N * d],
    ['b_pre', d],
  ];
  for (const [name, n] of want) {
    if (p[name].length !== n)
      throw new RangeError(`export: ${name} has ${p[name].length} values, expected ${n} (d=${d}, N=${N})`);
  }
  if ((activation === 'gated' || activation === 'jumprelu') && p.extra?.length !== 2 * N)
    throw new RangeError(
      `export: ${activation} needs params.extra with 2N = ${2 * N} values, got ${p.extra ? p.extra.length : 'none'}`,
    );
}

/**
 * Writes a trained SAE in a PyTorch tool's layout.
 * @returns file name → bytes (SAELens: cfg.json, sae_weights.safetensors and, when firing
 *   densities are known, sparsity.safetensors; openai: two files; zip them with zipExport)
 */
export function exportSae(input: ExportInput, opts: ExportOptions = {}): Map<string, Uint8Array> {
  const format = opts.format ?? 'saelens';
  const dtype = opts.dtype ?? 'F32';
  const { d, nLatents: N } = input.config;
  const activation: Activation = input.config.activation ?? 'topk';
  checkParams(input.params, d, N, activation);
  const { c, input: rule } = foldFactor(input.normalization, d, opts.foldScalar ?? true);
  const p = foldParams(input.params, c);
  const arch = saelensArchitecture(activation);
  const lab = saeLabBlock(input, c, rule, format, format === 'saelens' ? arch.note : null);
  return format === 'saelens'
    ? exportSaelens(input, p, arch, rule, dtype, lab)
    : exportOpenai(input, p, rule, dtype, lab);
}
