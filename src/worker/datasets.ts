/** Opening what the user dropped (or the bundled demo) as one ActivationSource, with its statistics. */
import { DataError } from '../data/errors';
import { openActivationFile } from '../data/open';
import { loadVocab, openTokenIds } from '../data/sidecars';
import { type ActivationSource, openShards } from '../data/source';
import { type ActivationStats, assertFinite, computeStats } from '../data/stats';
import { syntheticSource } from '../data/synthetic';
import type { DatasetInfo, DatasetSpec } from './protocol';

const DEMO_FILE = 'demo/stories260K_L2_resid.f16.npy';
const DEMO_DESCRIPTION =
  'real language-model activations: TinyStories stories260K (llama2.c), layer-2 residual stream, 40,960 tokens × 64';

export interface OpenedDataset {
  source: ActivationSource;
  stats: ActivationStats;
  info: DatasetInfo;
  vocab: string[] | null;
  tokenIds: { readIds(start: number, count: number): Promise<Int32Array> } | null;
}

export async function openDataset(
  spec: DatasetSpec,
  onProgress: (fraction: number, phase: string) => void,
): Promise<OpenedDataset> {
  let source: ActivationSource;
  let description: string;
  let files: string[];
  let tokenIds: OpenedDataset['tokenIds'] = null;
  let vocab: string[] | null = null;
  if (spec.kind === 'demo') {
    const url = spec.url ?? new URL(`/${DEMO_FILE}`, self.location.origin).href;
    onProgress(0, 'loading demo');
    const res = await fetch(url);
    if (!res.ok) throw new DataError(DEMO_FILE, `could not load the bundled demo (HTTP ${res.status})`);
    const blob = await res.blob();
    source = await openActivationFile(blob, 'stories260K_L2_resid.f16.npy');
    description = DEMO_DESCRIPTION;
    files = [DEMO_FILE];
    const tok = await fetch(url.replace(/\.f16\.npy$/, '.tokens.npy'));
    const voc = await fetch(url.replace(/\.f16\.npy$/, '.vocab.txt'));
    if (tok.ok)
      tokenIds = await openTokenIds(await tok.blob(), 'stories260K_L2_resid.tokens.npy', source.rows);
    if (voc.ok) vocab = await loadVocab(await voc.blob(), 'stories260K_L2_resid.vocab.txt');
  } else if (spec.kind === 'files') {
    if (spec.files.length === 0) throw new DataError('(no file)', 'no activation file was given');
    const opened: ActivationSource[] = [];
    for (const f of spec.files) {
      opened.push(
        await openActivationFile(f.blob, f.name, {
          tensor: spec.tensor,
          rawDtype: spec.rawDtype,
          rawWidth: spec.rawWidth,
        }),
      );
    }
    source = opened.length === 1 ? opened[0] : openShards(opened);
    files = spec.files.map((f) => f.name);
    description =
      opened.length === 1 ? `activations from ${files[0]}` : `activations from ${opened.length} shards`;
    if (spec.tokens) tokenIds = await openTokenIds(spec.tokens.blob, spec.tokens.name, source.rows);
    if (spec.vocab) vocab = await loadVocab(spec.vocab.blob, spec.vocab.name);
  } else {
    source = syntheticSource({
      d: spec.d,
      nFeatures: spec.nFeatures,
      rows: spec.rows,
      seed: spec.seed,
      expectedActive: spec.activePerRow,
      noiseStd: spec.noise,
    });
    description = `synthetic data: ${spec.nFeatures} planted directions in d=${spec.d}, ~${spec.activePerRow} active per row`;
    files = [];
  }
  const nonFinite = spec.kind === 'files' ? spec.nonFinite : undefined;
  return datasetFromSource(
    source,
    { kind: spec.kind, description, files, tokenIds, vocab, nonFinite },
    onProgress,
  );
}

/** Statistics, problems and the info card of an opened source (every way of opening ends here). */
export async function datasetFromSource(
  source: ActivationSource,
  meta: {
    kind: DatasetInfo['kind'];
    description: string;
    files: string[];
    tokenIds: OpenedDataset['tokenIds'];
    vocab: string[] | null;
    lm?: DatasetInfo['lm'];
    /** 'stop': refuse rows holding NaN or Inf (DataError naming the file and row); default 'skip' */
    nonFinite?: 'skip' | 'stop';
  },
  onProgress: (fraction: number, phase: string) => void,
): Promise<OpenedDataset> {
  const { description, files, tokenIds, vocab } = meta;
  const stats = await computeStats(source, (done, total) =>
    onProgress(total ? done / total : 1, 'statistics'),
  );
  if (meta.nonFinite === 'stop') assertFinite(source, stats);
  const problems: string[] = [];
  if (stats.nonFiniteRows > 0) {
    problems.push(
      `${stats.nonFiniteRows} row(s) contain NaN or Inf (first: ${stats.firstNonFinite.join(', ')}); they are skipped in training`,
    );
  }
  if (stats.count === 0)
    throw new DataError(source.name, 'every row contains NaN or Inf: nothing to train on');
  if (stats.meanSqNormCentered === 0) problems.push('all rows are identical: there is nothing to learn');
  const info: DatasetInfo = {
    name: source.name,
    description,
    kind: meta.kind,
    rows: source.rows,
    d: source.d,
    dtype: source.dtype,
    shape: source.shape,
    byteSize: source.byteSize,
    files,
    stats: {
      count: stats.count,
      meanSqNorm: stats.meanSqNorm,
      meanSqNormCentered: stats.meanSqNormCentered,
      scale: stats.scale,
      maxAbs: stats.maxAbs,
      nonFiniteRows: stats.nonFiniteRows,
      firstNonFinite: stats.firstNonFinite,
    },
    problems,
    hasTokens: tokenIds !== null,
    hasVocab: vocab !== null,
    ...(meta.lm ? { lm: meta.lm } : {}),
  };
  return { source, stats, info, vocab, tokenIds };
}
