import code from '../../../shaders/decode.wgsl?raw';
import { gpuForms, loopGroups, namedColumns, phases } from './kernel';
import { levelOfWgsl } from './levels';
import { AUX_SKIP_OFFSET } from './topk';

/** The shard bindings and the shard-selecting read of decode.wgsl for `shards` W_dec buffers. */
function shardCode(shards: number): { bindings: string; read: string } {
  const bindings = Array.from(
    { length: shards },
    (_, s) => `@group(0) @binding(${5 + s}) var<storage, read> W_dec_${s}: array<T>;`,
  ).join('\n');
  if (shards === 1) return { bindings, read: '  return W_dec_0[i * dT + c];' };
  const cases = Array.from(
    { length: shards },
    (_, s) => `    ${s === shards - 1 ? 'default' : `case ${s}u`}: { return W_dec_${s}[o]; }`,
  ).join('\n');
  return {
    bindings,
    read: `  let s = i / SHARD_N;\n  let o = (i - s * SHARD_N) * dT + c;\n  switch s {\n${cases}\n  }`,
  };
}

/**
 * Sparse decoder x̂ = Σ val·W_dec[idx] + b_pre; aux: ê from the AuxK pairs, without b_pre.
 * `shards` W_dec buffers of `shardN` latents each (the last may hold fewer). `widths` (Matryoshka,
 * main decode only): the nested prefix widths; with more than one, the inner prefixes'
 * reconstructions x_inner [G − 1, B, d] are written too.
 * Bindings: idxAll, valAll, b_pre [d], out [B,d], params, W_dec shard 0, 1, …, then x_inner.
 */
export function createDecode(
  device: GPUDevice,
  s: {
    B: number;
    d: number;
    aux: boolean;
    shards?: number;
    shardN?: number;
    widths?: readonly number[];
    /**
     * aux: deadInfo, where compact_dead writes this decode's dispatch (AUX_SKIP_OFFSET.rank, topk.ts):
     * none while no latent is dead and none was at the last step, when ê is already 0 (dead.wgsl)
     */
    indirect?: GPUBuffer;
    /** wide rows on a software adapter: false keeps decode_lanes_array (tests compare the two) */
    passes?: boolean;
  },
) {
  if (s.indirect && !s.aux) throw new Error('decode: only the AuxK decode is dispatched by compact_dead');
  // vec4 views where d allows: one (idx, val) read per 4 columns.
  const v4 = s.d % 4 === 0;
  const shards = s.shards ?? 1;
  const { bindings, read } = shardCode(shards);
  const widths = s.widths ?? [1];
  if (s.aux && widths.length > 1) throw new Error('decode: Matryoshka levels are for the main decode');
  const nested = widths.length > 1;
  const src = code
    .replace('{{W_DEC_BINDINGS}}', bindings)
    .replace('{{W_DEC_READ}}', read)
    .replace(
      '{{INNER_BINDING}}',
      nested ? `@group(0) @binding(${5 + shards}) var<storage, read_write> x_inner: array<T>;` : '',
    )
    .replace(
      '{{INNER_WRITE}}',
      nested
        ? [
            '    var run = b_pre[c];',
            '    for (var h = 0u; h + 1u < LEVELS; h++) {',
            '      run += lvl[h];',
            '      x_inner[(h * P.B + b) * dT + c] = run;',
            '    }',
          ].join('\n')
        : '',
    )
    .replace('{{LEVEL_OF}}', levelOfWgsl(widths));
  // On a software adapter without levels, 4 lanes per row walk its list once: decode_lanes (named
  // sums) up to LANE_NAMED columns a lane, decode_lanes_array past that.
  const lanes = !nested && !gpuForms(device);
  const dT = v4 ? s.d / 4 : s.d;
  const n = namedColumns(dT, LANE_NAMED);
  const named = Math.ceil(dT / ARRAY_LANES) <= LANE_NAMED;
  return phases(
    device,
    'decode',
    src,
    [
      {
        entry: !lanes
          ? 'decode'
          : named
            ? 'decode_lanes'
            : s.passes === false
              ? 'decode_lanes_array'
              : 'decode_lanes_pass',
        constants: { AUX: s.aux },
        // auxDispatch (topk.ts) writes this count for the indirect dispatch.
        groups: loopGroups(device, s.B),
        ...(s.indirect ? { indirect: { buffer: s.indirect, offset: AUX_SKIP_OFFSET.rank } } : {}),
      },
    ],
    {
      SHARD_N: s.shardN ?? 1,
      ELEM: v4 ? 'vec4<f32>' : 'f32',
      SIZEOF: v4 ? 16 : 4,
      LEVELS: widths.length,
      DL: n.tpl,
      CPL: Math.ceil(dT / ARRAY_LANES),
      LANE_COLS: n.cols('q', 'dT', 2),
      LANE_INIT: n.each((u) => `var a${u} = select(b_pre[c${u}], T(0.0), AUX);`, 4),
      LANE_ADD: n.each((u) => `a${u} = select(a${u}, a${u} + v * w_dec(i, c${u}, dT), on);`, 6),
      LANE_STORE: n.store('q', 'dT', (u) => `out[o + c${u}] = a${u};`, 4),
      PQ: PASS_COLUMNS,
      PASS_COLS: pass((u) => `let c${u} = min(lid.x + (p0 + ${u}u) * DLA, dT - 1u);`, 6),
      PASS_INIT: pass((u) => `var a${u} = select(b_pre[c${u}], T(0.0), AUX);`, 6),
      PASS_ADD: pass((u) => `a${u} = select(a${u}, a${u} + v * w_dec(i, c${u}, dT), on);`, 8),
      PASS_STORE: pass((u) => `if (lid.x + (p0 + ${u}u) * DLA < dT) { out[o + c${u}] = a${u}; }`, 6),
    },
  );
}

/**
 * Most columns (vec4 groups or floats) a lane of decode_lanes sums (ours). SwiftShader, main decode,
 * alternating rounds, median ms: d = 64 (4 a lane) named 4.7–4.8 vs array 6.9–7.0 (three runs); d = 768
 * (48 a lane) named 47–87 vs array 56–71 over five runs (named with 8 or 16 a lane, 24 or 12 lanes a
 * row: 85–96). So named sums only while they fit in registers.
 */
const LANE_NAMED = 8;

/** Columns a lane of decode_lanes_pass sums in one walk of a row's list (ours; see createDecode). */
const PASS_COLUMNS = 8;

/** `line(u)` for each of decode_lanes_pass's PASS_COLUMNS columns, indented. */
const pass = (line: (u: number) => string, indent: number) =>
  [...Array(PASS_COLUMNS).keys()].map((u) => ' '.repeat(indent) + line(u)).join('\n');

/** Lanes per row of decode_lanes_array (decode.wgsl's DLA). */
const ARRAY_LANES = 4;
