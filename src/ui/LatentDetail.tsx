/**
 * One latent's dashboard in the latent browser (data: src/worker/dashboards.ts): density and the
 * histogram of its nonzero activations, its N2G explanation, the tokens whose logits it raises and
 * lowers most (when the dataset's language model is loaded), top-activating contexts and contexts
 * sampled from activation-quantile bands with every token shaded by the latent's value on it, and
 * the nearest latents by decoder cosine.
 */
import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { DashContext, LogitEffect } from '../eval/dashboard';
import { openLatent } from '../store/worker';
import type { LatentDetail } from '../worker/protocol';
import { fmtInt, fmtNum, fmtPct } from './format';

export function Detail({ d }: { d: LatentDetail }) {
  const hist = d.histogram.counts.map((c, i) => ({
    x: (d.histogram.edges[i] + d.histogram.edges[i + 1]) / 2,
    rows: c,
  }));
  return (
    <div className="lb-detail" data-testid="latent-detail" data-latent={d.id}>
      <h4>
        Latent #{d.id}{' '}
        <span className="muted thin small">
          fires on {fmtPct(d.freq, 2)} of rows ({fmtInt(d.fired)}) · mean activation {fmtNum(d.meanAct, 3)} ·
          max {fmtNum(d.maxAct, 3)}
        </span>
      </h4>
      {d.explanation ? (
        <p className="small" data-testid="latent-explanation">
          Explanation: <code>{d.explanation.text}</code> · precision {fmtNum(d.explanation.precision, 2)} ·
          recall {fmtNum(d.explanation.recall, 2)} · F1 {fmtNum(d.explanation.f1, 2)}
        </p>
      ) : (
        <p className="muted small">No explanation (needs token ids, and the latent must fire).</p>
      )}
      <figure className="chart" data-testid="latent-histogram">
        <figcaption>Nonzero activations</figcaption>
        <ResponsiveContainer width="100%" height={130}>
          <BarChart data={hist} margin={{ top: 4, right: 8, bottom: 0, left: 0 }} barCategoryGap={1}>
            <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" vertical={false} />
            <XAxis
              dataKey="x"
              tickFormatter={(v: number) => fmtNum(v, 2)}
              stroke="var(--muted)"
              tick={{ fill: 'var(--muted)', fontSize: 10 }}
            />
            <YAxis
              width={34}
              allowDecimals={false}
              stroke="var(--muted)"
              tick={{ fill: 'var(--muted)', fontSize: 10 }}
            />
            <Tooltip
              contentStyle={{ background: 'var(--card)', border: '1px solid var(--border)', fontSize: 12 }}
              isAnimationActive={false}
              labelFormatter={(v: unknown) => `≈ ${fmtNum(Number(v), 3)}`}
            />
            <Bar dataKey="rows" fill="var(--c2)" isAnimationActive={false} />
          </BarChart>
        </ResponsiveContainer>
      </figure>
      <Logits d={d} />
      <div className="small">
        <strong>Top activations</strong>
        <ol className="contexts" data-testid="latent-contexts">
          {d.top.map((t) => (
            <Context key={t.row} c={t} max={d.maxAct} />
          ))}
        </ol>
        {d.bands.some((b) => b.contexts.length > 0) ? (
          <div data-testid="latent-bands">
            {d.bands
              .slice()
              .reverse()
              .filter((b) => b.contexts.length > 0)
              .map((b) => (
                <div key={b.qLo}>
                  <strong>
                    Quantile {b.qLo.toFixed(2)}–{b.qHi.toFixed(2)}
                  </strong>{' '}
                  <span className="muted">
                    activation {fmtNum(b.lo, 3)}–{fmtNum(b.hi, 3)} · {fmtInt(b.count)} rows
                  </span>
                  <ol className="contexts">
                    {b.contexts.map((t) => (
                      <Context key={t.row} c={t} max={d.maxAct} />
                    ))}
                  </ol>
                </div>
              ))}
          </div>
        ) : null}
      </div>
      <div className="small">
        <strong>Nearest latents (decoder cosine)</strong>
        <div className="row wrap neighbours" data-testid="latent-neighbours">
          {d.neighbours.map((n) => (
            <button
              key={n.latent}
              type="button"
              className="ghost chipbtn"
              onClick={() => openLatent(n.latent)}
            >
              #{n.latent} <span className="muted">{fmtNum(n.cos, 2)}</span>
            </button>
          ))}
        </div>
      </div>
    </div>
  );
}

/** The tokens whose logits the decoder direction raises and lowers most, through the final norm. */
function Logits({ d }: { d: LatentDetail }) {
  if (!d.logits)
    return (
      <p className="muted small" data-testid="latent-logits-none">
        Logit effects need the dataset's language model (the demo, or activations extracted in the page).
      </p>
    );
  const col = (title: string, list: LogitEffect[], id: string) => (
    <div>
      <strong>{title}</strong>
      <ol className="contexts ctx" data-testid={id}>
        {list.map((e) => (
          <li key={e.token}>
            {JSON.stringify(e.piece)} <span className="muted">{fmtNum(e.value, 3)}</span>
          </li>
        ))}
      </ol>
    </div>
  );
  return (
    <div className="small row wrap logit-cols" data-testid="latent-logits">
      {col('Logits it raises', d.logits.up, 'logits-up')}
      {col('Logits it lowers', d.logits.down, 'logits-down')}
    </div>
  );
}

/** A context with every token shaded by the latent's value on it (dotted: a token not evaluated). */
function Context({ c, max }: { c: DashContext; max: number }) {
  return (
    <li>
      <span className="ctx-val">{fmtNum(c.value, 3)}</span>
      {c.tokens.length > 0 ? (
        <span className="ctx">
          {c.tokens.map((piece, i) => {
            const a = c.acts[i];
            const shade = a !== null && a > 0 && max > 0 ? Math.min(1, a / max) : 0;
            return (
              <span
                // biome-ignore lint/suspicious/noArrayIndexKey: tokens repeat; position is the identity
                key={i}
                className={`tok${i === c.active ? ' active' : ''}${a === null ? ' na' : ''}`}
                style={shade > 0 ? { background: `rgba(255, 140, 0, ${shade.toFixed(3)})` } : undefined}
                title={a === null ? 'not evaluated' : `activation ${fmtNum(a, 3)}`}
                data-testid={i === c.active ? 'active-token' : shade > 0 ? 'shaded-token' : undefined}
              >
                {piece}
              </span>
            );
          })}
        </span>
      ) : (
        <span className="muted">row {fmtInt(c.row)}</span>
      )}
    </li>
  );
}
