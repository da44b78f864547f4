/** Sweeps over (N, k), scaling-law fits, and plot export. */
export * from './fit';
export * from './laws';
export * from './plots';
export * from './rng';
export * from './svg';
export * from './sweep';
