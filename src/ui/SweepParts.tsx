/**
 * Pieces the sweep panel's two modes (scaling sweep, method comparison) share: the N choices and
 * list parsing of the builders, builder form fields, the problem list, the progress of a run queue
 * (status, resume/stop/discard, overall bar, current run, the queue's runs), a row of export links
 * with the Blob URLs behind them, and the ablation table.
 */
import { type ReactNode, useEffect, useMemo } from 'react';
import type { AblationRow } from '../scaling/runner';
import { type ConfigForm, useLab } from '../store/lab';
import type { QueueCurrent, QueueState } from '../store/run-queue';
import type { DatasetInfo } from '../worker/protocol';
import { fmtCompact, fmtNum, fmtPct } from './format';

export const N_CHOICES = [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

/** A comma- or space-separated list of numbers; a k or m suffix multiplies by 1e3 or 1e6. */
export function parseList(s: string): number[] {
  return s
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((p) => Number(p.replace(/k$/i, 'e3').replace(/m$/i, 'e6')));
}

/** What a builder reads from the lab: the dataset, the configuration panel, and why it may not start now. */
export interface LabContext {
  dataset: DatasetInfo | null;
  config: ConfigForm;
  busy: string[];
}

export function TextField(props: {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  testId: string;
  disabled?: boolean;
  children?: ReactNode;
}) {
  return (
    <div className="field">
      <label htmlFor={props.id}>{props.label}</label>
      <input
        id={props.id}
        type="text"
        value={props.value}
        disabled={props.disabled}
        onChange={(e) => props.onChange(e.target.value)}
        data-testid={props.testId}
      />
      {props.children}
    </div>
  );
}

export function CheckField(props: {
  checked: boolean;
  onChange: (checked: boolean) => void;
  testId: string;
  label: string;
  help: string;
}) {
  return (
    <div className="field toggle">
      <label>
        <input
          type="checkbox"
          checked={props.checked}
          onChange={(e) => props.onChange(e.target.checked)}
          data-testid={props.testId}
        />
        {props.label}
      </label>
      <p className="help">{props.help}</p>
    </div>
  );
}

export function ProblemList({ problems, testId }: { problems: string[]; testId: string }) {
  if (!problems.length) return null;
  return (
    <ul className="problems" data-testid={testId}>
      {problems.map((p) => (
        <li key={p}>{p}</li>
      ))}
    </ul>
  );
}

/** Fraction of the current run's tokens trained so far. */
const runFraction = (cur: QueueCurrent | null) =>
  cur && cur.total > 0 ? Math.min(1, cur.tokens / cur.total) : 0;

interface QueueItem {
  key: string;
  label: string;
  /** the finished run's state ('done', 'failed') and summary; null while pending or running */
  result: { state: string; text: string } | null;
}

export interface QueueProgressProps {
  /** data-testid prefix: `${testId}-progress`, `-status`, `-resume`, `-stop`, `-discard`, `-current`, `-queue` */
  testId: string;
  /** 'sweep', 'comparison' */
  noun: string;
  /** the queue's store state (status, current run, message, finished runs) */
  state: QueueState<QueueCurrent> & { done: Record<string, unknown> };
  total: number;
  pending: number;
  actions: { active: boolean; resume: () => void; stop: () => void; discard: () => void };
  resumeLabel: string;
  stopLabel: string;
  countTestId?: string;
  /** shown under the buttons while the queue can be resumed */
  resumeNotice?: ReactNode;
  /** names the current run in the line "run i/n: … · tokens/total tokens (…%)…" (no line without it) */
  currentRun: string | null | undefined;
  /** said after the current run's tokens */
  currentTail?: string | null;
  queueLabel: string;
  /** data-testid prefix of the queue's items (their key follows) */
  itemTestId: string;
  /** key of the running item */
  currentKey: string | undefined;
  items: QueueItem[];
}

export function QueueProgress(p: QueueProgressProps) {
  const hasData = useLab((st) => Boolean(st.dataset.info));
  const { status, current, message } = p.state;
  const done = Object.keys(p.state.done).length;
  const { active } = p.actions;
  const curFrac = runFraction(current);
  const overall = p.total ? (done + (current ? curFrac : 0)) / p.total : 0;
  const canResume = !active && p.pending > 0;
  return (
    <div data-testid={`${p.testId}-progress`} data-status={status} data-done={done} data-total={p.total}>
      <div className="row wrap" style={{ gap: 8, alignItems: 'center' }}>
        <strong data-testid={`${p.testId}-status`}>
          {status === 'interrupted' ? `${p.noun} interrupted (page reloaded)` : `${p.noun} ${status}`}
        </strong>
        <span data-testid={p.countTestId}>
          {done}/{p.total} runs done
        </span>
        {canResume && (
          <button
            type="button"
            onClick={p.actions.resume}
            data-testid={`${p.testId}-resume`}
            disabled={!hasData}
          >
            {p.resumeLabel} ({p.pending} left)
          </button>
        )}
        {active && (
          <button
            type="button"
            className="ghost"
            onClick={p.actions.stop}
            data-testid={`${p.testId}-stop`}
            disabled={status === 'stopping'}
          >
            {p.stopLabel}
          </button>
        )}
        {!active && (
          <button
            type="button"
            className="ghost"
            onClick={p.actions.discard}
            data-testid={`${p.testId}-discard`}
          >
            Discard
          </button>
        )}
      </div>
      {canResume && p.resumeNotice}
      {message && <p className="field-error">{message}</p>}
      <div className="progress" title={`whole ${p.noun}`}>
        <div className="bar" style={{ width: `${(overall * 100).toFixed(1)}%` }} />
      </div>
      {current && p.currentRun && (
        <p className="small" data-testid={`${p.testId}-current`}>
          run {current.index + 1}/{p.total}: {p.currentRun} · {fmtCompact(current.tokens)}/
          {fmtCompact(current.total)} tokens ({fmtPct(curFrac, 0)}){p.currentTail}
        </p>
      )}
      <details>
        <summary className="small">{p.queueLabel}</summary>
        <ol className="small" data-testid={`${p.testId}-queue`}>
          {p.items.map((it) => {
            const state = it.key === p.currentKey ? 'running' : 'pending';
            return (
              <li
                key={it.key}
                data-testid={`${p.itemTestId}${it.key}`}
                data-state={it.result?.state ?? state}
              >
                {it.label}: {it.result?.text ?? state}
              </li>
            );
          })}
        </ol>
      </details>
    </div>
  );
}

export interface ExportLink {
  /** a Blob URL, or null while there is nothing to export */
  url: string | null;
  file: string;
  testId: string;
}

export function ExportLinks({ links, testId }: { links: ExportLink[]; testId: string }) {
  return (
    <p className="row wrap small" style={{ gap: 10 }} data-testid={testId}>
      export:
      {links.map(
        (l) =>
          l.url && (
            <a key={l.testId} href={l.url} download={l.file} data-testid={l.testId}>
              {l.file}
            </a>
          ),
      )}
    </p>
  );
}

/** An object URL for `content` (null while there is none), revoked when it changes or unmounts. */
export function useBlobUrl(content: string | null, type: string): string | null {
  const url = useMemo(
    () => (content === null ? null : URL.createObjectURL(new Blob([content], { type }))),
    [content, type],
  );
  useEffect(() => () => (url ? URL.revokeObjectURL(url) : undefined), [url]);
  return url;
}

/** The ablation runs beside the full recipe: nMSE, its change, dead fraction and L0. */
export function AblationRows({ rows, prefix }: { rows: AblationRow[] | undefined; prefix: string }) {
  if (!rows?.length) return null;
  const full = rows.find((r) => r.id === 'full');
  return (
    <table className="small" data-testid={`${prefix}-table`}>
      <caption style={{ textAlign: 'left' }}>
        Ablations at N={rows[0].N}, k={rows[0].k}
      </caption>
      <thead>
        <tr>
          <th>variant</th>
          <th>nMSE</th>
          <th>vs full</th>
          <th>dead</th>
          <th>L0</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.id} data-testid={`${prefix}-${r.id}`} data-nmse={r.nmse}>
            <td>{r.label}</td>
            <td>{fmtNum(r.nmse, 4)}</td>
            <td>{full ? `${r.nmse >= full.nmse ? '+' : ''}${fmtPct(r.nmse / full.nmse - 1)}` : '—'}</td>
            <td>{fmtPct(r.dead_fraction)}</td>
            <td>{fmtNum(r.l0, 3)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
