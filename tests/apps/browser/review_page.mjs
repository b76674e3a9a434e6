// Drives the reviewer page (GET /review of focus serve) in headless Chromium with playwright-core,
// as tests/apps/serve_review_test.cpp asks: log in with a review key, label N items by keyboard
// (a digit for a class, Enter for the model's answer, alternately), check the model's evidence is
// shown, press U (undo) and label the item that comes back with another class, take a
// screenshot, and print one JSON line: the labels standing (as sent), the undone item's id and
// its new label, whether the evidence was shown, console errors, failed or outside requests. Usage:
//   node review_page.mjs PLAYWRIGHT_CORE_DIR CHROMIUM URL KEY N SCREENSHOT.png
const [pwDir, chromiumPath, url, key, nArg, shot] = process.argv.slice(2);
const { chromium } = await import(pwDir + '/index.mjs');
const n = Number(nArg);
const out = { labelled: [], evidence_shown: false, undone_id: null, relabelled: null,
              console_errors: [], bad_requests: [], error: null };
const origin = new URL(url).origin;
// Polls a page function (run through the DevTools protocol, which the page's CSP does not
// govern, unlike waitForFunction's string predicates) until it returns true.
async function until(page, fn, arg, ms = 15000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await page.evaluate(fn, arg)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('timed out waiting for ' + fn.toString());
}
const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 520 } });
  page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(m.text()); });
  page.on('pageerror', (e) => out.console_errors.push(String(e)));
  page.on('requestfailed', (r) => out.bad_requests.push('failed ' + r.url()));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('data:')) out.bad_requests.push('outside ' + u);
  });
  await page.goto(url);
  await page.fill('#key', key);
  await page.press('#key', 'Enter');
  for (let i = 0; i < n; ++i) {
    await until(page, () => !document.getElementById('item').hidden &&
                                     document.getElementById('image').src.startsWith('data:image/png') &&
                                     document.getElementById('status').textContent === '');
    const before = await page.evaluate(() => [document.getElementById('image').src,
                                              document.getElementById('prediction').textContent,
                                              document.getElementById('mine').textContent]);
    if (i === 0) {
      out.evidence_shown = await page.evaluate(() => !document.getElementById('evidence-box').hidden &&
                                                      document.getElementById('evidence').src.startsWith('data:image/png'));
    }
    const press = i % 2 === 0 ? String((i % 9) + 1) : 'Enter';
    const classes = await page.$$eval('#classes button', (bs) => bs.map((b) => b.textContent.replace(/^\d\s+/, '')));
    const label = press === 'Enter' ? before[1] : classes[Number(press) - 1];
    await page.keyboard.press(press);
    await until(page, (m) => document.getElementById('mine').textContent !== m, before[2]);
    out.labelled.push(label);
  }
  // U: the last label is taken back and its item returns; it is labelled again, another class.
  const mine = await page.evaluate(() => document.getElementById('mine').textContent);
  await page.keyboard.press('u');
  await until(page, () => document.getElementById('status').textContent.startsWith('undone'));
  out.undone_id = await page.evaluate(() => Number(document.getElementById('item').dataset.id));
  const names = await page.$$eval('#classes button', (bs) => bs.map((b) => b.textContent.replace(/^\d\s+/, '')));
  const last = out.labelled[out.labelled.length - 1];
  const k = names.slice(0, 9).findIndex((c) => c !== last);
  await page.keyboard.press(String(k + 1));
  await until(page, (m) => document.getElementById('mine').textContent === m &&
                           !document.getElementById('status').textContent.startsWith('undone'), mine);
  out.relabelled = names[k];
  out.labelled[out.labelled.length - 1] = names[k];
  await page.screenshot({ path: shot });
} catch (e) {
  out.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
