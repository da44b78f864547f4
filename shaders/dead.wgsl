// Dead-latent bookkeeping (paper §2.4 / A.2). A latent fires when its TopK value exceeds
// P.fireThreshold; tokens_since[i] counts tokens since it last fired; it is dead when that exceeds
// P.deadTokens. The dead latents are compacted, in index order, into dead_list for the AuxK TopK.
//   count_fires  one thread per (b, j) of the main TopK                         B·k
//   update_dead  one thread per latent                                          N
//   compact_dead one workgroup: ordered prefix sum of dead flags → dead_list    N
//                (compact_dead_seq: one thread walking the flags, software adapters)
// dead_info [16] = [count, x, y, z, x', y', z', empty, r, 1, 1, 0, s, 1, 1, 0]: (x, y, z) is the
// indirect dispatch of the AuxK bitonic TopK, which runs only when more than AUX_RANK_MAX latents are
// dead; (x', y', z') that of topk.wgsl's topk_rank_many, which runs when AUX_RANK_ONE < count ≤
// AUX_RANK_MAX (topk_rank takes the rest). (r, 1, 1) dispatches topk_rank and the AuxK decode,
// (s, 1, 1) the AuxK topk_insert: 0 workgroups when AuxK has no candidate now (no latent dead, or
// AuxK off) and had none at the last step (`empty`), since the empty AuxK lists and the ê = 0 that
// they would write are in their buffers from that step; so with no latent dead AuxK costs nothing.
// Nothing else writes the lists' AuxK region or ê (step-sparse.ts); `empty` starts at 0 in a new
// stepper's zeroed buffer, so its first step runs them.

const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> top_idx: array<u32>;
@group(0) @binding(1) var<storage, read> top_val: array<f32>;
@group(0) @binding(2) var<storage, read_write> fires_step: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> tokens_since: array<u32>;
@group(0) @binding(4) var<storage, read_write> fires_total: array<u32>;
@group(0) @binding(5) var<storage, read_write> dead_flag: array<u32>;
@group(0) @binding(6) var<storage, read_write> dead_list: array<u32>;
@group(0) @binding(7) var<storage, read_write> dead_info: array<u32>;
@group(0) @binding(8) var<uniform> P: StepParams;
override AUX_RANK_ONE: u32 = 0u;   // most dead latents topk_rank handles
override AUX_RANK_MAX: u32 = 0u;   // most dead latents topk_rank_many handles
override AUX_GROUPS: u32 = 0u;     // workgroups of the AuxK bitonic TopK, topk_rank and the AuxK decode
override AUX_INSERT_GROUPS: u32 = 0u;  // workgroups of the AuxK topk_insert
override LOSS_GRAD_GROUPS: u32 = 0u;   // workgroups of loss_grad_v4 where its dispatch is indirect (loss.ts)

@compute @workgroup_size(WG)
fn count_fires(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var e = gid.x; e < P.B * P.k; e += nwg.x * WG) {
    let i = top_idx[e];
    if (i < P.N && top_val[e] > P.fireThreshold) { atomicAdd(&fires_step[i], 1u); }
  }
}

@compute @workgroup_size(WG)
fn update_dead(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < P.N; i += nwg.x * WG) { update_latent(i); }
}

fn update_latent(i: u32) {
  let f = atomicLoad(&fires_step[i]);
  atomicStore(&fires_step[i], 0u);
  fires_total[i] = fires_total[i] + f;
  let prev = tokens_since[i];
  // Saturating add: a latent dead for 4 billion tokens stays dead rather than wrapping to alive.
  let since = select(select(prev + P.B, 0xffffffffu, prev > 0xffffffffu - P.B), 0u, f > 0u);
  tokens_since[i] = since;
  dead_flag[i] = select(0u, 1u, since > P.deadTokens);
}

var<workgroup> part: array<u32, WG>;

@compute @workgroup_size(WG)
fn compact_dead(@builtin(local_invocation_id) lid: vec3<u32>) {
  let per = (P.N + WG - 1u) / WG;
  let lo = min(lid.x * per, P.N);
  let hi = min(lo + per, P.N);
  var n = 0u;
  for (var i = lo; i < hi; i++) { n += dead_flag[i]; }
  part[lid.x] = n;
  workgroupBarrier();
  // Hillis–Steele inclusive scan over the WG partial counts.
  for (var off = 1u; off < WG; off <<= 1u) {
    var add = 0u;
    if (lid.x >= off) { add = part[lid.x - off]; }
    workgroupBarrier();
    part[lid.x] += add;
    workgroupBarrier();
  }
  var pos = part[lid.x] - n;
  for (var i = lo; i < hi; i++) {
    if (dead_flag[i] != 0u) { dead_list[pos] = i; pos++; }
  }
  if (lid.x == WG - 1u) { put_dead_info(part[WG - 1u]); }
}

// compact_dead in one thread (software adapters, where its 256 lanes and 16 barriers cost more than the
// N flags they read): the same list, in index order.
@compute @workgroup_size(1)
fn compact_dead_seq() {
  var count = 0u;
  for (var i = 0u; i < P.N; i++) {
    if (dead_flag[i] != 0u) {
      dead_list[count] = i;
      count++;
    }
  }
  put_dead_info(count);
}

// The dead count and the AuxK TopK's indirect dispatches (both forms of compact_dead).
fn put_dead_info(count: u32) {
  dead_info[0] = count;
  let auxOn = (P.flags & FLAG_AUXK) != 0u;
  dead_info[1] = select(0u, AUX_GROUPS, auxOn && count > AUX_RANK_MAX);
  dead_info[2] = 1u;
  dead_info[3] = 1u;
  dead_info[4] = select(0u, AUX_GROUPS, auxOn && count > AUX_RANK_ONE && count <= AUX_RANK_MAX);
  dead_info[5] = 1u;
  dead_info[6] = 1u;
  // AuxK's candidates (topk.wgsl aux_count): none while it is off.
  let none = !auxOn || count == 0u;
  let skip = none && dead_info[7] == 1u;
  dead_info[7] = select(0u, 1u, none);
  dead_info[8] = select(AUX_GROUPS, 0u, skip);
  dead_info[9] = 1u;
  dead_info[10] = 1u;
  dead_info[12] = select(AUX_INSERT_GROUPS, 0u, skip);
  dead_info[13] = 1u;
  dead_info[14] = 1u;
  // loss_grad_v4 where AuxK is idle (loss.wgsl IDLE_AUX): g is loss_rows_v4's, g_aux unread, nothing
  // left to write (its 256 workgroups returning at once still cost 1 ms at B = 4096, d = 64).
  dead_info[16] = select(LOSS_GRAD_GROUPS, 0u, none);
  dead_info[17] = 1u;
  dead_info[18] = 1u;
}
