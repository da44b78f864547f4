// Dense decoder for the threshold activations: x̂[b] = Σ_i A[b, i] · W_dec[i] (+ b_pre unless AUX).   B·N + nnz·d
// A [B, N] (the activations; for Gated's aux reconstruction ê the difference relu(π_gate) − a), W_dec [N, d].
// Micro-batches: A holds the MB.n rows of one micro-batch, written to rows MB.row0 + b of out [B, d].
// One workgroup per row; threads stride over d and read the same A[b, i], so zero activations are
// skipped uniformly — the cost grows with the row's L0, not with N·d.

override AUX: bool = false;
const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> W_dec: array<f32>;
@group(0) @binding(2) var<storage, read> b_pre: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> P: StepParams;
@group(0) @binding(5) var<uniform> MB: MicroBatch;

@compute @workgroup_size(WG)
fn decode_dense(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
  for (var b = wid.x; b < MB.n; b += nwg.x) {
    for (var c = lid.x; c < P.d; c += WG) {
      var acc = select(b_pre[c], 0.0, AUX);
      for (var i = 0u; i < P.N; i++) {
        let a = A[b * P.N + i];
        if (a != 0.0) { acc += a * W_dec[i * P.d + c]; }
      }
      out[(MB.row0 + b) * P.d + c] = acc;
    }
  }
}
