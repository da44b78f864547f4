// BatchTopK (Bussmann et al. 2024): keep the B·k largest activations of the whole batch rather than k per
// row. Each row's top kCap (= P.k here) candidates are already in val_all[0, B·kCap) (relu'd, so ≥ 0);
// the batch threshold τ is the kBatch-th largest of them, found by a radix select on the float bits
// (non-negative floats order like their bit patterns), and entries below τ are zeroed. A zeroed entry
// is inert downstream: the decoder, the fire counts and the gradient all skip val = 0.
// Inference threshold θ (tau[1]; dictionary_learning's BatchTopKTrainer.update_threshold, docs/DESIGN.md §8):
// with FLAG_THETA_UPDATE a training step sets m = the smallest positive activation the cut kept (τ when
// τ > 0: τ is one of the values; else the smallest positive candidate, 0 when none is positive) and
// θ ← m if θ < 0 (not learned yet), else β·θ + (1 − β)·m. With FLAG_THETA_EVAL (the evaluation forward)
// there is no batch cut: each row keeps its candidates with val > max(θ, 0), so a row's code does not
// depend on the other rows (JumpReLU with one threshold, as SAELens exports BatchTopK).
//   batch_select  one workgroup: four 8-bit histogram passes → τ, into tau[0] and metrics slot 7;
//                 θ update (one more pass over the candidates when τ = 0)                        4·B·kCap
//   batch_apply   one thread per entry: val < τ → 0 (training) or val ≤ max(θ, 0) → 0 (eval)    B·kCap

const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read_write> val_all: array<f32>;
@group(0) @binding(1) var<storage, read_write> tau: array<f32>;
@group(0) @binding(2) var<storage, read_write> metrics: array<f32>;
@group(0) @binding(3) var<uniform> P: StepParams;

var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> chosen: u32;
var<workgroup> need: u32;
var<workgroup> minBits: atomic<u32>;

// −0.0 (from max(−0, 0)) must count as 0, not as the largest pattern.
fn key(e: u32) -> u32 { return bitcast<u32>(val_all[e]) & 0x7fffffffu; }

@compute @workgroup_size(WG)
fn batch_select(@builtin(local_invocation_id) lid: vec3<u32>) {
  // Evaluation with θ: no batch-level selection (batch_apply reads θ). P.flags is uniform.
  if ((P.flags & FLAG_THETA_EVAL) != 0u) { return; }
  let E = P.B * P.k;
  if (lid.x == 0u) { need = min(P.kBatch, E); }
  var prefix = 0u;
  var mask = 0u;
  for (var round = 0u; round < 4u; round++) {
    let shift = 24u - 8u * round;
    atomicStore(&hist[lid.x], 0u);
    workgroupBarrier();
    for (var e = lid.x; e < E; e += WG) {
      let bits = key(e);
      if ((bits & mask) == prefix) { atomicAdd(&hist[(bits >> shift) & 255u], 1u); }
    }
    workgroupBarrier();
    if (lid.x == 0u) {
      // Walk the bins from the top until the count reaches the rank still needed.
      var acc = 0u;
      var bin = 255u;
      loop {
        let c = atomicLoad(&hist[bin]);
        if (acc + c >= need || bin == 0u) { break; }
        acc += c;
        bin--;
      }
      chosen = bin;
      need -= acc;
    }
    let bin = workgroupUniformLoad(&chosen);
    prefix |= bin << shift;
    mask |= 255u << shift;
  }
  if (lid.x == 0u) {
    let t = bitcast<f32>(prefix);
    tau[0] = t;
    if ((P.flags & FLAG_NO_METRICS) == 0u) { metrics[P.slot * METRICS + 7u] = t; }
  }
  if ((P.flags & FLAG_THETA_UPDATE) != 0u) {
    // prefix is workgroup-uniform (built from workgroupUniformLoad), so the barriers below are too.
    var m = bitcast<f32>(prefix);
    if (prefix == 0u) {
      // τ = 0 keeps every candidate: the smallest positive one (bits order like values for x ≥ 0).
      if (lid.x == 0u) { atomicStore(&minBits, 0x7f800000u); }
      workgroupBarrier();
      for (var e = lid.x; e < E; e += WG) {
        let bits = key(e);
        if (bits != 0u) { atomicMin(&minBits, bits); }
      }
      workgroupBarrier();
      let mb = atomicLoad(&minBits);
      // No positive activation at all: m = 0 (dictionary_learning's min_activation = 0.0).
      m = select(0.0, bitcast<f32>(mb), mb != 0x7f800000u);
    }
    if (lid.x == 0u) {
      let th = tau[1];
      tau[1] = select(P.thetaBeta * th + P.oneMinusThetaBeta * m, m, th < 0.0);
    }
  }
}

@compute @workgroup_size(WG)
fn batch_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if ((P.flags & FLAG_THETA_EVAL) != 0u) {
    let th = max(tau[1], 0.0);
    for (var e = gid.x; e < P.B * P.k; e += nwg.x * WG) {
      if (!(val_all[e] > th)) { val_all[e] = 0.0; }
    }
    return;
  }
  let t = tau[0];
  for (var e = gid.x; e < P.B * P.k; e += nwg.x * WG) {
    if (val_all[e] < t) { val_all[e] = 0.0; }
  }
}
