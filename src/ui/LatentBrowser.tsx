/**
 * Latent browser: a paged table of every latent of the last evaluation (sortable by id, density,
 * activation, explanation F1; searchable by id or explanation text), the open latent's dashboard
 * (./LatentDetail.tsx), and a button that downloads every latent's dashboard as a static folder
 * (zip) that opens from disk.
 */
import { useMemo } from 'react';
import {
  type LatentSortKey,
  setLiveOnly,
  setPage,
  setSearch,
  setSort,
  useEval,
  visibleLatents,
} from '../store/eval';
import { formatBytes } from '../store/files';
import { exportDashboards, openLatent } from '../store/worker';
import { fmtInt, fmtNum, fmtPct } from './format';
import { Detail } from './LatentDetail';

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
          <DashboardExport />
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

/** Downloads every latent's dashboard as one static folder (zip): index.html + data/*.js, no server needed. */
function DashboardExport() {
  const dash = useEval((s) => s.dash);
  return (
    <div className="row wrap lb-controls">
      <button
        type="button"
        className="ghost"
        disabled={dash.busy}
        onClick={exportDashboards}
        data-testid="export-dashboards"
        title="Every latent's dashboard as a folder (index.html + data files) that opens from disk, offline"
      >
        {dash.busy ? `Writing dashboards… ${fmtPct(dash.fraction, 0)}` : 'Download dashboards (zip)'}
      </button>
      {dash.last && !dash.busy ? (
        <span className="muted small" data-testid="dashboards-done">
          {dash.last.fileName}: {fmtInt(dash.last.latents)} latents, {fmtInt(dash.last.files)} files,{' '}
          {formatBytes(dash.last.size)} zipped; unzip and open index.html
        </span>
      ) : null}
      {dash.error ? (
        <span className="bad small" data-testid="dashboards-error">
          {dash.error}
        </span>
      ) : null}
    </div>
  );
}
