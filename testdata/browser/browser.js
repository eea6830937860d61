'use strict';

// Two users in headless Chromium (two browser contexts, so two cookie
// jars) open the chat page through latch, land on two different replicas,
// and each sees the other's message; a message carrying <script> shows as
// text and does not run.
//
//   node browser.js --url http://127.0.0.1:8000/ --screenshot DIR/chat.png \
//     [--chromium /usr/bin/chromium]
//
// stdout: one JSON summary; exit status 0 only when every check held.

const { parseArgs } = require('node:util');
const { chromium } = require('playwright-core');

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    screenshot: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    timeout: { type: 'string', default: '10000' },
  },
});
const timeout = Number(args.timeout);
const summary = { ok: false, replicas: [], attempts: 0, checks: {}, errors: [] };

async function openUser(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => summary.errors.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => {
    summary.errors.push(`dialog opened: ${d.message()}`);
    d.dismiss();
  });
  await page.goto(args.url);
  await page.waitForFunction(() => document.getElementById('transport').textContent === 'websocket', null, { timeout });
  const replica = await page.textContent('#replica');
  return { context, page, replica };
}

async function send(page, text) {
  await page.fill('#text', text);
  await page.click('#send');
}

async function sees(page, text) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('#messages li .text')].some((el) => el.textContent === t),
    text,
    { timeout },
  );
}

async function main() {
  // launch() starts Chromium with a fresh, temporary user-data-dir of its
  // own (passing --user-data-dir is refused).
  const browser = await chromium.launch({
    executablePath: args.chromium,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
    ],
  });
  try {
    // A new context is a new cookie jar: keep opening until the second
    // user lands on a replica other than the first's.
    const alice = await openUser(browser);
    let bob;
    for (let i = 0; i < 20; i++) {
      summary.attempts++;
      bob = await openUser(browser);
      if (bob.replica !== alice.replica) break;
      await bob.context.close();
      bob = null;
    }
    summary.replicas = [alice.replica, bob ? bob.replica : null];
    if (!bob) throw new Error(`20 new contexts all landed on ${alice.replica}`);

    await send(alice.page, 'hi Bob, this is Alice');
    await send(bob.page, 'hi Alice, this is Bob');
    await sees(bob.page, 'hi Bob, this is Alice');
    summary.checks.bobSeesAlice = true;
    await sees(alice.page, 'hi Alice, this is Bob');
    summary.checks.aliceSeesBob = true;

    const evil = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';
    await send(alice.page, evil);
    await sees(bob.page, evil);
    summary.checks.scriptShownAsText = true;
    const injected = await bob.page.evaluate(() => ({
      pwned: window.__pwned === undefined ? null : window.__pwned,
      scripts: document.querySelectorAll('#messages script').length,
      images: document.querySelectorAll('#messages img').length,
    }));
    summary.injected = injected;
    summary.checks.scriptDidNotRun = injected.pwned === null && injected.scripts === 0 && injected.images === 0;

    if (args.screenshot) {
      await bob.page.screenshot({ path: args.screenshot, fullPage: true });
      summary.screenshot = args.screenshot;
    }
    summary.ok = summary.checks.scriptDidNotRun && summary.errors.length === 0;
  } finally {
    await browser.close();
  }
}

main()
  .catch((e) => summary.errors.push(String(e && e.stack ? e.stack : e)))
  .finally(() => process.stdout.write(JSON.stringify(summary) + '\n', () => process.exit(summary.ok ? 0 : 1)));
