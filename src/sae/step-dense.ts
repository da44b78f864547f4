/**
 * The threshold family's step (ReLU+L1, ProLU, Gated, JumpReLU): dense [b, N] activations over
 * micro-batches of plan.microBatch rows, then the shared loss and update (GpuSae.build).
 */
import { createActivation } from '../gpu/kernels/activation';
import { createDenseDecode } from '../gpu/kernels/dense-decode';
import { createEncode } from '../gpu/kernels/encode';
import { createOuterAcc } from '../gpu/kernels/outer-acc';
import { createTopK } from '../gpu/kernels/topk';
import type { KernelChoice, StepCommon, StepHost } from './step-host';

/** Builds the threshold family's phases into `sae` (unsharded: the plan refuses more than one shard). */
export function buildDense(sae: StepHost, kernels: KernelChoice, common: StepCommon) {
  const { device, cfg, b, sh, plan } = sae;
  const { d, nLatents: N } = cfg;
  const params = b.params;
  const { loss, lossBg, dead, deadBg, tail } = common;
  // The threshold family runs unsharded (the plan refuses more than one shard for it), over
  // micro-batches of plan.microBatch rows whose [b, N] buffers fit one binding (one micro-batch:
  // the whole batch, the path below with b = B). Each micro-batch has its encoder (x's rows row0…,
  // and g's for ∂L/∂a) and bind groups with its MicroBatch uniform; [B, d] buffers stay whole.
  const W_enc = sh.W_enc[0];
  const W_dec = sh.W_dec[0];
  const rows = plan.microBatch;
  const gated = cfg.activation === 'gated';
  const act = createActivation(device, { B: rows, N, d, activation: cfg.activation });
  const decodeD = createDenseDecode(device, { B: rows, aux: false });
  const decodeDAux = createDenseDecode(device, { B: rows, aux: true });
  const outer = createOuterAcc(device, { N });
  const encodeBindings = { x: b.x, b_pre: b.b_pre, W_enc, b_enc: b.b_enc, pre: b.pre };
  // ∂L/∂a = W_dec·g is the encoder's own matmul with W_dec in place of W_enc and no biases.
  const gactBindings = { x: b.g, b_pre: b.zerosD, W_enc: W_dec, b_enc: b.zerosN, pre: b.gact };
  const gactAuxBindings = { x: b.gAux, b_pre: b.zerosD, W_enc: W_dec, b_enc: b.zerosN, pre: b.gactAux };
  const micro = plan.microBatches.map((r, m) => {
    const mb = sae.microRows[m];
    return {
      ...r,
      encode: createEncode(device, { B: r.n, d, N, row0: r.row0 }, kernels.encode, {
        copy: kernels.encodeCopy,
      }),
      actBg: act.bind(`act#${m}`, [
        b.pre,
        b.act,
        b.actAux,
        b.gact,
        b.gactAux,
        b.gpre,
        b.b_enc,
        b.extra,
        b.decNorm,
        b.latStats,
        W_dec,
        sh.dW_dec[0],
        b.db_enc,
        b.dextra,
        b.firesStep,
        b.g,
        W_enc,
        b.db_pre,
        b.metrics,
        b.normPart,
        params,
        b.rowStats,
        mb,
      ]),
      decodeBg: decodeD.bind(`main#${m}`, [b.act, W_dec, b.b_pre, b.xHat, params, mb]),
      decodeAuxBg: decodeDAux.bind(`aux#${m}`, [b.actAux, W_dec, b.b_pre, b.eHat, params, mb]),
      outerEncBg: outer.bind(`enc#${m}`, [b.gpre, b.x, b.b_pre, sh.dW_enc[0], params, mb]),
      outerDecBg: outer.bind(`dec#${m}`, [b.act, b.g, b.zerosD, sh.dW_dec[0], params, mb]),
    };
  });
  // Codes for evaluation: the largest activations of each row, through the TopK kernel on `act`
  // with its own uniform (k = codesK). Micro-batches: into gact/gpre ([b, N] ⊇ [n, codesK]), which
  // forward() copies into the micro-batch's rows of idxAll/valAll.
  const many = micro.length > 1;
  const codes = createTopK(device, {
    B: rows,
    N,
    K: sae.codesK,
    aux: false,
    tile: kernels.topkTile,
    variant: kernels.topk,
  });
  const codesBg = codes.bind('codes', [
    b.act,
    b.deadList,
    b.deadInfo,
    many ? b.gact : b.idxAll,
    many ? b.gpre : b.valAll,
    b.paramsCodes,
  ]);
  const lBg = lossBg(b.act);
  const mb0 = micro[0];
  sae.chunkMaxima = false;
  sae.destroyEncode = () => {
    for (const mb of micro) mb.encode.destroy();
  };
  // `rows`: the micro-batch's rows to run (the evaluation forward of a partial batch runs fewer; the
  // caller sets the MicroBatch uniform's n to match, which act_fwd and the decoder loop over).
  const fwd = (p: GPUComputePassEncoder, mb: (typeof micro)[number], rows = mb.n) => {
    mb.encode.run(p, encodeBindings, rows);
    act.run(p, mb.actBg, ['act_fwd']);
    decodeD.run(p, mb.decodeBg);
  };
  const grads = (p: GPUComputePassEncoder, mb: (typeof micro)[number]) => {
    outer.run(p, mb.outerEncBg);
    outer.run(p, mb.outerDecBg);
  };
  const gact = (p: GPUComputePassEncoder, mb: (typeof micro)[number]) => {
    mb.encode.run(p, gactBindings);
    if (gated) mb.encode.run(p, gactAuxBindings);
  };
  const apply = (p: GPUComputePassEncoder) =>
    act.run(p, mb0.actBg, ['latent_apply', 'dense_bpre', 'pen_reduce']);
  const normExtra = (p: GPUComputePassEncoder) => act.run(p, mb0.actBg, ['norm_extra']);
  sae.microForward = many
    ? micro.map((mb) => ({
        row0: mb.row0,
        n: mb.n,
        record: (p: GPUComputePassEncoder, rows: number) => {
          fwd(p, mb, rows);
          act.run(p, mb.actBg, ['row_l0']);
          codes.run(p, codesBg);
        },
      }))
    : null;
  // The evaluation forward also counts each row's nonzero activations (row_l0 → rowStats[b, 2]): the
  // codes keep the codesK largest, so a row with more nonzeros than that would under-count L0.
  sae.recordForward = (pass, rows) => {
    fwd(pass, mb0, rows);
    act.run(pass, mb0.actBg, ['row_l0']);
    codes.run(pass, codesBg);
  };
  if (!many) {
    sae.phases = [
      { name: 'encode', record: (p) => mb0.encode.run(p, encodeBindings) },
      { name: 'activation', record: (p) => act.run(p, mb0.actBg, ['dec_norm_rows', 'act_fwd']) },
      {
        name: 'decode',
        record: (p) => {
          decodeD.run(p, mb0.decodeBg);
          if (gated) decodeDAux.run(p, mb0.decodeAuxBg);
        },
      },
      {
        name: 'dead',
        record: (p) => {
          act.run(p, mb0.actBg, ['dense_fires']);
          dead.run(p, deadBg, ['update_dead', dead.compact]);
        },
      },
      { name: 'loss', record: (p) => loss.run(p, lBg) },
      { name: 'gact', record: (p) => gact(p, mb0) },
      { name: 'act-bwd', record: (p) => act.run(p, mb0.actBg, ['act_bwd', 'latent_sums']) },
      {
        name: 'grad',
        record: (p) => {
          grads(p, mb0);
          apply(p);
        },
      },
      ...tail(normExtra),
    ];
  } else {
    // Micro-batches: the forward of each (fires summed in row order, each row's L0 for the loss,
    // FLAG_ROW_L0), the loss over the whole batch, then the backward of each from the last down
    // (whose pre-activations and activations are still in place; the others' are recomputed),
    // summing the per-latent sums and dW_enc, dW_dec; then the per-latent apply and the update.
    const last = micro.length - 1;
    sae.phases = [
      {
        name: 'forward',
        record: (p) => {
          act.run(p, mb0.actBg, ['dec_norm_rows']);
          for (const mb of micro) {
            fwd(p, mb);
            if (gated) decodeDAux.run(p, mb.decodeAuxBg);
            act.run(p, mb.actBg, ['dense_fires', 'row_l0']);
          }
        },
      },
      { name: 'dead', record: (p) => dead.run(p, deadBg, ['update_dead', dead.compact]) },
      { name: 'loss', record: (p) => loss.run(p, lBg) },
      {
        name: 'backward',
        record: (p) => {
          for (let m = last; m >= 0; m--) {
            const mb = micro[m];
            if (m < last) {
              mb.encode.run(p, encodeBindings);
              act.run(p, mb.actBg, ['act_fwd']);
            }
            gact(p, mb);
            act.run(p, mb.actBg, ['act_bwd', 'latent_sums']);
            grads(p, mb);
          }
        },
      },
      { name: 'grad', record: apply },
      ...tail(normExtra),
    ];
  }
  // The autotuner times the encoder of one micro-batch (the phase 'encode' with one).
  sae.tunePhases = many ? { encode: (p) => mb0.encode.run(p, encodeBindings) } : {};
  sae.record = (pass) => {
    for (const ph of sae.phases) ph.record(pass);
  };
}
