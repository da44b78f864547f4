/**
 * GPT-2 behind the {@link LmRunner} of the downstream measures (./lm-runner.ts: downstreamLossOn,
 * ablationSparsityOn), on the WGSL GpuGpt2 or the CPU twin Gpt2. The runner's requests name a
 * residual index (the llama2.c convention); here that index is the layer of one GPT-2 site kind, so
 * `resid: 8` with kind 'resid_post' reads `blocks.8.hook_resid_post` and `replace: { index: 8 }`
 * splices there (for attn_out / mlp_out, before the branch is added to the residual).
 */
import type { Gpt2 } from '../lm/gpt2/forward.ts';
import type { GpuGpt2 } from '../lm/gpt2/gpu-forward.ts';
import { type Gpt2ForwardRequest, type Gpt2Site, type Gpt2SiteKind, hookName } from '../lm/gpt2/types.ts';
import type { LmRunner } from './lm-runner.ts';

/**
 * @param model the WGSL forward (backend 'gpu') or the CPU twin (backend 'cpu')
 * @param kind  the site kind that the requests' residual index is a layer of
 */
export function gpt2Runner(model: GpuGpt2 | Gpt2, kind: Gpt2SiteKind): LmRunner {
  const c = model.config;
  const gpu = 'forward' in model;
  const site = (layer: number): Gpt2Site => ({ kind, layer });
  return {
    config: { dim: c.nEmbd, nLayers: c.nLayer, vocabSize: c.vocabSize, seqLen: c.nPositions },
    capacity: model.capacity,
    backend: gpu ? 'gpu' : 'cpu',
    async run(tokens, req) {
      const request: Gpt2ForwardRequest = {
        sites: req.resid !== undefined ? [site(req.resid)] : [],
        logits: req.logits ?? true,
        replace: req.replace && { site: site(req.replace.index), data: req.replace.data },
      };
      const out = gpu ? await model.forward(tokens, request) : model.run(tokens, request);
      return {
        resid: req.resid !== undefined ? (out.sites.get(hookName(site(req.resid))) ?? null) : null,
        logits: out.logits,
      };
    },
  };
}
