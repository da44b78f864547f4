import { DEAD_INFO_WORDS } from '../../src/gpu/kernel-variants';
import { setGpuForms, setIdleAux } from '../../src/gpu/kernels/kernel';
import { LOSS_GRAD_OFFSET } from '../../src/gpu/kernels/loss';
import type { TopKVariant } from '../../src/gpu/kernels/topk';
import { newRefState, PARAM_NAMES } from '../../src/reference/state';
import { refStep } from '../../src/reference/step';
import { resolveConfig } from '../../src/sae/config';
import { GpuSae } from '../../src/sae/step';
import { DEFAULT_KERNELS } from '../../src/sae/step-host';
import { assert, assertClose, gpuTest, randn, relErr } from './harness';
import { randomParams, toF64 } from './step.gpu';

// AuxK priced by what is dead: while no latent is dead, and none was at the step before, compact_dead
// dispatches the AuxK TopK (topk_rank for the bitonic variant, topk_insert for 'insert') and the AuxK
// decode with 0 workgroups (dead.wgsl), and while none is dead the loss writes no g_aux and db_pre
// leaves it out (IDLE_AUX; the test fills g_aux with NaN then: any read of it would show). Two
// steppers run the same sequence — dead latents, none (runs, writes the empty lists and ê = 0), none
// (skipped), none (skipped), dead again — one of them forced to run every AuxK dispatch (deadInfo's
// `empty` word cleared before each step) and to write and add g_aux: every buffer a later step reads
// must agree bit for bit, and both must follow the float64 reference. A skipped dispatch
// is not run: recorded alone over poisoned outputs, it leaves them (step 5, with latents dead, then
// writes every one of them).
// loss_grad_v4's dispatch (lossGrad) is 0 workgroups while AuxK has no candidate now (the software vec4
// form, where loss_rows_v4 writes g; dispatched directly elsewhere, the word left 0).
const DEAD_WORDS = { count: 0, empty: 7, rank: 8, insert: 12, lossGrad: LOSS_GRAD_OFFSET / 4 };

// The software vec4 forms with both AuxK TopK entries, the scalar forms (d = 7), the GPU forms.
const CASES: { topk: TopKVariant; d: number; gpu?: boolean }[] = [
  { topk: 'bitonic', d: 12 },
  { topk: 'insert', d: 12 },
  { topk: 'bitonic', d: 7 },
  { topk: 'bitonic', d: 12, gpu: true },
];

for (const { topk, d, gpu } of CASES) {
  gpuTest(
    `AuxK skipped while no latent is dead: the same bits as running it (${topk} TopK, d=${d}${gpu ? ', GPU forms' : ''})`,
    async (device) => {
      const B = 16;
      const N = 40;
      const k = 4;
      const kAux = 6;
      const cfg = resolveConfig({ d, nLatents: N, k, kAux, batchSize: B, deadTokens: 100, lr: 1e-2 });
      const p32 = randomParams(N, d, 21);
      const rowScale = new Float32Array(B).fill(1);
      const lossScale = 1 / B;
      const make = (idle: boolean) => {
        setIdleAux(device, idle);
        if (gpu) setGpuForms(device, true);
        const sae = new GpuSae(device, cfg, { ...DEFAULT_KERNELS, topk });
        setGpuForms(device, null);
        setIdleAux(device, null);
        sae.setState({ params: p32 });
        return sae;
      };
      const skipper = make(true);
      // Its loss writes g_aux, and db_pre adds it, at every step.
      const runner = make(false);
      const ref = newRefState(toF64(p32), N, false);
      // Per step: whether every latent starts it long unfired (then the ones this batch misses are dead).
      const deadBefore = [true, false, false, false, true];
      const skipped: boolean[] = [];
      for (let t = 1; t <= deadBefore.length; t++) {
        const x = randn(B * d, 100 + t);
        const since = new Uint32Array(N).fill(deadBefore[t - 1] ? 100 : 0);
        for (const sae of [skipper, runner]) {
          device.queue.writeBuffer(sae.b.tokensSince, 0, since);
          sae.writeBatch(x, rowScale);
        }
        device.queue.writeBuffer(runner.b.deadInfo, 4 * DEAD_WORDS.empty, new Uint32Array([0]));
        // No AuxK candidate: the loss leaves g_aux as it was, and db_pre does not read it.
        const idle = !deadBefore[t - 1];
        if (idle) device.queue.writeBuffer(skipper.b.gAux, 0, new Float32Array(B * d).fill(Number.NaN));
        skipper.step(t, cfg.lr, lossScale);
        runner.step(t, cfg.lr, lossScale);
        ref.tokensSince.set(since);
        const out = refStep(ref, x, rowScale, cfg, lossScale, cfg.lr);

        const info = await skipper.readU32('deadInfo', DEAD_INFO_WORDS);
        const infoRun = await runner.readU32('deadInfo', DEAD_INFO_WORDS);
        const lossIndirect = !gpu && d % 4 === 0;
        assert(
          info[DEAD_WORDS.lossGrad] > 0 === (lossIndirect && !idle) && infoRun[DEAD_WORDS.lossGrad] === 0,
          `step ${t}: loss_grad_v4's dispatch ${info[DEAD_WORDS.lossGrad]} (forced run ${infoRun[DEAD_WORDS.lossGrad]})`,
        );
        assert(
          info[DEAD_WORDS.count] === out.deadList.length,
          `step ${t}: dead ${info[0]} != ${out.deadList.length}`,
        );
        assert(
          out.deadList.length > 0 === deadBefore[t - 1],
          `step ${t}: the case meant dead=${deadBefore[t - 1]}`,
        );
        const word = topk === 'insert' ? DEAD_WORDS.insert : DEAD_WORDS.rank;
        skipped.push(info[word] === 0);
        assert(
          infoRun[word] > 0 && infoRun[DEAD_WORDS.rank] > 0,
          `step ${t}: the forced stepper skipped AuxK`,
        );
        // The AuxK decode shares topk_rank's dispatch words.
        assert((info[DEAD_WORDS.rank] === 0) === (info[word] === 0), `step ${t}: TopK and decode disagree`);
        const E = B * (k + kAux);
        for (const name of ['idxAll', 'start', 'rows', 'deadList'] as const) {
          const n = name === 'start' ? N + 1 : name === 'deadList' ? N : E;
          const a = await skipper.readU32(name, n);
          const b = await runner.readU32(name, n);
          assert(
            a.every((v, i) => v === b[i]),
            `step ${t}: ${name} differs from the forced run`,
          );
        }
        if (idle)
          assert(
            (await skipper.readF32('gAux', B * d)).every((v) => Number.isNaN(v)),
            `step ${t}: g_aux written with no AuxK candidate`,
          );
        // g's level rows (then, where the plan holds it, g's copy of g_aux: unwritten when idle).
        for (const [name, n] of [
          ['valAll', E],
          ['eHat', B * d],
          ['xHat', B * d],
          ['g', B * d],
          ...(idle ? [] : ([['gAux', B * d]] as const)),
          ['dW_enc', N * d],
          ['dW_dec', N * d],
          ['db_enc', N],
          ['db_pre', d],
          ['metrics', undefined],
        ] as const) {
          const a = new Uint32Array((await skipper.readF32(name, n)).buffer);
          const b = new Uint32Array((await runner.readF32(name, n)).buffer);
          assert(
            a.length === b.length && a.every((v, i) => v === b[i]),
            `step ${t}: ${name} bits differ from the forced run`,
          );
        }
        assertClose(await skipper.readF32('eHat', B * d), out.eHat, 1e-5, 1e-5, `step ${t}: e_hat`);
        if (t === 4) {
          // Skipped means not dispatched: AuxK's TopK and decode alone, on poisoned outputs, leave them.
          const poison = { idx: new Uint32Array(B * kAux), val: new Float32Array(B * kAux).fill(1) };
          device.queue.writeBuffer(skipper.b.idxAll, 4 * B * k, poison.idx);
          device.queue.writeBuffer(skipper.b.valAll, 4 * B * k, poison.val);
          device.queue.writeBuffer(skipper.b.eHat, 0, new Float32Array(B * d).fill(7));
          const enc = device.createCommandEncoder();
          const pass = enc.beginComputePass();
          for (const ph of skipper.phases)
            if (ph.name === 'topk-aux' || ph.name === 'decode-aux') ph.record(pass);
          pass.end();
          device.queue.submit([enc.finish()]);
          const val = await skipper.readF32('valAll', B * (k + kAux));
          assert(
            val.subarray(B * k).every((v) => v === 1),
            'the AuxK TopK ran while skipped',
          );
          assert(
            (await skipper.readF32('eHat', B * d)).every((v) => v === 7),
            'the AuxK decode ran while skipped',
          );
        }
        const [m] = await skipper.readMetrics(t - 1, t);
        assertClose(
          [m.loss, m.auxLoss, m.deadCount],
          [out.loss, out.auxLoss, out.deadList.length],
          1e-7,
          2e-5,
          `step ${t}: metrics`,
        );
      }
      // Step 2 follows a step with dead latents (its AuxK writes the empty lists), 3 and 4 are skipped,
      // 5 has dead latents again.
      assert(skipped.join() === 'false,false,true,true,false', `AuxK skipped at steps ${skipped}`);
      const a = await skipper.readParams();
      const b = await runner.readParams();
      for (const p of PARAM_NAMES) {
        assert(
          new Uint32Array(a[p].buffer).every((v, i) => v === new Uint32Array(b[p].buffer)[i]),
          `${p} bits differ`,
        );
        const err = relErr(a[p], ref.params[p]);
        assert(err < 1e-4, `param ${p} after 5 steps: relative error ${err.toExponential(2)} ≥ 1e-4`);
      }
      skipper.destroy();
      runner.destroy();
    },
  );
}
