// Sparse decoder: x̂[b] = Σ_j val[b, j] · W_dec[idx[b, j]] (+ b_pre unless AUX).   B·K·d
// idx/val: the entry arrays [B·(k+kAux)], rows of K at offset 0 / B·k (K = k, or kAux for the AuxK reconstruction ê, which has no b_pre), W_dec [N, d].
// One workgroup per row; threads stride over d, so every thread reads the same (idx, val) pair.

override AUX: bool = false;
const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> idx: array<u32>;
@group(0) @binding(1) var<storage, read> val: array<f32>;
@group(0) @binding(2) var<storage, read> W_dec: array<f32>;
@group(0) @binding(3) var<storage, read> b_pre: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> P: StepParams;

@compute @workgroup_size(WG)
fn decode(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
  for (var b = wid.x; b < P.B; b += nwg.x) { decode_row(b, lid.x); }
}

fn decode_row(b: u32, lid: u32) {
  let K = select(P.k, P.kAux, AUX);
  let off = select(0u, P.B * P.k, AUX) + b * K;
  for (var c = lid; c < P.d; c += WG) {
    var acc = select(b_pre[c], 0.0, AUX);
    for (var j = 0u; j < K; j++) {
      let i = idx[off + j];
      let v = val[off + j];
      if (i < P.N && v != 0.0) { acc += v * W_dec[i * P.d + c]; }
    }
    out[b * P.d + c] = acc;
  }
}
