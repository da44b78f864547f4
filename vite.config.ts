import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// base './' so the built site works from any static host under a sub-path.
export default defineConfig({
  base: './',
  plugins: [react()],
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    outDir: 'dist',
    rollupOptions: { input: { main: 'index.html' } },
  },
  server: { fs: { allow: ['.'] } },
});
