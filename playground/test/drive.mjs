// Drives the playground in headless Chromium (Debian's, through
// playwright-core) and prints what the page showed, as one JSON report on
// stdout, for tests/all/playground.rs to compare with `host-shim run`.
//
// usage: node playground/test/drive.mjs BASE_URL [--screenshot FILE]
//   BASE_URL serves a built site (playground/build). CHROMIUM overrides
//   /usr/bin/chromium.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';

const [base, ...rest] = process.argv.slice(2);
const screenshot = rest[0] === '--screenshot' ? rest[1] : undefined;
const flows = JSON.parse(readFileSync(0, 'utf8') || '{}'); // { templateError, endless } from the test

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const report = { examples: {}, requests: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  // Everything the page fetches, to show nothing leaves this server.
  page.on('request', (r) => report.requests.push(r.url()));
  page.on('pageerror', (e) => { report.pageErrors = [...(report.pageErrors || []), String(e)]; });
  await page.goto(`${base}/index.html?deadline=2000`);

  const settled = async () => {
    await page.waitForFunction(() => {
      const s = document.getElementById('status').textContent;
      return s === 'ready' || /^(completed|waiting|failed|stopped)/.test(s);
    }, null, { timeout: 60_000 });
    return {
      status: await page.textContent('#status'),
      output: await page.textContent('#output'),
    };
  };
  const runExample = async (id) => {
    await page.selectOption('#example', id);
    await page.click('#run');
    return settled();
  };
  await page.waitForFunction(() => !document.getElementById('run').disabled, null, { timeout: 60_000 });

  for (const id of ['hello', 'seed-001']) report.examples[id] = (await runExample(id)).output;
  // The last run's trace (hello's: run again).
  await runExample('hello');
  report.trace = await page.$$eval('#trace tbody tr', (rows) => rows.map((r) => JSON.parse(r.dataset.record)));
  if (screenshot) {
    await page.selectOption('#example', 'hello');
    await page.click('#run');
    await settled();
    await page.screenshot({ path: screenshot });
  }
  // Two runs of the counter: the in-page state store counts.
  report.examples.counter = [(await runExample('counter')).output];
  await page.click('#run');
  report.examples.counter.push((await settled()).output);
  // The conversation: waits, then the reply resumes it.
  const asked = await runExample('ask');
  await page.fill('#message', '{"name": "Ada"}');
  await page.click('#send');
  report.examples.ask = [asked.output, (await settled()).output];

  // A template error: shown at its line.
  if (flows.templateError) {
    await page.fill('#flow', flows.templateError);
    await page.fill('#input', '{}');
    await page.click('#run');
    const failed = await settled();
    report.templateError = {
      output: failed.output,
      location: await page.textContent('#error-location'),
      markedLines: await page.$$eval('#gutter div.error', (ds) => ds.map((d) => Number(d.textContent))),
    };
  }
  // An endless flow: stopped by the deadline; the page still works.
  if (flows.endless) {
    await page.fill('#flow', flows.endless);
    await page.fill('#input', '{}');
    const started = Date.now();
    await page.click('#run');
    const stopped = await settled();
    report.endless = { status: stopped.status, output: stopped.output, ms: Date.now() - started };
    await page.waitForFunction(() => document.getElementById('status').textContent === 'ready', null, { timeout: 60_000 });
    report.afterEndless = (await runExample('hello')).output;
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + '\n');
