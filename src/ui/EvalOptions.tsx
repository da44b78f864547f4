/** The evaluation's options: rows, explanations, labels and directions files, downstream and ablation. */
import { setEvalOption, useEval } from '../store/eval';
import { useLab } from '../store/lab';

/** `demo`: the dataset's language model can be spliced (demo or extracted in the page), named `lmName`. */
export function EvalOptions({ demo, lmName }: { demo: boolean; lmName: string }) {
  const info = useLab((s) => s.dataset.info);
  const o = useEval((s) => s.options);
  return (
    <div className="grid eval-options">
      <div className="field">
        <label htmlFor="eval-max-rows">Max rows</label>
        <input
          id="eval-max-rows"
          type="number"
          min={256}
          step={1024}
          value={o.maxRows}
          data-testid="eval-max-rows"
          onChange={(e) => setEvalOption('maxRows', Math.max(1, Number(e.target.value) || 0))}
        />
        <p className="help">held-out rows encoded on the GPU</p>
      </div>
      <div className="field">
        <label htmlFor="eval-explain">Latents to explain</label>
        <input
          id="eval-explain"
          type="number"
          min={0}
          value={o.explainLatents}
          data-testid="eval-explain"
          onChange={(e) => setEvalOption('explainLatents', Math.max(0, Number(e.target.value) || 0))}
        />
        <p className="help">N2G token patterns{info && !info.hasTokens ? ' (needs token ids)' : ''}</p>
      </div>
      <div className="field">
        <label htmlFor="eval-labels">Labels (.npy)</label>
        <input
          id="eval-labels"
          type="file"
          accept=".npy"
          data-testid="eval-labels"
          onChange={(e) => setEvalOption('labels', e.target.files?.[0] ?? null)}
        />
        <p className="help">one integer per row → probe losses</p>
      </div>
      <div className="field">
        <label htmlFor="eval-directions">True directions (.npy)</label>
        <input
          id="eval-directions"
          type="file"
          accept=".npy"
          data-testid="eval-directions"
          onChange={(e) => setEvalOption('directions', e.target.files?.[0] ?? null)}
        />
        <p className="help">
          [F, d] → feature recovery{info?.kind === 'synthetic' ? ' (synthetic: built in)' : ''}
        </p>
      </div>
      {demo && (
        <div className="field toggle">
          <label>
            <input
              type="checkbox"
              checked={o.downstream}
              data-testid="eval-downstream"
              onChange={(e) => setEvalOption('downstream', e.target.checked)}
            />
            Downstream loss
          </label>
          <p className="help">splice the SAE into {lmName} (WGSL forward on the GPU)</p>
        </div>
      )}
      {demo && (
        <div className="field toggle">
          <label>
            <input
              type="checkbox"
              checked={o.ablation}
              data-testid="eval-ablation"
              onChange={(e) => setEvalOption('ablation', e.target.checked)}
            />
            Ablation sparsity
          </label>
          <p className="help">
            <input
              type="number"
              min={1}
              value={o.ablationLatents}
              aria-label="latents to ablate"
              data-testid="eval-ablation-latents"
              style={{ width: '5em' }}
              onChange={(e) =>
                setEvalOption('ablationLatents', Math.max(1, Math.floor(Number(e.target.value) || 1)))
              }
            />{' '}
            latents over{' '}
            <input
              type="number"
              min={16}
              step={128}
              value={o.ablationTokens}
              aria-label="tokens to look for them in"
              data-testid="eval-ablation-tokens"
              style={{ width: '5.5em' }}
              onChange={(e) =>
                setEvalOption('ablationTokens', Math.max(16, Math.floor(Number(e.target.value) || 16)))
              }
            />{' '}
            held-out tokens: how many logits each latent moves (§4.5)
          </p>
        </div>
      )}
    </div>
  );
}
