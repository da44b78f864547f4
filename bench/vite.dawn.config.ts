import { defineConfig } from 'vite';

// bench/dawn.ts as one Node ES module (.dawn/out/bench.mjs, and its chunks), WGSL inlined through ?raw, so it runs where
// only node and the `webgpu` package are present (a GPU server with no node_modules of ours).
export default defineConfig({
  logLevel: 'warn',
  publicDir: false,
  build: {
    ssr: 'bench/dawn.ts',
    outDir: '.dawn/out',
    emptyOutDir: true,
    target: 'node20',
    minify: false,
    rollupOptions: { external: ['webgpu'], output: { format: 'es', entryFileNames: 'bench.mjs' } },
  },
  ssr: { noExternal: true, external: ['webgpu'] },
});
