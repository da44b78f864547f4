/**
 * Latent browser: a paged table of every latent of the last evaluation (sortable by id, density,
 * activation, explanation F1; searchable by id or explanation text), and the open latent's detail:
 * activation histogram, top-activating token contexts with the active token highlighted, nearest
 * latents by decoder cosine, and its N2G explanation.
 */
import { useMemo } from 'react';
import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import {
  type LatentSortKey,
  setLiveOnly,
  setPage,
  setSearch,
  setSort,
  useEval,
  visibleLatents,
} from '../store/eval';
import { openLatent } from '../store/worker';
import type { LatentDetail } from '../worker/protocol';
import { fmtInt, fmtNum, fmtPct } from './format';

const PAGE = 25;

const COLUMNS: { key: LatentSortKey; label: string; num: boolean }[] = [
  { key: 'id', label: 'latent', num: false },
  { key: 'freq', label: 'density', num: true },
  { key: 'meanAct', label: 'mean act', num: true },
  { key: 'maxAct', label: 'max act', num: true },
  { key: 'f1', label: 'expl. F1', num: true },
];

export function LatentBrowser() {
  const report = useEval((s) => s.report);
  const sort = useEval((s) => s.sort);
  const desc = useEval((s) => s.desc);
  const search = useEval((s) => s.search);
  const liveOnly = useEval((s) => s.liveOnly);
  const page = useEval((s) => s.page);
  const selected = useEval((s) => s.selected);
  const rows = useMemo(
    () => visibleLatents({ report, sort, desc, search, liveOnly }),
    [report, sort, desc, search, liveOnly],
  );
  if (!report) return null;
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  const p = Math.min(page, pages - 1);
  const shown = rows.slice(p * PAGE, (p + 1) * PAGE);

  return (
    <div className="eval-block latent-browser" data-testid="latent-browser">
      <h3>Latents</h3>
      <div className="lb-layout">
        <div className="lb-table">
          <div className="row wrap lb-controls">
            <input
              type="text"
              placeholder="search id or explanation"
              value={search}
              onChange={(e) => setSearch(e.target.value)}
              data-testid="latent-search"
              aria-label="search latents"
            />
            <label className="inline small">
              <input type="checkbox" checked={liveOnly} onChange={(e) => setLiveOnly(e.target.checked)} />{' '}
              fired only
            </label>
            <span className="muted small">{fmtInt(rows.length)} latents</span>
          </div>
          <table className="tbl lb" data-testid="latent-table">
            <thead>
              <tr>
                {COLUMNS.map((c) => (
                  <th key={c.key} className={c.num ? 'num' : undefined}>
                    <button
                      type="button"
                      className="sort"
                      onClick={() => setSort(c.key)}
                      data-testid={`sort-${c.key}`}
                    >
                      {c.label}
                      {sort === c.key ? (desc ? ' ▾' : ' ▴') : ''}
                    </button>
                  </th>
                ))}
                <th>explanation</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((l) => (
                <tr
                  key={l.id}
                  className={l.id === selected ? 'sel' : undefined}
                  onClick={() => openLatent(l.id)}
                  data-testid={`latent-row-${l.id}`}
                >
                  <td>#{l.id}</td>
                  <td className="num">{l.freq > 0 ? fmtPct(l.freq, 2) : 'never'}</td>
                  <td className="num">{fmtNum(l.meanAct, 3)}</td>
                  <td className="num">{fmtNum(l.maxAct, 3)}</td>
                  <td className="num">{fmtNum(l.f1, 2)}</td>
                  <td className="expl" title={l.explanation}>
                    {l.explanation ?? ''}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="row lb-pager">
            <button type="button" className="ghost" disabled={p === 0} onClick={() => setPage(p - 1)}>
              ‹ prev
            </button>
            <span className="muted small">
              page {p + 1} / {pages}
            </span>
            <button
              type="button"
              className="ghost"
              disabled={p >= pages - 1}
              onClick={() => setPage(p + 1)}
              data-testid="latent-next"
            >
              next ›
            </button>
          </div>
        </div>
        <LatentView />
      </div>
    </div>
  );
}

function LatentView() {
  const selected = useEval((s) => s.selected);
  const detail = useEval((s) => s.detail);
  const busy = useEval((s) => s.detailBusy);
  if (selected === null)
    return <div className="lb-detail muted small">Click a latent to see where it fires.</div>;
  if (!detail || detail.id !== selected)
    return <div className="lb-detail muted small">{busy ? `loading latent #${selected}…` : ''}</div>;
  return <Detail d={detail} />;
}

function Detail({ d }: { d: LatentDetail }) {
  const hist = d.histogram.counts.map((c, i) => ({
    x: (d.histogram.edges[i] + d.histogram.edges[i + 1]) / 2,
    rows: c,
  }));
  return (
    <div className="lb-detail" data-testid="latent-detail" data-latent={d.id}>
      <h4>
        Latent #{d.id}{' '}
        <span className="muted thin small">
          fires on {fmtPct(d.freq, 2)} of rows · mean activation {fmtNum(d.meanAct, 3)}
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
        <figcaption>Activation when firing</figcaption>
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
      <div className="small">
        <strong>Top activations</strong>
        <ol className="contexts" data-testid="latent-contexts">
          {d.top.map((t) => (
            <li key={t.row}>
              <span className="ctx-val">{fmtNum(t.value, 3)}</span>
              {t.context ? (
                <span className="ctx">
                  {t.context.map((piece, i) => (
                    <span
                      // biome-ignore lint/suspicious/noArrayIndexKey: tokens repeat; position is the identity
                      key={i}
                      className={i === t.activeIndex ? 'tok active' : 'tok'}
                      data-testid={i === t.activeIndex ? 'active-token' : undefined}
                    >
                      {piece}
                    </span>
                  ))}
                </span>
              ) : (
                <span className="muted">row {fmtInt(t.row)}</span>
              )}
            </li>
          ))}
        </ol>
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
