// Adam (PyTorch semantics) on one tensor of COUNT elements, gradient scaled by the clip factor scal[2]:
//   m = β1 m + (1−β1) g;  v = β2 v + (1−β2) g²;  θ −= stepSize · m / (sqrt(v · bc2) + ε)
// with stepSize = lr / (1 − β1^t) and bc2 = 1 / (1 − β2^t) computed in float64 on the CPU.
// ema: θ_ema = decay·θ_ema + (1 − decay)·θ (paper's 0.999 weight EMA for evaluation).
// T is f32, or vec4<f32> on software adapters (adam.ts; COUNT then counts vec4s): the same operations
// on each component, so the same bits, with a quarter of the loads (SwiftShader loads a vec4 per lane
// for about what a float costs).

alias T = {{ELEM}};
override COUNT: u32;
const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read_write> theta: array<T>;
@group(0) @binding(1) var<storage, read> grad: array<T>;
@group(0) @binding(2) var<storage, read_write> m1: array<T>;
@group(0) @binding(3) var<storage, read_write> m2: array<T>;
@group(0) @binding(4) var<storage, read> scal: array<f32>;
@group(0) @binding(5) var<storage, read_write> theta_ema: array<T>;
@group(0) @binding(6) var<uniform> P: StepParams;

@compute @workgroup_size(WG)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let clip = scal[2];
  for (var o = gid.x; o < COUNT; o += nwg.x * WG) {
    let g = grad[o] * clip;
    let m = P.beta1 * m1[o] + P.oneMinusBeta1 * g;
    let v = P.beta2 * m2[o] + P.oneMinusBeta2 * g * g;
    m1[o] = m;
    m2[o] = v;
    theta[o] -= P.stepSize * m / (sqrt(v * P.bc2) + P.eps);
  }
}

@compute @workgroup_size(WG)
fn ema(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var o = gid.x; o < COUNT; o += nwg.x * WG) {
    theta_ema[o] = P.emaDecay * theta_ema[o] + P.oneMinusEmaDecay * theta[o];
  }
}
