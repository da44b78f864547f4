// Per-latent outer-product sums of the dense backward:  out[i] = Σ_b A[b, i] · (Y[b] − y0)      nnz(A)·d
//   dW_enc: A = ∂L/∂pre [B, N], Y = x, y0 = b_pre;   dW_dec: A = activations, Y = g, y0 = 0.
// One workgroup per latent, threads over d; rows are visited in order, so the sums are deterministic,
// and a zero A[b, i] (read by every thread alike) is skipped.
// Micro-batches: A holds the MB.n rows of one micro-batch, rows MB.row0 + b of Y; MB.accBwd adds the
// micro-batch's sums into out (every micro-batch but the first summed, in a fixed order).

const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> Y: array<f32>;
@group(0) @binding(2) var<storage, read> y0: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> P: StepParams;
@group(0) @binding(5) var<uniform> MB: MicroBatch;

@compute @workgroup_size(WG)
fn outer_acc(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
  for (var i = wid.x; i < P.N; i += nwg.x) {
    for (var c = lid.x; c < P.d; c += WG) {
      let off = y0[c];
      var acc = 0.0;
      for (var b = 0u; b < MB.n; b++) {
        let a = A[b * P.N + i];
        if (a != 0.0) { acc += a * (Y[(MB.row0 + b) * P.d + c] - off); }
      }
      if (MB.accBwd != 0u) { acc += out[i * P.d + c]; }
      out[i * P.d + c] = acc;
    }
  }
}
