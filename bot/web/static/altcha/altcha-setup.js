// The ALTCHA widget for the web chat, loaded as one module under a strict Content-Security-Policy:
//   <script type="module" src="/static/altcha/altcha-setup.js"></script>
// It loads the "external" build of the widget (no inline <style>, no blob: worker), its French
// strings, and registers the proof-of-work worker for the one algorithm the server issues
// (SHA-256, see bot/web/proof_of_work.py) from this folder (CSP: worker-src 'self').
// See README.md next to this file.
import './altcha.min.js';
import './i18n/fr-fr.js';

const shaWorker = new URL('./workers/sha.js', import.meta.url);
globalThis.$altcha.algorithms.set('SHA-256', () => new Worker(shaWorker));
