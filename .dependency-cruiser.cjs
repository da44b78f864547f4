/**
 * The layers of src/ and what each may import (checked in `npm test` by `npm run lint:deps`).
 * Bottom to top; a folder may import its own layer and those below it, never one above:
 *   data, gpu        parsing and batching of activation files; WebGPU device, kernels and their wrappers
 *   lm               the language models' forward passes (uses gpu)
 *   sae, reference   the training engine (config, buffer plan, step, trainer, checkpoint state) and its
 *                    float64 twin
 *   io, eval, scaling   files of trained SAEs, evaluation, scaling-law fits (use the engine)
 *   worker           the worker protocol and its handlers (drives everything below)
 *   store            the page's state (zustand) and the client side of the worker
 *   ui               React components
 * No import cycles anywhere.
 */
const LAYERS = [
  ['data', 'gpu'],
  ['lm'],
  ['sae', 'reference'],
  ['io', 'eval', 'scaling'],
  ['worker'],
  ['store'],
  ['ui'],
];

const above = (i) => LAYERS.slice(i + 1).flat();
const layerRules = LAYERS.flatMap((folders, i) =>
  i === LAYERS.length - 1
    ? []
    : folders.map((f) => ({
        name: `layer-${f}`,
        comment: `src/${f} may not import a higher layer (${above(i).join(', ')})`,
        severity: 'error',
        from: { path: `^src/${f}/` },
        to: { path: `^src/(${above(i).join('|')})/` },
      })),
);

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'no import cycles',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.wgsl' },
  },
};
