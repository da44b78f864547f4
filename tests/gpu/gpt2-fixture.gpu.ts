/**
 * The WGSL GPT-2 forward on the Hugging Face-layout fixture checkpoint (tests/fixtures/gpt2/, written
 * by scripts/fixtures/gpt2_fixture.py: d = 24, 3 heads, 2 layers, n_inner 40, V = 80) against the
 * fixture's independent float64 numpy forward: every site of both layers and the logits, read through
 * the same loader as the page (readGpt2Checkpoint), F32 with bare and `transformer.`-prefixed keys.
 * Then extraction on the WGSL forward (extractGpt2WindowsAsync) against extraction on the float64
 * twin (extractGpt2Activations): the same windows, rows, ids and positions.
 * Tolerance: per row, ‖got − ref‖ / ‖ref‖ ≤ 1e-5.
 */
import { parseNpyHeader } from '../../src/data/npy';
import { extractGpt2Activations, extractGpt2WindowsAsync } from '../../src/lm/extract';
import { readGpt2Checkpoint } from '../../src/lm/gpt2/checkpoint';
import { Gpt2 } from '../../src/lm/gpt2/forward';
import { GpuGpt2 } from '../../src/lm/gpt2/gpu-forward';
import { type Gpt2Site, type Gpt2SiteKind, hookName } from '../../src/lm/gpt2/types';
import { assert, gpuTest } from './harness';

const DIR = '/tests/fixtures/gpt2';
/** The order of the reference's second axis: sites [L, 5, T, d]. */
const KINDS: Gpt2SiteKind[] = ['resid_pre', 'attn_out', 'resid_mid', 'mlp_out', 'resid_post'];

async function fetchBytes(url: string): Promise<Uint8Array<ArrayBuffer>> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** A whole little-endian '<f8' or '<i4' .npy. */
async function npy(name: string): Promise<{ shape: number[]; data: Float64Array | Int32Array }> {
  const bytes = await fetchBytes(`${DIR}/${name}`);
  const h = parseNpyHeader(bytes, name);
  if ('needMore' in h) throw new Error(`${name}: truncated header`);
  const body = bytes.slice(h.dataOffset).buffer;
  if (h.descr === '<f8') return { shape: h.shape, data: new Float64Array(body) };
  if (h.descr === '<i4') return { shape: h.shape, data: new Int32Array(body) };
  throw new Error(`${name}: dtype ${h.descr}`);
}

/** max over rows of ‖a_t − b_t‖ / ‖b_t‖, rows of width n. */
function rowErr(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  assert(a.length === b.length, `length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let o = 0; o < b.length; o += n) {
    let num = 0;
    let den = 0;
    for (let i = o; i < o + n; i++) {
      num += (a[i] - b[i]) ** 2;
      den += b[i] ** 2;
    }
    worst = Math.max(worst, Math.sqrt(num / den));
  }
  return worst;
}

async function fixture(variant: string) {
  return readGpt2Checkpoint({
    config: new TextDecoder().decode(await fetchBytes(`${DIR}/${variant}/config.json`)),
    model: new Blob([await fetchBytes(`${DIR}/${variant}/model.safetensors`)]),
    name: variant,
  });
}

for (const variant of ['f32', 'f32_prefixed']) {
  gpuTest(
    `gpt2 fixture ${variant}: every site and logits vs the independent float64 numpy forward`,
    async (device) => {
      const ckpt = await readGpt2Checkpoint({
        config: new TextDecoder().decode(await fetchBytes(`${DIR}/${variant}/config.json`)),
        model: new Blob([await fetchBytes(`${DIR}/${variant}/model.safetensors`)]),
        name: variant,
      });
      const tokens = (await npy('ref_tokens.npy')).data as Int32Array;
      const sites = await npy('ref_sites.npy');
      const logits = await npy('ref_logits.npy');
      const { nLayer: L, nEmbd: d, vocabSize: V } = ckpt.config;
      const T = tokens.length;
      assert(sites.shape.join() === [L, 5, T, d].join(), `reference sites shape ${sites.shape}`);
      const want: Gpt2Site[] = [];
      for (let layer = 0; layer < L; layer++) for (const kind of KINDS) want.push({ kind, layer });
      const model = GpuGpt2.create(device, ckpt);
      try {
        const got = await model.forward(tokens, { sites: want });
        const errs: number[] = [];
        want.forEach((s, j) => {
          const ref = sites.data.subarray(j * T * d, (j + 1) * T * d);
          const e = rowErr(got.sites.get(hookName(s))!, ref, d);
          if (!(e <= 1e-5)) throw new Error(`${hookName(s)}: row error ${e.toExponential(3)} > 1e-5`);
          errs.push(e);
        });
        const el = rowErr(got.logits!, logits.data, V);
        if (!(el <= 1e-5)) throw new Error(`logits: row error ${el.toExponential(3)} > 1e-5`);
        console.log(
          `    T=${T}: max row error sites ${Math.max(...errs).toExponential(2)}, logits ${el.toExponential(2)}`,
        );
      } finally {
        model.destroy();
      }
    },
  );
}

gpuTest(
  'gpt2 fixture: extraction on the WGSL forward equals extraction on the float64 twin',
  async (device) => {
    const ckpt = await fixture('f32');
    const V = ckpt.config.vocabSize;
    // A stand-in tokenizer over the fixture's 80 ids (the byte-level BPE is tested on its own):
    // one id per character, <|endoftext|> = 79 opens each window.
    const tok = {
      vocabSize: V,
      eotId: V - 1,
      pieces: Array.from({ length: V }, (_, i) => String.fromCharCode(32 + i)),
      name: 'chars',
      encode: (text: string) => Int32Array.from(text, (ch) => ch.charCodeAt(0) % (V - 1)),
      decode: (ids: ArrayLike<number>) => Array.from(ids, (i) => String.fromCharCode(32 + i)).join(''),
    };
    const text =
      'the theme of the text\n\nthe end, then the rest; a paragraph longer than one window of ten.\n\nA third.';
    const site: Gpt2Site = { kind: 'resid_mid', layer: 1 };
    const opts = { window: 10 };
    const want = extractGpt2Activations(new Gpt2(ckpt, { dtype: 'f64' }), tok, text, site, opts);
    const model = GpuGpt2.create(device, ckpt, 10);
    try {
      const rows: Float32Array[] = [];
      const ids: number[] = [];
      const pos: number[] = [];
      let windows = 0;
      for await (const c of extractGpt2WindowsAsync(model, tok, text, site, opts)) {
        rows.push(c.acts);
        ids.push(...c.tokens);
        pos.push(...c.positions);
        windows = c.progress.windowsDone;
      }
      const acts = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
      let o = 0;
      for (const r of rows) {
        acts.set(r, o);
        o += r.length;
      }
      assert(windows === want.windows && windows > 3, `windows ${windows} vs ${want.windows}`);
      assert(ids.join() === Array.from(want.tokens).join(), 'token ids');
      assert(pos.join() === Array.from(want.positions).join(), 'positions');
      const e = rowErr(acts, want.acts, ckpt.config.nEmbd);
      if (!(e <= 1e-5)) throw new Error(`extracted rows: row error ${e.toExponential(3)} > 1e-5`);
      console.log(`    ${want.nTokens} rows in ${windows} windows, max row error ${e.toExponential(2)}`);
    } finally {
      model.destroy();
    }
  },
);
