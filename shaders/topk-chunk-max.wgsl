// Appended after topk-chunked.wgsl for the 'chunkmax' variant: step 1's chunk maxima are not scanned
// from pre but read from pre_max [B, ⌈N / CH⌉], which the unrolled encoder wrote while its register
// tile held the values (encode.wgsl; CH = its RN). The same maxima (NaN and -inf as NEG_MAX), so the
// same lists: step 2 still reads the chosen chunks from pre.
@group(0) @binding(8) var<storage, read> pre_max: array<f32>;

fn chunk_max_given(s: Src, row: u32, c0: u32) -> f32 {
  return pre_max[row * ((s.count + CH - 1u) / CH) + c0 / CH];
}
