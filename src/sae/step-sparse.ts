/**
 * The sparse family's step (TopK, Multi-TopK, BatchTopK): encoder + TopK (untiled, over latent tiles,
 * or fused), decode through the entries, AuxK, the sparse backward by latent, per latent shard.
 */
import { createBatchTopK } from '../gpu/kernels/batch-topk';
import { createDecode } from '../gpu/kernels/decode';
import { createEncode } from '../gpu/kernels/encode';
import { createEncodeDead } from '../gpu/kernels/encode-dead';
import { createEncodeTopK } from '../gpu/kernels/encode-topk';
import { createGrad } from '../gpu/kernels/grad';
import { createNestedGrad } from '../gpu/kernels/nested-grad';
import { createSortByLatent } from '../gpu/kernels/sort';
import { createTopK } from '../gpu/kernels/topk';
import { createTopKMerge } from '../gpu/kernels/topk-merge';
import { isBatchCut, kList, kRow } from './config';
import type { KernelChoice, StepCommon, StepHost } from './step-host';

/** Builds the sparse family's phases into `sae`. */
export function buildSparse(sae: StepHost, kernels: KernelChoice, common: StepCommon) {
  const { device, cfg, b, sh, plan } = sae;
  const { batchSize: B, d, nLatents: N, kAux } = cfg;
  const shards = plan.shards;
  const S = shards.length;
  const shardN = shards[0].n;
  const params = b.params;
  const { loss, lossBg, dead, deadBg, tail, idleAux } = common;

  const E = B * (kRow(cfg) + kAux);
  const select = buildSelect(sae, kernels);
  // Matryoshka's nested prefixes (one level for TopK and BatchTopK).
  const widths = cfg.matryoshkaWidths;
  const nested = widths.length > 1 ? createNestedGrad(device, { B, d, levels: widths.length }) : null;
  const decode = createDecode(device, { B, d, aux: false, shards: S, shardN, widths });
  // AuxK's decode dispatched by compact_dead (nothing while no latent is dead): its lists come from
  // the AuxK TopK, whose output is empty then; Multi-TopK's AuxK region holds the main TopK's ranks
  // past k whatever is dead, so its decode runs every step.
  const decodeAux = createDecode(device, {
    B,
    d,
    aux: true,
    shards: S,
    shardN,
    ...(cfg.multiTopK ? {} : { indirect: b.deadInfo }),
  });
  const grad = createGrad(device, {
    d,
    shardN,
    entries: E,
    widths,
    gvParts: plan.gvParts,
    gAuxTail: plan.gAuxTail,
    B,
    idleAux,
  });
  const sort = createSortByLatent(device, { B, N, entries: E, blocks: plan.sortBlocks });

  const decodeBg = decode.bind('main', [b.idxAll, b.valAll, b.b_pre, b.xHat, params, ...sh.W_dec, b.xInner]);
  const nestedBg = nested?.bind('nested', [b.x, b.xHat, b.xInner, b.g, params]);
  const decodeAuxBg = decodeAux.bind('aux', [b.idxAll, b.valAll, b.b_pre, b.eHat, params, ...sh.W_dec]);
  const gradBgs = shards.map((_, i) =>
    grad.bind(`grad#${i}`, [
      b.idxAll,
      b.valAll,
      b.g,
      b.gAux,
      sh.W_dec[i],
      b.gvAll,
      b.start,
      b.rows,
      b.x,
      b.b_pre,
      sh.W_enc[i],
      sh.dW_dec[i],
      sh.dW_enc[i],
      b.db_enc,
      b.db_pre,
      params,
      sae.shardParams[i],
      b.encPart,
      b.longList,
      b.gvPart,
      b.deadInfo,
    ]),
  );
  const sortBg = sort.bind('sort', [
    b.idxAll,
    b.counts,
    b.start,
    b.cursor,
    b.unordered,
    b.rows,
    params,
    b.longList,
    b.sortBlocks,
    b.valAll,
  ]);
  const lBg = lossBg(b.valAll);

  // The evaluation forward over `rows` rows: the encoders' grids and row guards shrink to them, the
  // TopK, merge, decode and BatchTopK kernels loop over StepParams.B rows, which forward() sets to
  // `rows` (so rows past them neither cost work nor enter BatchTopK's batch-level selection).
  sae.recordForward = (pass, rows) => {
    select.encode(pass, rows);
    select.main(pass, true);
    decode.run(pass, decodeBg);
  };
  /** The step as named phases in order (the benchmark times each alone). */
  sae.phases = [
    { name: 'encode', record: (p) => select.encode(p) },
    { name: 'topk', record: (p) => select.main(p, false) },
    { name: 'decode', record: (p) => decode.run(p, decodeBg) },
    { name: 'dead', record: (p) => dead.run(p, deadBg) },
    { name: 'topk-aux', record: (p) => select.aux(p) },
    { name: 'decode-aux', record: (p) => decodeAux.run(p, decodeAuxBg) },
    { name: 'loss', record: (p) => loss.run(p, lBg) },
    ...(nested && nestedBg
      ? [{ name: 'nested', record: (p: GPUComputePassEncoder) => nested.run(p, nestedBg) }]
      : []),
    // gv, unless the gradient sums compute it in their walk (grad.ts).
    ...(grad.gv
      ? [
          {
            name: 'gv',
            record: (p: GPUComputePassEncoder) => {
              for (const bg of gradBgs) grad.run(p, bg, [grad.gv as string]);
            },
          },
        ]
      : []),
    { name: 'sort', record: (p) => sort.run(p, sortBg) },
    {
      name: 'grad',
      record: (p) => {
        for (const bg of gradBgs) grad.run(p, bg, grad.sums);
      },
    },
    {
      name: 'bpre',
      record: (p) => {
        for (const bg of gradBgs) grad.run(p, bg, [grad.bprePart]);
        grad.run(p, gradBgs[0], [grad.bpreFinal]);
      },
    },
    ...tail(),
  ];
  sae.record = (pass) => {
    for (const ph of sae.phases) ph.record(pass);
  };
  sae.tunePhases = select.tune;
  sae.chunkMaxima = select.chunkMax;
  sae.destroyEncode = () => select.destroy();
}

/**
 * The sparse family's encoder and selection: `encode` the pre-activations, `main` TopK (and the
 * BatchTopK cut; forward = the evaluation uniform), `aux` the AuxK TopK among dead latents.
 * With one tile this is today's path over [B, N]; with more, the encoder and TopK walk the latent
 * tiles of plan.tiles, keeping per-row running top-k lists, and [B, N] never exists.
 */
function buildSelect(sae: StepHost, kernels: KernelChoice) {
  const { device, cfg, b, sh, plan } = sae;
  const { batchSize: B, d, nLatents: N, kAux } = cfg;
  const multi = cfg.multiTopK;
  const batchTopK = isBatchCut(cfg.activation) ? createBatchTopK(device, { B, kCap: kRow(cfg) }) : null;
  const batchBg = batchTopK?.bind('batch', [b.valAll, b.tau, b.metrics, b.params]);
  // The forward pass (evaluation) runs the batch selection with a uniform that keeps τ out of the
  // metrics ring, so an evaluation never overwrites a training step's slot.
  const batchFwdBg = batchTopK?.bind('batch-fwd', [b.valAll, b.tau, b.metrics, b.paramsCodes]);
  const batch = (p: GPUComputePassEncoder, forward: boolean) => {
    if (batchTopK && batchBg && batchFwdBg) batchTopK.run(p, forward ? batchFwdBg : batchBg);
  };
  if (plan.tiles.length > 1 || (kernels.fused && plan.fusedChunkMin > 0))
    return buildTiledSelect(sae, kernels, batch);
  // 'chunkmax': an unrolled encoder writes each row's maximum per RN latents, which the TopK ranks
  // chunks by ([B, ⌈N / RN⌉]), where the plan holds those maxima.
  const chunkMax = kernels.topk === 'chunkmax' && kernels.encode.startsWith('unroll') && plan.chunkMax;
  const encode = createEncode(device, { B, d, N }, kernels.encode, { chunkMax, copy: kernels.encodeCopy });
  // The plan holds the maxima for the narrowest tile (plan.ts); an encoder with wider tiles uses a prefix.
  const preMax = chunkMax ? b.preMax : undefined;
  if (preMax && preMax.size < 4 * B * Math.ceil(N / encode.chunkMaxWidth))
    throw new Error(
      `step: the plan's preMax (${preMax.size} bytes) is smaller than ${kernels.encode}'s chunk maxima`,
    );
  const encodeBindings = { x: b.x, b_pre: b.b_pre, W_enc: sh.W_enc[0], b_enc: b.b_enc, pre: b.pre, preMax };
  const topk = createTopK(device, {
    B,
    N,
    K: kList(cfg),
    aux: false,
    multi,
    tile: kernels.topkTile,
    variant: kernels.topk,
    givenChunk: encode.chunkMaxWidth,
  });
  const topkAux =
    kAux > 0 && !multi
      ? createTopK(device, {
          B,
          N,
          K: kAux,
          aux: true,
          tile: kernels.topkTile,
          variant: kernels.topk,
          indirect: b.deadInfo,
        })
      : null;
  const topkBg = topk.bind('main', [b.pre, b.deadList, b.deadInfo, b.idxAll, b.valAll, b.params], preMax);
  const topkAuxBg = topkAux?.bind('aux', [b.pre, b.deadList, b.deadInfo, b.idxAll, b.valAll, b.params]);
  return {
    encode: (p: GPUComputePassEncoder, rows = B) => encode.run(p, encodeBindings, rows),
    main: (p: GPUComputePassEncoder, forward: boolean) => {
      topk.run(p, topkBg);
      batch(p, forward);
    },
    aux: (p: GPUComputePassEncoder) => {
      if (topkAux && topkAuxBg) topkAux.run(p, topkAuxBg);
    },
    tune: {
      encode: (p: GPUComputePassEncoder) => encode.run(p, encodeBindings),
      encodeRows: (p: GPUComputePassEncoder, rows: number) => encode.run(p, encodeBindings, rows),
      topk: (p: GPUComputePassEncoder) => topk.run(p, topkBg),
      select: (p: GPUComputePassEncoder) => {
        encode.run(p, encodeBindings);
        topk.run(p, topkBg);
      },
    },
    chunkMax,
    destroy: () => encode.destroy(),
  };
}

/**
 * The encoder + TopK over latent tiles (plan.tiles): per tile, the encoder writes the tile [B, n],
 * the tiled TopK its raw per-row list, and the merge folds that into a running best list; after
 * the last tile the best lists are emitted into idxAll/valAll exactly as the untiled TopK writes
 * them. AuxK runs after the dead update: per tile, only the dead latents' pre-activations are
 * recomputed (encode-dead) and their tiled TopK merged. With `kernels.fused` a tile's encoder and
 * TopK are one kernel (encode-topk) writing C chunk lists that the merge folds in at once.
 * Phases: 'encode' = tiles + merges, 'topk' = emit + BatchTopK's cut.
 */
function buildTiledSelect(
  sae: StepHost,
  kernels: KernelChoice,
  batch: (p: GPUComputePassEncoder, forward: boolean) => void,
) {
  const { device, cfg, b, sh, plan } = sae;
  const { batchSize: B, d, kAux } = cfg;
  const multi = cfg.multiTopK;
  const n = plan.tileLatents;
  const kTop = kList(cfg);
  const common = { B, N: n, tile: kernels.topkTile, variant: kernels.topk, tiled: true };
  const topk = createTopK(device, { ...common, K: kTop, aux: false, multi });
  const hasAux = kAux > 0 && !multi;
  const topkAux = hasAux ? createTopK(device, { ...common, K: kAux, aux: true }) : null;
  const merge = createTopKMerge(device, { B, K: kTop, multi });
  const mergeAux = hasAux ? createTopKMerge(device, { B, K: kAux, aux: true }) : null;
  const encodeDead = hasAux ? createEncodeDead(device, { B, d, n }, kernels.encode) : null;
  const mergeBgs = merge.bind('main', [
    b.tileIdx,
    b.tileVal,
    b.bestIdx,
    b.bestVal,
    b.idxAll,
    b.valAll,
    b.params,
    merge.mergeParams(1),
  ]);
  const mergeAuxBgs = mergeAux?.bind('aux', [
    b.tileIdx,
    b.tileVal,
    b.bestAuxIdx,
    b.bestAuxVal,
    b.idxAll,
    b.valAll,
    b.params,
    mergeAux.mergeParams(1),
  ]);
  const encodes: { destroy(): void }[] = [];
  const fused = kernels.fused && plan.fusedChunkMin > 0 ? kernels.fused : null;
  const chunk = Math.max(plan.fusedChunkMin, kernels.fusedChunk ?? 0);
  // Merge bind groups over the fused kernel's chunk lists, one per chunk count C.
  const fusedMerge = new Map<number, GPUBindGroup[]>();
  const fusedMergeBgs = (C: number) => {
    let bgs = fusedMerge.get(C);
    if (!bgs) {
      bgs = merge.bind(`fused C=${C}`, [
        b.fusedIdx,
        b.fusedVal,
        b.bestIdx,
        b.bestVal,
        b.idxAll,
        b.valAll,
        b.params,
        merge.mergeParams(C),
      ]);
      fusedMerge.set(C, bgs);
    }
    return bgs;
  };
  const tiles = plan.tiles.map((t) => {
    const W_enc = sh.W_enc[t.shard];
    let select: (p: GPUComputePassEncoder, rows: number) => void;
    let encodeOnly: (p: GPUComputePassEncoder) => void;
    let topkOnly: (p: GPUComputePassEncoder) => void;
    if (fused) {
      const f = createEncodeTopK(
        device,
        { B, d, N: t.n, K: kTop, lat0: t.lat0, wOff: t.wOff, chunk, multi },
        fused,
      );
      encodes.push(f);
      const bgs = fusedMergeBgs(f.chunks);
      // deadFlag ← zeros: AuxK's dead columns come from encode-dead after the dead update.
      const bind = {
        x: b.x,
        b_pre: b.b_pre,
        W_enc,
        b_enc: b.b_enc,
        pre: b.pre,
        deadFlag: b.zerosN,
        listIdx: b.fusedIdx,
        listVal: b.fusedVal,
        params: b.params,
      };
      encodeOnly = (p) => f.run(p, bind);
      topkOnly = () => {};
      select = (p, rows) => {
        f.run(p, bind, rows);
        merge.merge(p, bgs);
      };
    } else {
      const encode = createEncode(device, { B, d, N: t.n, lat0: t.lat0, wOff: t.wOff }, kernels.encode, {
        copy: kernels.encodeCopy,
      });
      encodes.push(encode);
      const tp = topk.tileParams(t.lat0, t.n);
      const topkBg = topk.bind(`tile@${t.lat0}`, [
        b.pre,
        b.deadList,
        b.deadInfo,
        b.tileIdx,
        b.tileVal,
        b.params,
        tp,
      ]);
      const encodeBind = { x: b.x, b_pre: b.b_pre, W_enc, b_enc: b.b_enc, pre: b.pre };
      encodeOnly = (p) => encode.run(p, encodeBind);
      topkOnly = (p) => topk.run(p, topkBg);
      select = (p, rows) => {
        encode.run(p, encodeBind, rows);
        topkOnly(p);
        merge.merge(p, mergeBgs);
      };
    }
    return {
      select,
      encodeOnly,
      topkOnly,
      auxBg: topkAux?.bind(`aux@${t.lat0}`, [
        b.pre,
        b.deadList,
        b.deadInfo,
        b.tileIdx,
        b.tileVal,
        b.params,
        topkAux.tileParams(t.lat0, t.n),
      ]),
      deadBg: encodeDead?.bind(t, {
        x: b.x,
        b_pre: b.b_pre,
        W_enc,
        b_enc: b.b_enc,
        pre: b.pre,
        deadList: b.deadList,
        deadInfo: b.deadInfo,
        params: b.params,
      }),
    };
  });
  return {
    encode: (p: GPUComputePassEncoder, rows = B) => {
      merge.init(p, mergeBgs);
      for (const t of tiles) t.select(p, rows);
    },
    main: (p: GPUComputePassEncoder, forward: boolean) => {
      merge.emit(p, mergeBgs);
      batch(p, forward);
    },
    aux: (p: GPUComputePassEncoder) => {
      if (!topkAux || !mergeAux || !mergeAuxBgs || !encodeDead) return;
      mergeAux.init(p, mergeAuxBgs);
      for (const t of tiles) {
        encodeDead.run(p, t.deadBg!);
        topkAux.run(p, t.auxBg!);
        mergeAux.merge(p, mergeAuxBgs);
      }
      mergeAux.emit(p, mergeAuxBgs);
    },
    chunkMax: false,
    // The autotuner times one tile: the choice is per tile shape, and a whole step at scale takes minutes.
    tune: {
      encode: (p: GPUComputePassEncoder) => tiles[0].encodeOnly(p),
      topk: (p: GPUComputePassEncoder) => tiles[0].topkOnly(p),
      select: (p: GPUComputePassEncoder) => {
        merge.init(p, mergeBgs);
        tiles[0].select(p, B);
      },
    },
    destroy: () => {
      for (const e of encodes) e.destroy();
      topk.destroy();
      topkAux?.destroy();
      merge.destroy();
      mergeAux?.destroy();
      encodeDead?.destroy();
    },
  };
}
