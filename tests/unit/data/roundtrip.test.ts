/**
 * Interop with numpy: files written by our writers are read back by python3 + numpy
 * (safetensors header parsed by hand, no safetensors package), and python-written
 * fixtures are checked above. Needs python3 + numpy (tests/unit/prereq.ts: skipped without, failed under CI).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../../src/data/half.ts';
import { writeNpy } from '../../../src/data/npy.ts';
import { openActivationFile } from '../../../src/data/open.ts';
import { Rng } from '../../../src/data/rng.ts';
import { readSafetensors, writeSafetensors } from '../../../src/data/safetensors.ts';
import { describeNeeds, NUMPY } from '../prereq.ts';

const dir = mkdtempSync(join(tmpdir(), 'sae-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function py(code: string, ...args: string[]): unknown {
  return JSON.parse(execFileSync('python3', ['-c', code, ...args], { encoding: 'utf8' }));
}

const READ_ST = `
import sys, json, struct, numpy as np
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
hdr = json.loads(raw[8:8+n])
meta = hdr.pop('__metadata__', {})
dt = {'F32': '<f4', 'F16': '<f2', 'F64': '<f8', 'I32': '<i4', 'I64': '<i8', 'BF16': '<u2'}
out = {'meta': meta, 'tensors': {}, 'aligned': True}
for name, t in hdr.items():
    b, e = t['data_offsets']
    a = np.frombuffer(raw[8+n+b:8+n+e], dtype=dt[t['dtype']]).reshape(t['shape'])
    if t['dtype'] == 'BF16':
        a = (a.astype(np.uint32) << 16).view(np.float32)
    if (8 + n + b) % np.dtype(dt[t['dtype']]).itemsize: out['aligned'] = False
    out['tensors'][name] = {'dtype': t['dtype'], 'shape': t['shape'], 'values': [v if np.isfinite(v) else str(float(v)) for v in a.ravel().tolist()]}
print(json.dumps(out))
`;

describeNeeds(NUMPY)('numpy interop', () => {
  it('safetensors written in TS is read by python with the same values', () => {
    const rng = new Rng(11);
    const w = Float32Array.from({ length: 6 * 5 }, () => rng.normal() * 10);
    w[0] = Number.NaN;
    w[1] = 1e-6;
    w[2] = 70000;
    const ints = Int32Array.from([1, -2, 3, 2147483647]);
    const bytes = writeSafetensors(
      {
        W_dec: { dtype: 'F32', shape: [6, 5], data: w },
        half: { dtype: 'F16', shape: [6, 5], data: w },
        bhalf: { dtype: 'BF16', shape: [30], data: w },
        idx: { dtype: 'I32', shape: [2, 2], data: ints },
        count: { dtype: 'I64', shape: [4], data: ints },
        b_pre: { dtype: 'F64', shape: [5], data: Float64Array.from([0.1, 0.2, 0.3, 0.4, 0.5]) },
      },
      { format: 'sae-lab', k: '32' },
    );
    const path = join(dir, 'model.safetensors');
    writeFileSync(path, bytes);
    const got = py(READ_ST, path) as {
      meta: Record<string, string>;
      aligned: boolean;
      tensors: Record<string, { dtype: string; shape: number[]; values: (number | string)[] }>;
    };
    expect(got.meta).toEqual({ format: 'sae-lab', k: '32' });
    expect(got.aligned).toBe(true);
    const num = (v: number | string) =>
      typeof v === 'string' ? Number(v.replace('inf', 'Infinity').replace('nan', 'NaN')) : v;
    expect(got.tensors.W_dec.shape).toEqual([6, 5]);
    expect(got.tensors.W_dec.values.map(num)).toEqual(Array.from(w));
    expect(got.tensors.half.values.map(num)).toEqual(Array.from(w, (x) => f16BitsToF32(f32ToF16Bits(x))));
    expect(got.tensors.bhalf.values.map(num)).toEqual(Array.from(w, (x) => bf16BitsToF32(f32ToBf16Bits(x))));
    expect(got.tensors.idx.values).toEqual([1, -2, 3, 2147483647]);
    expect(got.tensors.count.values).toEqual([1, -2, 3, 2147483647]);
    expect(got.tensors.b_pre.values).toEqual([0.1, 0.2, 0.3, 0.4, 0.5]);

    // and our own whole-file reader agrees
    const back = readSafetensors(bytes, 'model.safetensors');
    expect(back.metadata).toEqual({ format: 'sae-lab', k: '32' });
    expect(back.tensors.W_dec.data).toEqual(w);
    expect(Array.from(back.tensors.count.data as BigInt64Array)).toEqual([1n, -2n, 3n, 2147483647n]);
    expect(Array.from(back.tensors.b_pre.data as Float64Array)).toEqual([0.1, 0.2, 0.3, 0.4, 0.5]);
    expect(back.tensors.half.data).toEqual(Float32Array.from(w, (x) => f16BitsToF32(f32ToF16Bits(x))));
  });

  it('python numpy rounds to float16 the same way as f32ToF16Bits', () => {
    const rng = new Rng(12);
    const xs = Float32Array.from({ length: 2000 }, (_, i) => (rng.nextFloat() - 0.5) * 2 ** ((i % 40) - 26));
    const path = join(dir, 'xs.npy');
    writeFileSync(path, writeNpy(xs, [xs.length]));
    const bits = py(
      `import sys, json, numpy as np; print(json.dumps(np.load(sys.argv[1]).astype(np.float16).view(np.uint16).tolist()))`,
      path,
    ) as number[];
    expect(Array.from(xs, (x) => f32ToF16Bits(x))).toEqual(bits);
  });

  it('writeNpy output loads in numpy (f4 and i4) and in our reader', async () => {
    const x = Float32Array.from({ length: 12 }, (_, i) => i * 1.5 - 3);
    const ids = Int32Array.from({ length: 12 }, (_, i) => i * 1000 - 7);
    const px = join(dir, 'x.npy');
    const pi = join(dir, 'i.npy');
    writeFileSync(px, writeNpy(x, [3, 4]));
    writeFileSync(pi, writeNpy(ids, [2, 6]));
    const got = py(
      `import sys, json, numpy as np
a = np.load(sys.argv[1]); b = np.load(sys.argv[2])
print(json.dumps([str(a.dtype), list(a.shape), a.ravel().tolist(), str(b.dtype), list(b.shape), b.ravel().tolist()]))`,
      px,
      pi,
    );
    expect(got).toEqual(['float32', [3, 4], Array.from(x), 'int32', [2, 6], Array.from(ids)]);
    const src = await openActivationFile(new Blob([writeNpy(x, [3, 4]) as Uint8Array<ArrayBuffer>]), 'x.npy');
    expect(await src.readRows(0, 3)).toEqual(x);
  });
});
