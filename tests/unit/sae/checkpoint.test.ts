import { describe, expect, it } from 'vitest';
import { crc32 } from '../../../src/data/crc32.ts';
import { CheckpointStore, memoryFs, opfsFs, StorageFullError } from '../../../src/sae/checkpoint.ts';
import {
  type CheckpointData,
  CheckpointError,
  parseCheckpoint,
  serializeCheckpoint,
} from '../../../src/sae/checkpoint-format.ts';
import { randomState } from '../io/helpers.ts';

const d = 16;
const N = 48;

function ck(step: number, ema = true): CheckpointData {
  return {
    runId: 'run-a',
    step,
    tokens: step * 256,
    config: { d, nLatents: N, k: 4, batchSize: 256, tokens: 1e6, lr: null, inputNorm: 'scalar' },
    data: { epoch: 1, rowsEmitted: step * 256 + 17 },
    rng: [0x9e3779b9, 0x7f4a7c15, 12345, 0],
    metrics: [
      { step: 8, tokens: 2048, loss: 0.9, nmse: Number.NaN, l0: 4, lr: 1e-3 },
      { step: 16, tokens: 4096, loss: 0.5, nmse: 0.6, l0: 4, gradNorm: Number.POSITIVE_INFINITY },
    ],
    normalization: { kind: 'scalar', scale: 0.0421 },
    state: randomState(d, N, step, ema),
    extra: { adapter: 'swiftshader' },
  };
}

const u8 = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('checkpoint blob', () => {
  it('crc32 matches zlib', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('round trip is identical (tensors bit for bit, metadata incl. NaN/Infinity)', () => {
    for (const ema of [true, false]) {
      const c = ck(100, ema);
      const bytes = serializeCheckpoint(c);
      expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe('SAELABCK');
      const back = parseCheckpoint(bytes, 'run-a step 100');
      expect(back.version).toBe(1);
      expect(back.step).toBe(100);
      expect(back.tokens).toBe(25600);
      expect(back.config).toEqual(c.config);
      expect(back.data).toEqual(c.data);
      expect(back.rng).toEqual(c.rng);
      expect(back.metrics).toEqual(c.metrics);
      expect(Number.isNaN((back.metrics[0] as { nmse: number }).nmse)).toBe(true);
      expect(back.normalization).toEqual(c.normalization);
      expect(back.extra).toEqual(c.extra);
      for (const group of ['params', 'm', 'v'] as const)
        for (const key of ['W_enc', 'b_enc', 'W_dec', 'b_pre'] as const)
          expect(u8(back.state[group][key]).equals(u8(c.state[group][key]))).toBe(true);
      if (ema) expect(u8(back.state.ema!.W_dec).equals(u8(c.state.ema!.W_dec))).toBe(true);
      else expect(back.state.ema).toBeNull();
      expect(back.state.tokensSince).toBeInstanceOf(Uint32Array);
      expect(Array.from(back.state.tokensSince)).toEqual(Array.from(c.state.tokensSince)); // incl. values ≥ 2^31
      expect(Array.from(back.state.firesTotal)).toEqual(Array.from(c.state.firesTotal));
      // serialize(parse(x)) reproduces x except for the timestamp
      const again = serializeCheckpoint(back);
      expect(again.length).toBe(bytes.length);
    }
  });

  it("BatchTopK's inference threshold θ round-trips bit for bit, and is absent when the state has none", () => {
    const data = ck(7, false);
    const theta = Math.fround(0.123456789);
    const back = parseCheckpoint(
      serializeCheckpoint({ ...data, state: { ...data.state, inferenceThreshold: theta } }),
    );
    expect(Object.is(back.state.inferenceThreshold, theta)).toBe(true);
    // −1 (not learned yet) is state too
    const unset = parseCheckpoint(
      serializeCheckpoint({ ...data, state: { ...data.state, inferenceThreshold: -1 } }),
    );
    expect(unset.state.inferenceThreshold).toBe(-1);
    expect(parseCheckpoint(serializeCheckpoint(data)).state.inferenceThreshold).toBeUndefined();
  });

  it('a flipped byte anywhere is reported as corrupt', () => {
    const bytes = serializeCheckpoint(ck(5));
    for (const at of [30, Math.floor(bytes.length / 2), bytes.length - 6, bytes.length - 1]) {
      const bad = bytes.slice();
      bad[at] ^= 0x10;
      expect(() => parseCheckpoint(bad, 'run-a step 5')).toThrow(
        'checkpoint run-a step 5 is corrupt (checksum mismatch)',
      );
    }
  });

  it('truncated and foreign files are reported as such', () => {
    const bytes = serializeCheckpoint(ck(5));
    const cut = () => parseCheckpoint(bytes.subarray(0, bytes.length - 1000), 'x');
    expect(cut).toThrow(CheckpointError);
    expect(cut).toThrow(/^checkpoint x is truncated \(.* of .*; the write did not finish\)$/);
    expect(() => parseCheckpoint(bytes.subarray(0, 10), 'x')).toThrow(
      'checkpoint x is truncated (10 bytes; the header alone is 24)',
    );
    expect(() => parseCheckpoint(new Uint8Array(0), 'x')).toThrow(/truncated/);
    expect(() =>
      parseCheckpoint(new TextEncoder().encode('PK\u0003\u0004 definitely a zip file, not ours'), 'x'),
    ).toThrow('checkpoint x is not an SAE Lab checkpoint (no SAELABCK header)');
    try {
      cut();
    } catch (e) {
      expect((e as CheckpointError).problem).toBe('truncated');
    }
  });
});

describe('CheckpointStore', () => {
  it('keeps the last K per run, lists sizes and dates, deletes', async () => {
    const fs = memoryFs();
    const store = new CheckpointStore(fs, { keep: 2 });
    const sizes: number[] = [];
    for (const step of [10, 20, 30]) {
      const b = serializeCheckpoint(ck(step));
      sizes.push(b.length);
      const info = await store.save('run-a', step, b);
      expect(info).toMatchObject({ runId: 'run-a', step, size: b.length });
      expect(info.modified).toBeInstanceOf(Date);
    }
    await store.save('run-b', 7, serializeCheckpoint(ck(7, false)));
    const list = await store.list();
    expect(list.map((c) => `${c.runId}@${c.step}`)).toEqual(['run-a@20', 'run-a@30', 'run-b@7']);
    expect(list[1].size).toBe(sizes[2]);
    expect([...fs.data.get('run-a')!.keys()].every((n) => !n.endsWith('.tmp'))).toBe(true);
    expect((await store.latest('run-a'))!.checkpoint.step).toBe(30);
    await store.delete('run-a', 30);
    expect((await store.latest('run-a'))!.checkpoint.step).toBe(20);
    await store.delete('run-b');
    expect((await store.list()).map((c) => c.runId)).toEqual(['run-a']);
    expect(await store.latest('run-b')).toBeNull();
    await expect(store.save('../evil', 1, new Uint8Array(1))).rejects.toThrow(/run id/);
  });

  it('falls back to the older checkpoint when the newest is corrupt or truncated', async () => {
    const fs = memoryFs();
    const store = new CheckpointStore(fs, { keep: 3 });
    for (const step of [1, 2, 3]) await store.save('r', step, serializeCheckpoint(ck(step)));
    const f3 = fs.data.get('r')!.get('step-000000000003.ckpt')!;
    f3.bytes[f3.bytes.length >> 1] ^= 0xff;
    let got = (await store.latest('r'))!;
    expect(got.checkpoint.step).toBe(2);
    expect(got.skipped.map((s) => s.info.step)).toEqual([3]);
    expect(got.warning).toBe(
      'checkpoint r step 3 is corrupt (checksum mismatch); an older checkpoint is available (step 2) and was loaded instead',
    );
    const f2 = fs.data.get('r')!.get('step-000000000002.ckpt')!;
    f2.bytes = f2.bytes.slice(0, 100);
    got = (await store.latest('r'))!;
    expect(got.checkpoint.step).toBe(1);
    expect(got.skipped.map((s) => s.error)).toEqual([
      'checkpoint r step 3 is corrupt (checksum mismatch)',
      expect.stringMatching(/^checkpoint r step 2 is truncated/),
    ]);
    fs.data.get('r')!.get('step-000000000001.ckpt')!.bytes[50] ^= 1;
    await expect(store.latest('r')).rejects.toThrow(
      'checkpoint r step 3 is corrupt (checksum mismatch); no older checkpoint is available',
    );
  });

  it('a crash mid-write never destroys the last good checkpoint', async () => {
    const fs = memoryFs();
    const store = new CheckpointStore(fs, { keep: 1 });
    await store.save('r', 1, serializeCheckpoint(ck(1)));
    fs.crashNextWriteAt = 1234;
    await expect(store.save('r', 2, serializeCheckpoint(ck(2)))).rejects.toThrow(/crash/);
    const got = (await store.latest('r'))!;
    expect(got.checkpoint.step).toBe(1);
    expect(got.warning).toBeNull();
    expect([...fs.data.get('r')!.keys()]).toEqual(['step-000000000001.ckpt']);
  });

  it('reports a full quota clearly, from estimate() or from a QuotaExceededError, keeping old checkpoints', async () => {
    const one = serializeCheckpoint(ck(1));
    const fs = memoryFs({ quota: Math.floor(one.length * 1.5) });
    const store = new CheckpointStore(fs, { keep: 2 });
    await store.save('r', 1, one);
    const need = (one.length / 1e6).toFixed(1);
    const free = ((Math.floor(one.length * 1.5) - one.length) / 1e6).toFixed(1);
    const msg = `not enough browser storage for checkpoint (need ${need} MB, ${free} MB free): delete old checkpoints`;
    await expect(store.save('r', 2, serializeCheckpoint(ck(2)))).rejects.toThrow(msg);

    // Browsers whose estimate() is unknown: the write itself fails with QuotaExceededError.
    const noEstimate = { ...fs, estimate: async () => null };
    const store2 = new CheckpointStore(noEstimate, { keep: 2 });
    const err = await store2.save('r', 2, serializeCheckpoint(ck(2))).catch((e) => e);
    expect(err).toBeInstanceOf(StorageFullError);
    expect(err.message).toBe(
      `not enough browser storage for checkpoint (need ${need} MB, unknown free): delete old checkpoints`,
    );
    expect((await store.list('r')).map((c) => c.step)).toEqual([1]);
    expect((await store.latest('r'))!.checkpoint.step).toBe(1);
  });
});

/** A small in-memory stand-in for the OPFS handle API, to exercise opfsFs in node. */
function fakeOpfs(withMove: boolean) {
  type Node =
    | { kind: 'file'; name: string; bytes: Uint8Array; t: number }
    | { kind: 'directory'; name: string; kids: Map<string, Node> };
  const root: Node = { kind: 'directory', name: '', kids: new Map() };
  const nf = () => new DOMException('not found', 'NotFoundError');
  const fileHandle = (parent: Map<string, Node>, node: Node & { kind: 'file' }) => ({
    kind: 'file',
    name: node.name,
    getFile: async () => ({
      size: node.bytes.length,
      lastModified: node.t,
      arrayBuffer: async () => node.bytes.slice().buffer,
    }),
    createWritable: async () => {
      const parts: Uint8Array[] = [];
      return {
        write: async (b: Uint8Array) => void parts.push(new Uint8Array(b)),
        close: async () => {
          node.bytes = new Uint8Array(Buffer.concat(parts));
          node.t = Date.now();
        },
      };
    },
    ...(withMove
      ? {
          move: async (to: string) => {
            parent.delete(node.name);
            node.name = to;
            parent.set(to, node);
          },
        }
      : {}),
  });
  const dirHandle = (node: Node & { kind: 'directory' }): unknown => ({
    kind: 'directory',
    name: node.name,
    async getDirectoryHandle(name: string, o?: { create?: boolean }) {
      let n = node.kids.get(name);
      if (!n && o?.create) {
        n = { kind: 'directory', name, kids: new Map() };
        node.kids.set(name, n);
      }
      if (n?.kind !== 'directory') throw nf();
      return dirHandle(n);
    },
    async getFileHandle(name: string, o?: { create?: boolean }) {
      let n = node.kids.get(name);
      if (!n && o?.create) {
        n = { kind: 'file', name, bytes: new Uint8Array(0), t: Date.now() };
        node.kids.set(name, n);
      }
      if (n?.kind !== 'file') throw nf();
      return fileHandle(node.kids, n);
    },
    async removeEntry(name: string) {
      if (!node.kids.delete(name)) throw nf();
    },
    async *values() {
      for (const n of [...node.kids.values()]) yield { kind: n.kind, name: n.name };
    },
  });
  return {
    root,
    storage: {
      getDirectory: async () => dirHandle(root),
      estimate: async () => ({ usage: 1000, quota: 1e9 }),
    },
  };
}

describe('opfsFs (over a fake OPFS)', () => {
  for (const withMove of [true, false]) {
    it(`saves, lists, falls back and deletes${withMove ? '' : ' (no move(): writes in place)'}`, async () => {
      const fake = fakeOpfs(withMove);
      const nav = globalThis.navigator as unknown as { storage?: unknown } | undefined;
      const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
      Object.defineProperty(globalThis, 'navigator', {
        value: { ...(nav ?? {}), storage: fake.storage },
        configurable: true,
      });
      try {
        const fs = await opfsFs();
        expect(typeof fs.rename === 'function').toBe(withMove);
        const store = new CheckpointStore(fs, { keep: 2 });
        for (const s of [1, 2, 3]) await store.save('run', s, serializeCheckpoint(ck(s)));
        expect((await store.list()).map((c) => c.step)).toEqual([2, 3]);
        expect((await store.latest('run'))!.checkpoint.step).toBe(3);
        // Corrupt the newest file behind the store's back.
        const top = fake.root.kids.get('sae-lab-checkpoints');
        const runDir = top && top.kind === 'directory' ? top.kids.get('run') : undefined;
        const f =
          runDir && runDir.kind === 'directory' ? runDir.kids.get('step-000000000003.ckpt') : undefined;
        if (f?.kind !== 'file') throw new Error('fake OPFS layout unexpected');
        f.bytes[100] ^= 1;
        const got = (await store.latest('run'))!;
        expect(got.checkpoint.step).toBe(2);
        expect(got.warning).toMatch(/is corrupt \(checksum mismatch\); an older checkpoint is available/);
        await store.delete('run');
        expect(await store.list()).toEqual([]);
        expect(await fs.files('run')).toEqual([]);
      } finally {
        if (saved) Object.defineProperty(globalThis, 'navigator', saved);
        else delete (globalThis as { navigator?: unknown }).navigator;
      }
    });
  }
});
