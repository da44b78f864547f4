import gvRows from '../../../shaders/grad-gv4.wgsl?raw';
import code from '../../../shaders/grad-latent.wgsl?raw';
import gradLong from '../../../shaders/grad-long.wgsl?raw';
import gradReg from '../../../shaders/grad-reg.wgsl?raw';
import { BPRE_CHUNK, bpreChunks, SORT_SHORT, sortLongSlots } from '../kernel-variants';
import { gpuForms, groupsFor, loopGroups, namedColumns, phases } from './kernel';
import { levelOfWgsl } from './levels';

/**
 * Sparse backward: gv per entry, then per-latent sums over the sorted lists, then db_pre; each of
 * gv, grad_dec, grad_enc and bpre_part runs once per latent shard (`shardN`: most latents in one).
 * Bindings: idxAll, valAll, g, gAux, W_dec shard, gvAll (out), start, rows, x, b_pre, W_enc shard,
 * dW_dec shard, dW_enc shard, db_enc, db_pre, params, shard uniform, encPart [⌈N/32⌉, d], the sort's
 * long list (read by the long-list sums).
 * `widths` (Matryoshka): g is [G, B, d] and a main entry reads its latent's level's slice.
 * Run 'gv' before the sums (`sums`, which read it); the sort may run in between; bpre_part over
 * every shard in order, then bpre_final.
 * Long lists (over SORT_SHORT entries) get their own sums, split over a workgroup (grad_long_*_v4),
 * where the adapter is a GPU: there a dead latent's B-entry AuxK list walked by one workgroup held the
 * step up. On a software adapter every list is walked whole, which costs less there (no workgroup
 * per slab to pay for); `splitLong` or setGpuForms (tests, benches) override the choice.
 */
export function createGrad(
  device: GPUDevice,
  s: { d: number; shardN: number; entries: number; widths?: readonly number[]; splitLong?: boolean },
) {
  // vec4 sums where d allows (bit-identical; fewer per-entry reads per column), scalar otherwise.
  const v4 = s.d % 4 === 0;
  const split = v4 && (s.splitLong ?? gpuForms(device));
  // The software form of the vec4 sums keeps each column's sum in a named variable (grad-reg.wgsl).
  const reg = v4 && !gpuForms(device) && !split;
  const sums = reg
    ? ['grad_dec_reg', 'grad_enc_reg']
    : v4
      ? ['grad_dec_v4', 'grad_enc_v4']
      : ['grad_dec', 'grad_enc'];
  const regT = reg ? regTemplates(s.d / 4) : undefined;
  // Invocations per latent in the array forms of the vec4 sums (a GPU, or software with splitLong):
  // 16 on a GPU; on a software adapter one SIMD batch of 4,
  // since each extra batch repeats the entry's row, value and list reads (SwiftShader, one run:
  // d = 768 345–370 vs 495–500 ms with 16, d = 64 24–27 vs 51–55 ms). Each column adds its terms in
  // list order either way, so the bits do not change.
  const wg4 = gpuForms(device) ? 16 : 4;
  if (split) sums.push('grad_long_dec_v4', 'grad_long_enc_v4');
  // Workgroups over the listed latents (at most the slots of the list, or the shard) × column slabs.
  const longGroups = [
    loopGroups(device, Math.min(sortLongSlots(s.entries) - 1, s.shardN)),
    Math.ceil(s.d / 4 / 16),
  ] as const;
  // db_pre's final sums, bit for bit the same in each form: a workgroup per column on a GPU; on software
  // a thread per column, or per four columns in workgroups of 4 (both cores busy at d = 64).
  const final = gpuForms(device)
    ? { entry: 'bpre_final', groups: groupsFor(device, s.d) }
    : v4
      ? { entry: 'bpre_final_seq4', groups: groupsFor(device, s.d / 4, 4) }
      : { entry: 'bpre_final_seq', groups: groupsFor(device, s.d, 16) };
  const bpreFinal = final.entry;
  // gv on a software adapter with one level: four entries of a row per thread share g's loads
  // (grad-gv4.wgsl, the same bits); on a GPU, and with Matryoshka's per-level g, a thread per entry.
  const gv = !v4 ? 'gv' : !gpuForms(device) && (s.widths ?? [1]).length === 1 ? 'gv_v4_rows' : 'gv_v4';
  const k = phases(
    device,
    'grad-latent',
    code + (gv === 'gv_v4_rows' ? gvRows : '') + (split ? gradLong : '') + (reg ? gradReg : ''),
    [
      {
        entry: gv,
        groups: loopGroups(
          device,
          Math.ceil((gv === 'gv_v4_rows' ? Math.ceil(s.entries / 4) : s.entries) / 64),
        ),
      },
      ...sums.map((entry) => ({
        entry,
        groups: entry.startsWith('grad_long')
          ? longGroups
          : regT
            ? loopGroups(device, Math.ceil((s.shardN * regT.tpl) / 64))
            : loopGroups(device, s.shardN),
      })),
      // (chunks a shard touches: its own, plus one cut at each end) × columns; a workgroup per column.
      { entry: 'bpre_part', groups: loopGroups(device, Math.ceil(((bpreChunks(s.shardN) + 1) * s.d) / 64)) },
      final,
    ],
    {
      CPT: Math.max(1, Math.ceil(s.d / 64)),
      CPT4: Math.max(1, Math.ceil(s.d / 4 / wg4)),
      WG4: wg4,
      LEVEL_OF: levelOfWgsl(s.widths ?? [1]),
      LONG: split ? SORT_SHORT : 0xffffffff,
      LCH: BPRE_CHUNK,
      ...regT?.lines,
    },
  );
  return {
    /** the per-latent sums' entry points (run after the sort) */
    sums,
    /** the gv entry point (run before the sort and the sums) */
    gv,
    /** the db_pre entry point (after bpre_part over every shard) */
    bpreFinal,
    /** whether long lists have their own sums */
    splitLong: split,
    /** Buffers in binding order 0–17 then the long list (see above); the vec4 views 18–23 go between,
     * then W_dec's (25) and encPart's (26). */
    bind: (name: string, all: GPUBuffer[]) =>
      k.bind(name, [
        ...all.slice(0, 18),
        all[2],
        all[3],
        all[8],
        all[9],
        all[11],
        all[12],
        all[18],
        all[4],
        all[17],
      ]),
    run: k.run,
  };
}

/**
 * Most vec4 column groups one thread of the register form sums (ours): a latent's columns in one batch
 * of 4 lanes up to d = 768. SwiftShader, d = 768, N = 4096, k = 32: with 42 dead latents, one run each,
 * 249 ms with 4, 209–215 with 8, 205–235 with 16 (the array forms 282); with 2048 dead, alternating
 * rounds, 48 vs 8: 222 vs 240 and 273 vs 312. Columns as one block per thread instead of strided: 215–220.
 */
const REG_MAX_Q = 48;

/** grad-reg.wgsl's generated lines for d4 = d / 4 vec4 column groups (kernel.ts namedColumns). */
function regTemplates(d4: number) {
  const n = namedColumns(d4, REG_MAX_Q);
  const store = (buf: string) => n.store('q', 'd4', (u) => `${buf}[w + c${u}] = a${u};`, 4);
  return {
    tpl: n.tpl,
    lines: {
      TPL: n.tpl,
      REG_COLS: n.cols('q', 'd4', 4),
      REG_ZERO: n.each((u) => `var a${u} = vec4<f32>(0.0);`, 4),
      REG_BP: n.each((u) => `let bp${u} = b_pre4[c${u}];`, 4),
      REG_DEC_AUX: n.each((u) => `a${u} += v * g_aux4[o + c${u}];`, 8),
      REG_DEC_MAIN: n.each((u) => `a${u} += v * g4[og + c${u}];`, 8),
      REG_ENC: n.each((u) => `a${u} += gv * (x4[o + c${u}] - bp${u});`, 6),
      REG_STORE_DEC: store('dW_dec4'),
      REG_STORE_ENC: store('dW_enc4'),
    },
  };
}
