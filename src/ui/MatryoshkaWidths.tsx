/**
 * Matryoshka's nested prefix widths as a comma list (m₁ < … < m_G = N); empty means the default
 * rule (src/sae/config.ts matryoshkaWidthsRule). Text that is not a list of integers is kept as typed
 * and reaches the config as [NaN], so validateConfig names the problem under the field.
 */
import { useState } from 'react';
import { matryoshkaWidthsRule } from '../sae/config';
import { setConfig, useLab } from '../store/lab';

const parse = (t: string): number[] | null =>
  t.trim() === ''
    ? null
    : t
        .split(/[\s,]+/)
        .filter((s) => s !== '')
        .map((s) => (/^\d+$/.test(s.replace(/_/g, '')) ? Number(s.replace(/_/g, '')) : Number.NaN));
const show = (w: number[] | null) => (w ? w.join(', ') : '');

export function MatryoshkaWidths({ nLatents, error }: { nLatents: number; error?: string }) {
  const value = useLab((s) => s.config.matryoshkaWidths);
  const [text, setText] = useState(show(value));
  const [synced, setSynced] = useState(value);
  // Follow presets and resets in the same render (as NumberField does), keeping text that already
  // means the new value.
  if (value !== synced) {
    setSynced(value);
    if (show(parse(text)) !== show(value)) setText(show(value));
  }
  const auto = Number.isInteger(nLatents) && nLatents > 0 ? matryoshkaWidthsRule(nLatents).join(', ') : '';
  return (
    <div className={`field${error ? ' invalid' : ''}`}>
      <label htmlFor="cfg-matryoshkaWidths">Nested widths</label>
      <input
        id="cfg-matryoshkaWidths"
        data-testid="cfg-matryoshkaWidths"
        type="text"
        value={text}
        placeholder={`auto: ${auto}`}
        aria-invalid={!!error}
        onChange={(e) => {
          setText(e.target.value);
          setConfig('matryoshkaWidths', parse(e.target.value));
        }}
      />
      <p className="help">
        Prefix widths m₁ &lt; … &lt; N: the first m latents alone must reconstruct the input, for each m (sum
        of the prefix losses). Empty: N/64, N/16, N/4, N.
      </p>
      {error && <p className="field-error">{error}</p>}
    </div>
  );
}
