// Checks the CA's mesh page in headless Debian chromium (playwright-core).
//
//   dir=$(tests/tools/browser.sh) || exit $?
//   LY_NODE_DIR=$dir node tests/tools/mesh_page.mjs [--window=1m|5m|60m]
//       [--timeout=SECONDS] URL SCREENSHOT.png ID1 [ID2 ...]
//
// Opens URL at 1280x800 and waits (20 s unless --timeout) until the page
// has a row (tr[data-spiffe-id]) for every ID with a non-empty inbound or
// outbound data-rate in the selected window (default: the page's, 5m), i.e.
// until each workload's traffic has been reported. An ID written as ~ID
// only has to have a row (a workload with no traffic). Then it saves a
// full-page screenshot, checks that the page states the identity runway,
// and prints one JSON line per ID, in the order given:
//   {"spiffe_id":"spiffe://...","inbound":0.75,"outbound":null,
//    "name":"default/api","state":"ok","roots":"ee88cec9f4ee",
//    "cert_red":false,"last_report":"0s ago","instances":"2 (1 stale)"}
// (rates as the page's data-rate attributes hold them; null: no traffic;
// the rest as the row's cells show them).
// Exit 0 on success; 1 on timeout (naming what is missing), a missing
// runway or a script error in the page (the screenshot is saved anyway);
// 2 on bad usage or when playwright-core cannot be loaded.
//
// playwright-core is loaded from $LY_NODE_DIR/node_modules when LY_NODE_DIR
// is set (browser.sh prints that directory), else through NODE_PATH or the
// node_modules directories above this file.
import { createRequire } from 'node:module';
import path from 'node:path';

const fail = (code, msg) => {
  process.stderr.write(`mesh_page: ${msg}\n`);
  process.exit(code);
};

let windowSel = null;
let timeoutS = 20;
const pos = [];
for (const a of process.argv.slice(2)) {
  let m;
  if ((m = /^--window=(1m|5m|60m)$/.exec(a))) windowSel = m[1];
  else if ((m = /^--timeout=(\d+(?:\.\d+)?)$/.exec(a))) timeoutS = Number(m[1]);
  else if (a.startsWith('--')) fail(2, `unknown option ${a}`);
  else pos.push(a);
}
if (pos.length < 3)
  fail(2, 'usage: mesh_page.mjs [--window=W] [--timeout=S] URL SCREENSHOT.png ID1 [ID2 ...]');
const [url, shot, ...rawIds] = pos;
const wanted = rawIds.map((s) => (s.startsWith('~') ? { id: s.slice(1), traffic: false } : { id: s, traffic: true }));

const require = createRequire(
  process.env.LY_NODE_DIR ? path.resolve(process.env.LY_NODE_DIR) + path.sep : import.meta.url);
let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch (e) {
  fail(2, `cannot load playwright-core (run tests/tools/browser.sh and set LY_NODE_DIR): ${e.message}`);
}

// In the page: what each wanted ID still lacks ([] when all is there).
function missing(want) {
  const out = [];
  const rows = new Map();
  for (const tr of document.querySelectorAll('tr[data-spiffe-id]')) rows.set(tr.getAttribute('data-spiffe-id'), tr);
  for (const { id, traffic } of want) {
    const tr = rows.get(id);
    if (!tr) { out.push(`${id}: no row`); continue; }
    if (!traffic) continue;
    const rates = [...tr.querySelectorAll('[data-direction][data-rate]')].map((c) => c.getAttribute('data-rate'));
    if (!rates.some((r) => r !== '')) out.push(`${id}: row but no inbound or outbound rate yet`);
  }
  return out;
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  // The machine's network is closed: keep chromium from phoning home.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let code = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/\/favicon\.ico$/.test(m.location().url || ''))
      process.stderr.write(`mesh_page: console: ${m.text()}\n`);
  });

  const deadline = Date.now() + timeoutS * 1000;
  for (;;) { // the server may still be starting: retry until the deadline
    try {
      await page.goto(url, { waitUntil: 'load', timeout: Math.max(1000, deadline - Date.now()) });
      break;
    } catch (e) {
      if (Date.now() + 500 >= deadline) throw new Error(`cannot load ${url}: ${e.message.split('\n')[0]}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  if (windowSel) await page.click(`#window button[data-window="${windowSel}"]`);
  // Polled from here: waitForFunction's string form needs eval, which the
  // page's Content-Security-Policy rightly forbids.
  let lack = await page.evaluate(missing, wanted);
  while (lack.length && Date.now() < deadline) {
    await page.waitForTimeout(250);
    lack = await page.evaluate(missing, wanted);
  }
  const timedOut = lack.length > 0;
  await page.screenshot({ path: shot, fullPage: true });

  if (timedOut) {
    const banner = await page.evaluate(() => {
      const b = document.getElementById('banner');
      return b && !b.hidden ? b.textContent : '';
    });
    throw new Error(`timed out after ${timeoutS}s; missing:\n  ${lack.join('\n  ')}` +
                    (banner ? `\npage says: ${banner}` : '') + `\nscreenshot: ${shot}`);
  }

  const rows = await page.evaluate((ids) => ids.map((id) => {
    const tr = [...document.querySelectorAll('tr[data-spiffe-id]')].find((t) => t.getAttribute('data-spiffe-id') === id);
    const rate = (dir) => {
      const v = tr.querySelector(`[data-direction="${dir}"]`)?.getAttribute('data-rate') ?? '';
      return v === '' ? null : Number(v);
    };
    const text = (sel) => (tr.querySelector(sel)?.textContent ?? '').trim();
    return { spiffe_id: id, inbound: rate('inbound'), outbound: rate('outbound'),
             name: text('td.wl .id'), state: tr.getAttribute('data-state'), roots: text('td.fp'),
             cert_red: !!tr.querySelector('td.cert')?.classList.contains('red'),
             last_report: text('td.age'), instances: text('td.num') };
  }), wanted.map((w) => w.id));
  for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n');

  const runway = (await page.textContent('#runway').catch(() => '')) || '';
  if (!/lose its identity in \d|no workloads reporting|already lost its identity/.test(runway)) {
    process.stderr.write(`mesh_page: the page does not state the identity runway (got "${runway.trim()}")\n`);
    code = 1;
  } else {
    process.stderr.write(`mesh_page: runway: ${runway.trim()}\n`);
  }
  if (pageErrors.length) {
    process.stderr.write(`mesh_page: script errors in the page:\n  ${pageErrors.join('\n  ')}\n`);
    code = 1;
  }
} catch (e) {
  process.stderr.write(`mesh_page: ${e.message}\n`);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
