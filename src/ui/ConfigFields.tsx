/**
 * The configuration panel's field components: each binds one key of the lab store's config form
 * (src/store/lab.ts) to an input, with its label, help line and validation message.
 */
import { type ReactNode, useState } from 'react';
import { type ConfigForm, setConfig, useLab } from '../store/lab';

type NumKey = {
  [K in keyof ConfigForm]: ConfigForm[K] extends number | null ? K : never;
}[keyof ConfigForm];

/** A number (nullable: empty means auto); keeps the text as typed while it means the stored value. */
export function NumberField(props: {
  k: NumKey;
  label: string;
  help: ReactNode;
  nullable?: boolean;
  placeholder?: string;
  step?: string;
  error?: string;
  disabled?: boolean;
}) {
  const value = useLab((s) => s.config[props.k]) as number | null;
  const parse = (t: string): number | null =>
    t.trim() === '' ? (props.nullable ? null : Number.NaN) : Number(t.replace(/_/g, ''));
  const show = (v: number | null) => (v === null ? '' : String(v));
  const [text, setText] = useState(show(value));
  const [synced, setSynced] = useState(value);
  // Follow external changes (presets, reset) in the same render as the change, not in an effect:
  // an effect runs after the browser has painted and handled input, so a preset's value used to
  // land after the user had selected the field's text, moving the caret to the end; what they
  // typed was then appended (2560 typed after Quick test's 102400 gave 1024002560 tokens).
  // Text that already means the new value (the user's own typing) is kept as typed.
  if (!Object.is(value, synced)) {
    setSynced(value);
    if (!Object.is(parse(text), value)) setText(show(value));
  }
  const id = `cfg-${props.k}`;
  return (
    <div className={`field${props.error ? ' invalid' : ''}`}>
      <label htmlFor={id}>{props.label}</label>
      <input
        id={id}
        data-testid={id}
        type="text"
        inputMode="decimal"
        value={text}
        placeholder={props.placeholder}
        disabled={props.disabled}
        aria-invalid={!!props.error}
        onChange={(e) => {
          const t = e.target.value;
          setText(t);
          setConfig(props.k, parse(t) as never);
        }}
      />
      <p className="help">{props.help}</p>
      {props.error && <p className="field-error">{props.error}</p>}
    </div>
  );
}

/** A checkbox for one boolean setting. */
export function Toggle(props: {
  k: 'auxk' | 'tiedInit' | 'gradProjection' | 'clipGrad' | 'ema' | 'multiTopK';
  label: string;
  help: ReactNode;
  disabled?: boolean;
}) {
  const v = useLab((s) => s.config[props.k]);
  const id = `cfg-${props.k}`;
  return (
    <div className="field toggle">
      <label htmlFor={id}>
        <input
          id={id}
          data-testid={id}
          type="checkbox"
          checked={v}
          disabled={props.disabled}
          onChange={(e) => setConfig(props.k, e.target.checked)}
        />
        {props.label}
      </label>
      <p className="help">{props.help}</p>
    </div>
  );
}

/** A choice among fixed options. */
export function Select<T extends string>(props: {
  k: 'bPreInit' | 'inputNorm' | 'activation';
  label: string;
  help: ReactNode;
  options: [T, string][];
  disabled?: boolean;
}) {
  const v = useLab((s) => s.config[props.k]);
  const id = `cfg-${props.k}`;
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <select
        id={id}
        data-testid={id}
        value={v}
        disabled={props.disabled}
        onChange={(e) => setConfig(props.k, e.target.value as never)}
      >
        {props.options.map(([o, l]) => (
          <option key={o} value={o}>
            {l}
          </option>
        ))}
      </select>
      <p className="help">{props.help}</p>
    </div>
  );
}

/** The decoder-norm switch: auto (null) follows the activation. */
export function UnitNormDecoder({ auto }: { auto: boolean }) {
  const v = useLab((s) => s.config.unitNormDecoder);
  return (
    <div className="field">
      <label htmlFor="cfg-unitNormDecoder">Unit-norm decoder</label>
      <select
        id="cfg-unitNormDecoder"
        data-testid="cfg-unitNormDecoder"
        value={v === null ? 'auto' : v ? 'on' : 'off'}
        onChange={(e) =>
          setConfig('unitNormDecoder', e.target.value === 'auto' ? null : e.target.value === 'on')
        }
      >
        <option value="auto">auto ({auto ? 'on' : 'off'} for this activation)</option>
        <option value="on">on</option>
        <option value="off">off</option>
      </select>
      <p className="help">
        Renormalize decoder rows after each step (off: the L1 penalty is weighted by the row norms instead,
        and there is no gradient projection).
      </p>
    </div>
  );
}
