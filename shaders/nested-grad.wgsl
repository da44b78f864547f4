// Matryoshka's gradient sources (after loss.wgsl, which wrote g = 2·lossScale·e for the full width).
// With x̂_h the reconstruction by the first m_h latents (decode.wgsl's x_inner for h < G − 1, x̂ itself
// for h = G − 1) and e_h = x̂_h − x, the loss lossScale·Σ_h ‖e_h‖² gives every latent of level h the
// source
//   g[h, b] = 2·lossScale·E_h[b],   E_h = Σ_{h' ≥ h} e_h'
// summed from the full width down (the twin's order, src/reference/step.ts nestedGrads). g[0] holds
// every prefix, which is what b_pre's gradient reads.                         one thread per element: G·B·d

const WG: u32 = 256u;
const LEVELS: u32 = {{LEVELS}}u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> x_hat: array<f32>;
@group(0) @binding(2) var<storage, read> x_inner: array<f32>;   // [LEVELS − 1, B, d]
@group(0) @binding(3) var<storage, read_write> g: array<f32>;   // [LEVELS, B, d]
@group(0) @binding(4) var<uniform> P: StepParams;

@compute @workgroup_size(WG)
fn nested_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let BD = P.B * P.d;
  let s = 2.0 * P.lossScale;
  for (var o = gid.x; o < BD; o += nwg.x * WG) {
    let xo = x[o];
    var E = x_hat[o] - xo;
    g[(LEVELS - 1u) * BD + o] = s * E;
    for (var h = LEVELS - 1u; h > 0u; h--) {
      E += x_inner[(h - 1u) * BD + o] - xo;
      g[(h - 1u) * BD + o] = s * E;
    }
  }
}
