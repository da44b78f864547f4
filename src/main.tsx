import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { applyTheme, useLab } from './store/lab';
import { connectWorker } from './store/worker';
import { App } from './ui/App';
import './ui/styles.css';

applyTheme(useLab.getState().theme);
// `?nodemo` skips loading the demo dataset on start (tests that bring their own file).
connectWorker({ autoDemo: !new URLSearchParams(location.search).has('nodemo') });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
