// Vega dashboard: progressive enhancement of the server-rendered pages.
// Every page works without this module; it adds live updates over SSE,
// bulk selection and the replay slider.
import { startScanLive, startActivity } from './live.js';
import { enhanceBulk } from './bulk.js';
import { enhanceReplay } from './replay.js';

const main = document.getElementById('main');
if (main) {
  if (main.dataset.live && main.dataset.scanId) {
    startScanLive(main);
  } else if (main.dataset.live) {
    startActivity(main);
  }
  document.querySelectorAll('form[data-bulk]').forEach(enhanceBulk);
  document.querySelectorAll('form[data-replay]').forEach(enhanceReplay);
}
