import gradBoth from '../../../shaders/grad-both.wgsl?raw';
import code from '../../../shaders/grad-latent.wgsl?raw';
import gradLong from '../../../shaders/grad-long.wgsl?raw';
import gradReg from '../../../shaders/grad-reg.wgsl?raw';
import {
  BPRE_CHUNK,
  bpreChunks,
  GV_MAX_PARTS,
  gvFusedParts,
  REG_MAX_Q,
  regThreads,
  SORT_SHORT,
  sortLongSlots,
} from '../kernel-variants';
import { gpuForms, groupsFor, idleAux, loopGroups, namedColumns, phases, quadForms } from './kernel';
import { levelOfWgsl } from './levels';

/**
 * Sparse backward: gv per entry, then per-latent sums over the sorted lists, then db_pre; each of
 * gv, grad_dec, grad_enc and bpre_part runs once per latent shard (`shardN`: most latents in one).
 * Bindings: idxAll, valAll, g, gAux, W_dec shard, gvAll (out), start, rows, x, b_pre, W_enc shard,
 * dW_dec shard, dW_enc shard, db_enc, db_pre, params, shard uniform, encPart [⌈N/32⌉, d], the sort's
 * long list (read by the long-list sums), gvPart [E, parts] (gv's parts where the sums form gv).
 * `widths` (Matryoshka): g is [G, B, d] and a main entry reads its latent's level's slice.
 * On software with quads of lanes (oneWalkTail4) both sums are one entry point, grad_both_reg.
 * Run 'gv' before the sums (`sums`, which read it); the sort may run in between; bpre_part over
 * every shard in order, then bpre_final.
 * Long lists (over SORT_SHORT entries) get their own sums, split over a workgroup (grad_long_*_v4),
 * where the adapter is a GPU: there a dead latent's B-entry AuxK list walked by one workgroup held the
 * step up. On a software adapter every list is walked whole, which costs less there (no workgroup
 * per slab to pay for); `splitLong` or setGpuForms (tests, benches) override the choice.
 */
export function createGrad(
  device: GPUDevice,
  s: {
    d: number;
    shardN: number;
    entries: number;
    widths?: readonly number[];
    splitLong?: boolean;
    /** the plan's gvParts (gvPart [E, gvParts] held): gvFusedParts(d) lets the register sums form gv */
    gvParts?: number;
    /** the plan's gAuxTail: g holds g_aux's copy after its levels (see oneWalkTail4) */
    gAuxTail?: boolean;
    /** the batch rows: with widths, where the copy of g_aux starts */
    B?: number;
    /** db_pre leaves g_aux out while AuxK has no candidate (the loss then writes none: loss.ts) */
    idleAux?: boolean;
  },
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
  // The encoder's share of db_pre from vec4 loads on software: bpre_part_v4 (grad-latent.wgsl; SwiftShader,
  // bench in-pass profile, B = 1024, d = 768, N = 4096: 9.1 → 4.1 ms).
  const bpreV4 = v4 && !gpuForms(device);
  const bprePart = bpreV4 ? 'bpre_part_v4' : 'bpre_part';
  const finalIdle = { ...final, constants: { IDLE_AUX: (s.idleAux ?? false) && idleAux(device) } };
  // gv: inside the register sums' walk where the plan holds gvPart (grad-reg.wgsl, d ≤ 1536);
  // otherwise a thread per entry (gv_v4, in the same order), or the scalar gv where d % 4 != 0.
  const fusedGv = reg && !!s.gvParts && s.gvParts === gvFusedParts(s.d);
  const auxTail4 = oneWalkTail4(device, s);
  const both = auxTail4 > 0;
  if (both) sums.splice(0, 2, 'grad_both_reg');
  const gv = fusedGv ? null : v4 ? 'gv_v4' : 'gv';
  const regT = reg ? regTemplates(s.d / 4, fusedGv) : undefined;
  const k = phases(
    device,
    'grad-latent',
    code + (split ? gradLong : '') + (reg ? gradReg : '') + (both ? gradBoth : ''),
    [
      ...(gv ? [{ entry: gv, groups: loopGroups(device, Math.ceil(s.entries / 64)) }] : []),
      ...sums.map((entry) => ({
        entry,
        groups: entry.startsWith('grad_long')
          ? longGroups
          : regT
            ? loopGroups(device, Math.ceil((s.shardN * regT.tpl) / 64))
            : loopGroups(device, s.shardN),
      })),
      // (chunks a shard touches: its own, plus one cut at each end) × columns; a workgroup per column.
      bpreV4
        ? {
            entry: 'bpre_part_v4',
            groups: loopGroups(device, Math.ceil(((bpreChunks(s.shardN) + 1) * s.d) / 4 / 64)),
          }
        : {
            entry: 'bpre_part',
            groups: loopGroups(device, Math.ceil(((bpreChunks(s.shardN) + 1) * s.d) / 64)),
          },
      finalIdle,
    ],
    {
      CPT: Math.max(1, Math.ceil(s.d / 64)),
      CPT4: Math.max(1, Math.ceil(s.d / 4 / wg4)),
      WG4: wg4,
      LEVEL_OF: levelOfWgsl(s.widths ?? [1]),
      LONG: split ? SORT_SHORT : 0xffffffff,
      LCH: BPRE_CHUNK,
      GV_TPL: v4 ? regThreads(s.d) : 1,
      AUX_TAIL4: auxTail4,
      ...regT?.lines,
    },
  );
  return {
    /** the per-latent sums' entry points (run after the sort) */
    sums,
    /** the gv entry point (run before the sort and the sums); null where the sums compute gv */
    gv,
    /** the db_pre entry point (after bprePart over every shard) */
    bpreFinal,
    /** the encoder's share of db_pre, run over every shard in order before bpreFinal */
    bprePart,
    /** whether long lists have their own sums */
    splitLong: split,
    /** Buffers in binding order 0–17, then the long list, gvPart and deadInfo (see above); the vec4
     * views 18–23 go between, then the long list (24), W_dec's (25), encPart's (26), gvPart (27) and
     * deadInfo (28); W_enc's (29) and encPart's, written (30). */
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
        all[19],
        all[20],
        all[10],
        all[17],
      ]),
    run: k.run,
  };
}

/**
 * Where g's copy of g_aux starts, in vec4s (after its levels: widths.length·B·d floats), where the
 * gradient sums run as one walk (grad-both.wgsl); 0 where they do not. The walk runs for the software
 * register sums with gv in 4 parts (d ≤ 768), a latent's 4 threads one quad of lanes (quadForms), and
 * the plan's gAuxTail; the loss then writes the copy (loss.ts auxTail4).
 */
export function oneWalkTail4(
  device: GPUDevice,
  s: {
    d: number;
    splitLong?: boolean;
    gvParts?: number;
    gAuxTail?: boolean;
    B?: number;
    widths?: readonly number[];
  },
): number {
  const v4 = s.d % 4 === 0;
  const reg = v4 && !gpuForms(device) && !(s.splitLong ?? false);
  const oneWalk =
    reg && s.gvParts === 4 && gvFusedParts(s.d) === 4 && !!s.gAuxTail && (s.B ?? 0) > 0 && quadForms(device);
  return oneWalk ? ((s.widths?.length ?? 1) * (s.B ?? 0) * s.d) / 4 : 0;
}

/** grad-reg.wgsl's generated lines for d4 = d / 4 vec4 column groups (kernel.ts namedColumns); `gv`:
 * the lines that form gv in the walk (its parts in grad_dec_reg, their sum in grad_enc_reg). */
function regTemplates(d4: number, gv: boolean) {
  const n = namedColumns(d4, REG_MAX_Q);
  if (gv && n.tpl > GV_MAX_PARTS)
    throw new Error(`grad: gv's parts take at most ${GV_MAX_PARTS} threads a latent, not ${n.tpl}`);
  const store = (buf: string) => n.store('q', 'd4', (u) => `${buf}[w + c${u}] = a${u};`, 4);
  // A ragged column (clamped for its loads) adds W_dec 0 to gv's part: +0, which leaves a sum that
  // started at +0 as it was.
  const wLine = (u: number) => {
    const read = `W_dec4[it.il * d4 + c${u}]`;
    const ragged = n.tpl * (u + 1) > d4;
    return `let w${u} = ${ragged ? `select(vec4<f32>(0.0), ${read}, q + ${u * n.tpl}u < d4)` : read};`;
  };
  const dec = (src: (u: number) => string) =>
    n.each(
      (u) => (gv ? `{ let h = ${src(u)}; a${u} += v * h; p += w${u} * h; }` : `a${u} += v * ${src(u)};`),
      8,
    );
  return {
    tpl: n.tpl,
    lines: {
      TPL: n.tpl,
      REG_COLS: n.cols('q', 'd4', 4),
      REG_ZERO: n.each((u) => `var a${u} = vec4<f32>(0.0);`, 4),
      REG_W: gv ? n.each(wLine, 4) : '',
      REG_GV_INIT: gv ? '      var p = vec4<f32>(0.0);' : '',
      REG_GV_PUT: gv ? '      gv_part[e * TPL + q] = (p.x + p.y) + (p.z + p.w);' : '',
      REG_GV_READ: gv
        ? [
            '      var gv = 0.0;',
            '      for (var j = 0u; j < TPL; j++) { gv += gv_part[e * TPL + j]; }',
            '      if (q == 0u) { gv_all[e] = gv; }',
          ].join('\n')
        : '      let gv = gv_all[e];',
      REG_BP: n.each((u) => `let bp${u} = b_pre4[c${u}];`, 4),
      REG_DEC_AUX: dec((u) => `g_aux4[o + c${u}]`),
      REG_DEC_MAIN: dec((u) => `g4[og + c${u}]`),
      REG_ENC: n.each((u) => `a${u} += gv * (x4[o + c${u}] - bp${u});`, 6),
      // grad-both.wgsl: the encoder's sums in b_u beside the decoder's a_u.
      REG_ZERO_B: n.each((u) => `var b${u} = vec4<f32>(0.0);`, 4),
      REG_ENC_B: n.each((u) => `b${u} += gv * (x4[o + c${u}] - bp${u});`, 6),
      REG_STORE_ENC_B: n.store('q', 'd4', (u) => `dW_enc4[w + c${u}] = b${u};`, 4),
      REG_STORE_DEC: store('dW_dec4'),
      REG_STORE_ENC: store('dW_enc4'),
    },
  };
}
