/**
 * Sweeps: the scaling-law sweep over N × k (ScalingSweep.tsx) and the method comparison at one N
 * (CompareMethods.tsx), one tab each; the tab opens on the comparison when only it has a run.
 */
import { useState } from 'react';
import { useCompare } from '../store/compare';
import { useSweep } from '../store/sweep';
import { CompareSection } from './CompareMethods';
import { ScalingSection } from './ScalingSweep';

export function SweepPanel() {
  const hasSweep = useSweep((s) => s.def !== null);
  const hasCompare = useCompare((s) => s.spec !== null);
  const [mode, setMode] = useState<'scaling' | 'compare'>(hasCompare && !hasSweep ? 'compare' : 'scaling');
  return (
    <section className="card" aria-label="sweeps" data-testid="sweeps">
      <div className="card-head">
        <h2>{mode === 'scaling' ? 'Scaling-law sweeps' : 'Compare methods'}</h2>
        <div className="row" role="tablist">
          <button
            type="button"
            role="tab"
            aria-selected={mode === 'scaling'}
            className={mode === 'scaling' ? '' : 'ghost'}
            onClick={() => setMode('scaling')}
            data-testid="sweep-mode-scaling"
          >
            Scaling sweep
          </button>
          <button
            type="button"
            role="tab"
            aria-selected={mode === 'compare'}
            className={mode === 'compare' ? '' : 'ghost'}
            onClick={() => setMode('compare')}
            data-testid="sweep-mode-compare"
          >
            Compare methods
          </button>
        </div>
      </div>
      {mode === 'scaling' ? <ScalingSection /> : <CompareSection />}
    </section>
  );
}
