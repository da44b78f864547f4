/**
 * Where an opened dataset came from, for the evaluations that need its language model and text
 * (downstream loss, ablation sparsity, token contexts, dashboards' logit lens): the model of a
 * dataset extracted in the page (noteLmDataset), or the demo's stories260K, fetched from the page's
 * bundle by the demo's provenance file (noteDataset). A dataset of files has neither.
 */
import { openTokenIds } from '../data/sidecars';
import { type LlamaCheckpoint, readCheckpoint } from '../lm/checkpoint';
import { readTokenizer, type Tokenizer } from '../lm/tokenizer';
import type { OpenedDataset } from './datasets';
import type { LmContext } from './lm-context';
import type { DatasetSpec } from './protocol';

/** URL of each opened demo dataset (for its provenance: model, tokenizer, text, positions). */
const demoUrls = new WeakMap<OpenedDataset, string>();

/** Language model, text and positions of each dataset extracted in the page ('extract-lm'). */
const lmContexts = new WeakMap<OpenedDataset, LmContext>();

/** Remembers the language model an extracted dataset came from (downstream loss, token contexts). */
export function noteLmDataset(ds: OpenedDataset, ctx: LmContext) {
  lmContexts.set(ds, ctx);
}

/** Remembers where a dataset came from (call after openDataset). */
export function noteDataset(ds: OpenedDataset, spec: DatasetSpec) {
  if (spec.kind === 'demo') {
    demoUrls.set(ds, spec.url ?? new URL('/demo/stories260K_L2_resid.f16.npy', self.location.origin).href);
  }
}

/** The language model a dataset was extracted from in the page, if it was. */
export function extractedLm(ds: OpenedDataset): LmContext | undefined {
  return lmContexts.get(ds);
}

/** The URL a demo dataset was opened from, if it is one. */
export function demoUrl(ds: OpenedDataset): string | undefined {
  return demoUrls.get(ds);
}

/**
 * The language model the dataset's rows came from: one extracted in the page, the demo's
 * stories260K (fetched from the page's bundle), or null for a dataset of files.
 */
export async function datasetModel(ds: OpenedDataset): Promise<DemoLm | LmContext | null> {
  const extracted = lmContexts.get(ds);
  if (extracted) return extracted;
  const url = demoUrls.get(ds);
  return url ? loadDemoLm(url) : null;
}

/**
 * [rows] each row's position in its window: an extracted dataset's, or the demo's positions sidecar
 * (windows restart where the position does not increase); null when neither is there.
 */
export async function tokenPositions(ds: OpenedDataset, rows: number): Promise<Int32Array | null> {
  return lmContexts.get(ds)?.positions ?? (await demoPositions(ds, rows));
}

/** The demo's positions sidecar. */
async function demoPositions(ds: OpenedDataset, rows: number): Promise<Int32Array | null> {
  const url = demoUrls.get(ds);
  if (!url) return null;
  try {
    const res = await fetch(url.replace(/\.f16\.npy$/, '.positions.npy'));
    if (!res.ok) return null;
    const p = await openTokenIds(await res.blob(), 'positions.npy', rows);
    return await p.readIds(0, rows);
  } catch {
    return null;
  }
}

/** The language model of the demo dataset, from its provenance file (bundled with the page). */
export interface DemoLm {
  name: string;
  ckpt: LlamaCheckpoint;
  tok: Tokenizer;
  text: string;
  charsUsed: number;
  layer: number;
}

const demoLms = new Map<string, Promise<DemoLm>>();

/** The demo's model, tokenizer and text, fetched once per URL (a failed fetch is retried next time). */
export function loadDemoLm(demoUrl: string): Promise<DemoLm> {
  let p = demoLms.get(demoUrl);
  if (!p) {
    p = (async () => {
      const get = async (url: string) => {
        const res = await fetch(url);
        if (!res.ok) throw new Error(`could not load ${url} for the downstream loss (HTTP ${res.status})`);
        return res;
      };
      const prov = (await (await get(demoUrl.replace(/\.f16\.npy$/, '.json'))).json()) as {
        model: { path: string };
        tokenizer: string;
        text: { path: string; charsUsed: number };
        layer: number;
      };
      const root = new URL('../', demoUrl);
      const at = (path: string) => new URL(path.replace(/^public\//, ''), root).href;
      const ckpt = readCheckpoint(await (await get(at(prov.model.path))).arrayBuffer(), 'stories260K.bin');
      const tok = readTokenizer(await (await get(at(prov.tokenizer))).arrayBuffer(), {
        vocabSize: ckpt.config.vocabSize,
        name: 'tok512.bin',
      });
      const text = await (await get(at(prov.text.path))).text();
      return { name: 'stories260K', ckpt, tok, text, charsUsed: prov.text.charsUsed, layer: prov.layer };
    })();
    p.catch(() => demoLms.delete(demoUrl));
    demoLms.set(demoUrl, p);
  }
  return p;
}
